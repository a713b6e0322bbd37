//! Transport channels: webhooks that a transport plugin verifies and parses.
//!
//! The plugin's verdict is needed before the provider is answered (a forged request
//! gets a 401), so the plugin runs before the inbox write, and what it parsed is stored
//! together with the raw request in one [`TransportEnvelope`]. From there on the path is
//! the native one: the dispatcher applies the normalized messages and statuses after
//! the commit, without calling the plugin again, so a replay after a crash depends
//! neither on the plugin still being loaded nor on its secrets being unchanged.
//!
//! This module also turns the contract's types into Parley's domain types; a plugin
//! item that breaks the contract (no message id, a WhatsApp id with letters) becomes a
//! [`RejectedItem`] like an odd Cloud API item, and the rest of the webhook is kept.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::inbound::{
    DeliveryStatus, InboundMessage, MessageContent, MessageKind, ProviderError, RejectedItem,
    ReplyContext, StatusUpdate, WebhookBatch,
};
use crate::ingest::cloud_api::{self, PayloadError};
use crate::plugins;

/// The first field of every envelope, so that a stored envelope is told apart from a
/// Cloud API body (which starts with `{"object":`) by its first bytes.
pub const ENVELOPE_FORMAT: &str = "parley.transport/1";

/// What the inbox stores for a transport webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportEnvelope {
    /// Always [`ENVELOPE_FORMAT`]; keep it the first field.
    pub format: String,
    /// The plugin that verified and parsed the request.
    pub plugin: String,
    /// The request as received.
    pub request: StoredRequest,
    /// What the plugin read from it, in Parley's terms.
    pub batch: WebhookBatch,
}

/// A webhook request as received, minus credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    pub method: String,
    /// The public URL the signature was checked against.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The raw body, base64: providers may send bytes that are not UTF-8.
    pub body_base64: String,
}

/// Headers never written to the inbox: they may carry credentials.
const UNSTORED_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

impl StoredRequest {
    pub fn new(request: &plugins::InboundHttpRequest) -> Self {
        Self {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request
                .headers
                .iter()
                .filter(|(name, _)| !UNSTORED_HEADERS.contains(&name.as_str()))
                .cloned()
                .collect(),
            body_base64: base64::engine::general_purpose::STANDARD.encode(&request.body),
        }
    }
}

