//! The ticket lifecycle as pure functions: given what an actor knows and what happened,
//! the [`ConversationChange`] to persist. No I/O, so every rule here is unit-tested.

use super::ConversationError;
use crate::actors::conversation::{AddNote, WindowRefused};
pub use crate::actors::conversation::{ReplyAuthority, TemplateSend};
use crate::domain::consent::Purpose;
use crate::domain::inbound::InboundMessage;
use crate::domain::outbound::Origin;
use crate::domain::{Actor, ConversationKey, Micros, TicketStatus};
pub(crate) use crate::store::conversations::new_conversation;
use crate::store::conversations::{
    ActorState, ContactUpsert, ConversationChange, NewEvent, NewMessage, NewOutbox,
};
use crate::store::entities::conversation;
use serde_json::json;

/// What the customer's message does to the case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First case, or the last one is closed: a new conversation.
    NewCase,
    /// Resolved too long ago: close it and open a new conversation.
    NewCaseAfterReopenWindow,
    /// Resolved within the window: the same conversation again, counted as a reopen.
    Reopen,
    /// Was waiting on the customer: back to work.
    Resume,
    /// An open case continues.
    Continue,
}

pub fn classify_arrival(
    live: Option<&conversation::Model>,
    now: Micros,
    reopen_window: Micros,
) -> Arrival {
    let Some(live) = live else {
        return Arrival::NewCase;
    };
    match TicketStatus::parse(&live.status) {
        Some(TicketStatus::Closed) | None => Arrival::NewCase,
        Some(TicketStatus::Resolved) => {
            let resolved_at = live.resolved_at.unwrap_or(live.updated_at);
            if now.saturating_sub(resolved_at) <= reopen_window {
                Arrival::Reopen
            } else {
                Arrival::NewCaseAfterReopenWindow
            }
        }
        Some(TicketStatus::Pending) => Arrival::Resume,
        Some(_) => Arrival::Continue,
    }
}

pub(crate) fn status_changed(
    from: &str,
    to: TicketStatus,
    actor: &Actor,
    reason: Option<&str>,
) -> NewEvent {
    let mut data = json!({ "from": from, "to": to.as_str() });
    if let (Some(reason), Some(map)) = (reason, data.as_object_mut()) {
        map.insert("reason".into(), reason.into());
    }
    NewEvent {
        kind: "status_changed",
        data,
        actor: actor.label(),
    }
}

/// The status a case returns to when work on it resumes.
fn working_status(c: &conversation::Model) -> TicketStatus {
    if c.assignee_id.is_some() {
        TicketStatus::Assigned
    } else {
        TicketStatus::Created
    }
}

