//! Typed views of what the store keeps as JSON: a case's triage, a message's
//! kind-specific content and an event's details. Frontends generate types from these;
//! each has a raw JSON twin (`triageJson`, `contentJson`, `dataJson`) as an escape hatch
//! for details not modelled here.

use super::ApiContext;
use super::routing::{MatchedRule, ScoredTag};
use super::types::{ConversationStatus, DeliveryStatus, Priority, ReviewMode};
use crate::domain::Priority as DomainPriority;
use crate::domain::inbound::{DeliveryStatus as Delivery, MessageContent as Stored};
use crate::error::ApiError;
use crate::policy::routing::{Decision, Review};
use async_graphql::{Context, Enum, ID, Object, SimpleObject, Union};
use serde::Deserialize;
use serde_json::Value;

/// How urgent a message is, as triage and the rules say (the shipped taxonomy's levels).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Urgency {
    Low,
    Normal,
    Priority,
    Immediate,
}

impl Urgency {
    /// A level of the shipped taxonomy; `None` for a level a custom taxonomy added.
    pub fn parse(label: &str) -> Option<Self> {
        Some(match label {
            "low" => Self::Low,
            "normal" => Self::Normal,
            "priority" => Self::Priority,
            "immediate" => Self::Immediate,
            _ => return None,
        })
    }
}

fn priority(p: DomainPriority) -> Priority {
    match p {
        DomainPriority::Low => Priority::Low,
        DomainPriority::Medium => Priority::Medium,
        DomainPriority::High => Priority::High,
        DomainPriority::Urgent => Priority::Urgent,
    }
}

fn review(r: Review) -> ReviewMode {
    match r {
        Review::Human => ReviewMode::Human,
        Review::Automation => ReviewMode::Automation,
    }
}

fn ticket_status(s: &str) -> Option<ConversationStatus> {
    crate::domain::TicketStatus::parse(s).map(Into::into)
}

fn delivery(s: &str) -> Option<DeliveryStatus> {
    Delivery::parse(s).map(|s| match s {
        Delivery::Pending => DeliveryStatus::Pending,
        Delivery::Sent => DeliveryStatus::Sent,
        Delivery::Delivered => DeliveryStatus::Delivered,
        Delivery::Read => DeliveryStatus::Read,
        Delivery::Played => DeliveryStatus::Played,
        Delivery::Failed => DeliveryStatus::Failed,
        Delivery::Held => DeliveryStatus::Held,
        Delivery::Rejected => DeliveryStatus::Rejected,
    })
}

fn id(n: i64) -> ID {
    ID(n.to_string())
}

// ---------------------------------------------------------------------------------------
// Triage
// ---------------------------------------------------------------------------------------

/// A tag as stored: a label and a confidence.
#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct StoredTag {
    label: String,
    confidence: f64,
}

impl From<&StoredTag> for ScoredTag {
    fn from(t: &StoredTag) -> Self {
        ScoredTag {
            label: t.label.clone(),
            confidence: t.confidence,
        }
    }
}

/// The tags of one triaged message, as kept on the case and in `triaged` events.
#[derive(Deserialize, Default)]
#[serde(default)]
struct StoredTriage {
    intents: Vec<StoredTag>,
    urgency: StoredTag,
    risks: Vec<StoredTag>,
    language: StoredTag,
    tones: Vec<StoredTag>,
    low_confidence: bool,
    context: Vec<String>,
    owner: Option<String>,
    review: Option<String>,
    rules: Vec<String>,
    candidates: Vec<StoredTag>,
    decision: Option<Decision>,
}

/// What triage said about a customer message: tags with confidences and the context.
pub struct Triage {
    stored: StoredTriage,
    /// The case whose latest decision `decision` reads, when not already at hand.
    conversation_id: Option<i64>,
}

impl Triage {
    /// The gist kept on a case (`conversations.triage`).
    pub fn of_case(json: &str, conversation_id: i64) -> Option<Self> {
        Some(Self {
            stored: serde_json::from_str(json).ok()?,
            conversation_id: Some(conversation_id),
        })
    }

    fn of_event(data: &Value) -> Self {
        Self {
            stored: StoredTriage::deserialize(data).unwrap_or_default(),
            conversation_id: None,
        }
    }
}

fn tags(tags: &[StoredTag]) -> Vec<ScoredTag> {
    tags.iter().map(ScoredTag::from).collect()
}

