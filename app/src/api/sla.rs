//! The SLA clock and escalations in GraphQL: a case's SLA timeline (why it breached, by
//! which policy and calendar) replayed from its event log, and escalating by hand.

use super::types::Conversation;
use super::{api, conversation_key, principal};
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

/// A case's satisfaction survey.
#[derive(SimpleObject)]
pub struct CsatResponse {
    /// interactive (inside the 24-hour window) or template.
    pub via: String,
    pub surveyed_at: DateTime<Utc>,
    /// 1 to 5, once answered.
    pub score: Option<i32>,
    pub answered_at: Option<DateTime<Utc>>,
    /// The answer to the follow-up after a score of 1 to 3.
    pub comment: Option<String>,
    /// The agent and team the survey is counted against (who held the case).
    pub agent_id: Option<ID>,
    pub team_id: Option<ID>,
}

pub async fn csat_of(
    ctx: &Context<'_>,
    case: &conversation::Model,
) -> async_graphql::Result<Option<CsatResponse>> {
    let row = api(ctx)
        .store
        .csat_response(case.id)
        .await
        .map_err(ApiError::internal)?;
    Ok(row.map(|r| CsatResponse {
        via: r.via,
        surveyed_at: micros_to_datetime(r.surveyed_at),
        score: r.score,
        answered_at: r.answered_at.map(micros_to_datetime),
        comment: r.comment,
        agent_id: r.agent_id.map(|id| ID(id.to_string())),
        team_id: r.team_id.map(|id| ID(id.to_string())),
    }))
}

/// CSAT over the surveys sent in a period.
#[derive(SimpleObject)]
pub struct CsatSummary {
    pub surveyed: i64,
    pub answered: i64,
    /// answered / surveyed (0 when nothing was surveyed).
    pub response_rate: f64,
    /// Mean score of the answers (none without answers).
    pub average_score: Option<f64>,
    /// Share of answers scoring 4 or 5 (the usual CSAT %), 0 to 1.
    pub satisfied_share: Option<f64>,
    /// Answers per score, from 1 to 5.
    pub by_score: Vec<i64>,
}

/// How many cases escalated to a team, at a level, for a trigger.
#[derive(SimpleObject, Debug, Clone, PartialEq)]
pub struct EscalationCount {
    pub to_team: String,
    /// 1 front line, 2 specialists, 3 engineering, product and heads, 4 management.
    pub level: i32,
    /// sla_breach, no_first_response, no_answer, manager_request, risk, negative_sentiment,
    /// repeat_contact or agent.
    pub trigger: String,
    pub count: i64,
}

/// How far back `escalationMix` reads the event log (longer ranges: the reports).
const ESCALATION_MIX_MAX_DAYS: i64 = 92;

#[derive(Default)]
pub struct SlaQuery;

#[Object]
impl SlaQuery {
    /// The escalation destination mix: which teams absorbed escalations, from which
    /// triggers, since `since` (default: the last 30 days). Largest first.
    #[graphql(complexity = "super::types::COMPUTE_COST.saturating_add(child_complexity)")]
    async fn escalation_mix(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Vec<EscalationCount>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let a = api(ctx);
        let now = a.clock.now();
        let day = 86_400 * crate::domain::SECOND_MICROS;
        let since = since.map_or(now - 30 * day, |s| s.timestamp_micros());
        if since < now - ESCALATION_MIX_MAX_DAYS * day {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("since reaches back at most {ESCALATION_MIX_MAX_DAYS} days"),
            )
            .into());
        }
        let rows = a
            .store
            .escalations_since(since)
            .await
            .map_err(ApiError::internal)?;
        let mut counts: std::collections::BTreeMap<(String, i32, String), i64> =
            std::collections::BTreeMap::new();
        for data in rows {
            let data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
            let key = (
                data["to_team"].as_str().unwrap_or_default().to_owned(),
                data["to_level"].as_i64().unwrap_or(1) as i32,
                data["trigger"]
                    .as_str()
                    .unwrap_or_default()
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
            *counts.entry(key).or_default() += 1;
        }
        let mut mix: Vec<EscalationCount> = counts
            .into_iter()
            .map(|((to_team, level, trigger), count)| EscalationCount {
                to_team,
                level,
                trigger,
                count,
            })
            .collect();
        mix.sort_by_key(|m| std::cmp::Reverse(m.count));
        Ok(mix)
    }

    /// CSAT and survey response rate, for one team or agent or everyone, over the surveys
    /// sent since `since` (all when absent).
    async fn csat_summary(
        &self,
        ctx: &Context<'_>,
        team_id: Option<ID>,
        agent_id: Option<ID>,
        since: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<CsatSummary> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let filter = crate::store::sla::CsatFilter {
            team_id: team_id
                .as_ref()
                .map(|t| super::types::id_of(t, "team"))
                .transpose()?,
            agent_id: agent_id
                .as_ref()
                .map(|a| super::types::id_of(a, "agent"))
                .transpose()?,
            since: since.map(|s| s.timestamp_micros()),
        };
        let counts = api(ctx)
            .store
            .csat_counts(&filter)
            .await
            .map_err(ApiError::internal)?;
        let answered: i64 = counts.by_score.iter().sum();
        let total: i64 = counts
            .by_score
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1) * n)
            .sum();
        let satisfied = counts.by_score[3] + counts.by_score[4];
        Ok(CsatSummary {
            surveyed: counts.surveyed,
            answered,
            response_rate: if counts.surveyed > 0 {
                answered as f64 / counts.surveyed as f64
            } else {
                0.0
            },
            average_score: (answered > 0).then(|| total as f64 / answered as f64),
            satisfied_share: (answered > 0).then(|| satisfied as f64 / answered as f64),
            by_score: counts.by_score.to_vec(),
        })
    }
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
        #[graphql(validator(chars_max_length = 1000))] reason: String,
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
                authority: who.authority(),
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
