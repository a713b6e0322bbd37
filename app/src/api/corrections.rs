//! Corrections in GraphQL: `setPriority` and `setTags`, a person overriding what triage
//! said about a case, with a reason. Each is one change in the case's actor (see
//! [`crate::conversation::corrections`]); corrected tags are routed again like a triage
//! result, and every tag correction is a labelled example for
//! `parley triage export-corrections`.

use super::types::{Conversation, Priority};
use super::{api, ask_conversation, principal};
use crate::actors::conversation::{CorrectTriage, TagCorrection};
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use async_graphql::{Context, ID, Object};

/// Labels one list of a correction may name at most.
const MAX_LABELS: usize = 32;

#[derive(Default)]
pub struct CorrectionMutation;

#[Object]
impl CorrectionMutation {
    /// Sets a conversation's priority by hand (up or down), with why. Its SLA targets
    /// follow; the change is an event (`priority_changed`, with the reason).
    async fn set_priority(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        priority: Priority,
        #[graphql(validator(chars_max_length = 1000))] reason: String,
    ) -> async_graphql::Result<Conversation> {
        let who = principal(ctx)?;
        who.require(Permission::ChangeStatus)?;
        let reason = reason_of(reason)?;
        let applied = ask_conversation(ctx, &conversation_id, |id| CorrectTriage {
            conversation_id: id,
            tags: None,
            priority: Some(priority.into()),
            reason,
            by: who.actor(),
            authority: who.authority(),
        })
        .await?;
        Ok(Conversation(applied.conversation))
    }

    /// Adds intents or risks to a conversation or takes them off, with why. The routing
    /// policy decides again on the corrected tags (owner team, watchers, review; the
    /// priority only rises), as for a triage result, and the correction is kept as a
    /// labelled example of the case's latest customer message. Labels must be the
    /// taxonomy's (`routingPolicy { intents }`).
    #[allow(clippy::too_many_arguments)]
    async fn set_tags(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        add_intents: Option<Vec<String>>,
        remove_intents: Option<Vec<String>>,
        add_risks: Option<Vec<String>>,
        remove_risks: Option<Vec<String>>,
        #[graphql(validator(chars_max_length = 1000))] reason: String,
    ) -> async_graphql::Result<Conversation> {
        let who = principal(ctx)?;
        who.require(Permission::ChangeStatus)?;
        let reason = reason_of(reason)?;
        let engine = api(ctx).routing.engine.current();
        let intents = engine.classifier.intent_labels();
        let risks = engine.classifier.risk_labels();
        let fix = TagCorrection {
            add_intents: labels("addIntents", add_intents, intents)?,
            remove_intents: labels("removeIntents", remove_intents, intents)?,
            add_risks: labels("addRisks", add_risks, risks)?,
            remove_risks: labels("removeRisks", remove_risks, risks)?,
        };
        if fix.add_intents.is_empty()
            && fix.remove_intents.is_empty()
            && fix.add_risks.is_empty()
            && fix.remove_risks.is_empty()
        {
            return Err(invalid("name at least one intent or risk to add or remove".into()).into());
        }
        let both = |a: &[String], b: &[String]| a.iter().find(|l| b.contains(l)).cloned();
        if let Some(label) = both(&fix.add_intents, &fix.remove_intents)
            .or_else(|| both(&fix.add_risks, &fix.remove_risks))
        {
            return Err(invalid(format!("{label:?} is both added and removed")).into());
        }
        let applied = ask_conversation(ctx, &conversation_id, |id| CorrectTriage {
            conversation_id: id,
            tags: Some(fix),
            priority: None,
            reason,
            by: who.actor(),
            authority: who.authority(),
        })
        .await?;
        Ok(Conversation(applied.conversation))
    }
}

fn invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, message)
}

fn reason_of(reason: String) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(invalid("say why (the reason is empty)".into()));
    }
    Ok(reason.to_owned())
}

/// `given`, trimmed and without repeats, each a label of `known`.
pub(super) fn labels(
    field: &str,
    given: Option<Vec<String>>,
    known: &[String],
) -> Result<Vec<String>, ApiError> {
    let given = given.unwrap_or_default();
    if given.len() > MAX_LABELS {
        return Err(invalid(format!("{field}: at most {MAX_LABELS} labels")));
    }
    let mut out: Vec<String> = Vec::new();
    for label in given {
        let label = label.trim().to_owned();
        if !known.contains(&label) {
            return Err(invalid(format!(
                "{field}: {label:?} is not a label of the taxonomy in force (known: {})",
                known.join(", ")
            )));
        }
        if !out.contains(&label) {
            out.push(label);
        }
    }
    Ok(out)
}
