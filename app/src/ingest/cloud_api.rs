//! Meta's WhatsApp Cloud API webhook format, read into Parley's normalized inbound types.
//!
//! Owns the Cloud API wire format of `messages` webhooks: the envelope, every customer
//! message type, delivery statuses and the errors Meta attaches to them. The intake
//! handler calls [`parse_webhook`] with a body whose signature it has already checked;
//! what comes out is a [`WebhookBatch`], and nothing downstream reads the wire format again.
//!
//! It never touches the database, HTTP or the clock, and never panics on any input.
//! Only a body that is not a Cloud API webhook at all is a [`PayloadError`]. Anything
//! smaller that cannot be understood (one entry, one change, one message, one status)
//! becomes a [`RejectedItem`] carrying its path, and the rest of the batch is kept: a
//! refused webhook is retried by Meta for days, so one odd item must not hold good
//! messages hostage.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde_json::Value;

use crate::domain::inbound::{
    AccountError, DeliveryStatus, InboundMessage, MessageContent, MessageKind, ProviderError,
    RejectedItem, ReplyContext, StatusUpdate, TemplateStatusUpdate, WebhookBatch,
};

/// The `object` Meta sends for WhatsApp Business Account webhooks.
const WHATSAPP_OBJECT: &str = "whatsapp_business_account";
/// The change field that carries customer messages, statuses and account errors.
const MESSAGES_FIELD: &str = "messages";
/// How much of an unexpected `object` value an error repeats back.
const MAX_ECHOED_CHARS: usize = 64;

/// The body as a whole is not a Cloud API webhook; nothing in it can be used.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("webhook body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("webhook body is not a JSON object")]
    NotAnObject,
    #[error("webhook `object` is {0}, expected \"whatsapp_business_account\"")]
    WrongObject(String),
    #[error("webhook body has no `entry` array")]
    NoEntries,
}

/// The change field that carries Meta's verdicts on message templates.
const TEMPLATE_STATUS_FIELD: &str = "message_template_status_update";

fn read_template_status(value: Value) -> Result<TemplateStatusUpdate, String> {
    #[derive(Deserialize)]
    #[serde(expecting = "a template status object")]
    struct Wire {
        event: String,
        message_template_id: Option<Value>,
        message_template_name: String,
        message_template_language: String,
        reason: Option<String>,
    }
    let wire: Wire = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if wire.event.trim().is_empty() || wire.message_template_name.trim().is_empty() {
        return Err("event and message_template_name must not be empty".into());
    }
    Ok(TemplateStatusUpdate {
        event: wire.event,
        name: wire.message_template_name,
        language: wire.message_template_language,
        meta_template_id: wire.message_template_id.and_then(|id| match id {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }),
        reason: wire.reason.filter(|r| r != "NONE"),
    })
}

/// Reads one Cloud API webhook body into a batch of messages, statuses and rejections.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBatch, PayloadError> {
    // One parse into a tree, then each item is moved (not copied) into its wire struct:
    // a bad item fails alone, where a single typed parse would fail the whole body.
    let root: Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let Value::Object(mut root) = root else {
        return Err(PayloadError::NotAnObject);
    };
    match root.get("object") {
        Some(Value::String(object)) if object == WHATSAPP_OBJECT => {}
        other => return Err(PayloadError::WrongObject(describe(other))),
    }
    let Some(Value::Array(entries)) = root.remove("entry") else {
        return Err(PayloadError::NoEntries);
    };

    let mut batch = WebhookBatch::default();
    for (e, entry) in entries.into_iter().enumerate() {
        read_entry(entry, e, &mut batch);
    }
    Ok(batch)
}

fn read_entry(entry: Value, e: usize, batch: &mut WebhookBatch) {
    let entry: WireEntry = match serde_json::from_value(entry) {
        Ok(entry) => entry,
        Err(err) => return reject(batch, format!("entry[{e}]"), err),
    };
    for (c, change) in entry.changes.into_iter().enumerate() {
        read_change(change, e, c, batch);
    }
}

