//! The escalation actor: where a case goes when it escalates, and the packet the receiver
//! reads so that the customer never repeats themselves.
//!
//! Triggers come from the SLA clock (a breach, escalate-after without a first response,
//! an escalation's receiver not answering), from triage (the customer asks for a manager,
//! legal or media risk, negative sentiment, a repeat contact) and from agents (with a
//! reason). The actor picks the destination from the team's ladder in `config/sla.toml`,
//! reads the case's history for the packet, and asks the case's conversation actor to
//! record the `escalated` event and move ownership: the conversation actor stays the only
//! writer of its case.

use super::ledger::SlaLedger;
use super::ledger::SlaReport;
use crate::actors::Conversations;
use crate::actors::conversation::{ConversationError, Escalate};
use crate::clock::SharedClock;
use crate::domain::order::order_ids;
use crate::domain::{Actor as Who, ConversationKey};
use crate::policy::sla::OnNoAnswer;
use crate::policy::{Policies, PolicyHandle};
use crate::store::Store;
use crate::store::entities::{conversation, conversation_event};
use actix::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Why a case escalates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// A next-response or resolution target breached.
    SlaBreach { target: &'static str },
    /// Escalate-after elapsed with no first response.
    NoFirstResponse,
    /// The team it escalated to did not answer in time.
    NoAnswer,
    /// The customer asked for a manager.
    ManagerRequest,
    /// Legal or media risk (or another risk with watchers configured).
    Risk(String),
    /// Distressed or abusive tone.
    NegativeSentiment,
    /// The customer came back about the same issue.
    RepeatContact,
    /// An agent said it is beyond their scope.
    Agent { reason: String, to: Option<String> },
}

impl Trigger {
    pub fn label(&self) -> String {
        match self {
            Self::SlaBreach { target } => format!("sla_breach:{target}"),
            Self::NoFirstResponse => "no_first_response".into(),
            Self::NoAnswer => "no_answer".into(),
            Self::ManagerRequest => "manager_request".into(),
            Self::Risk(risk) => format!("risk:{risk}"),
            Self::NegativeSentiment => "negative_sentiment".into(),
            Self::RepeatContact => "repeat_contact".into(),
            Self::Agent { .. } => "agent".into(),
        }
    }

    /// Triggers that escalate a case once at most (the customer repeating "manager" does
    /// not bounce it further up).
    fn once_per_case(&self) -> bool {
        !matches!(
            self,
            Self::SlaBreach { .. } | Self::NoFirstResponse | Self::NoAnswer | Self::Agent { .. }
        )
    }
}

/// The triggers a committed triage decision carries, minus those the case already
/// escalated for. A repeat contact counts when it opens (or reopens) the case: a
/// follow-up inside an open case is the same contact.
pub fn triage_triggers(
    case: &conversation::Model,
    engine: &Policies,
    opens_case: bool,
) -> Vec<Trigger> {
    let Some(gist) = case
        .triage
        .as_deref()
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
    else {
        return Vec::new();
    };
    let labels = |family: &str| -> Vec<String> {
        gist[family]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["label"].as_str().or(v.as_str()).map(str::to_owned))
            .collect()
    };
    let mut triggers = Vec::new();
    if labels("intents").iter().any(|i| i == "human_request") {
        triggers.push(Trigger::ManagerRequest);
    }
    for risk in labels("risks") {
        if engine.sla.escalation.risk_watchers.contains_key(&risk) {
            triggers.push(Trigger::Risk(risk));
        }
    }
    if labels("tones")
        .iter()
        .any(|t| t == "distressed" || t == "abusive")
    {
        triggers.push(Trigger::NegativeSentiment);
    }
    if opens_case && labels("context").iter().any(|c| c == "repeat_contact") {
        triggers.push(Trigger::RepeatContact);
    }
    let ledger = SlaLedger::from_json(case.sla.as_deref());
    triggers.retain(|t| !ledger.escalated_for(&t.label()));
    triggers
}

/// An escalation to decide.
#[derive(Message, Debug, Clone)]
#[rtype(result = "Result<(), ConversationError>")]
pub struct EscalationTriggered {
    pub key: ConversationKey,
    pub conversation_id: i64,
    pub trigger: Trigger,
    pub by: Who,
    /// Whose ownership rules apply (the case's actor checks them).
    pub authority: crate::domain::Authority,
}

/// Where a case goes, decided from the policy in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub team: String,
    pub level: u8,
    pub watchers: Vec<String>,
}

