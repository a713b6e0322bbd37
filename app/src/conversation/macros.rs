//! Applying a macro to a case: the body for the contact's language rendered with the
//! case's values, sent like an agent's reply (the outbound gate decides next), and the
//! macro's actions taken, all in one change: either everything is written or nothing.

use super::Plan;
use super::lifecycle::{self, AssignmentPlan, Replier};
use crate::actors::conversation::{ApplyMacro, ConversationError, TagCorrection};
use crate::domain::macros::{self, Variable};
use crate::domain::{ConversationKey, Micros};
use crate::policy::Policies;
use crate::store::conversations::{ActorState, ConversationChange, NewEvent};
use serde_json::json;

pub use crate::domain::macros::MacroToApply;

/// The macro's change, and the case's routing needs when its actions tag the case.
pub fn plan_macro(
    state: &ActorState,
    key: &ConversationKey,
    msg: &ApplyMacro,
    engine: &Policies,
    now: Micros,
) -> Result<Plan, ConversationError> {
    let live = lifecycle::live_case(state, msg.conversation_id)?;
    let chosen = &msg.chosen;
    let actions = &chosen.actions;
    if actions.status.is_some() || actions.priority.is_some() || actions.tags() {
        super::ownership::check_work(msg.authority, live, "change the status of")?;
    }
    if let Some(agent) = actions.assign_agent_id {
        super::ownership::check_assignment(msg.authority, live, Some(agent), None)?;
    }
    let preference = crate::domain::template::language_preference(
        None,
        live.language.as_deref(),
        &chosen.fallback_language,
    );
    let body = macros::pick_body(&chosen.body, &chosen.variants, &preference);
    let language = chosen
        .variants
        .iter()
        .find(|v| v.body == body)
        .map(|v| v.language.clone());
    let text = macros::render(body, |variable| match variable {
        Variable::ContactName => state
            .contact_name
            .clone()
            .or_else(|| msg.contact_name.clone()),
        Variable::ContactPhone => Some(key.wa_id.clone()),
        Variable::AgentName => msg.agent_name.clone(),
        Variable::ConversationId => Some(live.id.to_string()),
    })
    .map_err(|error| ConversationError::MacroValueMissing {
        name: chosen.name.clone(),
        reason: error.to_string(),
    })?;
    let mut change = lifecycle::plan_reply(
        state,
        key,
        msg.conversation_id,
        &text,
        Replier {
            actor: &msg.by,
            agent_id: msg.agent_id,
            authority: msg.reply_authority,
        },
        now,
    )?;
    if let Some(outbox) = change.outbox.as_mut() {
        outbox.origin = msg.origin;
    }
    change.events.push(NewEvent {
        kind: "macro_applied",
        data: json!({ "macro_id": chosen.id, "name": chosen.name, "language": language }),
        actor: msg.by.label(),
    });
    if let Some(agent) = actions.assign_agent_id {
        let plan = AssignmentPlan {
            agent_id: Some(agent),
            team_id: None,
            explanation: None,
            if_unassigned: false,
        };
        lifecycle::assign_in(&mut change, plan, &msg.by);
    }
    // Tags first: a priority the macro sets wins over the one the rules give.
    let needs = actions.tags().then(|| {
        let fix = TagCorrection {
            add_intents: actions.add_intents.clone(),
            add_risks: actions.add_risks.clone(),
            ..TagCorrection::default()
        };
        let reason = format!("macro {:?}", chosen.name);
        super::corrections::correct_tags_in(&mut change, state, &fix, engine, &msg.by, &reason)
    });
    if let Some(priority) = actions.priority {
        set_priority_in(&mut change, priority, &msg.by, Some("macro"));
    }
    if let Some(note) = &actions.note {
        lifecycle::note_in(&mut change, note, &msg.by, &[]);
    }
    if let Some(status) = actions.status
        && status.as_str() != change.conversation.status
    {
        lifecycle::move_status(&mut change, status, &msg.by, now)?;
    }
    change.macro_used = Some(chosen.id);
    Ok(Plan::Change {
        change: Box::new(change),
        needs,
    })
}

/// Sets the case's priority in `change` (its SLA targets follow with the change).
pub(crate) fn set_priority_in(
    change: &mut ConversationChange,
    to: crate::domain::Priority,
    by: &crate::domain::Actor,
    reason: Option<&str>,
) {
    let c = &mut change.conversation;
    if c.priority == to.as_str() {
        return;
    }
    change.events.push(NewEvent {
        kind: "priority_changed",
        data: json!({ "from": c.priority, "to": to.as_str(), "reason": reason }),
        actor: by.label(),
    });
    c.priority = to.as_str().into();
}