pub fn plan_customer_message(
    state: &ActorState,
    key: &ConversationKey,
    message: &InboundMessage,
    received_at: Micros,
    now: Micros,
    reopen_window: Micros,
) -> (Arrival, ConversationChange) {
    let contact = match (state.contact_id, &message.profile_name) {
        (Some(id), name) if name.is_none() || *name == state.contact_name => {
            ContactUpsert::Known(id)
        }
        _ => ContactUpsert::ByWaId {
            wa_id: key.wa_id.clone(),
            name: message.profile_name.clone(),
        },
    };
    let contact_id = state.contact_id.unwrap_or(0);
    let arrival = classify_arrival(state.live.as_ref(), now, reopen_window);
    let customer = Actor::Customer;
    let mut events = Vec::new();
    let mut previous_events = Vec::new();
    let mut close_previous = None;
    let mut conversation = match (arrival, &state.live) {
        (Arrival::Reopen, Some(live)) => {
            let mut c = live.clone();
            let to = working_status(&c);
            c.status = to.as_str().into();
            c.reopen_count += 1;
            c.resolved_at = None;
            events.push(NewEvent {
                kind: "reopened",
                data: json!({ "from": TicketStatus::Resolved.as_str(), "to": to.as_str(), "reopen_count": c.reopen_count }),
                actor: customer.label(),
            });
            c
        }
        (Arrival::Resume, Some(live)) => {
            let mut c = live.clone();
            let to = if c.assignee_id.is_some() {
                TicketStatus::InProgress
            } else {
                TicketStatus::Created
            };
            events.push(status_changed(
                &c.status,
                to,
                &customer,
                Some("customer replied"),
            ));
            c.status = to.as_str().into();
            c
        }
        (Arrival::Continue, Some(live)) => live.clone(),
        (Arrival::NewCaseAfterReopenWindow, Some(live)) => {
            previous_events.push(status_changed(
                &live.status,
                TicketStatus::Closed,
                &Actor::System,
                Some("reopen window passed"),
            ));
            close_previous = Some(live.clone());
            events.push(NewEvent {
                kind: "created",
                data: json!({ "channel_id": key.channel_id }),
                actor: customer.label(),
            });
            new_conversation(key, contact_id, now)
        }
        _ => {
            events.push(NewEvent {
                kind: "created",
                data: json!({ "channel_id": key.channel_id }),
                actor: customer.label(),
            });
            new_conversation(key, contact_id, now)
        }
    };
    conversation.updated_at = now;
    conversation.last_activity_at = now;
    conversation.customer_wrote(message.sent_at.timestamp_micros(), received_at);
    events.push(message_in(message));
    let change = ConversationChange {
        contact,
        close_previous,
        conversation,
        message: Some(inbound_message(message, received_at)),
        outbox: None,
        note: None,
        events,
        previous_events,
        suppression: None,
        enrichment: None,
        csat: None,
        decision: None,
        macro_used: None,
    };
    (arrival, change)
}

/// The live conversation `conversation_id` names, or why it cannot be acted on.
pub(crate) fn live_case(
    state: &ActorState,
    conversation_id: i64,
) -> Result<&conversation::Model, ConversationError> {
    match &state.live {
        Some(live) if live.id == conversation_id => Ok(live),
        _ => Err(ConversationError::Closed(conversation_id)),
    }
}

pub(crate) fn unchanged(
    state: &ActorState,
    c: conversation::Model,
    now: Micros,
) -> ConversationChange {
    let mut c = c;
    c.updated_at = now;
    ConversationChange {
        contact: ContactUpsert::Known(state.contact_id.unwrap_or(c.contact_id)),
        close_previous: None,
        conversation: c,
        message: None,
        outbox: None,
        note: None,
        events: Vec::new(),
        previous_events: Vec::new(),
        suppression: None,
        enrichment: None,
        csat: None,
        decision: None,
        macro_used: None,
    }
}

/// A customer acknowledgement ("ok", "thanks", "?") on a resolved case: the message is kept
/// on the case and closes the loop instead of reopening it.
pub fn plan_acknowledgement(
    state: &ActorState,
    message: &InboundMessage,
    received_at: Micros,
    now: Micros,
) -> Option<ConversationChange> {
    let live = state.live.as_ref()?;
    if TicketStatus::parse(&live.status) != Some(TicketStatus::Resolved) {
        return None;
    }
    let mut change = unchanged(state, live.clone(), now);
    change.message = Some(inbound_message(message, received_at));
    change.events.push(message_in(message));
    let c = &mut change.conversation;
    change.events.push(status_changed(
        &c.status,
        TicketStatus::Closed,
        &Actor::Customer,
        Some("customer acknowledged the resolution"),
    ));
    c.status = TicketStatus::Closed.as_str().into();
    c.closed_at = Some(now);
    c.customer_wrote(message.sent_at.timestamp_micros(), received_at);
    Some(change)
}

fn message_in(message: &InboundMessage) -> NewEvent {
    NewEvent {
        kind: "message_in",
        data: json!({ "kind": message.kind.as_str(), "provider_message_id": message.provider_message_id }),
        actor: Actor::Customer.label(),
    }
}

