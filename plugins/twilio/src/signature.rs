//! `X-Twilio-Signature`, as Twilio specifies it: base64 of HMAC-SHA1, keyed
//! with the account's auth token, over the full request URL followed by every
//! POST parameter sorted by name, each name immediately followed by its value.
//!
//! Twilio may sign the URL with or without the scheme's default port, so both
//! forms are tried. JSON bodies are not signed as parameters: the URL carries
//! `bodySHA256`, the hex SHA-256 of the body, and the signature covers the URL
//! alone.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

type HmacSha1 = Hmac<Sha1>;

/// The signature Twilio computes for `url` and form `params`.
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> Option<String> {
    Some(STANDARD.encode(mac(auth_token, url, params)?.finalize().into_bytes()))
}

/// `None` only if HMAC refused the key, which it does for no key length.
fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Option<HmacSha1> {
    let mut mac = HmacSha1::new_from_slice(auth_token.as_bytes()).ok()?;
    mac.update(url.as_bytes());
    // Repeated names sort by value too, so the order on the wire is irrelevant.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    Some(mac)
}

/// Whether `signature` is valid for `url` and `params`, trying the URL with
/// and without an explicit default port; compares in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(expected) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    url_variants(url)
        .iter()
        .filter_map(|u| mac(auth_token, u, params))
        .any(|m| m.verify_slice(&expected).is_ok())
}

/// Whether a JSON `body` matches the `bodySHA256` query parameter of `url`.
pub fn body_hash_matches(url: &str, body: &[u8]) -> Option<bool> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    let declared = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())?;
    let actual = hex(&Sha256::digest(body));
    Some(actual.eq_ignore_ascii_case(&declared))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The URL as given, plus the same URL with the default port added (when it
/// has none) or removed (when it has the scheme's default).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Credentials in the URL are kept as they are.
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    };
    match port {
        None => variants.push(format!("{scheme}://{userinfo}{host}:{default_port}{tail}")),
        Some(p) if p == default_port => variants.push(format!("{scheme}://{userinfo}{host}{tail}")),
        Some(_) => {}
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio_example_params() -> Vec<(String, String)> {
        [
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn twilio_documented_example_signs_as_documented() {
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        let params = twilio_example_params();
        assert_eq!(
            compute("12345", url, &params).unwrap(),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
        assert!(verify(
            "12345",
            url,
            &params,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        assert!(!verify(
            "54321",
            url,
            &params,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        assert!(!verify(
            "12345",
            url,
            &params[1..],
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
    }

    #[test]
    fn url_with_an_explicit_default_port_verifies_either_way() {
        let params = twilio_example_params();
        let with_port = "https://example.com:443/myapp.php?foo=1&bar=2";
        assert!(verify(
            "12345",
            with_port,
            &params,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        let signed_with_port = compute("12345", with_port, &params).unwrap();
        assert!(verify(
            "12345",
            "https://example.com/myapp.php?foo=1&bar=2",
            &params,
            &signed_with_port
        ));
        assert!(!verify(
            "12345",
            "https://example.com:8443/myapp.php?foo=1&bar=2",
            &params,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
    }

    #[test]
    fn repeated_parameter_names_are_sorted_by_value() {
        let a = vec![
            ("MediaUrl".to_string(), "b".to_string()),
            ("MediaUrl".to_string(), "a".to_string()),
        ];
        let b = vec![
            ("MediaUrl".to_string(), "a".to_string()),
            ("MediaUrl".to_string(), "b".to_string()),
        ];
        let sig = compute("t", "https://x.test/h", &a).unwrap();
        assert_eq!(sig, compute("t", "https://x.test/h", &b).unwrap());
        // Both values are signed: dropping one breaks the signature.
        assert!(!verify("t", "https://x.test/h", &a[..1], &sig));
        // Equivalent to the concatenation `MediaUrlaMediaUrlb`.
        let manual = {
            let mut m = HmacSha1::new_from_slice(b"t").unwrap();
            m.update(b"https://x.test/hMediaUrlaMediaUrlb");
            STANDARD.encode(m.finalize().into_bytes())
        };
        assert_eq!(sig, manual);
    }

    #[test]
    fn json_body_is_checked_against_body_sha256() {
        let body = br#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
        let url = "https://example.com/myapp?bodySHA256=5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";
        assert_eq!(body_hash_matches(url, body), Some(true));
        assert_eq!(body_hash_matches(url, b"{}"), Some(false));
        assert_eq!(body_hash_matches("https://example.com/myapp", body), None);
        // For JSON bodies the URL alone (with bodySHA256) is signed.
        let sig = compute("12345", url, &[]).unwrap();
        assert!(verify("12345", url, &[], &sig));
        assert!(!verify("12345", &url.replace("5ccd", "5ccc"), &[], &sig));
    }
}
