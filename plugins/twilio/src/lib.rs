//! Transport for Twilio's WhatsApp API.
//!
//! Inbound: Twilio's form-encoded webhooks (messages and status callbacks),
//! verified with `X-Twilio-Signature` ([`signature`]). Outbound: Twilio's
//! Messages resource, `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! with Twilio's error codes mapped to the contract's errors.
//!
//! Settings: `account_sid` (required), `api_base` (default
//! `https://api.twilio.com`), `default_sender` (`+14155238886`,
//! `whatsapp:+14155238886` or a Messaging Service SID `MG...`),
//! `status_callback` (URL Twilio posts delivery statuses to). Secret:
//! `auth_token`.

// Without the wasm export, the plugin type is only used by tests.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub mod signature;

use parley_plugin_sdk::transport::*;
use parley_plugin_sdk::{http, secret, settings};
use serde::Deserialize;

/// The manifest's `[settings]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The Twilio account SID, `AC...`.
    account_sid: String,
    /// Base URL of Twilio's REST API.
    #[serde(default = "default_api_base")]
    api_base: String,
    /// Sender used when a message names none.
    #[serde(default)]
    default_sender: Option<String>,
    /// Delivery status callback URL passed to Twilio on every send.
    #[serde(default)]
    status_callback: Option<String>,
}

fn default_api_base() -> String {
    "https://api.twilio.com".into()
}

/// Name of the secret holding the account's auth token.
const AUTH_TOKEN: &str = "auth_token";

struct Twilio;

impl Health for Twilio {
    fn check() -> Result<(), PluginError> {
        let s: Settings = settings()?;
        if !s.account_sid.starts_with("AC") {
            return Err(PluginError::Misconfigured(
                "`account_sid` must start with AC".into(),
            ));
        }
        secret(AUTH_TOKEN).map(|_| ())
    }
}

impl Messaging for Twilio {
    fn verify_and_parse(request: InboundHttpRequest) -> Result<Vec<InboundItem>, PluginError> {
        let token = secret(AUTH_TOKEN)?;
        let params = verified_params(&token, &request)?;
        parse_webhook(&params).map(|item| vec![item])
    }

    fn send(message: OutboundMessage) -> Result<String, PluginError> {
        let s: Settings = settings()?;
        let token = secret(AUTH_TOKEN)?;
        let form = send_form(&s, &message)?;
        let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            s.api_base.trim_end_matches('/'),
            http::url_escape(&s.account_sid)
        );
        let response = http::Request::post(url)
            .basic_auth(&s.account_sid, &token)
            .header("accept", "application/json")
            .form(&fields)
            .send()?;
        if response.is_success() {
            let body: serde_json::Value = response.json()?;
            return body
                .get("sid")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| PluginError::Other("Twilio's answer has no sid".into()));
        }
        Err(send_error(&response))
    }
}

/// The request's parameters, once its signature has verified.
fn verified_params(
    token: &str,
    request: &InboundHttpRequest,
) -> Result<Vec<(String, String)>, PluginError> {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let Some(sig) = header("x-twilio-signature") else {
        return Err(PluginError::Unauthorized(
            "missing X-Twilio-Signature".into(),
        ));
    };
    let is_json = header("content-type").is_some_and(|c| c.contains("json"));
    if is_json || signature::body_hash_matches(&request.url, &request.body).is_some() {
        // JSON: the URL (with bodySHA256) is signed, and the body must hash to it.
        if signature::body_hash_matches(&request.url, &request.body) != Some(true) {
            return Err(PluginError::Unauthorized(
                "body does not match bodySHA256".into(),
            ));
        }
        if !signature::verify(token, &request.url, &[], sig) {
            return Err(PluginError::Unauthorized(
                "X-Twilio-Signature does not verify".into(),
            ));
        }
        return json_params(&request.body);
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !signature::verify(token, &request.url, &params, sig) {
        return Err(PluginError::Unauthorized(
            "X-Twilio-Signature does not verify".into(),
        ));
    }
    Ok(params)
}

/// A flat JSON object as parameters (strings as they are, numbers as text).
fn json_params(body: &[u8]) -> Result<Vec<(String, String)>, PluginError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| PluginError::Permanent(format!("JSON body does not parse: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(PluginError::Permanent("JSON body is not an object".into()));
    };
    Ok(object
        .iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
            serde_json::Value::Bool(b) => Some((k.clone(), b.to_string())),
            _ => None,
        })
        .collect())
}

