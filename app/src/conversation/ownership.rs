//! Who may change which case, checked by the case's actor against the case as it is when
//! the request is applied (so two requests racing cannot both pass on a stale read).
//!
//! Supervisors and admins (and Parley's own actors) move any case. An agent takes an
//! unassigned case or lets go of their own, never takes someone else's and never moves a
//! case to another team; they change the status of, and escalate, only cases assigned to
//! them. An integration works only cases no agent holds. Nobody approves an AI draft they
//! sent themselves.

use super::ConversationError;
use crate::domain::outbound::Origin;
use crate::domain::{Actor, Authority, Role};
use crate::store::entities::{conversation, held_message};

/// An assignment of `live` to `agent_id` (`None`: unassign) and, when given, `team_id`.
pub fn check_assignment(
    authority: Authority,
    live: &conversation::Model,
    agent_id: Option<i64>,
    team_id: Option<i64>,
) -> Result<(), ConversationError> {
    if authority.supervises() {
        return Ok(());
    }
    let refuse = |why: String| Err(ConversationError::NotYours(why));
    let Authority::Caller {
        role: Role::Agent,
        agent_id: Some(me),
    } = authority
    else {
        return refuse("only agents (for themselves) and supervisors assign cases".into());
    };
    if team_id.is_some() && team_id != live.team_id {
        return refuse(format!(
            "agents may not move conversation {} to another team; a supervisor transfers it",
            live.id
        ));
    }
    match (agent_id, live.assignee_id) {
        (Some(to), _) if to != me => {
            refuse("agents may only assign conversations to themselves".into())
        }
        (Some(_), Some(holder)) if holder != me => refuse(format!(
            "conversation {} is assigned to agent {holder}; a supervisor transfers it",
            live.id
        )),
        (None, holder) if holder != Some(me) => {
            refuse("agents may only unassign their own conversations".into())
        }
        _ => Ok(()),
    }
}

/// A change of status or an escalation (`what`) of `live`.
pub fn check_work(
    authority: Authority,
    live: &conversation::Model,
    what: &str,
) -> Result<(), ConversationError> {
    if authority.works(live.assignee_id) {
        return Ok(());
    }
    let whose = match (authority, live.assignee_id) {
        (
            Authority::Caller {
                role: Role::Agent, ..
            },
            None,
        ) => "nobody's yet; take it first".to_owned(),
        (_, Some(holder)) => format!("assigned to agent {holder}"),
        (_, None) => "not yours".to_owned(),
    };
    Err(ConversationError::NotYours(format!(
        "you may not {what} conversation {}: it is {whose}",
        live.id
    )))
}

/// A decision on `held`, written by agent `drafted_by` (when a person wrote it).
pub fn check_decision(
    held: &held_message::Model,
    by: &Actor,
    drafted_by: Option<i64>,
) -> Result<(), ConversationError> {
    let own_draft = held.origin == Origin::AiDraft.as_str()
        && drafted_by.is_some_and(|author| *by == Actor::Agent { id: author });
    if own_draft {
        return Err(ConversationError::NotYours(format!(
            "held message {} is an AI draft you sent; another approver decides it",
            held.id
        )));
    }
    Ok(())
}
