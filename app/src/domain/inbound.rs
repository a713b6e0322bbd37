//! What a provider tells us, normalized: customer messages and delivery statuses.
//!
//! Every transport (the native Cloud API parser, transport plugins) produces these
//! types; nothing downstream looks at a provider's wire format again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A customer message as a provider delivered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The business number the customer wrote to (Cloud API `metadata.phone_number_id`).
    pub phone_number_id: String,
    /// The customer's WhatsApp id (`messages[].from`).
    pub wa_id: String,
    /// The customer's profile name, when the provider sent one (`contacts[].profile.name`).
    pub profile_name: Option<String>,
    /// The provider's message id (`wamid....`), unique per channel.
    pub provider_message_id: String,
    /// When the customer sent it, as the provider says.
    pub sent_at: DateTime<Utc>,
    /// What kind of message it is.
    pub kind: MessageKind,
    /// The human-readable text: the body of a text, the caption of a media message, the
    /// chosen title of an interactive or template-button reply, the emoji of a reaction.
    pub text: Option<String>,
    /// Kind-specific details (media ids, location, shared contacts, reply ids, ...).
    pub content: MessageContent,
    /// Set when the message replies to or forwards another one.
    pub context: Option<ReplyContext>,
    /// Errors the provider attached (for `unsupported` messages, for example).
    pub errors: Vec<ProviderError>,
}

/// The kinds of inbound message Parley understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Contacts,
    /// An interactive `button_reply` or `list_reply`.
    Interactive,
    /// A template quick-reply `button`.
    Button,
    /// A reaction to an earlier message (or its removal).
    Reaction,
    /// A type WhatsApp itself could not deliver (`unsupported`, `unknown`).
    Unsupported,
    /// A type Parley does not model yet (order, system, ...); kept, never dropped.
    Other,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location => "location",
            Self::Contacts => "contacts",
            Self::Interactive => "interactive",
            Self::Button => "button",
            Self::Reaction => "reaction",
            Self::Unsupported => "unsupported",
            Self::Other => "other",
        }
    }
}

/// Kind-specific details of an inbound message, stored as JSON beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    Text {
        body: String,
    },
    Media {
        media_id: String,
        mime_type: Option<String>,
        sha256: Option<String>,
        caption: Option<String>,
        /// Documents only.
        filename: Option<String>,
        /// Audio only: a voice note.
        voice: Option<bool>,
        /// Stickers only.
        animated: Option<bool>,
    },
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
        url: Option<String>,
    },
    /// Shared contact cards, kept as the provider sent them.
    Contacts {
        contacts: serde_json::Value,
    },
    Interactive {
        /// `button_reply` or `list_reply`.
        reply_type: String,
        id: String,
        title: String,
        description: Option<String>,
    },
    Button {
        payload: Option<String>,
        text: String,
    },
    Reaction {
        /// The message reacted to.
        message_id: String,
        /// `None` when the customer removed their reaction.
        emoji: Option<String>,
    },
    Unsupported,
    /// The provider's raw object for a type Parley does not model.
    Other {
        provider_type: String,
        raw: serde_json::Value,
    },
}

/// A reply to, or forward of, another message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// The message replied to, when it is a reply.
    pub message_id: Option<String>,
    /// Who sent the message replied to.
    pub from: Option<String>,
    pub forwarded: bool,
    pub frequently_forwarded: bool,
}

/// An error object as a provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    pub code: i64,
    pub title: String,
    pub message: Option<String>,
    pub details: Option<String>,
}

/// Delivery progress of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    /// A voice message was played (sent by Meta after `read`).
    Played,
    Failed,
    /// Held by the outbound gate, waiting for a person's approval.
    Held,
    /// Held, then rejected by the approver: never sent.
    Rejected,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Held => "held",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            "held" => Self::Held,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// A delivery status callback for one outbound message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub phone_number_id: String,
    /// The provider id of the outbound message this status is about.
    pub provider_message_id: String,
    pub status: DeliveryStatus,
    pub at: DateTime<Utc>,
    pub recipient_id: Option<String>,
    pub errors: Vec<ProviderError>,
    /// Echo of what Parley put in `biz_opaque_callback_data` when sending: lets a status
    /// find its message even when the send's answer was lost.
    pub callback_data: Option<String>,
}

/// One entry or item of a batch that could not be understood; the rest of the batch is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedItem {
    /// Where in the payload, for example `entry[0].changes[1].value.messages[3]`.
    pub path: String,
    pub reason: String,
}

/// An error the provider reported for a business number as a whole rather than for one
/// message or status (Cloud API `value.errors`: rate limits, system or account problems).
/// Nothing a customer wrote; kept so operators can be alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountError {
    /// The business number the error concerns (`metadata.phone_number_id`).
    pub phone_number_id: String,
    pub error: ProviderError,
}

/// Everything one webhook delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookBatch {
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    pub rejected: Vec<RejectedItem>,
    /// Changes for fields Parley does not handle yet, counted and otherwise ignored.
    pub ignored_changes: usize,
    /// Provider errors about a business number rather than about one item.
    #[serde(default)]
    pub account_errors: Vec<AccountError>,
    /// Meta's verdicts on message templates (`message_template_status_update`).
    #[serde(default)]
    pub template_statuses: Vec<TemplateStatusUpdate>,
}

/// Meta's review of a message template changed (approved, rejected, paused, disabled...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// `APPROVED`, `REJECTED`, `PENDING`, `PAUSED`, `DISABLED`, ... as Meta sends it.
    pub event: String,
    pub name: String,
    pub language: String,
    pub meta_template_id: Option<String>,
    /// Meta's reason (`NONE` on approval).
    pub reason: Option<String>,
}