/// First non-empty value of a parameter.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// `whatsapp:+4915112345678` -> `4915112345678`.
fn wa_id_of(address: &str) -> String {
    let address = address.strip_prefix("whatsapp:").unwrap_or(address);
    address.trim_start_matches('+').to_owned()
}

/// Turns a verified webhook into an inbound message or a delivery status.
fn parse_webhook(params: &[(String, String)]) -> Result<InboundItem, PluginError> {
    let get = |name: &str| param(params, name);
    let sid = get("MessageSid")
        .or_else(|| get("SmsSid"))
        .ok_or_else(|| PluginError::Permanent("webhook has no MessageSid".into()))?
        .to_owned();

    if let Some(status) = get("MessageStatus").filter(|s| !matches!(*s, "received" | "receiving")) {
        let state = match status {
            "accepted" | "scheduled" | "queued" | "sending" => DeliveryState::Queued,
            "sent" => DeliveryState::Sent,
            "delivered" => DeliveryState::Delivered,
            "read" => DeliveryState::Read,
            "failed" | "undelivered" | "canceled" => DeliveryState::Failed,
            other => {
                return Err(PluginError::Permanent(format!(
                    "unknown MessageStatus {other:?}"
                )));
            }
        };
        return Ok(InboundItem::Status(DeliveryStatus {
            provider_message_id: sid,
            state,
            recipient_wa_id: get("To").map(wa_id_of),
            error_code: get("ErrorCode").map(str::to_owned),
            error_message: get("ErrorMessage").map(str::to_owned),
            timestamp_ms: None,
        }));
    }

    let from_wa_id = get("WaId")
        .map(str::to_owned)
        .or_else(|| get("From").map(wa_id_of))
        .ok_or_else(|| PluginError::Permanent("message has neither WaId nor From".into()))?;
    let media_count: usize = get("NumMedia").and_then(|n| n.parse().ok()).unwrap_or(0);
    let media = (0..media_count.min(10))
        .filter_map(|i| {
            Some(MediaAttachment {
                url: get(&format!("MediaUrl{i}"))?.to_owned(),
                content_type: get(&format!("MediaContentType{i}")).map(str::to_owned),
                caption: None,
            })
        })
        .collect();
    let location = match (
        get("Latitude").and_then(|v| v.parse::<f64>().ok()),
        get("Longitude").and_then(|v| v.parse::<f64>().ok()),
    ) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
            label: get("Label").or_else(|| get("Address")).map(str::to_owned),
        }),
        _ => None,
    };
    Ok(InboundItem::Message(InboundMessage {
        provider_message_id: sid,
        from_wa_id,
        to: get("To")
            .map(|t| t.strip_prefix("whatsapp:").unwrap_or(t).to_owned())
            .unwrap_or_default(),
        profile_name: get("ProfileName").map(str::to_owned),
        timestamp_ms: None,
        text: get("Body").map(str::to_owned),
        media,
        location,
        button: get("ButtonPayload").map(|payload| ButtonReply {
            payload: payload.to_owned(),
            text: get("ButtonText").map(str::to_owned),
        }),
        reply_to: get("OriginalRepliedMessageSid").map(str::to_owned),
    }))
}

