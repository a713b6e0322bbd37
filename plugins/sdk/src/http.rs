//! Outbound HTTP through the host: only to the manifest's `allowed_hosts`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::parley::plugin::host::{self, HttpError, Method, OutgoingRequest};
use crate::types::PluginError;

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Adds `Authorization: Basic base64(user:password)`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let encoded = base64_encode(format!("{user}:{password}").as_bytes());
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: Serialize>(self, value: &T) -> Result<Self, PluginError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| PluginError::Other(format!("cannot encode JSON body: {e}")))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sets a form-encoded body (`application/x-www-form-urlencoded`).
    pub fn form(self, fields: &[(&str, &str)]) -> Self {
        let encoded = fields
            .iter()
            .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(encoded)
    }

    /// Limits this request to `ms` milliseconds (the host also caps it at the
    /// call's deadline).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// Sends the request. Any HTTP status is a [`Response`]; failures to get
    /// one become `retryable` (timeouts, connection errors) or
    /// `misconfigured` (a host the manifest does not allow, a bad URL).
    pub fn send(self) -> Result<Response, PluginError> {
        let response = host::http_request(&OutgoingRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout_ms,
        })
        .map_err(from_http_error)?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }
}

fn from_http_error(e: HttpError) -> PluginError {
    match e {
        HttpError::HostNotAllowed(origin) => {
            PluginError::Misconfigured(format!("{origin} is not in allowed_hosts"))
        }
        HttpError::InvalidUrl(why) => PluginError::Misconfigured(format!("invalid URL: {why}")),
        HttpError::Timeout => PluginError::Retryable("request timed out".into()),
        HttpError::ConnectionFailed(why) => {
            PluginError::Retryable(format!("connection failed: {why}"))
        }
        HttpError::ResponseTooLarge => PluginError::Other("response too large".into()),
        HttpError::Other(why) => PluginError::Other(why),
    }
}

/// A response of any status.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| PluginError::Other(format!("response is not the expected JSON: {e}")))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Ok(self)` for 2xx, otherwise the error the status stands for (see
    /// [`status_error`]).
    pub fn error_for_status(self) -> Result<Self, PluginError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(status_error(&self))
        }
    }
}

/// The usual meaning of an unsuccessful HTTP status: 401/403 `unauthorized`,
/// 404 `not-found`, 429 `rate-limited` (with `Retry-After` seconds), 408 and
/// 5xx `retryable`, other 4xx `permanent`.
pub fn status_error(response: &Response) -> PluginError {
    let status = response.status;
    match status {
        401 | 403 => PluginError::Unauthorized(format!("back end answered {status}")),
        404 => PluginError::NotFound,
        429 => PluginError::RateLimited(
            response
                .header("retry-after")
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|secs| secs.saturating_mul(1000)),
        ),
        408 | 500..=599 => PluginError::Retryable(format!("back end answered {status}")),
        _ => PluginError::Permanent(format!("back end answered {status}")),
    }
}

/// Percent-encodes a path segment or query value (RFC 3986 unreserved kept).
pub fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a form field (`application/x-www-form-urlencoded`: space is `+`).
pub fn form_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn escaping_keeps_unreserved_characters() {
        assert_eq!(url_escape("A-10023/x y"), "A-10023%2Fx%20y");
        assert_eq!(form_escape("whatsapp:+1 2"), "whatsapp%3A%2B1+2");
    }
}