/// The team a trigger sends a case owned by `team` (main intent `intent`) to; `None` when
/// it is already at the top.
pub fn destination(
    engine: &Policies,
    trigger: &Trigger,
    team: Option<&str>,
    intent: Option<&str>,
    came_from: Option<&str>,
) -> Option<Destination> {
    let escalation = &engine.sla.escalation;
    let team = team.unwrap_or(engine.routing.settings().default_team.as_str());
    let mut watchers = Vec::new();
    let to = match trigger {
        Trigger::ManagerRequest => Some(escalation.management.as_str()),
        Trigger::Risk(risk) => {
            watchers = escalation
                .risk_watchers
                .get(risk)
                .cloned()
                .unwrap_or_default();
            Some(escalation.management.as_str())
        }
        Trigger::Agent { to: Some(to), .. } => Some(to.as_str()),
        Trigger::NoAnswer if escalation.on_no_answer == OnNoAnswer::HandBack => came_from,
        _ => escalation.next_rung(team, intent),
    }?;
    Some(Destination {
        team: to.to_owned(),
        level: escalation.level(to),
        watchers,
    })
}

/// Decides escalations and builds their packets.
pub struct EscalationActor {
    store: Store,
    clock: SharedClock,
    engine: PolicyHandle,
    registry: Option<Conversations>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachEscalation(pub Conversations);

impl EscalationActor {
    pub fn new(store: Store, clock: SharedClock, engine: PolicyHandle) -> EscalationActor {
        EscalationActor {
            store,
            clock,
            engine,
            registry: None,
        }
    }
}

impl Actor for EscalationActor {
    type Context = Context<Self>;
}

impl Handler<AttachEscalation> for EscalationActor {
    type Result = ();
    fn handle(&mut self, msg: AttachEscalation, _: &mut Self::Context) {
        self.registry = Some(msg.0);
    }
}

impl Handler<EscalationTriggered> for EscalationActor {
    type Result = ResponseFuture<Result<(), ConversationError>>;

    fn handle(&mut self, msg: EscalationTriggered, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let engine = self.engine.current();
        let registry = self.registry.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            let registry = registry.ok_or(ConversationError::Unavailable)?;
            let case = store
                .conversation(msg.conversation_id)
                .await?
                .ok_or(ConversationError::Closed(msg.conversation_id))?;
            let events = store.all_events(case.id).await?;
            let messages = store.messages_page(case.id, None, 10_000).await?;
            let contact = store.contact(case.contact_id).await?;
            let vip = contact.as_ref().is_some_and(|c| {
                c.vip || crate::store::conversations::crm_says_vip(c.crm_profile.as_deref())
            });
            let team = case.team_id.and_then(|id| engine.team_name(id));
            let came_from = last_escalation_source(&events);
            let Some(destination) = destination(
                &engine,
                &msg.trigger,
                team,
                main_intent(&case).as_deref(),
                came_from.as_deref(),
            ) else {
                if matches!(msg.trigger, Trigger::Agent { .. }) {
                    return Err(ConversationError::TopOfLadder {
                        conversation_id: case.id,
                        team: team.unwrap_or_default().to_owned(),
                    });
                }
                tracing::info!(conversation_id = case.id, trigger = %msg.trigger.label(), "Escalation trigger at the top of the ladder; the case stays where it is.");
                return Ok(());
            };
            let report = super::report_of(&engine, &case, vip, clock.now());
            let packet = packet(&case, contact.as_ref(), &events, &messages, &report);
            let to_team_id = engine.team_id(&destination.team);
            registry
                .ask(
                    &msg.key,
                    Escalate {
                        conversation_id: case.id,
                        trigger: msg.trigger.label(),
                        reason: match &msg.trigger {
                            Trigger::Agent { reason, .. } => Some(reason.clone()),
                            _ => None,
                        },
                        to_team: destination.team,
                        to_team_id,
                        level: destination.level,
                        watchers: destination.watchers,
                        packet,
                        by: msg.by,
                        authority: msg.authority,
                        once: msg.trigger.once_per_case(),
                    },
                )
                .await
                .map(|_| ())
        })
    }
}

fn main_intent(case: &conversation::Model) -> Option<String> {
    let gist: Value = serde_json::from_str(case.triage.as_deref()?).ok()?;
    gist["intents"]
        .as_array()?
        .iter()
        .filter_map(|i| i["label"].as_str().or(i.as_str()))
        .find(|label| *label != "human_request" && *label != "greeting_or_thanks")
        .map(str::to_owned)
}