/// The form fields of a Messages resource `POST`.
fn send_form(
    s: &Settings,
    message: &OutboundMessage,
) -> Result<Vec<(&'static str, String)>, PluginError> {
    let mut form = vec![("To", format!("whatsapp:+{}", wa_id_of(&message.to_wa_id)))];
    let sender = message
        .sender
        .as_deref()
        .or(s.default_sender.as_deref())
        .ok_or_else(|| PluginError::Misconfigured("no sender and no `default_sender`".into()))?;
    if sender.starts_with("MG") {
        form.push(("MessagingServiceSid", sender.to_owned()));
    } else if sender.starts_with("whatsapp:") {
        form.push(("From", sender.to_owned()));
    } else {
        form.push(("From", format!("whatsapp:{sender}")));
    }
    match &message.content {
        OutboundContent::Text(text) => form.push(("Body", text.clone())),
        OutboundContent::Buttons(b) => {
            // Real WhatsApp buttons need a Content API template on Twilio;
            // without one, the options are written out.
            let mut body = String::new();
            if let Some(h) = &b.header {
                body.push_str(h);
                body.push_str("\n\n");
            }
            body.push_str(&b.body);
            for (i, button) in b.buttons.iter().enumerate() {
                body.push_str(&format!("\n{}. {}", i + 1, button.title));
            }
            if let Some(f) = &b.footer {
                body.push_str("\n\n");
                body.push_str(f);
            }
            form.push(("Body", body));
        }
        OutboundContent::Template(t) => {
            let sid = t.provider_template_id.clone().ok_or_else(|| {
                PluginError::Permanent(format!(
                    "template {:?} has no provider-template-id (Twilio Content SID)",
                    t.name
                ))
            })?;
            let variables: serde_json::Map<String, serde_json::Value> = t
                .parameters
                .iter()
                .enumerate()
                .map(|(i, p)| ((i + 1).to_string(), serde_json::Value::String(p.clone())))
                .collect();
            form.push(("ContentSid", sid));
            form.push((
                "ContentVariables",
                serde_json::Value::Object(variables).to_string(),
            ));
        }
    }
    if let Some(cb) = &s.status_callback {
        form.push(("StatusCallback", cb.clone()));
    }
    Ok(form)
}

/// Maps an unsuccessful Messages resource answer to the contract's errors.
fn send_error(response: &http::Response) -> PluginError {
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let code = body.get("code").and_then(serde_json::Value::as_u64);
    let message = body
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("no message")
        .to_owned();
    let retry_after = response
        .header("retry-after")
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|secs| secs.saturating_mul(1000));
    let describe = |what: &str| match code {
        Some(c) => format!("Twilio {c}: {what}"),
        None => format!("Twilio HTTP {}: {what}", response.status),
    };
    match code {
        // Outside the 24-hour customer-service window.
        Some(63016) => PluginError::WindowClosed,
        // Too many requests / channel or account rate limits.
        Some(20429 | 14107 | 63018 | 63038) => PluginError::RateLimited(retry_after),
        // Authentication failed / account suspended.
        Some(20003 | 20005) => PluginError::Unauthorized(describe(&message)),
        // Invalid or unreachable recipient, unsubscribed, policy violations.
        Some(21211 | 21408 | 21610 | 21614 | 63003 | 63013 | 63024) => {
            PluginError::Permanent(describe(&message))
        }
        _ => match response.status {
            429 => PluginError::RateLimited(retry_after),
            401 | 403 => PluginError::Unauthorized(describe(&message)),
            404 => PluginError::Permanent(describe(&message)),
            s if s >= 500 => PluginError::Retryable(describe(&message)),
            _ => PluginError::Permanent(describe(&message)),
        },
    }
}