fn read_change(change: Value, e: usize, c: usize, batch: &mut WebhookBatch) {
    let path = || format!("entry[{e}].changes[{c}]");
    let change: WireChange = match serde_json::from_value(change) {
        Ok(change) => change,
        Err(err) => return reject(batch, path(), err),
    };
    if change.field == TEMPLATE_STATUS_FIELD {
        return match read_template_status(change.value) {
            Ok(update) => batch.template_statuses.push(update),
            Err(reason) => reject(batch, path(), reason),
        };
    }
    if change.field != MESSAGES_FIELD {
        batch.ignored_changes += 1;
        return;
    }
    let value: WireValue = match serde_json::from_value(change.value) {
        Ok(value) => value,
        Err(err) => return reject(batch, path(), err),
    };
    // Every message, status and error of a change belongs to this business number;
    // without it none of them can be routed.
    let Some(phone_number_id) = value
        .metadata
        .and_then(|metadata| metadata.phone_number_id)
        .filter(|id| !id.is_empty())
    else {
        return reject(batch, path(), "value.metadata.phone_number_id is missing");
    };

    let change = ChangeContext {
        senders: value.contacts.into_iter().filter_map(read_sender).collect(),
        phone_number_id,
    };
    let item_path = |array: &str, i: usize| format!("entry[{e}].changes[{c}].value.{array}[{i}]");

    for (i, item) in value.messages.into_iter().enumerate() {
        match read_message(item, &change) {
            Ok(message) => batch.messages.push(message),
            Err(reason) => reject(batch, item_path("messages", i), reason),
        }
    }
    for (i, item) in value.statuses.into_iter().enumerate() {
        match read_status(item, &change.phone_number_id) {
            Ok(status) => batch.statuses.push(status),
            Err(reason) => reject(batch, item_path("statuses", i), reason),
        }
    }
    for (i, item) in value.errors.into_iter().enumerate() {
        match serde_json::from_value::<WireError>(item) {
            Ok(error) => batch.account_errors.push(AccountError {
                phone_number_id: change.phone_number_id.clone(),
                error: error.into(),
            }),
            Err(err) => reject(batch, item_path("errors", i), err),
        }
    }
}

fn reject(batch: &mut WebhookBatch, path: String, reason: impl fmt::Display) {
    batch.rejected.push(RejectedItem {
        path,
        reason: reason.to_string(),
    });
}

/// What the messages of one change share.
struct ChangeContext {
    phone_number_id: String,
    senders: Vec<Sender>,
}

/// A `contacts[]` item of a change: who sent its messages.
struct Sender {
    wa_id: Option<String>,
    name: Option<String>,
}

impl ChangeContext {
    fn profile_name(&self, from: &str) -> Option<String> {
        let matched = self
            .senders
            .iter()
            .find(|sender| sender.wa_id.as_deref() == Some(from));
        // A user's wa_id and phone number do not always match (Meta says so), and a
        // change with one contact can only be about that contact.
        let sender = match (matched, self.senders.as_slice()) {
            (Some(sender), _) => sender,
            (None, [only]) => only,
            (None, _) => return None,
        };
        sender.name.clone()
    }
}

/// A malformed contact only costs the display name, never the message.
fn read_sender(contact: Value) -> Option<Sender> {
    let contact: WireContact = serde_json::from_value(contact).ok()?;
    Some(Sender {
        wa_id: contact.wa_id,
        name: contact.profile.and_then(|profile| profile.name),
    })
}