#[Object]
impl Triage {
    /// Intents at or above the taxonomy's threshold, most confident first.
    async fn intents(&self) -> Vec<ScoredTag> {
        tags(&self.stored.intents)
    }
    /// The urgency triage read from the text (before the rules).
    async fn urgency(&self) -> ScoredTag {
        (&self.stored.urgency).into()
    }
    /// `urgency` as a level of the shipped taxonomy (null for a custom level).
    async fn urgency_level(&self) -> Option<Urgency> {
        Urgency::parse(&self.stored.urgency.label)
    }
    /// Risks (legal threat, fraud signal, ...), most confident first.
    async fn risks(&self) -> Vec<ScoredTag> {
        tags(&self.stored.risks)
    }
    /// The detected language (ISO 639-1).
    async fn language(&self) -> ScoredTag {
        (&self.stored.language).into()
    }
    async fn tones(&self) -> Vec<ScoredTag> {
        tags(&self.stored.tones)
    }
    /// The classifier was unsure: a person reviews.
    async fn low_confidence(&self) -> bool {
        self.stored.low_confidence
    }
    /// Facts about the customer: `vip_customer`, `repeat_contact`, ...
    async fn context(&self) -> &[String] {
        &self.stored.context
    }
    /// The best intents whatever their confidence (kept in `triaged` events only).
    async fn candidate_intents(&self) -> Vec<ScoredTag> {
        tags(&self.stored.candidates)
    }
    /// The team the rules made owner.
    async fn owner(&self) -> Option<&str> {
        self.stored.owner.as_deref()
    }
    /// Names of the rules that matched, in evaluation order.
    async fn rules(&self) -> &[String] {
        &self.stored.rules
    }
    /// The rules' whole decision: what each matched rule matched on and changed. On a
    /// case it is read from the case's latest `triaged` event.
    #[graphql(complexity = 5)]
    async fn decision(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<TriageDecision>> {
        if let Some(decision) = &self.stored.decision {
            return Ok(Some(TriageDecision(decision.clone())));
        }
        let Some(conversation_id) = self.conversation_id else {
            return Ok(None);
        };
        let store = &ctx.data_unchecked::<ApiContext>().store;
        let event = store
            .latest_event(conversation_id, "triaged")
            .await
            .map_err(ApiError::internal)?;
        Ok(event
            .and_then(|e| serde_json::from_str::<StoredTriage>(&e.data).ok())
            .and_then(|t| t.decision)
            .map(TriageDecision))
    }
    /// Who reviews what is sent, as the rules decided.
    async fn review(&self) -> Option<ReviewMode> {
        match self.stored.review.as_deref() {
            Some("human") => Some(ReviewMode::Human),
            Some("automation") => Some(ReviewMode::Automation),
            _ => None,
        }
    }
}

/// The routing rules' decision for one message.
pub struct TriageDecision(Decision);

#[Object]
impl TriageDecision {
    /// The team that owns the case.
    async fn owner(&self) -> &str {
        &self.0.owner
    }
    /// The rule that set the owner; null when it is a fallback team.
    async fn owner_rule(&self) -> Option<&str> {
        self.0.owner_rule.as_deref()
    }
    /// Teams that watch the case without owning it.
    async fn watchers(&self) -> &[String] {
        &self.0.watchers
    }
    async fn priority(&self) -> Priority {
        priority(self.0.priority)
    }
    /// Urgency after the rules, as the taxonomy names it.
    async fn urgency(&self) -> &str {
        &self.0.urgency
    }
    /// `urgency` as a level of the shipped taxonomy (null for a custom level).
    async fn urgency_level(&self) -> Option<Urgency> {
        Urgency::parse(&self.0.urgency)
    }
    async fn review(&self) -> ReviewMode {
        review(self.0.review)
    }
    /// Why: `low_confidence`, `rule: <name>` or `default: ...`.
    async fn review_reason(&self) -> String {
        super::routing::review_reason(&self.0.review_reason)
    }
    /// Skills the assigned agent needs.
    async fn skills(&self) -> &[String] {
        &self.0.skills
    }
    /// Why the message opens no case, when it was suppressed.
    async fn suppress(&self) -> Option<&str> {
        self.0.suppress.as_deref()
    }
    /// The rule whose `stop` ended the evaluation.
    async fn stopped_by(&self) -> Option<&str> {
        self.0.stopped_by.as_deref()
    }
    /// Every matching rule, in evaluation order.
    async fn matched_rules(&self) -> Vec<MatchedRule> {
        super::routing::matched_rules(&self.0.matched)
    }
    /// The decision in plain English.
    async fn reasons(&self) -> &[String] {
        &self.0.reasons
    }
}

// ---------------------------------------------------------------------------------------
// Message content
// ---------------------------------------------------------------------------------------

/// A message's kind-specific details.
#[derive(Union)]
pub enum MessageContent {
    Text(TextContent),
    Media(MediaContent),
    Location(LocationContent),
    Contacts(ContactsContent),
    Interactive(InteractiveContent),
    Button(ButtonContent),
    Reaction(ReactionContent),
    Unsupported(UnsupportedContent),
    Other(OtherContent),
}

#[derive(SimpleObject)]
pub struct TextContent {
    pub body: String,
}

/// An image, audio, video, document or sticker, as the provider named it. The file
/// itself, once Parley has fetched it, is the message's `media`.
#[derive(SimpleObject)]
pub struct MediaContent {
    /// The provider's media id.
    pub media_id: String,
    pub mime_type: Option<String>,
    pub sha256: Option<String>,
    pub caption: Option<String>,
    /// Documents only.
    pub filename: Option<String>,
    /// Audio only: a voice note.
    pub voice: Option<bool>,
    /// Stickers only.
    pub animated: Option<bool>,
}

#[derive(SimpleObject)]
pub struct LocationContent {
    pub latitude: f64,
    pub longitude: f64,
    pub name: Option<String>,
    pub address: Option<String>,
    pub url: Option<String>,
}

/// Shared contact cards (the cards themselves are in `contentJson`).
#[derive(SimpleObject)]
pub struct ContactsContent {
    /// How many cards were shared.
    pub count: i32,
    /// Their formatted names.
    pub names: Vec<String>,
}

/// The customer chose a button or list row of an interactive message.
#[derive(SimpleObject)]
pub struct InteractiveContent {
    /// `button_reply` or `list_reply`.
    pub reply_type: String,
    /// The id the business gave the choice.
    pub choice_id: String,
    pub title: String,
    pub description: Option<String>,
}

/// The customer tapped a template's quick-reply button.
#[derive(SimpleObject)]
pub struct ButtonContent {
    pub payload: Option<String>,
    pub text: String,
}

#[derive(SimpleObject)]
pub struct ReactionContent {
    /// The provider id of the message reacted to.
    pub message_id: String,
    /// Null when the customer removed their reaction.
    pub emoji: Option<String>,
}

/// A message WhatsApp itself could not deliver.
#[derive(SimpleObject)]
pub struct UnsupportedContent {
    /// Always true; the type has no other details.
    pub unsupported: bool,
}

/// A type Parley does not model yet; the provider's object is in `contentJson`.
#[derive(SimpleObject)]
pub struct OtherContent {
    pub provider_type: String,
}

impl MessageContent {
    /// The stored content of a message; an outbound text (stored without content) is a
    /// `TextContent` of its text.
    pub fn of_message(kind: &str, text: Option<&str>, content: Option<&str>) -> Option<Self> {
        let Some(content) = content else {
            return (kind == "text").then(|| {
                Self::Text(TextContent {
                    body: text.unwrap_or_default().to_owned(),
                })
            });
        };
        Some(match serde_json::from_str::<Stored>(content).ok()? {
            Stored::Text { body } => Self::Text(TextContent { body }),
            Stored::Media {
                media_id,
                mime_type,
                sha256,
                caption,
                filename,
                voice,
                animated,
            } => Self::Media(MediaContent {
                media_id,
                mime_type,
                sha256,
                caption,
                filename,
                voice,
                animated,
            }),
            Stored::Location {
                latitude,
                longitude,
                name,
                address,
                url,
            } => Self::Location(LocationContent {
                latitude,
                longitude,
                name,
                address,
                url,
            }),
            Stored::Contacts { contacts } => {
                let cards = contacts.as_array().map(Vec::as_slice).unwrap_or_default();
                Self::Contacts(ContactsContent {
                    count: i32::try_from(cards.len()).unwrap_or(i32::MAX),
                    names: cards
                        .iter()
                        .filter_map(|c| c["name"]["formatted_name"].as_str())
                        .map(str::to_owned)
                        .collect(),
                })
            }
            Stored::Interactive {
                reply_type,
                id,
                title,
                description,
            } => Self::Interactive(InteractiveContent {
                reply_type,
                choice_id: id,
                title,
                description,
            }),
            Stored::Button { payload, text } => Self::Button(ButtonContent { payload, text }),
            Stored::Reaction { message_id, emoji } => {
                Self::Reaction(ReactionContent { message_id, emoji })
            }
            Stored::Unsupported => Self::Unsupported(UnsupportedContent { unsupported: true }),
            Stored::Other { provider_type, .. } => Self::Other(OtherContent { provider_type }),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Event details
// ---------------------------------------------------------------------------------------

/// An event's details, typed for the kinds an inbox shows; every other kind is
/// `OtherEventData` (its details are in `dataJson`).
#[derive(Union)]
pub enum EventData {
    Created(CreatedEventData),
    MessageIn(MessageInEventData),
    MessageOut(MessageOutEventData),
    MessageStatus(MessageStatusEventData),
    Assigned(AssignedEventData),
    StatusChanged(StatusChangedEventData),
    Reopened(ReopenedEventData),
    NoteAdded(NoteAddedEventData),
    Triaged(TriagedEventData),
    OwnerChanged(OwnerChangedEventData),
    Escalated(EscalatedEventData),
    MessageHeld(MessageHeldEventData),
    MessageApproved(MessageApprovedEventData),
    MessageRejected(MessageRejectedEventData),
    MessageBlocked(MessageBlockedEventData),
    PriorityChanged(PriorityChangedEventData),
    TagsCorrected(TagsCorrectedEventData),
    Other(OtherEventData),
}

/// `created`: the customer's first message opened the case.
#[derive(SimpleObject)]
pub struct CreatedEventData {
    pub channel_id: Option<String>,
}

/// `message_in`: a customer message was added.
#[derive(SimpleObject)]
pub struct MessageInEventData {
    /// text, image, ... (see `Message.kind`).
    pub message_kind: Option<String>,
    pub provider_message_id: Option<String>,
}

/// `message_out`: a reply was queued (by a person, automation or an approval).
#[derive(SimpleObject)]
pub struct MessageOutEventData {
    /// text, template, interactive, ...
    pub message_kind: Option<String>,
    pub message_id: Option<ID>,
    /// What sent it automatically (`closing_message`, ...), when nobody typed it.
    pub auto: Option<String>,
    /// The held message whose approval sent it.
    pub approved_held_id: Option<ID>,
}

/// `message_status`: the provider reported progress on an outbound message.
#[derive(SimpleObject)]
pub struct MessageStatusEventData {
    pub message_id: Option<ID>,
    pub status: Option<DeliveryStatus>,
    pub error_code: Option<String>,
    pub error_title: Option<String>,
}

/// `assigned`: the case got (or lost) its agent.
#[derive(SimpleObject)]
pub struct AssignedEventData {
    /// Null when the case was unassigned.
    pub agent_id: Option<ID>,
    pub team_id: Option<ID>,
    pub previous_agent_id: Option<ID>,
    pub previous_team_id: Option<ID>,
}

/// `status_changed`.
#[derive(SimpleObject)]
pub struct StatusChangedEventData {
    pub from: Option<ConversationStatus>,
    pub to: Option<ConversationStatus>,
    pub reason: Option<String>,
    /// The case clock changed it, not a person.
    pub automatic: bool,
}

/// `reopened`: the customer wrote again after the case was resolved.
#[derive(SimpleObject)]
pub struct ReopenedEventData {
    pub to: Option<ConversationStatus>,
    pub reopen_count: i32,
}

/// `note_added`: the note itself is in `Conversation.notes`.
#[derive(SimpleObject)]
pub struct NoteAddedEventData {
    /// Always true.
    pub added: bool,
    /// The agents the note mentions (`@Name`).
    pub mentioned_agent_ids: Vec<ID>,
}

/// `priority_changed`: a person (by hand or with a macro) set the priority.
#[derive(SimpleObject)]
pub struct PriorityChangedEventData {
    pub from: Option<Priority>,
    pub to: Option<Priority>,
    pub reason: Option<String>,
}

/// `tags_corrected`: a person added or removed intents or risks (`setTags`); the
/// `triaged` event beside it has the rules' new decision.
#[derive(SimpleObject)]
pub struct TagsCorrectedEventData {
    pub added_intents: Vec<String>,
    pub removed_intents: Vec<String>,
    pub added_risks: Vec<String>,
    pub removed_risks: Vec<String>,
    /// The case's intents and risks after the correction.
    pub intents: Vec<String>,
    pub risks: Vec<String>,
    pub reason: Option<String>,
}

/// `triaged`: the tags of a customer message and the rules' decision.
#[derive(SimpleObject)]
pub struct TriagedEventData {
    pub triage: Box<Triage>,
}

/// `owner_changed`: the rules gave the case to another team.
#[derive(SimpleObject)]
pub struct OwnerChangedEventData {
    pub from_team_id: Option<ID>,
    pub to_team_id: Option<ID>,
    pub team: Option<String>,
    pub rules: Vec<String>,
}

/// `escalated`: the case moved up a ladder or to another team, with the packet its
/// receiver reads.
#[derive(SimpleObject)]
pub struct EscalatedEventData {
    /// What set it off (`first_response_breach`, `manual`, ...).
    pub trigger: Option<String>,
    pub reason: Option<String>,
    pub from_team: Option<String>,
    pub to_team: Option<String>,
    pub to_level: Option<i32>,
    /// Whether the case changed owner team.
    pub moved: bool,
    pub watchers: Vec<String>,
    pub packet: Option<EscalationPacket>,
}

/// What the receiver of an escalation reads first.
#[derive(SimpleObject)]
pub struct EscalationPacket {
    pub summary: String,
    pub customer_wa_id: Option<String>,
    pub customer_name: Option<String>,
    pub customer_vip: bool,
    /// Order ids found in the customer's messages.
    pub order_ids: Vec<String>,
    /// The latest messages, oldest first.
    pub recent_messages: Vec<PacketMessage>,
    /// What automation and agents tried, in words.
    pub tried: Vec<String>,
}

#[derive(SimpleObject)]
pub struct PacketMessage {
    pub direction: String,
    pub kind: String,
    pub text: Option<String>,
}

/// `message_held`: the outbound gate held a message for approval.
#[derive(SimpleObject)]
pub struct MessageHeldEventData {
    /// Who wrote it: agent, automation, ...
    pub origin: Option<String>,
    pub purpose: Option<String>,
    /// Who may approve it (`supervisor`, ...).
    pub approver: Option<String>,
    pub reasons: Vec<String>,
}

/// `message_approved`.
#[derive(SimpleObject)]
pub struct MessageApprovedEventData {
    pub held_id: Option<ID>,
    pub message_id: Option<ID>,
    pub edited: bool,
}

/// `message_rejected`.
#[derive(SimpleObject)]
pub struct MessageRejectedEventData {
    pub held_id: Option<ID>,
    pub message_id: Option<ID>,
    pub reason: Option<String>,
}

/// `message_blocked`: the gate refused a message outright (no consent, blocked contact).
#[derive(SimpleObject)]
pub struct MessageBlockedEventData {
    pub origin: Option<String>,
    pub reason: Option<String>,
}

/// Any other kind (see `ConversationEvent.kind`; details in `dataJson`).
#[derive(SimpleObject)]
pub struct OtherEventData {
    pub kind: String,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(text).collect())
        .unwrap_or_default()
}

fn an_id(v: &Value) -> Option<ID> {
    v.as_i64().map(id)
}

fn packet(p: &Value) -> Option<EscalationPacket> {
    if !p.is_object() {
        return None;
    }
    let customer = &p["customer"];
    let tried = p["tried"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let what = t["what"].as_str().unwrap_or("?");
                    match t["by"].as_str() {
                        Some(by) => format!("{what} by {by}"),
                        None => what.to_owned(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Some(EscalationPacket {
        summary: p["summary"].as_str().unwrap_or_default().to_owned(),
        customer_wa_id: text(&customer["wa_id"]),
        customer_name: text(&customer["name"]),
        customer_vip: customer["vip"].as_bool().unwrap_or(false),
        order_ids: strings(&p["identifiers"]["order_ids"]),
        recent_messages: p["recent_messages"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| PacketMessage {
                        direction: m["direction"].as_str().unwrap_or_default().to_owned(),
                        kind: m["kind"].as_str().unwrap_or_default().to_owned(),
                        text: text(&m["text"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tried,
    })
}

impl EventData {
    pub fn of_event(kind: &str, data: &Value) -> Self {
        let d = data;
        match kind {
            "created" => Self::Created(CreatedEventData {
                channel_id: text(&d["channel_id"]),
            }),
            "message_in" => Self::MessageIn(MessageInEventData {
                message_kind: text(&d["kind"]),
                provider_message_id: text(&d["provider_message_id"]),
            }),
            "message_out" => Self::MessageOut(MessageOutEventData {
                message_kind: text(&d["kind"]),
                message_id: an_id(&d["message_id"]),
                auto: text(&d["auto"]),
                approved_held_id: an_id(&d["approved"]),
            }),
            "message_status" => Self::MessageStatus(MessageStatusEventData {
                message_id: an_id(&d["message_id"]),
                status: d["status"].as_str().and_then(delivery),
                error_code: text(&d["error"]["code"]),
                error_title: text(&d["error"]["title"]),
            }),
            "assigned" => Self::Assigned(AssignedEventData {
                agent_id: an_id(&d["agent_id"]),
                team_id: an_id(&d["team_id"]),
                previous_agent_id: an_id(&d["previous"]["agent_id"]),
                previous_team_id: an_id(&d["previous"]["team_id"]),
            }),
            "status_changed" => Self::StatusChanged(StatusChangedEventData {
                from: d["from"].as_str().and_then(ticket_status),
                to: d["to"].as_str().and_then(ticket_status),
                reason: text(&d["reason"]),
                automatic: d["auto"].as_bool().unwrap_or(false),
            }),
            "reopened" => Self::Reopened(ReopenedEventData {
                to: d["to"].as_str().and_then(ticket_status),
                reopen_count: d["reopen_count"]
                    .as_i64()
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or(0),
            }),
            "note_added" => Self::NoteAdded(NoteAddedEventData {
                added: true,
                mentioned_agent_ids: d["mentions"]
                    .as_array()
                    .map(|ids| ids.iter().filter_map(an_id).collect())
                    .unwrap_or_default(),
            }),
            "triaged" => Self::Triaged(TriagedEventData {
                triage: Box::new(Triage::of_event(d)),
            }),
            "owner_changed" => Self::OwnerChanged(OwnerChangedEventData {
                from_team_id: an_id(&d["from_team_id"]),
                to_team_id: an_id(&d["to_team_id"]),
                team: text(&d["team"]),
                rules: strings(&d["rules"]),
            }),
            "escalated" => Self::Escalated(EscalatedEventData {
                trigger: text(&d["trigger"]),
                reason: text(&d["reason"]),
                from_team: text(&d["from_team"]),
                to_team: text(&d["to_team"]),
                to_level: d["to_level"].as_i64().and_then(|n| i32::try_from(n).ok()),
                moved: d["moved"].as_bool().unwrap_or(false),
                watchers: strings(&d["watchers"]),
                packet: packet(&d["packet"]),
            }),
            "message_held" => Self::MessageHeld(MessageHeldEventData {
                origin: text(&d["origin"]),
                purpose: text(&d["purpose"]),
                approver: text(&d["approver"]),
                reasons: strings(&d["reasons"]),
            }),
            "message_approved" => Self::MessageApproved(MessageApprovedEventData {
                held_id: an_id(&d["held_id"]),
                message_id: an_id(&d["message_id"]),
                edited: d["edited"].as_bool().unwrap_or(false),
            }),
            "message_rejected" => Self::MessageRejected(MessageRejectedEventData {
                held_id: an_id(&d["held_id"]),
                message_id: an_id(&d["message_id"]),
                reason: text(&d["reason"]),
            }),
            "message_blocked" => Self::MessageBlocked(MessageBlockedEventData {
                origin: text(&d["origin"]),
                reason: text(&d["reason"]),
            }),
            "priority_changed" => Self::PriorityChanged(PriorityChangedEventData {
                from: d["from"]
                    .as_str()
                    .and_then(DomainPriority::parse)
                    .map(priority),
                to: d["to"]
                    .as_str()
                    .and_then(DomainPriority::parse)
                    .map(priority),
                reason: text(&d["reason"]),
            }),
            "tags_corrected" => Self::TagsCorrected(TagsCorrectedEventData {
                added_intents: strings(&d["added_intents"]),
                removed_intents: strings(&d["removed_intents"]),
                added_risks: strings(&d["added_risks"]),
                removed_risks: strings(&d["removed_risks"]),
                intents: strings(&d["intents"]),
                risks: strings(&d["risks"]),
                reason: text(&d["reason"]),
            }),
            other => Self::Other(OtherEventData {
                kind: other.to_owned(),
            }),
        }
    }
}