#[cfg(target_arch = "wasm32")]
parley_plugin_sdk::export_plugin!(Twilio);

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inbound_whatsapp_message_is_normalized() {
        let p = params(&[
            ("MessageSid", "SM123"),
            ("From", "whatsapp:+4915112345678"),
            ("To", "whatsapp:+14155238886"),
            ("Body", "Where is my order?"),
            ("ProfileName", "Ana"),
            ("WaId", "4915112345678"),
            ("NumMedia", "1"),
            ("MediaUrl0", "https://api.twilio.com/media/ME1"),
            ("MediaContentType0", "image/jpeg"),
            ("Latitude", "52.52"),
            ("Longitude", "13.405"),
            ("ButtonPayload", "track_order"),
            ("SmsStatus", "received"),
        ]);
        let InboundItem::Message(m) = parse_webhook(&p).unwrap() else {
            panic!()
        };
        assert_eq!(m.provider_message_id, "SM123");
        assert_eq!(m.from_wa_id, "4915112345678");
        assert_eq!(m.to, "+14155238886");
        assert_eq!(m.text.as_deref(), Some("Where is my order?"));
        assert_eq!(m.profile_name.as_deref(), Some("Ana"));
        assert_eq!(m.media.len(), 1);
        assert_eq!(m.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.location.as_ref().map(|l| l.latitude), Some(52.52));
        assert_eq!(
            m.button.as_ref().map(|b| b.payload.as_str()),
            Some("track_order")
        );
    }

    #[test]
    fn status_callback_is_a_delivery_status() {
        let p = params(&[
            ("MessageSid", "SM9"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "63016"),
            ("To", "whatsapp:+4915112345678"),
        ]);
        let InboundItem::Status(s) = parse_webhook(&p).unwrap() else {
            panic!()
        };
        assert_eq!(s.state, DeliveryState::Failed);
        assert_eq!(s.error_code.as_deref(), Some("63016"));
        assert_eq!(s.recipient_wa_id.as_deref(), Some("4915112345678"));
    }

    #[test]
    fn forged_or_unsigned_webhooks_are_refused() {
        let body = b"MessageSid=SM1&From=whatsapp%3A%2B1&Body=hi".to_vec();
        let url = "https://parley.example.com/webhooks/twilio";
        let signed = signature::compute(
            "tok",
            url,
            &params(&[
                ("MessageSid", "SM1"),
                ("From", "whatsapp:+1"),
                ("Body", "hi"),
            ]),
        )
        .unwrap();
        let request = |sig: Option<&str>, body: Vec<u8>| InboundHttpRequest {
            method: "POST".into(),
            url: url.into(),
            headers: sig
                .map(|s| vec![("x-twilio-signature".to_string(), s.to_string())])
                .unwrap_or_default(),
            body,
        };
        assert!(verified_params("tok", &request(Some(&signed), body.clone())).is_ok());
        let tampered = b"MessageSid=SM1&From=whatsapp%3A%2B1&Body=HI".to_vec();
        assert!(matches!(
            verified_params("tok", &request(Some(&signed), tampered)),
            Err(PluginError::Unauthorized(_))
        ));
        assert!(matches!(
            verified_params("tok", &request(None, body)),
            Err(PluginError::Unauthorized(_))
        ));
    }

    #[test]
    fn template_sends_content_sid_and_variables() {
        let s = Settings {
            account_sid: "AC1".into(),
            api_base: default_api_base(),
            default_sender: Some("+14155238886".into()),
            status_callback: None,
        };
        let message = OutboundMessage {
            to_wa_id: "4915112345678".into(),
            sender: None,
            content: OutboundContent::Template(TemplateMessage {
                name: "order_update".into(),
                language: "en".into(),
                parameters: vec!["A-1".into(), "Friday".into()],
                provider_template_id: Some("HX123".into()),
            }),
            reply_to: None,
            idempotency_key: None,
        };
        let form = send_form(&s, &message).unwrap();
        assert!(form.contains(&("To", "whatsapp:+4915112345678".into())));
        assert!(form.contains(&("From", "whatsapp:+14155238886".into())));
        assert!(form.contains(&("ContentSid", "HX123".into())));
        assert!(form.contains(&("ContentVariables", r#"{"1":"A-1","2":"Friday"}"#.into())));
    }

    #[test]
    fn twilio_error_codes_map_to_contract_errors() {
        let response = |status: u16, body: &str| http::Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            send_error(&response(
                400,
                r#"{"code":63016,"message":"outside window"}"#
            )),
            PluginError::WindowClosed
        );
        assert!(matches!(
            send_error(&response(429, r#"{"code":20429}"#)),
            PluginError::RateLimited(None)
        ));
        assert!(matches!(
            send_error(&response(400, r#"{"code":21211}"#)),
            PluginError::Permanent(_)
        ));
        assert!(matches!(
            send_error(&response(401, r#"{"code":20003}"#)),
            PluginError::Unauthorized(_)
        ));
        assert!(matches!(
            send_error(&response(503, "")),
            PluginError::Retryable(_)
        ));
    }
}
