//! Signed download URLs: `/media/{id}?exp={unix secs}&by={who}&sig={hex}`, where `sig`
//! is HMAC-SHA256 over the id, the expiry and who asked for the URL, with a server key.
//! A browser loads it in `<img>` or `<audio>` without the bearer token; whoever holds
//! the URL may download that one file until it expires, and the download is audited in
//! the name of the person it was issued to.

use crate::domain::Micros;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a download URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlRefused {
    /// Missing parameters or a signature that does not match.
    Invalid,
    Expired,
}

#[derive(Clone)]
pub struct UrlSigner {
    /// Keyed once; cloned for each URL.
    keyed: HmacSha256,
}

/// The query of a signed URL.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignedQuery {
    pub exp: Option<i64>,
    pub by: Option<String>,
    pub sig: Option<String>,
}

impl UrlSigner {
    pub fn new(key: &[u8]) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            keyed: HmacSha256::new_from_slice(key)?,
        })
    }

    fn mac(&self, media_id: i64, expires: i64, by: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(format!("{media_id}\n{expires}\n{by}").as_bytes());
        mac
    }

    /// The path and query of a URL for `media_id`, valid until `expires` (Unix secs).
    pub fn sign(&self, media_id: i64, expires: i64, by: &str) -> String {
        let sig = hex::encode(self.mac(media_id, expires, by).finalize().into_bytes());
        let by: String = url_encode(by);
        format!("/media/{media_id}?exp={expires}&by={by}&sig={sig}")
    }

    /// Checks a URL's query at `now`; answers who it was issued to.
    pub fn verify(
        &self,
        media_id: i64,
        query: &SignedQuery,
        now: Micros,
    ) -> Result<String, UrlRefused> {
        let (Some(exp), Some(by), Some(sig)) = (query.exp, &query.by, &query.sig) else {
            return Err(UrlRefused::Invalid);
        };
        let sig = hex::decode(sig).map_err(|_| UrlRefused::Invalid)?;
        self.mac(media_id, exp, by)
            .verify_slice(&sig)
            .map_err(|_| UrlRefused::Invalid)?;
        if now / 1_000_000 >= exp {
            return Err(UrlRefused::Expired);
        }
        Ok(by.clone())
    }
}

/// Percent-encodes what is not unreserved in a query value.
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> SignedQuery {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        serde_urlencoded_like(query)
    }

    fn serde_urlencoded_like(query: &str) -> SignedQuery {
        let mut q = SignedQuery {
            exp: None,
            by: None,
            sig: None,
        };
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = v.replace("%3A", ":");
            match k {
                "exp" => q.exp = v.parse().ok(),
                "by" => q.by = Some(v),
                "sig" => q.sig = Some(v),
                _ => {}
            }
        }
        q
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires() {
        let signer = UrlSigner::new(b"secret").unwrap();
        let url = signer.sign(7, 100, "agent:3");
        assert_eq!(
            signer.verify(7, &query(&url), 99_000_000),
            Ok("agent:3".into())
        );
        assert_eq!(
            signer.verify(7, &query(&url), 100_000_000),
            Err(UrlRefused::Expired)
        );
    }

    #[test]
    fn another_file_or_a_changed_expiry_is_refused() {
        let signer = UrlSigner::new(b"secret").unwrap();
        let url = signer.sign(7, 100, "agent:3");
        assert_eq!(signer.verify(8, &query(&url), 0), Err(UrlRefused::Invalid));
        let mut q = query(&url);
        q.exp = Some(1_000);
        assert_eq!(signer.verify(7, &q, 0), Err(UrlRefused::Invalid));
        let other = UrlSigner::new(b"other").unwrap();
        assert_eq!(other.verify(7, &query(&url), 0), Err(UrlRefused::Invalid));
    }
}