fn read_message(item: Value, change: &ChangeContext) -> Result<InboundMessage, String> {
    if !is_modeled(&item) {
        return read_other_message(item, change);
    }
    let wire: WireMessage = serde_json::from_value(item).map_err(|err| err.to_string())?;
    let WireMessage {
        from,
        id,
        timestamp,
        kind,
        context,
        errors,
        text,
        image,
        audio,
        video,
        document,
        sticker,
        location,
        contacts,
        interactive,
        button,
        reaction,
    } = wire;

    let (kind, text, content) = match kind.as_str() {
        "text" => {
            let text = require(text, "text")?;
            (
                MessageKind::Text,
                Some(text.body.clone()),
                MessageContent::Text { body: text.body },
            )
        }
        "image" => media(MessageKind::Image, require(image, "image")?),
        "audio" => media(MessageKind::Audio, require(audio, "audio")?),
        "video" => media(MessageKind::Video, require(video, "video")?),
        "document" => media(MessageKind::Document, require(document, "document")?),
        "sticker" => media(MessageKind::Sticker, require(sticker, "sticker")?),
        "location" => {
            let location = require(location, "location")?;
            (
                MessageKind::Location,
                None,
                MessageContent::Location {
                    latitude: location.latitude,
                    longitude: location.longitude,
                    name: location.name,
                    address: location.address,
                    url: location.url,
                },
            )
        }
        "contacts" => (
            MessageKind::Contacts,
            None,
            MessageContent::Contacts {
                contacts: require(contacts, "contacts")?,
            },
        ),
        "interactive" => {
            let interactive = require(interactive, "interactive")?;
            let reply = match interactive.kind.as_str() {
                "button_reply" => interactive.button_reply,
                "list_reply" => interactive.list_reply,
                _ => None,
            };
            let reply = reply.ok_or_else(|| {
                format!(
                    "interactive reply {:?} has no matching reply object",
                    interactive.kind
                )
            })?;
            (
                MessageKind::Interactive,
                Some(reply.title.clone()),
                MessageContent::Interactive {
                    reply_type: interactive.kind,
                    id: reply.id,
                    title: reply.title,
                    description: reply.description,
                },
            )
        }
        "button" => {
            let button = require(button, "button")?;
            (
                MessageKind::Button,
                Some(button.text.clone()),
                MessageContent::Button {
                    payload: button.payload,
                    text: button.text,
                },
            )
        }
        "reaction" => {
            let reaction = require(reaction, "reaction")?;
            // Meta omits the emoji (older payloads send "") when a reaction is removed.
            let emoji = reaction.emoji.filter(|emoji| !emoji.is_empty());
            (
                MessageKind::Reaction,
                emoji.clone(),
                MessageContent::Reaction {
                    message_id: reaction.message_id,
                    emoji,
                },
            )
        }
        "unsupported" | "unknown" => (MessageKind::Unsupported, None, MessageContent::Unsupported),
        // `is_modeled` let through only the types above; kept so a mismatch rejects
        // the message instead of panicking.
        other => return Err(format!("message type {other:?} has no reader")),
    };

    Ok(InboundMessage {
        phone_number_id: change.phone_number_id.clone(),
        profile_name: change.profile_name(&from),
        wa_id: from,
        provider_message_id: id,
        sent_at: timestamp.0,
        kind,
        text,
        content,
        context: context.map(ReplyContext::from),
        errors: errors.into_iter().map(ProviderError::from).collect(),
    })
}

/// A type Parley does not model yet: its common fields are read and the whole
/// provider object is kept, so nothing a customer sent is dropped.
fn read_other_message(item: Value, change: &ChangeContext) -> Result<InboundMessage, String> {
    let head = WireHead::deserialize(&item).map_err(|err| err.to_string())?;
    Ok(InboundMessage {
        phone_number_id: change.phone_number_id.clone(),
        profile_name: change.profile_name(&head.from),
        wa_id: head.from,
        provider_message_id: head.id,
        sent_at: head.timestamp.0,
        kind: MessageKind::Other,
        text: None,
        content: MessageContent::Other {
            provider_type: head.kind,
            raw: item,
        },
        context: head.context.map(ReplyContext::from),
        errors: head.errors.into_iter().map(ProviderError::from).collect(),
    })
}