/// The team the latest escalation came from (for handing back).
fn last_escalation_source(events: &[conversation_event::Model]) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| e.kind == "escalated")
        .and_then(|e| {
            serde_json::from_str::<Value>(&e.data).ok()?["from_team"]
                .as_str()
                .map(str::to_owned)
        })
}

/// Messages quoted in a packet.
const PACKET_MESSAGES: usize = 10;

/// What the receiver of an escalation reads: a summary, the customer, identifiers
/// already collected, tags and their history, what automation and agents tried, and the
/// SLA timeline.
pub fn packet(
    case: &conversation::Model,
    contact: Option<&crate::store::entities::contact::Model>,
    events: &[conversation_event::Model],
    messages: &[crate::store::entities::message::Model],
    report: &SlaReport,
) -> Value {
    let inbound: Vec<_> = messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .collect();
    let outbound = messages.len() - inbound.len();
    let first = inbound
        .first()
        .and_then(|m| m.text.as_deref())
        .unwrap_or("");
    let latest = inbound.last().and_then(|m| m.text.as_deref()).unwrap_or("");
    let clip = |t: &str| t.chars().take(280).collect::<String>();
    let mut summary = format!(
        "{} customer message(s), {} repl(ies). First: \"{}\"",
        inbound.len(),
        outbound,
        clip(first)
    );
    if inbound.len() > 1 {
        summary.push_str(&format!(". Latest: \"{}\"", clip(latest)));
    }
    let identifiers: BTreeSet<String> = inbound
        .iter()
        .filter_map(|m| m.text.as_deref())
        .flat_map(order_ids)
        .collect();
    let mut tag_history = Vec::new();
    let mut tried = Vec::new();
    for event in events {
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        match event.kind.as_str() {
            "triaged" => tag_history.push(json!({
                "at": event.created_at,
                "intents": data["intents"],
                "risks": data["risks"],
                "urgency": data["urgency"],
                "tones": data["tones"],
                "owner": data["owner"],
            })),
            "automation_replied" | "automation_failed" | "escalated" | "owner_changed"
            | "assigned" | "note_added" => tried.push(json!({
                "at": event.created_at,
                "what": event.kind,
                "by": event.actor,
                "detail": packet_detail(&event.kind, &data),
            })),
            "message_out" => tried.push(json!({
                "at": event.created_at,
                "what": "reply",
                "by": event.actor,
            })),
            _ => {}
        }
    }
    let recent: Vec<Value> = messages
        .iter()
        .rev()
        .take(PACKET_MESSAGES)
        .rev()
        .map(|m| json!({"at": m.created_at, "direction": m.direction, "kind": m.kind, "text": m.text}))
        .collect();
    let gist: Value = case
        .triage
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    json!({
        "summary": summary,
        "customer": contact.map(|c| json!({
            "wa_id": c.wa_id,
            "name": c.name,
            "vip": c.vip || crate::store::conversations::crm_says_vip(c.crm_profile.as_deref()),
            "crm": c.crm_profile.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
        })),
        "identifiers": { "order_ids": identifiers },
        "tags": {
            "intents": gist["intents"],
            "risks": gist["risks"],
            "urgency": gist["urgency"],
            "language": gist["language"],
            "history": tag_history,
        },
        "tried": tried,
        "sla": report.targets.iter().map(|t| json!({
            "target": t.target.as_str(),
            "cycle": t.cycle,
            "state": t.state,
            "started_at": t.started_at,
            "due_at": t.due_at,
            "elapsed_seconds": t.elapsed / crate::domain::SECOND_MICROS,
        })).collect::<Vec<_>>(),
        "recent_messages": recent,
    })
}

fn packet_detail(kind: &str, data: &Value) -> Value {
    match kind {
        "automation_failed" => json!({"tried": data["tried"], "reason": data["reason"]}),
        "escalated" => json!({"to_team": data["to_team"], "trigger": data["trigger"]}),
        "owner_changed" => json!({"team": data["team"]}),
        "assigned" => json!({"agent_id": data["agent_id"], "team_id": data["team_id"]}),
        _ => Value::Null,
    }
}

