//! The approval queue, as the conversation actor sees it: a message the gate held is
//! stored marked `held` with the boundaries that held it; a person of the named role (or
//! above) approves it as it is, edits and approves it, or rejects it. The original and
//! the edit are both kept; the decision is in the case's event log and the audit log.
//! A message counts as a response only once approved: holding it changes no SLA clock.

use super::ConversationError;
use super::lifecycle::{live_case, unchanged};
use crate::domain::outbound::Hold;
use crate::domain::{Actor, Micros, Role};
use crate::policy::approvals as gate;
use crate::store::conversations::{ActorState, ConversationChange, HeldDecision, NewEvent};
use crate::store::entities::held_message;
use serde_json::{Value, json};

pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";

pub use crate::actors::conversation::Decision;

/// Most characters of an edited text (WhatsApp's text body limit).
const MAX_TEXT_CHARS: usize = 4096;

/// Turns a planned send into a held one: the message is stored `held`, the queue row is
/// written instead of the outbox row, and the step's `message_out` events become one
/// `message_held` event (nothing went out yet).
pub fn hold(change: &mut ConversationChange, state: &ActorState, hold: Hold) {
    let Some(outbox) = change.outbox.as_ref() else {
        return;
    };
    let (origin, purpose) = (outbox.origin, outbox.purpose);
    if let Some(message) = change.message.as_mut() {
        message.delivery_status = Some("held");
    }
    // Not sent, so not a response yet.
    not_sent(change, state, "closing_message_held");
    change.events.push(NewEvent {
        kind: "message_held",
        data: json!({
            "origin": origin.as_str(),
            "purpose": purpose.as_str(),
            "approver": hold.approver.as_str(),
            "boundaries": hold.boundaries,
            "reasons": hold.reasons,
        }),
        actor: Actor::System.label(),
    });
    if let Some(outbox) = change.outbox.as_mut() {
        outbox.held = Some(hold);
    }
}

/// The closing message of an automatic resolution that the gate blocks (the customer
/// withdrew consent meanwhile) is dropped; the case resolves all the same, and the event
/// log says why nothing was sent.
pub fn drop_blocked(change: &mut ConversationChange, state: &ActorState, reason: &str) {
    let Some(outbox) = change.outbox.take() else {
        return;
    };
    change.message = None;
    not_sent(change, state, "closing_message_blocked");
    change.events.push(NewEvent {
        kind: "message_blocked",
        data: json!({ "origin": outbox.origin.as_str(), "reason": reason }),
        actor: Actor::System.label(),
    });
}

/// The step's message does not go out now: its `message_out` events go, an automatic
/// resolution says its closing message was not sent (and `flag` why), and it is not a
/// response.
fn not_sent(change: &mut ConversationChange, state: &ActorState, flag: &str) {
    change.events.retain(|e| e.kind != "message_out");
    for event in &mut change.events {
        if event.data.get("closing_message_sent") == Some(&json!(true)) {
            event.data["closing_message_sent"] = json!(false);
            event.data[flag] = json!(true);
        }
    }
    let before = state
        .live
        .as_ref()
        .filter(|c| c.id == change.conversation.id);
    change.conversation.first_response_at = before.and_then(|c| c.first_response_at);
}

