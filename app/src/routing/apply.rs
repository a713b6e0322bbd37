//! What a triage decision does to a case, as a pure function over the change an actor is
//! about to persist: priority and urgency, owner team and watchers, review requirement,
//! language, and the `triaged` event that records the decision and why.
//!
//! Escalations stick: a later, milder message never lowers the case's priority or moves it
//! back to a less senior owner on its own; a person does that. A message that raises the
//! stakes (an order question turning into a legal threat) changes owner and review at once.

use crate::domain::{Actor, Priority};
use crate::policy::{Policies, Triaged};
use crate::routing::router::RoutingNeeds;
use crate::store::conversations::{ConversationChange, NewEvent};
use serde_json::json;

/// Why the case needs no agent, if it does not.
pub fn needs_of(triaged: &Triaged, vip: bool) -> RoutingNeeds {
    RoutingNeeds {
        language: Some(triaged.tags.language.clone()),
        skills: triaged.decision.skills.clone(),
        vip,
        no_agent: false,
    }
}

/// Applies `triaged` to the conversation in `change` and appends its events.
pub fn apply_triage(
    change: &mut ConversationChange,
    triaged: &Triaged,
    engine: &Policies,
    needs: &RoutingNeeds,
) {
    let decision = &triaged.decision;
    let c = &mut change.conversation;
    let current = Priority::parse(&c.priority).unwrap_or(Priority::Medium);
    let proposed = decision.priority;
    let raised = proposed > current;
    if raised || c.triage.is_none() {
        c.priority = proposed.max(current).as_str().into();
    }
    let first_decision = c.triage.is_none() || c.team_id.is_none();
    let owner_id = engine.team_id(&decision.owner);
    let mut owner_change = None;
    if owner_id.is_some()
        && owner_id != c.team_id
        && (first_decision || (decision.owner_rule.is_some() && proposed >= current))
    {
        owner_change = Some((c.team_id, owner_id));
        c.team_id = owner_id;
        // A transfer keeps the conversation and its history; the new team's router
        // finds the agent.
        c.assignee_id = None;
        if c.status == crate::domain::TicketStatus::Assigned.as_str() {
            c.status = crate::domain::TicketStatus::Created.as_str().into();
        }
    }
    c.urgency = Some(decision.urgency.clone());
    c.review = Some(decision.review.as_str().to_owned());
    c.language = Some(triaged.tags.language.clone());
    c.watchers = Some(json!(decision.watchers).to_string());
    let c_classification = &triaged.classification;
    // The case keeps the gist (what the inbox shows, what the router rebuilds from); the
    // event keeps the whole explanation.
    let gist = json!({
        "intents": c_classification.intents,
        "urgency": c_classification.urgency,
        "risks": c_classification.risks,
        "language": c_classification.language,
        "tones": c_classification.tones,
        "low_confidence": c_classification.low_confidence,
        "context": triaged.tags.context,
        "owner": decision.owner,
        "review": decision.review,
        "rules": decision.matched.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        "needs": needs,
    });
    c.triage = Some(gist.to_string());
    let mut summary = gist;
    summary["candidates"] = json!(c_classification.candidates);
    summary["decision"] = json!(decision);
    change.events.push(NewEvent {
        kind: "triaged",
        data: summary,
        actor: "router".into(),
    });
    if let Some((Some(from), to)) = owner_change {
        change.events.push(NewEvent {
            kind: "owner_changed",
            data: json!({
                "from_team_id": from,
                "to_team_id": to,
                "team": decision.owner,
                "rules": decision.matched.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            }),
            actor: Actor::System.label(),
        });
    }
}
