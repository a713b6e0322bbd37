//! SLA clock and escalation.
//!
//! - [`policy`]: the SLA file (`config/sla.toml`): targets per priority, VIP and team
//!   overrides, business hours, escalation ladders.
//! - [`ledger`]: a case's SLA state as a fold over its event log, evaluated against the
//!   policy and the owner team's calendar.
//! - [`deadlines`]: the SLA clock actor, which holds every open case's next alarm and
//!   wakes its conversation actor when it comes due.
//! - [`escalation`]: the escalation actor, which decides where a case goes and builds the
//!   packet the receiver reads.
//!
//! The conversation actor owns the writes: every change it persists is folded into the
//! case's ledger here ([`track`]), which also sets when the next alarm comes due; the SLA
//! clock only says "look now" ([`clock_change`] records what is due).

pub mod deadlines;
pub mod escalation;
pub mod ledger;
pub mod policy;

use crate::domain::{Actor, Micros, Priority, TicketStatus};
use crate::routing::calendar::Calendar;
use crate::routing::engine::Engine;
use crate::store::conversations::{ConversationChange, NewEvent};
use crate::store::entities::conversation;
use ledger::{Alarm, Measure, SlaLedger, SlaReport};
use policy::Targets;
use serde_json::json;
use std::sync::LazyLock;

static ALWAYS_OPEN: LazyLock<Calendar> = LazyLock::new(Calendar::always_open);

/// The policy terms a case is measured by, as the engine in force says.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    pub team: Option<&'a str>,
    pub priority: Priority,
    pub vip: bool,
    pub targets: Targets,
    pub business_hours: bool,
    pub calendar: &'a Calendar,
    pub warn_at_percent: u8,
}

impl<'a> Terms<'a> {
    pub fn of(engine: &'a Engine, case: &conversation::Model, vip: bool) -> Terms<'a> {
        let team = case.team_id.and_then(|id| engine.team_name(id));
        let priority = Priority::parse(&case.priority).unwrap_or(Priority::Medium);
        let business_hours = engine.sla.business_hours(team);
        let calendar = team
            .filter(|_| business_hours)
            .and_then(|t| engine.policy.calendar(t))
            .unwrap_or(&ALWAYS_OPEN);
        Terms {
            team,
            priority,
            vip,
            targets: engine.sla.targets(priority, team, vip),
            business_hours,
            calendar,
            warn_at_percent: engine.sla.warn_at_percent,
        }
    }

    pub fn measure(&self) -> Measure<'a> {
        Measure {
            targets: self.targets,
            calendar: self.calendar,
            warn_at_percent: self.warn_at_percent,
        }
    }
}

/// Whether a case in this status has an SLA clock at all.
fn clocked(case: &conversation::Model) -> bool {
    case.status != TicketStatus::Closed.as_str()
}

/// The case clock's other timers: closing the loop and the satisfaction survey.
#[derive(Debug, Clone, Default)]
pub struct CaseTimers {
    /// The survey after RESOLVED; `None` when surveys are off.
    pub survey: Option<crate::conversation::csat::Survey>,
    /// Resolve a PENDING case after this long without an answer; `None`: never.
    pub pending_close_after: Option<Micros>,
    pub closing_message: String,
    /// Close a RESOLVED case after this long (the reopen window).
    pub close_resolved_after: Micros,
}

/// A lifecycle step the case clock takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleDue {
    Survey,
    SurveyFollowUp,
    ResolvePending,
    CloseResolved,
}

/// The case's next lifecycle step and when it is due.
pub fn lifecycle_next(
    case: &conversation::Model,
    ledger: &SlaLedger,
    timers: &CaseTimers,
) -> Option<(Micros, LifecycleDue)> {
    use crate::conversation::csat::{SurveyStage, survey_state};
    match TicketStatus::parse(&case.status)? {
        TicketStatus::Resolved => {
            let resolved_at = case.resolved_at.unwrap_or(case.updated_at);
            let survey = survey_state(case);
            let mut steps = vec![(
                resolved_at.saturating_add(timers.close_resolved_after),
                LifecycleDue::CloseResolved,
            )];
            match (&survey, &timers.survey) {
                (None, Some(planned)) => steps.push((
                    resolved_at.saturating_add(planned.after),
                    LifecycleDue::Survey,
                )),
                (Some(s), _) if s.stage == SurveyStage::ScoredLow => {
                    steps.push((s.at, LifecycleDue::SurveyFollowUp))
                }
                _ => {}
            }
            steps.into_iter().min_by_key(|(at, _)| *at)
        }
        TicketStatus::Pending => {
            let after = timers.pending_close_after?;
            let since = ledger
                .pauses
                .last()
                .filter(|p| p.to.is_none() && p.reason == ledger::PauseReason::Pending)
                .map_or(case.updated_at, |p| p.from);
            Some((since.saturating_add(after), LifecycleDue::ResolvePending))
        }
        _ => None,
    }
}