/// Whether [`read_message`] has a dedicated reader for this message's type.
fn is_modeled(item: &Value) -> bool {
    match item.get("type").and_then(Value::as_str) {
        Some(
            "text" | "image" | "audio" | "video" | "document" | "sticker" | "location" | "contacts"
            | "button" | "reaction" | "unsupported" | "unknown",
        ) => true,
        // Flow answers (`nfm_reply`) and future interactive replies are kept as Other.
        Some("interactive") => matches!(
            item.get("interactive")
                .and_then(|interactive| interactive.get("type"))
                .and_then(Value::as_str),
            Some("button_reply" | "list_reply")
        ),
        _ => false,
    }
}

fn require<T>(object: Option<T>, type_name: &str) -> Result<T, String> {
    object.ok_or_else(|| format!("message of type {type_name:?} has no `{type_name}` object"))
}

fn media(kind: MessageKind, media: WireMedia) -> (MessageKind, Option<String>, MessageContent) {
    (
        kind,
        media.caption.clone(),
        MessageContent::Media {
            media_id: media.id,
            mime_type: media.mime_type,
            sha256: media.sha256,
            caption: media.caption,
            filename: media.filename,
            voice: media.voice,
            animated: media.animated,
        },
    )
}

fn read_status(item: Value, phone_number_id: &str) -> Result<StatusUpdate, String> {
    let wire: WireStatus = serde_json::from_value(item).map_err(|err| err.to_string())?;
    let status = DeliveryStatus::parse(&wire.status)
        .ok_or_else(|| format!("unknown delivery status {:?}", wire.status))?;
    Ok(StatusUpdate {
        phone_number_id: phone_number_id.to_owned(),
        provider_message_id: wire.id,
        status,
        at: wire.timestamp.0,
        recipient_id: wire.recipient_id,
        errors: wire.errors.into_iter().map(ProviderError::from).collect(),
        callback_data: wire.biz_opaque_callback_data,
    })
}

/// Names what stood where `"whatsapp_business_account"` was expected, briefly.
fn describe(value: Option<&Value>) -> String {
    match value {
        None => "missing".to_owned(),
        Some(Value::String(s)) => {
            format!("{:?}", s.chars().take(MAX_ECHOED_CHARS).collect::<String>())
        }
        Some(Value::Null) => "null".to_owned(),
        Some(Value::Bool(_)) => "a boolean".to_owned(),
        Some(Value::Number(_)) => "a number".to_owned(),
        Some(Value::Array(_)) => "an array".to_owned(),
        Some(Value::Object(_)) => "an object".to_owned(),
    }
}

// Wire types: only the fields Parley reads. Unknown fields are ignored on purpose,
// because Meta adds fields (referral, identity, url, user_id, ...) without notice.
// `expecting` names each object as Meta does, so rejection reasons read naturally.

#[derive(Deserialize)]
#[serde(expecting = "an entry object")]
struct WireEntry {
    changes: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(expecting = "a change object")]