pub(crate) fn inbound_message(message: &InboundMessage, received_at: Micros) -> NewMessage {
    NewMessage {
        direction: "inbound",
        kind: message.kind.as_str().into(),
        text: message.text.clone(),
        content: serde_json::to_string(&message.content).ok(),
        provider_message_id: Some(message.provider_message_id.clone()),
        delivery_status: None,
        reply_to: message.context.as_ref().and_then(|c| c.message_id.clone()),
        author_agent_id: None,
        provider_sent_at: Some(message.sent_at.timestamp_micros()),
        received_at: Some(received_at),
    }
}

/// Who sends a reply.
#[derive(Debug, Clone, Copy)]
pub struct Replier<'a> {
    pub actor: &'a Actor,
    pub agent_id: Option<i64>,
    pub authority: ReplyAuthority,
}

pub fn plan_reply(
    state: &ActorState,
    key: &ConversationKey,
    conversation_id: i64,
    text: &str,
    by: Replier<'_>,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, conversation_id)?;
    let closes_at = live.service_window_closes_at();
    if closes_at.is_none_or(|closes| now >= closes) {
        return Err(ConversationError::WindowClosed {
            conversation_id,
            closed_at: closes_at,
        });
    }
    plan_send(
        state,
        conversation_id,
        by,
        now,
        outbound_message("text", text),
        text_outbox(&key.wa_id, text, origin_of(by.actor)),
        json!({ "kind": "text" }),
    )
}

/// A file to the customer (an upload), with `caption` as its text: like a text reply,
/// only inside the service window. The queued request names the upload; the outbox
/// uploads it to the provider before the send.
pub fn plan_media_reply(
    state: &ActorState,
    key: &ConversationKey,
    conversation_id: i64,
    caption: Option<&str>,
    media: &crate::domain::media::AttachedMedia,
    by: Replier<'_>,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, conversation_id)?;
    let closes_at = live.service_window_closes_at();
    if closes_at.is_none_or(|closes| now >= closes) {
        return Err(ConversationError::WindowClosed {
            conversation_id,
            closed_at: closes_at,
        });
    }
    let kind = media.kind.as_str();
    let mut object = serde_json::Map::new();
    if let Some(caption) = caption {
        object.insert("caption".into(), caption.into());
    }
    if let (crate::domain::media::MediaKind::Document, Some(name)) = (media.kind, &media.file_name)
    {
        object.insert("filename".into(), name.clone().into());
    }
    let payload = json!({
        "type": kind,
        (kind): object,
        (crate::outbound::media::MEDIA_KEY): { "id": media.id, "kind": kind },
    });
    let content = crate::domain::inbound::MessageContent::Media {
        media_id: media.id.to_string(),
        mime_type: Some(media.mime_type.clone()),
        sha256: None,
        caption: caption.map(str::to_owned),
        filename: media.file_name.clone(),
        voice: None,
        animated: None,
    };
    let message = NewMessage {
        text: caption.map(str::to_owned),
        content: serde_json::to_string(&content).ok(),
        ..outbound_message(kind, "")
    };
    plan_send(
        state,
        conversation_id,
        by,
        now,
        message,
        NewOutbox {
            payload: payload.to_string(),
            ..text_outbox(&key.wa_id, "", origin_of(by.actor))
        },
        json!({ "kind": kind, "media_id": media.id }),
    )
}

/// An approved template to the customer: allowed outside the service window (the gate
/// still checks consent for its category and the approval boundaries).
pub fn plan_template(
    state: &ActorState,
    key: &ConversationKey,
    conversation_id: i64,
    template: &TemplateSend,
    by: Replier<'_>,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let category = crate::domain::template::category(&template.category);
    plan_send(
        state,
        conversation_id,
        by,
        now,
        outbound_message("template", &template.text),
        NewOutbox {
            recipient: key.wa_id.clone(),
            payload: template.payload.to_string(),
            origin: origin_of(by.actor),
            purpose: if category == Some("marketing") {
                Purpose::Marketing
            } else {
                Purpose::Service
            },
            template_category: category.or(Some("utility")),
            held: None,
        },
        json!({
            "kind": "template",
            "template": template.name,
            "language": template.language,
            "version": template.version,
        }),
    )
}