impl TransportEnvelope {
    pub fn new(plugin: &str, request: &plugins::InboundHttpRequest, batch: WebhookBatch) -> Self {
        Self {
            format: ENVELOPE_FORMAT.to_owned(),
            plugin: plugin.to_owned(),
            request: StoredRequest::new(request),
            batch,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// Why a stored inbox body cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StoredPayloadError {
    #[error(transparent)]
    CloudApi(#[from] PayloadError),
    #[error("stored transport envelope cannot be read: {0}")]
    Envelope(#[source] serde_json::Error),
}

/// Reads a stored inbox body, whichever kind of channel stored it.
pub fn parse_stored(body: &[u8]) -> Result<WebhookBatch, StoredPayloadError> {
    let prefix = format!("{{\"format\":\"{ENVELOPE_FORMAT}\"");
    if body.starts_with(prefix.as_bytes()) {
        let envelope: TransportEnvelope =
            serde_json::from_slice(body).map_err(StoredPayloadError::Envelope)?;
        return Ok(envelope.batch);
    }
    Ok(cloud_api::parse_webhook(body)?)
}

/// Turns what a transport plugin parsed into a batch; `received_at` stands in for
/// timestamps the provider did not send.
pub fn batch_from_items(
    items: Vec<plugins::InboundItem>,
    received_at: DateTime<Utc>,
) -> WebhookBatch {
    let mut batch = WebhookBatch::default();
    for (i, item) in items.into_iter().enumerate() {
        match item {
            plugins::InboundItem::Message(m) => match message(m, received_at) {
                Ok(message) => batch.messages.push(message),
                Err(reason) => batch.rejected.push(RejectedItem {
                    path: format!("items[{i}]"),
                    reason,
                }),
            },
            plugins::InboundItem::Status(s) => match status(s, received_at) {
                Ok(status) => batch.statuses.push(status),
                Err(reason) => batch.rejected.push(RejectedItem {
                    path: format!("items[{i}]"),
                    reason,
                }),
            },
        }
    }
    batch
}

fn instant(ms: Option<u64>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    ms.and_then(|ms| i64::try_from(ms).ok())
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or(fallback)
}

fn require_wa_id(what: &str, wa_id: &str) -> Result<(), String> {
    if wa_id.is_empty() || !wa_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{what} {wa_id:?} is not a WhatsApp id (digits only)"
        ));
    }
    Ok(())
}

fn message(
    m: plugins::InboundMessage,
    received_at: DateTime<Utc>,
) -> Result<InboundMessage, String> {
    if m.provider_message_id.is_empty() {
        return Err("message has an empty provider-message-id".to_owned());
    }
    require_wa_id("from-wa-id", &m.from_wa_id)?;
    let (kind, text, content) = if let Some(button) = m.button {
        let text = button
            .text
            .or(m.text)
            .unwrap_or_else(|| button.payload.clone());
        (
            MessageKind::Button,
            Some(text.clone()),
            MessageContent::Button {
                payload: Some(button.payload),
                text,
            },
        )
    } else if let Some(location) = m.location {
        (
            MessageKind::Location,
            None,
            MessageContent::Location {
                latitude: location.latitude,
                longitude: location.longitude,
                name: location.label,
                address: None,
                url: None,
            },
        )
    } else if let Some(first) = m.media.first() {
        let kind = media_kind(first.content_type.as_deref());
        let caption = m.text.or_else(|| first.caption.clone());
        let content = if m.media.len() == 1 {
            MessageContent::Media {
                media_id: first.url.clone(),
                mime_type: first.content_type.clone(),
                sha256: None,
                caption: caption.clone(),
                filename: None,
                voice: None,
                animated: None,
            }
        } else {
            // The Cloud API carries one attachment per message; several are kept as the
            // provider listed them rather than dropped.
            MessageContent::Other {
                provider_type: "media".to_owned(),
                raw: serde_json::Value::Array(
                    m.media
                        .iter()
                        .map(|a| {
                            serde_json::json!({
                                "url": a.url,
                                "content_type": a.content_type,
                                "caption": a.caption,
                            })
                        })
                        .collect(),
                ),
            }
        };
        (kind, caption, content)
    } else if let Some(body) = m.text {
        (
            MessageKind::Text,
            Some(body.clone()),
            MessageContent::Text { body },
        )
    } else {
        (MessageKind::Unsupported, None, MessageContent::Unsupported)
    };
    Ok(InboundMessage {
        phone_number_id: m.to,
        wa_id: m.from_wa_id,
        profile_name: m.profile_name,
        provider_message_id: m.provider_message_id,
        sent_at: instant(m.timestamp_ms, received_at),
        kind,
        text,
        content,
        context: m.reply_to.map(|id| ReplyContext {
            message_id: Some(id),
            from: None,
            forwarded: false,
            frequently_forwarded: false,
        }),
        errors: Vec::new(),
    })
}

fn media_kind(content_type: Option<&str>) -> MessageKind {
    let content_type = content_type.unwrap_or_default();
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else if content_type.starts_with("video/") {
        MessageKind::Video
    } else {
        MessageKind::Document
    }
}

fn status(s: plugins::DeliveryStatus, received_at: DateTime<Utc>) -> Result<StatusUpdate, String> {
    if s.provider_message_id.is_empty() {
        return Err("status has an empty provider-message-id".to_owned());
    }
    let errors = match s.error_code {
        Some(code) => vec![ProviderError {
            code: code.parse().unwrap_or_default(),
            title: s.error_message.clone().unwrap_or_else(|| code.clone()),
            message: s.error_message,
            details: Some(format!("provider error code {code}")),
        }],
        None => Vec::new(),
    };
    Ok(StatusUpdate {
        // A transport's statuses find their message by provider id; the business
        // number is not part of the contract's delivery status.
        phone_number_id: String::new(),
        provider_message_id: s.provider_message_id,
        status: match s.state {
            plugins::DeliveryState::Queued => DeliveryStatus::Pending,
            plugins::DeliveryState::Sent => DeliveryStatus::Sent,
            plugins::DeliveryState::Delivered => DeliveryStatus::Delivered,
            plugins::DeliveryState::Read => DeliveryStatus::Read,
            plugins::DeliveryState::Failed => DeliveryStatus::Failed,
        },
        at: instant(s.timestamp_ms, received_at),
        recipient_id: s.recipient_wa_id,
        errors,
        callback_data: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn inbound(text: Option<&str>) -> plugins::InboundMessage {
        plugins::InboundMessage {
            provider_message_id: "SM1".into(),
            from_wa_id: "4915112345678".into(),
            to: "+14155238886".into(),
            profile_name: Some("Ana".into()),
            timestamp_ms: None,
            text: text.map(Into::into),
            media: vec![],
            location: None,
            button: None,
            reply_to: None,
        }
    }

    #[test]
    fn a_text_message_becomes_the_same_domain_message_as_a_native_one() {
        let batch = batch_from_items(
            vec![plugins::InboundItem::Message(inbound(Some("hello")))],
            received(),
        );
        let [m] = batch.messages.as_slice() else {
            panic!("{batch:?}")
        };
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.text.as_deref(), Some("hello"));
        assert_eq!(m.phone_number_id, "+14155238886");
        assert_eq!(m.wa_id, "4915112345678");
        assert_eq!(m.sent_at, received());
        assert_eq!(
            m.content,
            MessageContent::Text {
                body: "hello".into()
            }
        );
    }

    #[test]
    fn media_location_and_buttons_get_their_kinds() {
        let mut image = inbound(Some("look"));
        image.media = vec![plugins::MediaAttachment {
            url: "https://media.example/1".into(),
            content_type: Some("image/jpeg".into()),
            caption: None,
        }];
        let mut location = inbound(None);
        location.location = Some(plugins::Location {
            latitude: 52.5,
            longitude: 13.4,
            label: Some("Berlin".into()),
        });
        let mut button = inbound(None);
        button.button = Some(plugins::ButtonReply {
            payload: "track".into(),
            text: Some("Track my order".into()),
        });
        let batch = batch_from_items(
            [image, location, button, inbound(None)]
                .into_iter()
                .map(plugins::InboundItem::Message)
                .collect(),
            received(),
        );
        let kinds: Vec<MessageKind> = batch.messages.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MessageKind::Image,
                MessageKind::Location,
                MessageKind::Button,
                MessageKind::Unsupported
            ]
        );
        assert_eq!(batch.messages[0].text.as_deref(), Some("look"));
        assert_eq!(batch.messages[2].text.as_deref(), Some("Track my order"));
    }

