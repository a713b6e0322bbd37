//! The SLA clock and escalations in GraphQL: a case's SLA timeline (why it breached, by
//! which policy and calendar) replayed from its event log, and escalating by hand.

use super::types::Conversation;
use super::{ApiContext, conversation_key, principal};
use crate::clock::micros_to_datetime;
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use crate::sla::Terms;
use crate::sla::escalation::{EscalationTriggered, Trigger};
use crate::sla::ledger::{SlaLedger, TargetReport, TargetState};
use crate::store::entities::conversation;
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SlaTargetState {
    Running,
    Paused,
    Breached,
    Met,
    /// Met after the target had elapsed.
    MetLate,
    /// Stopped unmet: the case was resolved, closed or escalated first.
    Stopped,
}

impl From<TargetState> for SlaTargetState {
    fn from(state: TargetState) -> Self {
        match state {
            TargetState::Running => Self::Running,
            TargetState::Paused => Self::Paused,
            TargetState::Breached => Self::Breached,
            TargetState::Met => Self::Met,
            TargetState::MetLate => Self::MetLate,
            TargetState::Stopped => Self::Stopped,
        }
    }
}

/// One promise on a case.
#[derive(SimpleObject)]
pub struct SlaTarget {
    /// first_response, next_response, resolution or handover (an escalation's receiver
    /// answering).
    pub target: String,
    /// Which run of it (next responses and handovers repeat), from 0.
    pub cycle: i32,
    pub state: SlaTargetState,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// Who or what stopped it: `agent:3`, `automation`, `resolved`...
    pub stopped_by: Option<String>,
    pub target_seconds: i64,
    /// Counted time (business hours only where the policy says so, pauses left out).
    pub elapsed_seconds: i64,
    pub warn_at: Option<DateTime<Utc>>,
    /// When the target elapses; none while paused.
    pub due_at: Option<DateTime<Utc>>,
    pub escalate_at: Option<DateTime<Utc>>,
}

impl From<&TargetReport> for SlaTarget {
    fn from(t: &TargetReport) -> Self {
        SlaTarget {
            target: t.target.as_str().into(),
            cycle: t.cycle as i32,
            state: t.state.into(),
            started_at: micros_to_datetime(t.started_at),
            stopped_at: t.stopped_at.map(micros_to_datetime),
            stopped_by: t.stopped_by.clone(),
            target_seconds: t.length / crate::domain::SECOND_MICROS,
            elapsed_seconds: t.elapsed / crate::domain::SECOND_MICROS,
            warn_at: t.warn_at.map(micros_to_datetime),
            due_at: t.due_at.map(micros_to_datetime),
            escalate_at: t.escalate_at.map(micros_to_datetime),
        }
    }
}

/// A stretch of time the clock did not count.
#[derive(SimpleObject)]
pub struct SlaPause {
    pub from: DateTime<Utc>,
    pub to: Option<DateTime<Utc>>,
    /// pending (waiting on the customer) or resolved (before a reopen).
    pub reason: String,
}

/// A warning, breach or escalation the clock recorded.
#[derive(SimpleObject)]
pub struct SlaAlarm {
    pub target: String,
    pub cycle: i32,
    /// sla_warning, sla_breached or sla_escalation_due.
    pub kind: String,
    /// When it came due.
    pub due_at: DateTime<Utc>,
    /// When it was recorded: later than due only if Parley was down at the time.
    pub recorded_at: DateTime<Utc>,
}

/// A case's SLA state, replayed from its event log against the policy in force.
#[derive(SimpleObject)]
pub struct Sla {
    pub priority: String,
    pub vip: bool,
    /// The owner team whose targets and calendar apply.
    pub team: Option<String>,
    /// Whether only the team's business hours count.
    pub business_hours: bool,
    /// The calendar's time zone.
    pub time_zone: String,
    pub warn_at_percent: i32,
    /// SHA-256 of the SLA policy file in force.
    pub policy_sha256: String,
    /// SHA-256 of the routing file (teams' calendars) in force.
    pub calendar_sha256: String,
    pub paused: bool,
    pub next_alarm_at: Option<DateTime<Utc>>,
    pub targets: Vec<SlaTarget>,
    pub pauses: Vec<SlaPause>,
    pub alarms: Vec<SlaAlarm>,
    /// Triggers the case escalated for.
    pub escalations: Vec<String>,
    /// The state kept on the case equals the replay of its log (it always should; false
    /// points at a bug worth reporting).
    pub replay_matches: bool,
}

fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    ctx.data_unchecked::<ApiContext>()
}

/// The SLA view of a case.
pub async fn sla_of(ctx: &Context<'_>, case: &conversation::Model) -> async_graphql::Result<Sla> {
    let a = api(ctx);
    let events = a
        .store
        .all_events(case.id)
        .await
        .map_err(ApiError::internal)?;
    let mut ledger = SlaLedger::default();
    for event in &events {
        let data = serde_json::from_str(&event.data).unwrap_or_default();
        ledger.apply(&event.kind, &data, &event.actor, event.created_at);
    }
    let contact = a
        .store
        .contact(case.contact_id)
        .await
        .map_err(ApiError::internal)?;
    let vip = contact.as_ref().is_some_and(|c| {
        c.vip || crate::store::conversations::crm_says_vip(c.crm_profile.as_deref())
    });
    let engine = a.routing.engine.current();
    let terms = Terms::of(&engine, case, vip);
    let report = ledger.report(&terms.measure(), a.clock.now());
    Ok(Sla {
        priority: terms.priority.as_str().into(),
        vip,
        team: terms.team.map(str::to_owned),
        business_hours: terms.business_hours,
        time_zone: terms.calendar.time_zone_name().into(),
        warn_at_percent: terms.warn_at_percent.into(),
        policy_sha256: engine.sla_sha256.clone(),
        calendar_sha256: engine.routing_sha256.clone(),
        paused: report.paused,
        next_alarm_at: report.next_alarm.map(micros_to_datetime),
        targets: report.targets.iter().map(SlaTarget::from).collect(),
        pauses: ledger
            .pauses
            .iter()
            .map(|p| SlaPause {
                from: micros_to_datetime(p.from),
                to: p.to.map(micros_to_datetime),
                reason: match p.reason {
                    crate::sla::ledger::PauseReason::Pending => "pending".into(),
                    crate::sla::ledger::PauseReason::Resolved => "resolved".into(),
                },
            })
            .collect(),
        alarms: ledger
            .fired
            .iter()
            .map(|f| SlaAlarm {
                target: f.target.as_str().into(),
                cycle: f.cycle as i32,
                kind: f.alarm.event_kind().into(),
                due_at: micros_to_datetime(f.due_at),
                recorded_at: micros_to_datetime(f.at),
            })
            .collect(),
        escalations: ledger.escalations.clone(),
        replay_matches: case.sla.is_none() || SlaLedger::from_json(case.sla.as_deref()) == ledger,
    })
}

#[derive(Default)]
pub struct SlaMutation;

#[Object]
impl SlaMutation {
    /// Escalates a case beyond the agent's scope: to `toTeam` (a routing policy team id)
    /// or the next rung of its owner team's ladder. The receiver gets a packet with the
    /// summary, identifiers, tags, what was tried and the SLA timeline.
    async fn escalate_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        reason: String,
        to_team: Option<String>,
    ) -> async_graphql::Result<Conversation> {
        let who = principal(ctx)?;
        who.require(Permission::ReplyToCustomers)?;
        if reason.trim().is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "say why the case escalates (reason)",
            )
            .into());
        }
        let a = api(ctx);
        let engine = a.routing.engine.current();
        if let Some(team) = &to_team
            && engine.team_id(team).is_none()
        {
            return Err(ApiError::new(
                ErrorCode::TeamNotFound,
                format!("no team `{team}` in the routing policy"),
            )
            .into());
        }
        let Some(sla) = &a.sla else {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "escalations are off ([sla] enabled = false)",
            )
            .into());
        };
        let (key, case) = conversation_key(ctx, &conversation_id).await?;
        sla.escalation
            .send(EscalationTriggered {
                key,
                conversation_id: case.id,
                trigger: Trigger::Agent {
                    reason: reason.trim().to_owned(),
                    to: to_team,
                },
                by: who.actor(),
            })
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::Unavailable,
                    "the escalation actor is unavailable",
                )
            })?
            .map_err(super::conversation_error)?;
        let case = a
            .store
            .conversation(case.id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("escalated conversation vanished"))?;
        Ok(Conversation(case))
    }
}
