//! Opaque pagination cursors. Clients must treat them as strings; inside they hold the
//! keyset position, so a page is a range scan on an index.

use crate::error::{ApiError, ErrorCode};
use crate::store::queries::ConversationCursor;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn invalid() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidInput,
        "the cursor is not one this API returned",
    )
}

pub fn encode_conversation(c: ConversationCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("c:{}:{}", c.last_activity_at, c.id))
}

pub fn decode_conversation(s: &str) -> Result<ConversationCursor, ApiError> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    let mut parts = raw.strip_prefix("c:").ok_or_else(invalid)?.splitn(2, ':');
    let last_activity_at = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    let id = parts
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)?;
    Ok(ConversationCursor {
        last_activity_at,
        id,
    })
}

pub fn encode_message(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("m:{id}"))
}

pub fn decode_message(s: &str) -> Result<i64, ApiError> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    raw.strip_prefix("m:")
        .and_then(|p| p.parse().ok())
        .ok_or_else(invalid)
}

/// A cursor of `N` integers under a one-letter tag (`s` for search results, `k` for a
/// contact's cases).
pub fn encode_parts(tag: &str, parts: &[i64]) -> String {
    let parts: Vec<String> = parts.iter().map(i64::to_string).collect();
    URL_SAFE_NO_PAD.encode(format!("{tag}:{}", parts.join(":")))
}

pub fn decode_parts<const N: usize>(tag: &str, s: &str) -> Result<[i64; N], ApiError> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?)
        .map_err(|_| invalid())?;
    let body = raw
        .strip_prefix(tag)
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(invalid)?;
    let parsed: Vec<i64> = body
        .split(':')
        .map(|p| p.parse().map_err(|_| invalid()))
        .collect::<Result<_, _>>()?;
    parsed.try_into().map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = ConversationCursor {
            last_activity_at: 1_700_000_000_000_000,
            id: 42,
        };
        assert_eq!(decode_conversation(&encode_conversation(c)).unwrap(), c);
        assert_eq!(decode_message(&encode_message(7)).unwrap(), 7);
        assert!(decode_conversation("nonsense").is_err());
        assert!(decode_message(&encode_conversation(c)).is_err());
        assert_eq!(
            decode_parts::<3>("s", &encode_parts("s", &[3, -1, 9])).unwrap(),
            [3, -1, 9]
        );
        assert!(decode_parts::<2>("s", &encode_parts("s", &[3, -1, 9])).is_err());
        assert!(decode_parts::<1>("k", &encode_parts("s", &[3])).is_err());
    }
}