    #[test]
    fn items_that_break_the_contract_are_rejected_and_the_rest_kept() {
        let mut bad = inbound(Some("x"));
        bad.from_wa_id = "whatsapp:+49".into();
        let status = plugins::DeliveryStatus {
            provider_message_id: "SMout".into(),
            state: plugins::DeliveryState::Failed,
            recipient_wa_id: Some("4915112345678".into()),
            error_code: Some("63016".into()),
            error_message: Some("outside the window".into()),
            timestamp_ms: Some(1_700_000_001_000),
        };
        let batch = batch_from_items(
            vec![
                plugins::InboundItem::Message(bad),
                plugins::InboundItem::Status(status),
            ],
            received(),
        );
        assert_eq!(batch.rejected.len(), 1);
        assert!(batch.rejected[0].reason.contains("digits only"));
        let [s] = batch.statuses.as_slice() else {
            panic!("{batch:?}")
        };
        assert_eq!(s.status, DeliveryStatus::Failed);
        assert_eq!(s.errors[0].code, 63016);
        assert_eq!(s.at.timestamp(), 1_700_000_001);
    }

    #[test]
    fn stored_envelopes_and_cloud_bodies_are_told_apart() {
        let request = plugins::InboundHttpRequest {
            method: "POST".into(),
            url: "https://parley.example.com/webhooks/t".into(),
            headers: vec![
                ("authorization".into(), "Basic c2VjcmV0".into()),
                ("x-twilio-signature".into(), "abc".into()),
            ],
            body: b"Body=hi".to_vec(),
        };
        let batch = batch_from_items(
            vec![plugins::InboundItem::Message(inbound(Some("hi")))],
            received(),
        );
        let envelope = TransportEnvelope::new("twilio", &request, batch.clone());
        let bytes = envelope.to_bytes().unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("c2VjcmV0"),
            "credentials are not stored"
        );
        assert_eq!(parse_stored(&bytes).unwrap(), batch);
        assert!(matches!(
            parse_stored(b"{\"object\":\"page\",\"entry\":[]}"),
            Err(StoredPayloadError::CloudApi(_))
        ));
        let truncated = &bytes[..bytes.len() - 2];
        assert!(matches!(
            parse_stored(truncated),
            Err(StoredPayloadError::Envelope(_))
        ));
    }
}