/// A message from a person or Parley to the customer on a live case: ownership checked,
/// the case moved to IN_PROGRESS, the first response marked, the message and its send
/// queued (the gate decides next).
fn plan_send(
    state: &ActorState,
    conversation_id: i64,
    by: Replier<'_>,
    now: Micros,
    message: NewMessage,
    outbox: NewOutbox,
    event: serde_json::Value,
) -> Result<ConversationChange, ConversationError> {
    let Replier {
        actor: author,
        agent_id: author_agent_id,
        authority,
    } = by;
    let live = live_case(state, conversation_id)?;
    if authority == ReplyAuthority::Agent
        && let Some(assignee) = live.assignee_id
        && Some(assignee) != author_agent_id
    {
        return Err(ConversationError::NotAssignee {
            conversation_id,
            assignee,
        });
    }
    let mut change = unchanged(state, live.clone(), now);
    let c = &mut change.conversation;
    if matches!(
        TicketStatus::parse(&c.status),
        Some(TicketStatus::Created | TicketStatus::Assigned)
    ) {
        change.events.push(status_changed(
            &c.status,
            TicketStatus::InProgress,
            author,
            Some("agent replied"),
        ));
        c.status = TicketStatus::InProgress.as_str().into();
    }
    c.first_response_at = c.first_response_at.or(Some(now));
    c.last_activity_at = now;
    change.events.push(NewEvent {
        kind: "message_out",
        data: event,
        actor: author.label(),
    });
    change.message = Some(NewMessage {
        author_agent_id,
        ..message
    });
    change.outbox = Some(outbox);
    Ok(change)
}

/// An outbound message to store, pending until the outbox sends it.
pub(crate) fn outbound_message(kind: &str, text: &str) -> NewMessage {
    NewMessage {
        direction: "outbound",
        kind: kind.into(),
        text: Some(text.to_owned()),
        content: None,
        provider_message_id: None,
        delivery_status: Some("pending"),
        reply_to: None,
        author_agent_id: None,
        provider_sent_at: None,
        received_at: None,
    }
}

/// The provider request of a free-form text to the customer.
pub(crate) fn text_outbox(recipient: &str, body: &str, origin: Origin) -> NewOutbox {
    NewOutbox {
        recipient: recipient.to_owned(),
        payload: json!({ "type": "text", "text": { "preview_url": false, "body": body } })
            .to_string(),
        origin,
        purpose: Purpose::Service,
        template_category: None,
        held: None,
    }
}

/// The origin of a reply by `actor`, unless the request says otherwise (an integration's
/// message, an AI draft).
pub(crate) fn origin_of(actor: &Actor) -> Origin {
    match actor {
        Actor::Agent { .. } => Origin::Agent,
        Actor::Automation => Origin::Automation,
        Actor::Customer | Actor::System => Origin::Closing,
        Actor::Token { .. } => Origin::Integration,
    }
}

/// An assignment to plan: who gets the case, and how it was decided.
pub struct AssignmentPlan<'a> {
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    /// The router's explanation (candidates and reasons), kept in the event.
    pub explanation: Option<&'a serde_json::Value>,
    /// Refuse if someone else assigned the case meanwhile (the router's assignments).
    pub if_unassigned: bool,
}

pub fn plan_assignment(
    state: &ActorState,
    conversation_id: i64,
    plan: AssignmentPlan<'_>,
    by: &Actor,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, conversation_id)?;
    if plan.if_unassigned
        && (live.assignee_id.is_some()
            || matches!(
                TicketStatus::parse(&live.status),
                Some(TicketStatus::Resolved | TicketStatus::Closed)
            ))
    {
        return Err(ConversationError::AlreadyAssigned(conversation_id));
    }
    let mut change = unchanged(state, live.clone(), now);
    assign_in(&mut change, plan, by);
    Ok(change)
}