/// Plans an approval or a rejection. Refused: a decided message (nothing is sent twice),
/// a role below the one the boundary names, an edit of a template, an approval once the
/// service window has closed on a free-form message.
pub fn plan_decision(
    state: &ActorState,
    held: &held_message::Model,
    decision: &Decision,
    by: &Actor,
    role: Role,
    now: Micros,
) -> Result<ConversationChange, ConversationError> {
    if held.status != "pending" {
        return Err(ConversationError::AlreadyDecided {
            held_id: held.id,
            status: held.status.clone(),
        });
    }
    let approver = Role::parse(&held.approver).unwrap_or(Role::Admin);
    if !gate::may_approve(role, approver) {
        return Err(ConversationError::NotApprover {
            held_id: held.id,
            approver: approver.as_str().into(),
            role: role.as_str().into(),
        });
    }
    let live = live_case(state, held.conversation_id)?;
    let mut change = unchanged(state, live.clone(), now);
    let payload: Value = serde_json::from_str(&held.payload).unwrap_or_default();
    match decision {
        Decision::Approve { text } => {
            let free_form = payload["type"] != "template";
            let closes_at = live.service_window_closes_at();
            if free_form && closes_at.is_none_or(|closes| now >= closes) {
                return Err(ConversationError::WindowClosed {
                    conversation_id: live.id,
                    closed_at: closes_at,
                });
            }
            let edit = match text {
                None => None,
                Some(text) => Some((text.trim().to_owned(), edit_payload(payload.clone(), text)?)),
            };
            let edited = edit.is_some();
            let c = &mut change.conversation;
            c.first_response_at = c.first_response_at.or(Some(now));
            c.last_activity_at = now;
            change.events.push(NewEvent {
                kind: "message_approved",
                data: json!({
                    "held_id": held.id,
                    "message_id": held.message_id,
                    "edited": edited,
                    "original_text": held.original_text,
                    "text": edit.as_ref().map(|(t, _)| t),
                    "boundaries": serde_json::from_str::<Value>(&held.boundaries).unwrap_or_default(),
                }),
                actor: by.label(),
            });
            change.events.push(NewEvent {
                kind: "message_out",
                data: json!({
                    "kind": payload["type"].as_str().unwrap_or("text"),
                    "message_id": held.message_id,
                    "origin": held.origin,
                    "approved": held.id,
                }),
                actor: by.label(),
            });
            change.decision = Some(HeldDecision {
                held_id: held.id,
                message_id: held.message_id,
                status: APPROVED,
                edit,
                decided_by: by.label(),
                note: None,
            });
        }
        Decision::Reject { reason } => {
            let reason = reason.trim();
            if reason.is_empty() {
                return Err(ConversationError::InvalidEdit(
                    "say why the message is rejected".into(),
                ));
            }
            change.events.push(NewEvent {
                kind: "message_rejected",
                data: json!({
                    "held_id": held.id,
                    "message_id": held.message_id,
                    "reason": reason,
                }),
                actor: by.label(),
            });
            change.decision = Some(HeldDecision {
                held_id: held.id,
                message_id: held.message_id,
                status: REJECTED,
                edit: None,
                decided_by: by.label(),
                note: Some(reason.to_owned()),
            });
        }
    }
    Ok(change)
}

/// The provider request with the approver's text in place of the original.
fn edit_payload(mut payload: Value, text: &str) -> Result<String, ConversationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ConversationError::InvalidEdit(
            "the edited text is empty".into(),
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ConversationError::InvalidEdit(format!(
            "the edited text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    let slot = match payload["type"].as_str() {
        Some("text") => &mut payload["text"]["body"],
        Some("interactive") => &mut payload["interactive"]["body"]["text"],
        other => {
            return Err(ConversationError::InvalidEdit(format!(
                "a {} message cannot be edited, only approved or rejected",
                other.unwrap_or("template")
            )));
        }
    };
    *slot = Value::String(text.to_owned());
    Ok(payload.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_replaces_the_text_and_a_template_cannot_be_edited() {
        let text = json!({ "type": "text", "text": { "preview_url": false, "body": "old" } });
        let edited: Value = serde_json::from_str(&edit_payload(text, " new ").unwrap()).unwrap();
        assert_eq!(edited["text"]["body"], "new");
        let template = json!({ "type": "template", "template": { "name": "csat" } });
        assert!(matches!(
            edit_payload(template, "x"),
            Err(ConversationError::InvalidEdit(_))
        ));
        let text = json!({ "type": "text", "text": { "body": "old" } });
        assert!(edit_payload(text, "  ").is_err());
    }
}