/// The escalation event and ownership change, as a pure function of the case.
pub fn plan_escalation(
    case: &conversation::Model,
    msg: &Escalate,
    from_team: Option<&str>,
    from_level: u8,
) -> (conversation::Model, Value) {
    let mut next = case.clone();
    let moves = msg.to_team_id.is_some() && msg.to_team_id != case.team_id;
    if moves {
        next.team_id = msg.to_team_id;
        next.assignee_id = None;
        if next.status == crate::domain::TicketStatus::Assigned.as_str()
            || next.status == crate::domain::TicketStatus::InProgress.as_str()
        {
            next.status = crate::domain::TicketStatus::Created.as_str().into();
        }
    }
    if !msg.watchers.is_empty() {
        let mut watchers: Vec<String> = next
            .watchers
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok())
            .unwrap_or_default();
        for w in &msg.watchers {
            if !watchers.contains(w) {
                watchers.push(w.clone());
            }
        }
        next.watchers = Some(json!(watchers).to_string());
    }
    let data = json!({
        "trigger": msg.trigger,
        "reason": msg.reason,
        "from_team": from_team,
        "from_level": from_level,
        "to_team": msg.to_team,
        "to_level": msg.level,
        "moved": moves,
        "from_status": case.status,
        "watchers": msg.watchers,
        "packet": msg.packet,
    });
    (next, data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::policy::Policies;
    use crate::sla::Terms;

    fn engine() -> Policies {
        let mut engine = crate::policy::test_support::default_policies();
        for (i, team) in engine
            .routing
            .teams()
            .iter()
            .map(|t| t.id.clone())
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
        {
            engine.team_ids.insert(team, i as i64 + 1);
        }
        engine
    }

    fn new_case() -> conversation::Model {
        let key = ConversationKey {
            channel_id: "c".into(),
            phone_number_id: "p".into(),
            wa_id: "w".into(),
        };
        crate::store::conversations::new_conversation(&key, 1, 0)
    }

    #[test]
    fn triggers_choose_their_destination_from_the_ladder() {
        let engine = engine();
        let d = |t: Trigger, team: &str, intent: Option<&str>| {
            destination(&engine, &t, Some(team), intent, Some("tier1_care"))
        };
        assert_eq!(
            d(
                Trigger::NoFirstResponse,
                "tier1_care",
                Some("refund_request")
            )
            .unwrap()
            .team,
            "finance"
        );
        assert_eq!(
            d(Trigger::ManagerRequest, "tier1_care", None).unwrap().team,
            "management"
        );
        let legal = d(Trigger::Risk("legal_threat".into()), "tier1_care", None).unwrap();
        assert_eq!(
            (legal.team.as_str(), legal.level, legal.watchers.clone()),
            ("management", 4, vec!["comms_pr".to_string()])
        );
        assert_eq!(
            d(
                Trigger::SlaBreach {
                    target: "resolution"
                },
                "finance",
                None
            )
            .unwrap()
            .team,
            "management"
        );
        assert_eq!(d(Trigger::NoFirstResponse, "management", None), None);
        let agent = Trigger::Agent {
            reason: "needs engineering".into(),
            to: Some("engineering_incident".into()),
        };
        assert_eq!(d(agent, "tier1_care", None).unwrap().level, 3);
    }

    #[test]
    fn triage_raises_each_trigger_once_per_case() {
        let engine = engine();
        let mut case = new_case();
        case.triage = Some(
            json!({
                "intents": [{"label": "human_request", "confidence": 0.9}],
                "risks": [{"label": "media_risk", "confidence": 0.8}],
                "tones": ["distressed"],
                "context": ["repeat_contact"],
            })
            .to_string(),
        );
        let labels: Vec<String> = triage_triggers(&case, &engine, true)
            .iter()
            .map(Trigger::label)
            .collect();
        assert_eq!(
            labels,
            [
                "manager_request",
                "risk:media_risk",
                "negative_sentiment",
                "repeat_contact"
            ]
        );
        let mut ledger = SlaLedger::default();
        ledger.apply(
            "escalated",
            &json!({"trigger": "manager_request"}),
            "system",
            1,
        );
        case.sla = Some(ledger.to_json());
        assert!(!triage_triggers(&case, &engine, true).contains(&Trigger::ManagerRequest));
    }

    #[test]
    fn the_terms_follow_the_owner_team() {
        let engine = engine();
        let mut case = new_case();
        case.team_id = engine.team_id("finance");
        let terms = Terms::of(&engine, &case, false);
        assert_eq!(terms.calendar.time_zone_name(), "Europe/Madrid");
        assert!(terms.business_hours);
    }
}