/// Gives the case of `change` to the plan's agent and/or team, moving its status as
/// assignment does.
pub(crate) fn assign_in(change: &mut ConversationChange, plan: AssignmentPlan<'_>, by: &Actor) {
    let AssignmentPlan {
        agent_id, team_id, ..
    } = plan;
    let c = &mut change.conversation;
    let previous = json!({ "agent_id": c.assignee_id, "team_id": c.team_id });
    c.assignee_id = agent_id;
    if team_id.is_some() {
        c.team_id = team_id;
    }
    let mut data = json!({ "agent_id": agent_id, "team_id": c.team_id, "previous": previous });
    if let (Some(explanation), Some(map)) = (plan.explanation, data.as_object_mut()) {
        map.insert("routing".into(), explanation.clone());
    }
    change.events.push(NewEvent {
        kind: "assigned",
        data,
        actor: by.label(),
    });
    let status = TicketStatus::parse(&c.status);
    if agent_id.is_some() && status == Some(TicketStatus::Created) {
        change
            .events
            .push(status_changed(&c.status, TicketStatus::Assigned, by, None));
        c.status = TicketStatus::Assigned.as_str().into();
    } else if agent_id.is_none() && status == Some(TicketStatus::Assigned) {
        change.events.push(status_changed(
            &c.status,
            TicketStatus::Created,
            by,
            Some("unassigned"),
        ));
        c.status = TicketStatus::Created.as_str().into();
    }
}

pub fn plan_status_change(
    state: &ActorState,
    conversation_id: i64,
    to: TicketStatus,
    by: &Actor,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, conversation_id)?;
    let mut change = unchanged(state, live.clone(), now);
    move_status(&mut change, to, by, now)?;
    Ok(change)
}

/// Moves the case of `change` to `to`, if its lifecycle allows it.
pub(crate) fn move_status(
    change: &mut ConversationChange,
    to: TicketStatus,
    by: &Actor,
    now: Micros,
) -> Result<(), ConversationError> {
    let c = &mut change.conversation;
    let from = TicketStatus::parse(&c.status).unwrap_or(TicketStatus::Created);
    if !from.can_move_to(to) {
        return Err(ConversationError::InvalidTransition { from, to });
    }
    change.events.push(status_changed(&c.status, to, by, None));
    c.status = to.as_str().into();
    match to {
        TicketStatus::Resolved => c.resolved_at = Some(now),
        TicketStatus::Closed => c.closed_at = Some(now),
        _ => c.resolved_at = None,
    }
    Ok(())
}

pub fn plan_note(
    state: &ActorState,
    note: &AddNote,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, note.conversation_id)?;
    let mut change = unchanged(state, live.clone(), now);
    note_in(&mut change, &note.body, &note.by, &note.mentions);
    Ok(change)
}

/// Adds an internal note to `change`; the agents it mentions are named in its event.
pub(crate) fn note_in(change: &mut ConversationChange, body: &str, by: &Actor, mentions: &[i64]) {
    change.note = Some((body.to_owned(), by.label()));
    change.events.push(NewEvent {
        kind: "note_added",
        data: if mentions.is_empty() {
            json!({})
        } else {
            json!({ "mentions": mentions })
        },
        actor: by.label(),
    });
}