/// Folds the events of `change` into its case's ledger and records when the case clock
/// next needs to look at it (an SLA alarm or a lifecycle step). Cases that close keep
/// their ledger and have nothing due.
pub fn track(
    change: &mut ConversationChange,
    engine: &Engine,
    timers: &CaseTimers,
    vip: bool,
    now: Micros,
) {
    if let Some(previous) = &mut change.close_previous {
        let mut ledger = SlaLedger::from_json(previous.sla.as_deref());
        for event in &change.previous_events {
            ledger.apply(event.kind, &event.data, &event.actor, now);
        }
        previous.sla = Some(ledger.to_json());
        previous.sla_due_at = None;
    }
    let case = &mut change.conversation;
    let mut ledger = SlaLedger::from_json(case.sla.as_deref());
    for event in &change.events {
        ledger.apply(event.kind, &event.data, &event.actor, now);
    }
    let report = ledger.report(&Terms::of(engine, case, vip).measure(), now);
    // Something already due (the clock was away) is looked at right away.
    let alarm = if report.due.is_empty() {
        report.next_alarm
    } else {
        Some(now)
    };
    let step = lifecycle_next(case, &ledger, timers).map(|(at, _)| at.max(now));
    let next = match (alarm, step) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    case.sla_due_at = next.filter(|_| clocked(case));
    case.sla = Some(ledger.to_json());
}

/// The case's SLA report now, from its stored ledger.
pub fn report_of(engine: &Engine, case: &conversation::Model, vip: bool, now: Micros) -> SlaReport {
    SlaLedger::from_json(case.sla.as_deref()).report(&Terms::of(engine, case, vip).measure(), now)
}

/// The events that record alarms due now (warnings, breaches, escalations due), in order.
pub fn alarm_events(terms: &Terms<'_>, due: &[Alarm], sla_sha256: &str) -> Vec<NewEvent> {
    due.iter()
        .map(|alarm| NewEvent {
            kind: alarm.alarm.event_kind(),
            data: json!({
                "target": alarm.target.as_str(),
                "cycle": alarm.cycle,
                "due_at": alarm.due_at,
                "target_seconds": alarm.length / crate::domain::SECOND_MICROS,
                "priority": terms.priority.as_str(),
                "team": terms.team,
                "vip": terms.vip,
                "business_hours": terms.business_hours,
                "time_zone": terms.calendar.time_zone_name(),
                "sla_sha256": sla_sha256,
            }),
            actor: Actor::System.label(),
        })
        .collect()
}

/// What a case-clock check writes: the SLA alarms due now and the lifecycle step due now
/// (a survey, a follow-up, resolving a silent PENDING case, closing a resolved one).
/// Possibly nothing, which still moves the next check after a policy change. `None`
/// when the case is not live.
pub fn clock_change(
    state: &crate::store::conversations::ActorState,
    key: &crate::domain::ConversationKey,
    conversation_id: i64,
    engine: &Engine,
    timers: &CaseTimers,
    surveys_allowed: bool,
    now: Micros,
) -> Option<ConversationChange> {
    use crate::conversation::csat;
    let live = state.live.as_ref().filter(|c| c.id == conversation_id)?;
    let terms = Terms::of(engine, live, state.contact_vip);
    let ledger = SlaLedger::from_json(live.sla.as_deref());
    let report = ledger.report(&terms.measure(), now);
    let step = lifecycle_next(live, &ledger, timers).filter(|(at, _)| *at <= now);
    let mut change = match (step.map(|(_, step)| step), &timers.survey) {
        (Some(LifecycleDue::Survey), Some(survey)) => {
            csat::plan_survey(state, key, live, survey, surveys_allowed, now)
        }
        (Some(LifecycleDue::SurveyFollowUp), Some(survey)) => {
            csat::plan_follow_up(state, key, live, survey, now)
        }
        (Some(LifecycleDue::ResolvePending), _) => {
            csat::plan_pending_timeout(state, key, live, &timers.closing_message, now)
        }
        (Some(LifecycleDue::CloseResolved), _) => csat::plan_close_resolved(state, live, now),
        _ => crate::conversation::lifecycle::unchanged(state, live.clone(), now),
    };
    let mut events = alarm_events(&terms, &report.due, &engine.sla_sha256);
    events.append(&mut change.events);
    change.events = events;
    Some(change)
}
