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

use crate::domain::{Actor, Micros, Priority, TicketStatus};
use crate::policy::Policies;
use crate::policy::calendar::Calendar;
use crate::policy::sla::Targets;
use crate::store::conversations::{ConversationChange, NewEvent};
use crate::store::entities::conversation;
use ledger::{Alarm, Measure, SlaLedger, SlaReport};
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
    pub fn of(engine: &'a Policies, case: &conversation::Model, vip: bool) -> Terms<'a> {
        let team = case.team_id.and_then(|id| engine.team_name(id));
        let priority = Priority::parse(&case.priority).unwrap_or(Priority::Medium);
        let business_hours = engine.sla.business_hours(team);
        let calendar = team
            .filter(|_| business_hours)
            .and_then(|t| engine.routing.calendar(t))
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
pub fn clocked(case: &conversation::Model) -> bool {
    case.status != TicketStatus::Closed.as_str()
}

/// Folds the events of `change` into its case's ledger (and the closing events into the
/// ledger of a case it closes, which then has nothing due), stores the ledger on the case,
/// and answers it with when the case's next SLA alarm is due: now when one already is
/// (the clock was away).
pub fn track(
    change: &mut ConversationChange,
    engine: &Policies,
    vip: bool,
    now: Micros,
) -> (SlaLedger, Option<Micros>) {
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
    let alarm = if report.due.is_empty() {
        report.next_alarm
    } else {
        Some(now)
    };
    case.sla = Some(ledger.to_json());
    (ledger, alarm)
}

/// The case's SLA report now, from its stored ledger.
pub fn report_of(
    engine: &Policies,
    case: &conversation::Model,
    vip: bool,
    now: Micros,
) -> SlaReport {
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
