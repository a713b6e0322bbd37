//! A person correcting triage: intents and risks added or taken off a case, or its
//! priority set, with a reason.
//!
//! Corrected tags go through the routing policy again, exactly as a triage result would
//! (owner team, watchers, review, urgency, and priority, which only ever rises there);
//! the step then hands the case's new needs to the router and the new `triaged` event to
//! the SLA clock and escalation. A priority set by hand is taken as it is, up or down,
//! after that. The `tags_corrected` event keeps what changed and why, and is what
//! `parley triage export-corrections` turns into labelled examples.

use super::Plan;
use super::lifecycle;
use crate::actors::conversation::{ConversationError, CorrectTriage, TagCorrection};
use crate::domain::{Actor, Micros};
use crate::policy::Policies;
use crate::routing::apply::{apply_triage, needs_of};
use crate::routing::router::RoutingNeeds;
use crate::store::conversations::{ActorState, ConversationChange, NewEvent};
use crate::triage::{Classification, Scored};
use serde_json::{Value, json};

/// The event a tag correction leaves.
pub const TAGS_CORRECTED: &str = "tags_corrected";

/// The change (and the routing needs, when tags changed) for `msg`.
pub fn plan_correction(
    state: &ActorState,
    msg: &CorrectTriage,
    engine: &Policies,
    now: Micros,
) -> Result<Plan, ConversationError> {
    let live = lifecycle::live_case(state, msg.conversation_id)?;
    super::ownership::check_work(msg.authority, live, "correct the triage of")?;
    let mut change = lifecycle::unchanged(state, live.clone(), now);
    let needs = msg
        .tags
        .as_ref()
        .map(|fix| correct_tags_in(&mut change, state, fix, engine, &msg.by, &msg.reason));
    if let Some(priority) = msg.priority {
        super::macros::set_priority_in(&mut change, priority, &msg.by, Some(&msg.reason));
    }
    Ok(Plan::Change {
        change: Box::new(change),
        needs,
    })
}

/// Applies `fix` to the case in `change`: the corrected tags go through the routing
/// policy as a triage result would, and a `tags_corrected` event records what changed
/// and why. Answers the case's routing needs for the router.
pub fn correct_tags_in(
    change: &mut ConversationChange,
    state: &ActorState,
    fix: &TagCorrection,
    engine: &Policies,
    by: &Actor,
    reason: &str,
) -> RoutingNeeds {
    let gist: Value = change
        .conversation
        .triage
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default();
    let (classification, context) = corrected(&gist, fix);
    let triaged = engine.decide(classification, context);
    let needs = needs_of(&triaged, state.contact_vip);
    apply_triage(change, &triaged, engine, &needs);
    fn labels(scored: &[Scored]) -> Vec<&str> {
        scored.iter().map(|s| s.label.as_str()).collect()
    }
    change.events.push(NewEvent {
        kind: TAGS_CORRECTED,
        data: json!({
            "added_intents": fix.add_intents,
            "removed_intents": fix.remove_intents,
            "added_risks": fix.add_risks,
            "removed_risks": fix.remove_risks,
            "intents": labels(&triaged.classification.intents),
            "risks": labels(&triaged.classification.risks),
            "language": triaged.tags.language,
            "reason": reason,
        }),
        actor: by.label(),
    });
    needs
}

/// The case's last classification (from its triage gist) with `fix` applied. Tags a
/// person added count as certain; the result is never "low confidence" (a person looked).
fn corrected(gist: &Value, fix: &TagCorrection) -> (Classification, Vec<String>) {
    let scored = |value: &Value| -> Option<Scored> {
        match value {
            Value::String(label) => Some(Scored {
                label: label.clone(),
                confidence: 1.0,
            }),
            other => serde_json::from_value(other.clone()).ok(),
        }
    };
    let list = |key: &str| -> Vec<Scored> {
        gist[key]
            .as_array()
            .map(|items| items.iter().filter_map(scored).collect())
            .unwrap_or_default()
    };
    let fixed = |mut tags: Vec<Scored>, add: &[String], remove: &[String]| {
        tags.retain(|t| !remove.contains(&t.label));
        for label in add {
            tags.retain(|t| t.label != *label);
            tags.insert(
                0,
                Scored {
                    label: label.clone(),
                    confidence: 1.0,
                },
            );
        }
        tags
    };
    let unknown = || Scored {
        label: String::new(),
        confidence: 0.0,
    };
    let classification = Classification {
        intents: fixed(list("intents"), &fix.add_intents, &fix.remove_intents),
        urgency: scored(&gist["urgency"]).unwrap_or_else(unknown),
        risks: fixed(list("risks"), &fix.add_risks, &fix.remove_risks),
        language: scored(&gist["language"]).unwrap_or_else(unknown),
        tones: list("tones")
            .into_iter()
            .filter(|t| t.label != crate::triage::taxonomy::LOW_CONFIDENCE_TONE)
            .collect(),
        low_confidence: false,
        candidates: Vec::new(),
    };
    let context = gist["context"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (classification, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_adds_and_removes_tags_on_the_last_classification() {
        let gist = json!({
            "intents": [{"label": "order_status", "confidence": 0.7}, {"label": "greeting_or_thanks", "confidence": 0.5}],
            "risks": [{"label": "legal_threat", "confidence": 0.6}],
            "urgency": {"label": "standard", "confidence": 0.8},
            "language": {"label": "es", "confidence": 0.9},
            "tones": [{"label": "low_confidence", "confidence": 1.0}],
            "low_confidence": true,
            "context": ["vip_customer"],
        });
        let fix = TagCorrection {
            add_intents: vec!["refund_request".into()],
            remove_intents: vec!["greeting_or_thanks".into()],
            add_risks: vec!["fraud_signal".into()],
            remove_risks: vec!["legal_threat".into()],
        };
        let (c, context) = corrected(&gist, &fix);
        fn labels(s: &[Scored]) -> Vec<&str> {
            s.iter().map(|t| t.label.as_str()).collect()
        }
        assert_eq!(labels(&c.intents), ["refund_request", "order_status"]);
        assert_eq!(labels(&c.risks), ["fraud_signal"]);
        assert_eq!(c.intents[0].confidence, 1.0);
        assert_eq!(c.language.label, "es");
        assert_eq!(c.urgency.label, "standard");
        assert!(!c.low_confidence && c.tones.is_empty());
        assert_eq!(context, ["vip_customer"]);
    }
}