/// The provider refused a free-form message as outside the service window: the case's
/// window is closed from the refusal until the customer writes again, so that neither an
/// agent nor the survey or closing message tries again in vain.
pub fn plan_window_refused(
    state: &ActorState,
    refused: &WindowRefused,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    let live = live_case(state, refused.conversation_id)?;
    let mut change = unchanged(state, live.clone(), now);
    let c = &mut change.conversation;
    c.window_refused_at = Some(
        c.window_refused_at
            .map_or(refused.at, |at| at.max(refused.at)),
    );
    change.events.push(NewEvent {
        kind: "window_closed",
        data: json!({ "message_id": refused.message_id, "reason": "provider_refused" }),
        actor: Actor::System.label(),
    });
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::inbound::{MessageContent, MessageKind};

    const HOUR: Micros = 3_600_000_000;

    fn key() -> ConversationKey {
        ConversationKey {
            channel_id: "meta".into(),
            phone_number_id: "1065".into(),
            wa_id: "16315551234".into(),
        }
    }

    fn text(body: &str) -> InboundMessage {
        InboundMessage {
            phone_number_id: "1065".into(),
            wa_id: "16315551234".into(),
            profile_name: Some("Kerry".into()),
            provider_message_id: "wamid.1".into(),
            sent_at: chrono::DateTime::from_timestamp(1_669_233_778, 0).unwrap_or_default(),
            kind: MessageKind::Text,
            text: Some(body.into()),
            content: MessageContent::Text { body: body.into() },
            context: None,
            errors: vec![],
        }
    }

    fn state_with(status: TicketStatus, resolved_at: Option<Micros>) -> ActorState {
        let mut c = new_conversation(&key(), 7, 0);
        c.id = 42;
        c.status = status.as_str().into();
        c.resolved_at = resolved_at;
        c.last_customer_message_at = Some(0);
        ActorState {
            contact_id: Some(7),
            contact_name: Some("Kerry".into()),
            live: Some(c),
            ..ActorState::default()
        }
    }

    #[test]
    fn first_message_opens_a_new_case() {
        let empty = ActorState::default();
        let (arrival, change) = plan_customer_message(&empty, &key(), &text("hi"), 1, 1, HOUR);
        assert_eq!(arrival, Arrival::NewCase);
        assert_eq!(change.conversation.id, 0);
        assert_eq!(change.conversation.status, "created");
        assert!(matches!(change.contact, ContactUpsert::ByWaId { .. }));
        let kinds: Vec<_> = change.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["created", "message_in"]);
    }

    #[test]
    fn message_within_reopen_window_reopens_the_same_case() {
        let state = state_with(TicketStatus::Resolved, Some(10));
        let (arrival, change) =
            plan_customer_message(&state, &key(), &text("still broken"), 20, 10 + HOUR, HOUR);
        assert_eq!(arrival, Arrival::Reopen);
        assert_eq!(change.conversation.id, 42);
        assert_eq!(change.conversation.reopen_count, 1);
        assert_eq!(change.conversation.status, "created");
        assert!(change.events.iter().any(|e| e.kind == "reopened"));
    }

    #[test]
    fn message_after_reopen_window_closes_the_old_case_and_opens_a_new_one() {
        let state = state_with(TicketStatus::Resolved, Some(10));
        let (arrival, change) =
            plan_customer_message(&state, &key(), &text("new question"), 20, 11 + HOUR, HOUR);
        assert_eq!(arrival, Arrival::NewCaseAfterReopenWindow);
        assert_eq!(change.close_previous.as_ref().map(|c| c.id), Some(42));
        assert_eq!(change.conversation.id, 0);
    }

    #[test]
    fn customer_answer_moves_a_pending_case_back_to_work() {
        let mut state = state_with(TicketStatus::Pending, None);
        if let Some(live) = state.live.as_mut() {
            live.assignee_id = Some(3);
        }
        let (arrival, change) =
            plan_customer_message(&state, &key(), &text("here it is"), 1, 1, HOUR);
        assert_eq!(arrival, Arrival::Resume);
        assert_eq!(change.conversation.status, "in_progress");
    }

    #[test]
    fn first_reply_records_first_response_and_starts_work() {
        let state = state_with(TicketStatus::Assigned, None);
        let change = plan_reply(
            &state,
            &key(),
            42,
            "hello",
            Replier {
                actor: &Actor::Agent { id: 3 },
                agent_id: Some(3),
                authority: ReplyAuthority::Agent,
            },
            99,
        )
        .unwrap();
        assert_eq!(change.conversation.status, "in_progress");
        assert_eq!(change.conversation.first_response_at, Some(99));
        assert!(change.outbox.is_some());
    }

    #[test]
    fn replies_stop_when_the_service_window_closes() {
        let by = Replier {
            actor: &Actor::System,
            agent_id: None,
            authority: ReplyAuthority::Supervisor,
        };
        let state = state_with(TicketStatus::InProgress, None);
        let day = 24 * HOUR;
        assert!(plan_reply(&state, &key(), 42, "hi", by, day - 1).is_ok());
        let error = plan_reply(&state, &key(), 42, "hi", by, day).unwrap_err();
        assert!(matches!(
            error,
            ConversationError::WindowClosed { closed_at: Some(closed), .. } if closed == day
        ));
        let mut never = state_with(TicketStatus::InProgress, None);
        if let Some(live) = never.live.as_mut() {
            live.last_customer_message_at = None;
        }
        let error = plan_reply(&never, &key(), 42, "hi", by, 1).unwrap_err();
        assert!(error.to_string().contains("never opened"), "{error}");
    }

    #[test]
    fn only_the_assignee_or_a_supervisor_replies_to_an_assigned_case() {
        let mut state = state_with(TicketStatus::Assigned, None);
        if let Some(live) = state.live.as_mut() {
            live.assignee_id = Some(3);
        }
        let other = Actor::Agent { id: 4 };
        let error = plan_reply(
            &state,
            &key(),
            42,
            "hi",
            Replier {
                actor: &other,
                agent_id: Some(4),
                authority: ReplyAuthority::Agent,
            },
            1,
        )
        .unwrap_err();
        assert!(matches!(
            error,
            ConversationError::NotAssignee { assignee: 3, .. }
        ));
        assert!(
            plan_reply(
                &state,
                &key(),
                42,
                "hi",
                Replier {
                    actor: &other,
                    agent_id: Some(4),
                    authority: ReplyAuthority::Supervisor,
                },
                1,
            )
            .is_ok()
        );
    }

    #[test]
    fn an_acknowledgement_closes_a_resolved_case_instead_of_reopening_it() {
        let state = state_with(TicketStatus::Resolved, Some(10));
        let change = plan_acknowledgement(&state, &text("thanks!"), 20, 30).unwrap();
        assert_eq!(change.conversation.status, "closed");
        assert_eq!(change.conversation.reopen_count, 0);
        assert!(change.message.is_some());
        let open = state_with(TicketStatus::InProgress, None);
        assert!(plan_acknowledgement(&open, &text("ok"), 20, 30).is_none());
    }

    #[test]
    fn the_router_never_overrides_a_manual_assignment() {
        let mut state = state_with(TicketStatus::Assigned, None);
        if let Some(live) = state.live.as_mut() {
            live.assignee_id = Some(9);
        }
        let plan = AssignmentPlan {
            agent_id: Some(3),
            team_id: None,
            explanation: None,
            if_unassigned: true,
        };
        let error = plan_assignment(&state, 42, plan, &Actor::System, 1).unwrap_err();
        assert!(matches!(error, ConversationError::AlreadyAssigned(42)));
    }

    #[test]
    fn replying_to_a_conversation_that_is_not_live_is_refused() {
        let state = state_with(TicketStatus::InProgress, None);
        let error = plan_reply(
            &state,
            &key(),
            41,
            "hello",
            Replier {
                actor: &Actor::System,
                agent_id: None,
                authority: ReplyAuthority::Supervisor,
            },
            1,
        )
        .unwrap_err();
        assert!(matches!(error, ConversationError::Closed(41)));
    }

    #[test]
    fn invalid_transitions_are_refused() {
        let state = state_with(TicketStatus::InProgress, None);
        let error =
            plan_status_change(&state, 42, TicketStatus::Created, &Actor::System, 1).unwrap_err();
        assert!(matches!(error, ConversationError::InvalidTransition { .. }));
        let resolved =
            plan_status_change(&state, 42, TicketStatus::Resolved, &Actor::System, 5).unwrap();
        assert_eq!(resolved.conversation.resolved_at, Some(5));
    }

    #[test]
    fn assigning_an_agent_to_a_new_case_marks_it_assigned() {
        let state = state_with(TicketStatus::Created, None);
        let change = plan_assignment(
            &state,
            42,
            AssignmentPlan {
                agent_id: Some(3),
                team_id: Some(1),
                explanation: None,
                if_unassigned: true,
            },
            &Actor::System,
            1,
        )
        .unwrap();
        assert_eq!(change.conversation.status, "assigned");
        assert_eq!(change.conversation.team_id, Some(1));
    }
}