struct WireChange {
    field: String,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
#[serde(expecting = "a change value object")]
struct WireValue {
    metadata: Option<WireMetadata>,
    #[serde(default)]
    contacts: Vec<Value>,
    #[serde(default)]
    messages: Vec<Value>,
    #[serde(default)]
    statuses: Vec<Value>,
    /// Errors about the business number as a whole, not about one item.
    #[serde(default)]
    errors: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(expecting = "a metadata object")]
struct WireMetadata {
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a contact object")]
struct WireContact {
    wa_id: Option<String>,
    profile: Option<WireProfile>,
}

#[derive(Deserialize)]
#[serde(expecting = "a profile object")]
struct WireProfile {
    name: Option<String>,
}

/// A message of a type Parley models; the payload objects other than the one named by
/// `type` are absent in practice.
#[derive(Deserialize)]
#[serde(expecting = "a message object")]
struct WireMessage {
    from: String,
    id: String,
    timestamp: UnixTime,
    #[serde(rename = "type")]
    kind: String,
    context: Option<WireContext>,
    #[serde(default)]
    errors: Vec<WireError>,
    text: Option<WireText>,
    image: Option<WireMedia>,
    audio: Option<WireMedia>,
    video: Option<WireMedia>,
    document: Option<WireMedia>,
    sticker: Option<WireMedia>,
    location: Option<WireLocation>,
    /// Shared contact cards, kept verbatim.
    contacts: Option<Value>,
    interactive: Option<WireInteractive>,
    button: Option<WireButton>,
    reaction: Option<WireReaction>,
}

/// The fields every message has, whatever its type.
#[derive(Deserialize)]
#[serde(expecting = "a message object")]
struct WireHead {
    from: String,
    id: String,
    timestamp: UnixTime,
    #[serde(rename = "type")]
    kind: String,
    context: Option<WireContext>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
#[serde(expecting = "a context object")]
struct WireContext {
    id: Option<String>,
    from: Option<String>,
    #[serde(default)]
    forwarded: bool,
    #[serde(default)]
    frequently_forwarded: bool,
}

impl From<WireContext> for ReplyContext {
    fn from(context: WireContext) -> Self {
        Self {
            message_id: context.id,
            from: context.from,
            // Meta sends `forwarded` only up to five forwards and `frequently_forwarded`
            // beyond; both are forwards.
            forwarded: context.forwarded || context.frequently_forwarded,
            frequently_forwarded: context.frequently_forwarded,
        }
    }
}

#[derive(Deserialize)]
#[serde(expecting = "a text object")]
struct WireText {
    body: String,
}

/// image, audio, video, document and sticker share one shape.
#[derive(Deserialize)]
#[serde(expecting = "a media object")]
struct WireMedia {
    id: String,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    voice: Option<bool>,
    animated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(expecting = "a location object")]
struct WireLocation {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "an interactive object")]
struct WireInteractive {
    #[serde(rename = "type")]
    kind: String,
    button_reply: Option<WireReply>,
    list_reply: Option<WireReply>,
}

#[derive(Deserialize)]
#[serde(expecting = "a reply object")]
struct WireReply {
    id: String,
    title: String,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a button object")]
struct WireButton {
    text: String,
    payload: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a reaction object")]
struct WireReaction {
    message_id: String,
    emoji: Option<String>,
}

#[derive(Deserialize)]
#[serde(expecting = "a status object")]
struct WireStatus {
    id: String,
    status: String,
    timestamp: UnixTime,
    recipient_id: Option<String>,
    biz_opaque_callback_data: Option<String>,
    #[serde(default)]
    errors: Vec<WireError>,
}

#[derive(Deserialize)]
#[serde(expecting = "an error object")]
struct WireError {
    code: i64,
    title: Option<String>,
    message: Option<String>,
    /// Older payloads put the details here instead of in `error_data`.
    details: Option<String>,
    error_data: Option<WireErrorData>,
}

#[derive(Deserialize)]
#[serde(expecting = "an error_data object")]
struct WireErrorData {
    details: Option<String>,
}

impl From<WireError> for ProviderError {
    fn from(error: WireError) -> Self {
        // `title` and `message` carry the same text in current payloads; either will do.
        let title = match (error.title, &error.message) {
            (Some(title), _) => title,
            (None, Some(message)) => message.clone(),
            (None, None) => String::new(),
        };
        Self {
            code: error.code,
            title,
            message: error.message,
            details: error
                .error_data
                .and_then(|data| data.details)
                .or(error.details),
        }
    }
}

/// A Cloud API timestamp: Unix seconds, sent as a string of digits (an integer is
/// accepted too, as some of Meta's examples show one).
struct UnixTime(DateTime<Utc>);

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UnixTimeVisitor)
    }
}

struct UnixTimeVisitor;

impl Visitor<'_> for UnixTimeVisitor {
    type Value = UnixTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Unix seconds as a string of digits")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<UnixTime, E> {
        let secs = v
            .parse::<i64>()
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))?;
        self.visit_i64(secs)
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<UnixTime, E> {
        DateTime::from_timestamp(secs, 0)
            .map(UnixTime)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(secs), &self))
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<UnixTime, E> {
        let secs =
            i64::try_from(secs).map_err(|_| E::invalid_value(Unexpected::Unsigned(secs), &self))?;
        self.visit_i64(secs)
    }
}

#[cfg(test)]
mod tests;
