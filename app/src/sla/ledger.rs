//! A case's SLA state as a fold over its event log.
//!
//! The [`SlaLedger`] keeps only timestamps taken from events: when each target started
//! and stopped, when the case was paused, which alarms were already recorded. What those
//! timestamps mean (how long a target is, which hours count) comes from the policy and
//! calendar in force when the ledger is [evaluated](SlaLedger::report). The same fold runs
//! incrementally in the conversation actor (the ledger is kept on the case row) and from
//! scratch over the stored log, so a replay gives the same outcome.

use crate::domain::Micros;
use crate::policy::calendar::Calendar;
use crate::policy::sla::Targets;
use serde::{Deserialize, Serialize};

/// Which promise a target measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// Creation to the first reply.
    FirstResponse,
    /// A customer message after a reply, to the reply that answers it.
    NextResponse,
    /// Creation to RESOLVED.
    Resolution,
    /// An escalation to the receiving team's first reply (the return timer).
    Handover,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::NextResponse => "next_response",
            Self::Resolution => "resolution",
            Self::Handover => "handover",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "first_response" => Self::FirstResponse,
            "next_response" => Self::NextResponse,
            "resolution" => Self::Resolution,
            "handover" => Self::Handover,
            _ => return None,
        })
    }
}

/// What an alarm records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// `warn_at_percent` of the target has elapsed.
    Warning,
    /// The whole target has elapsed.
    Breach,
    /// The case must escalate: escalate-after elapsed with no first response, a next
    /// response or resolution breached, or the receiver of an escalation did not answer.
    Escalate,
}

impl AlarmKind {
    /// The event kind that records it.
    pub fn event_kind(self) -> &'static str {
        match self {
            Self::Warning => "sla_warning",
            Self::Breach => "sla_breached",
            Self::Escalate => "sla_escalation_due",
        }
    }

    fn from_event_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "sla_warning" => Self::Warning,
            "sla_breached" => Self::Breach,
            "sla_escalation_due" => Self::Escalate,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// Waiting on the customer.
    Pending,
    /// Resolved; a reopen ends the pause.
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub from: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Micros>,
    pub reason: PauseReason,
}

/// One target's run: from `start` until `stop` (open while `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: Micros,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Micros>,
    /// Who or what stopped it: the replier's actor label, `resolved` or `closed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Span {
    fn open(start: Micros) -> Span {
        Span {
            start,
            stop: None,
            by: None,
        }
    }

    fn is_open(&self) -> bool {
        self.stop.is_none()
    }

    fn close(&mut self, at: Micros, by: &str) {
        if self.stop.is_none() {
            self.stop = Some(at);
            self.by = Some(by.to_owned());
        }
    }
}

/// An alarm already recorded in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    pub target: TargetKind,
    pub cycle: u32,
    pub alarm: AlarmKind,
    /// When it came due.
    #[serde(default)]
    pub due_at: Micros,
    /// When it was recorded (later than due when Parley was down).
    pub at: Micros,
}

/// Who stops the resolution target when the case clock resolves a silent case.
const AUTO_RESOLVED: &str = "auto_resolved";

/// Closed next-response (and handover) runs kept; older ones only count.
const KEPT_CYCLES: usize = 16;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaLedger {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response: Option<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_responses: Vec<Span>,
    /// Cycle number of `next_responses[0]` (older runs were dropped).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_offset: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handovers: Vec<Span>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handover_offset: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fired: Vec<Fired>,
    /// Triggers the case escalated for (`manager_request`, `risk:legal_threat`...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escalations: Vec<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What the ledger is measured against: the policy and calendar in force for the case.
#[derive(Debug, Clone, Copy)]
pub struct Measure<'a> {
    pub targets: Targets,
    /// The owner team's calendar, or one that is always open.
    pub calendar: &'a Calendar,
    pub warn_at_percent: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Running,
    Paused,
    Breached,
    Met,
    /// Met after its target had elapsed.
    MetLate,
    /// Stopped without being met (the case was resolved or closed first).
    Stopped,
}

/// One target, evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetReport {
    pub target: TargetKind,
    pub cycle: u32,
    pub started_at: Micros,
    pub stopped_at: Option<Micros>,
    pub stopped_by: Option<String>,
    /// The target's length (in counted time).
    pub length: Micros,
    /// Counted time so far (up to its stop).
    pub elapsed: Micros,
    pub warn_at: Option<Micros>,
    /// When the target elapses (elapsed), as far as is known now: `None` while paused.
    pub due_at: Option<Micros>,
    pub escalate_at: Option<Micros>,
    pub state: TargetState,
}

/// An alarm that is due and not yet recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    pub target: TargetKind,
    pub cycle: u32,
    pub alarm: AlarmKind,
    /// When it came due.
    pub due_at: Micros,
    pub length: Micros,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaReport {
    pub targets: Vec<TargetReport>,
    pub paused: bool,
    /// Alarms due at `now` and not recorded yet, earliest first.
    pub due: Vec<Alarm>,
    /// The next instant an alarm comes due.
    pub next_alarm: Option<Micros>,
}

impl SlaLedger {
    pub fn from_json(text: Option<&str>) -> SlaLedger {
        text.and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Folds one event of the case's log into the ledger.
    pub fn apply(&mut self, kind: &str, data: &serde_json::Value, actor: &str, at: Micros) {
        match kind {
            "created" => {
                if self.first_response.is_none() {
                    self.first_response = Some(Span::open(at));
                    self.resolution = Some(Span::open(at));
                }
            }
            "message_in" => {
                let answered = self.first_response.as_ref().is_some_and(|s| !s.is_open());
                let waiting = self.next_responses.last().is_some_and(Span::is_open);
                if answered && !waiting {
                    self.next_responses.push(Span::open(at));
                    self.trim();
                }
            }
            "message_out" => {
                for span in self.response_spans_mut() {
                    span.close(at, actor);
                }
            }
            "status_changed" => {
                let from = data["from"].as_str().unwrap_or_default();
                let to = data["to"].as_str().unwrap_or_default();
                self.status_changed(from, to, data["auto"] == true, at);
            }
            "escalated" => {
                if let Some(trigger) = data["trigger"].as_str()
                    && !self.escalated_for(trigger)
                {
                    self.escalations.push(trigger.to_owned());
                }
                for span in self.handovers.iter_mut() {
                    span.close(at, "escalated");
                }
                self.handovers.push(Span::open(at));
                if self.handovers.len() > KEPT_CYCLES {
                    self.handovers.remove(0);
                    self.handover_offset += 1;
                }
            }
            _ => {
                if let Some(alarm) = AlarmKind::from_event_kind(kind)
                    && let Some(target) = data["target"].as_str().and_then(TargetKind::parse)
                {
                    let cycle = data["cycle"].as_u64().unwrap_or(0) as u32;
                    if !self.has_fired(target, cycle, alarm) {
                        self.fired.push(Fired {
                            target,
                            cycle,
                            alarm,
                            due_at: data["due_at"].as_i64().unwrap_or(at),
                            at,
                        });
                    }
                }
            }
        }
    }

    fn response_spans_mut(&mut self) -> impl Iterator<Item = &mut Span> {
        self.first_response
            .iter_mut()
            .chain(self.next_responses.last_mut())
            .chain(self.handovers.last_mut())
            .filter(|s| s.is_open())
    }

    fn status_changed(&mut self, from: &str, to: &str, auto: bool, at: Micros) {
        if from == "pending" || from == "resolved" {
            if let Some(pause) = self.pauses.last_mut().filter(|p| p.to.is_none()) {
                pause.to = Some(at);
            }
            if from == "resolved"
                && let Some(resolution) = &mut self.resolution
            {
                resolution.stop = None;
                resolution.by = None;
            }
        }
        match to {
            "pending" => self.pause(at, PauseReason::Pending),
            "resolved" | "closed" => {
                let by = match (to, auto) {
                    ("resolved", true) => AUTO_RESOLVED,
                    ("resolved", false) => "resolved",
                    _ => "closed",
                };
                for span in self.response_spans_mut() {
                    span.close(at, by);
                }
                if let Some(resolution) = &mut self.resolution {
                    resolution.close(at, by);
                }
                if to == "resolved" {
                    self.pause(at, PauseReason::Resolved);
                }
            }
            _ => {}
        }
    }

    fn pause(&mut self, at: Micros, reason: PauseReason) {
        if self.pauses.last().is_some_and(|p| p.to.is_none()) {
            return;
        }
        self.pauses.push(Pause {
            from: at,
            to: None,
            reason,
        });
        // Pauses wholly before every open or kept run no longer matter.
        if self.pauses.len() > 4 * KEPT_CYCLES {
            self.pauses.drain(..KEPT_CYCLES);
        }
    }

    fn trim(&mut self) {
        if self.next_responses.len() > KEPT_CYCLES {
            let dropped = self.next_responses.len() - KEPT_CYCLES;
            self.next_responses.drain(..dropped);
            self.next_offset += dropped as u32;
            let offset = self.next_offset;
            self.fired
                .retain(|f| f.target != TargetKind::NextResponse || f.cycle >= offset);
        }
    }

    pub fn has_fired(&self, target: TargetKind, cycle: u32, alarm: AlarmKind) -> bool {
        self.fired
            .iter()
            .any(|f| f.target == target && f.cycle == cycle && f.alarm == alarm)
    }

    /// Whether the case clock resolved the case (no answer while PENDING) rather than a
    /// person; a reopen clears it.
    pub fn auto_resolved(&self) -> bool {
        self.resolution
            .as_ref()
            .is_some_and(|r| r.by.as_deref() == Some(AUTO_RESOLVED))
    }

    /// Whether the case already escalated for this trigger.
    pub fn escalated_for(&self, trigger: &str) -> bool {
        self.escalations.iter().any(|t| t == trigger)
    }

    /// Whether a target of the case breached (a breach alarm was recorded).
    pub fn breached(&self) -> bool {
        self.fired.iter().any(|f| f.alarm == AlarmKind::Breach)
    }

    pub fn paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.to.is_none())
    }

    /// Every run with its target kind and cycle, oldest first per kind.
    fn runs(&self) -> impl Iterator<Item = (TargetKind, u32, &Span)> {
        let first = self
            .first_response
            .iter()
            .map(|s| (TargetKind::FirstResponse, 0, s));
        let next = self
            .next_responses
            .iter()
            .enumerate()
            .map(|(i, s)| (TargetKind::NextResponse, self.next_offset + i as u32, s));
        let resolution = self
            .resolution
            .iter()
            .map(|s| (TargetKind::Resolution, 0, s));
        let handovers = self
            .handovers
            .iter()
            .enumerate()
            .map(|(i, s)| (TargetKind::Handover, self.handover_offset + i as u32, s));
        first.chain(next).chain(resolution).chain(handovers)
    }

    /// The intervals in which `span` runs, clipped to `until`: its own extent minus the
    /// pauses. The last one is open-ended (`None`) when the span runs on.
    fn segments(&self, span: &Span) -> Vec<(Micros, Option<Micros>)> {
        let end = span.stop;
        let mut out = Vec::new();
        let mut cursor = span.start;
        for pause in &self.pauses {
            let pause_end = pause.to.unwrap_or(Micros::MAX);
            if pause_end <= cursor {
                continue;
            }
            if end.is_some_and(|e| pause.from >= e) {
                break;
            }
            if pause.from > cursor {
                out.push((cursor, Some(pause.from)));
            }
            cursor = cursor.max(pause_end);
            if pause.to.is_none() {
                return out;
            }
        }
        match end {
            Some(e) if e > cursor => out.push((cursor, Some(e))),
            Some(_) => {}
            None => out.push((cursor, None)),
        }
        out
    }

    /// Counted time of `segments` up to `now`.
    fn elapsed(segments: &[(Micros, Option<Micros>)], calendar: &Calendar, now: Micros) -> Micros {
        segments
            .iter()
            .map(|&(from, to)| calendar.open_micros_between(from, to.unwrap_or(now).min(now)))
            .sum()
    }

    /// The instant at which `amount` of counted time has run in `segments`; `None` when it
    /// never does (stopped or paused before).
    fn instant_of(
        segments: &[(Micros, Option<Micros>)],
        calendar: &Calendar,
        amount: Micros,
    ) -> Option<Micros> {
        let mut counted = 0;
        for &(from, to) in segments {
            match to {
                Some(to) => {
                    let open = calendar.open_micros_between(from, to);
                    if counted + open >= amount {
                        return calendar.add_open_time(from, amount - counted);
                    }
                    counted += open;
                }
                None => return calendar.add_open_time(from, amount - counted),
            }
        }
        None
    }

    /// Evaluates every target at `now` against `measure`.
    pub fn report(&self, measure: &Measure<'_>, now: Micros) -> SlaReport {
        let calendar = measure.calendar;
        let mut targets = Vec::new();
        let mut due = Vec::new();
        let mut next_alarm: Option<Micros> = None;
        let paused = self.paused();
        for (kind, cycle, span) in self.runs() {
            let length = match kind {
                TargetKind::FirstResponse | TargetKind::Handover => measure.targets.first_response,
                TargetKind::NextResponse => measure.targets.next_response,
                TargetKind::Resolution => measure.targets.resolution,
            };
            let segments = self.segments(span);
            let elapsed = Self::elapsed(&segments, calendar, now);
            let warn_amount = length * i64::from(measure.warn_at_percent) / 100;
            let warn_at = Self::instant_of(&segments, calendar, warn_amount);
            let due_at = Self::instant_of(&segments, calendar, length);
            let escalate_amount = match kind {
                TargetKind::FirstResponse => Some(measure.targets.escalate_after),
                TargetKind::Handover => Some(length),
                TargetKind::NextResponse | TargetKind::Resolution => None,
            };
            let escalate_at =
                escalate_amount.and_then(|a| Self::instant_of(&segments, calendar, a));
            let state = match span.stop {
                Some(_)
                    if span.by.as_deref().is_some_and(|b| {
                        matches!(b, "resolved" | "closed" | "escalated" | AUTO_RESOLVED)
                    }) && kind != TargetKind::Resolution =>
                {
                    TargetState::Stopped
                }
                Some(_) if elapsed > length => TargetState::MetLate,
                Some(_) => TargetState::Met,
                None if elapsed >= length => TargetState::Breached,
                None if paused => TargetState::Paused,
                None => TargetState::Running,
            };
            if span.is_open() {
                let mut alarms = vec![(AlarmKind::Warning, warn_at), (AlarmKind::Breach, due_at)];
                match kind {
                    TargetKind::FirstResponse | TargetKind::Handover => {
                        alarms.push((AlarmKind::Escalate, escalate_at));
                    }
                    // A breach of these escalates at once.
                    TargetKind::NextResponse | TargetKind::Resolution => {
                        alarms.push((AlarmKind::Escalate, due_at));
                    }
                }
                for (alarm, at) in alarms {
                    let Some(at) = at else { continue };
                    if self.has_fired(kind, cycle, alarm) {
                        continue;
                    }
                    if at <= now {
                        due.push(Alarm {
                            target: kind,
                            cycle,
                            alarm,
                            due_at: at,
                            length,
                        });
                    } else {
                        next_alarm = Some(next_alarm.map_or(at, |n| n.min(at)));
                    }
                }
            }
            targets.push(TargetReport {
                target: kind,
                cycle,
                started_at: span.start,
                stopped_at: span.stop,
                stopped_by: span.by.clone(),
                length,
                elapsed,
                warn_at,
                due_at,
                escalate_at,
                state,
            });
        }
        due.sort_by_key(|a| (a.due_at, a.alarm));
        SlaReport {
            targets,
            paused,
            due,
            next_alarm,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::Weekday::*;
    use serde_json::json;

    const MINUTE: Micros = 60_000_000;
    const HOUR: Micros = 60 * MINUTE;
    /// Monday 2026-11-30 08:00 UTC.
    const MONDAY_8: Micros = 1_795_996_800_000_000 + 8 * HOUR;

    fn targets() -> Targets {
        Targets {
            first_response: 15 * MINUTE,
            next_response: 15 * MINUTE,
            resolution: 4 * HOUR,
            escalate_after: 30 * MINUTE,
        }
    }

    fn measure(calendar: &Calendar) -> Measure<'_> {
        Measure {
            targets: targets(),
            calendar,
            warn_at_percent: 75,
        }
    }

    fn status(ledger: &mut SlaLedger, from: &str, to: &str, at: Micros) {
        ledger.apply(
            "status_changed",
            &json!({"from": from, "to": to}),
            "agent:1",
            at,
        );
    }

    fn find(report: &SlaReport, kind: TargetKind, cycle: u32) -> &TargetReport {
        report
            .targets
            .iter()
            .find(|t| t.target == kind && t.cycle == cycle)
            .unwrap()
    }

    #[test]
    fn a_new_case_warns_at_75_percent_and_breaches_at_the_target() {
        let always = Calendar::always_open();
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        let report = ledger.report(&measure(&always), MONDAY_8);
        let first = find(&report, TargetKind::FirstResponse, 0);
        assert_eq!(first.warn_at, Some(MONDAY_8 + 675 * MINUTE / 60));
        assert_eq!(first.due_at, Some(MONDAY_8 + 15 * MINUTE));
        assert_eq!(first.escalate_at, Some(MONDAY_8 + 30 * MINUTE));
        assert_eq!(report.next_alarm, first.warn_at);
        assert!(report.due.is_empty());

        let later = ledger.report(&measure(&always), MONDAY_8 + 16 * MINUTE);
        let kinds: Vec<_> = later.due.iter().map(|a| (a.target, a.alarm)).collect();
        assert_eq!(
            kinds,
            [
                (TargetKind::FirstResponse, AlarmKind::Warning),
                (TargetKind::FirstResponse, AlarmKind::Breach)
            ]
        );
        assert_eq!(
            find(&later, TargetKind::FirstResponse, 0).state,
            TargetState::Breached
        );
    }

    #[test]
    fn recorded_alarms_never_come_due_again() {
        let always = Calendar::always_open();
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        let at = MONDAY_8 + 12 * MINUTE;
        for alarm in ledger.report(&measure(&always), at).due {
            ledger.apply(
                alarm.alarm.event_kind(),
                &json!({"target": alarm.target.as_str(), "cycle": alarm.cycle}),
                "sla",
                at,
            );
        }
        let report = ledger.report(&measure(&always), at);
        assert!(report.due.is_empty());
        assert_eq!(report.next_alarm, Some(MONDAY_8 + 15 * MINUTE));
    }

    #[test]
    fn pending_pauses_the_clock_and_the_customer_resumes_it() {
        let always = Calendar::always_open();
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        ledger.apply("message_out", &json!({}), "agent:1", MONDAY_8 + 5 * MINUTE);
        status(
            &mut ledger,
            "in_progress",
            "pending",
            MONDAY_8 + 10 * MINUTE,
        );
        let paused = ledger.report(&measure(&always), MONDAY_8 + 3 * HOUR);
        let resolution = find(&paused, TargetKind::Resolution, 0);
        assert_eq!(resolution.state, TargetState::Paused);
        assert_eq!(resolution.elapsed, 10 * MINUTE);
        assert_eq!(resolution.due_at, None);
        assert_eq!(paused.next_alarm, None, "nothing fires while paused");

        // The customer writes two hours later: the clock resumes where it stopped.
        let back = MONDAY_8 + 2 * HOUR + 10 * MINUTE;
        ledger.apply("message_in", &json!({}), "customer", back);
        status(&mut ledger, "pending", "in_progress", back);
        let report = ledger.report(&measure(&always), back);
        let resolution = find(&report, TargetKind::Resolution, 0);
        assert_eq!(resolution.due_at, Some(back + 4 * HOUR - 10 * MINUTE));
        let next = find(&report, TargetKind::NextResponse, 0);
        assert_eq!(next.due_at, Some(back + 15 * MINUTE));
        assert_eq!(
            find(&report, TargetKind::FirstResponse, 0).state,
            TargetState::Met
        );
    }

    #[test]
    fn business_hours_skip_the_lunch_break_and_the_night() {
        let calendar = Calendar::new(
            "Europe/Madrid",
            Some(&[(Mon, &["09:00-13:00", "14:00-18:00"][..])]),
            &[],
        )
        .unwrap();
        // Monday 12:55 in Madrid (11:55 UTC).
        let created = MONDAY_8 + 3 * HOUR + 55 * MINUTE;
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", created);
        let report = ledger.report(&measure(&calendar), created);
        let first = find(&report, TargetKind::FirstResponse, 0);
        // 5 minutes before lunch, 10 after: due 14:10 Madrid, 13:10 UTC.
        assert_eq!(first.due_at, Some(MONDAY_8 + 5 * HOUR + 10 * MINUTE));
        // Warning at 11m15s counted: 5 before lunch, 6m15s after.
        assert_eq!(
            first.warn_at,
            Some(MONDAY_8 + 5 * HOUR + 6 * MINUTE + 15_000_000)
        );
        // Resolution (4 h): 5 minutes before lunch and 3h55 after, 17:55 Madrid.
        let resolution = find(&report, TargetKind::Resolution, 0);
        assert_eq!(resolution.due_at, Some(MONDAY_8 + 8 * HOUR + 55 * MINUTE));

        // A case opened at 17:50 runs 10 minutes on Monday, and the rest next Monday
        // (the only open day): due 09:05 Madrid a week later.
        let late = MONDAY_8 + 8 * HOUR + 50 * MINUTE;
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", late);
        let report = ledger.report(&measure(&calendar), late);
        assert_eq!(
            find(&report, TargetKind::FirstResponse, 0).due_at,
            Some(MONDAY_8 + 7 * 24 * HOUR + 5 * MINUTE)
        );
    }

    #[test]
    fn a_reopen_resumes_resolution_and_resolved_time_does_not_count() {
        let always = Calendar::always_open();
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        ledger.apply("message_out", &json!({}), "agent:1", MONDAY_8 + MINUTE);
        status(&mut ledger, "in_progress", "resolved", MONDAY_8 + HOUR);
        let resolved = ledger.report(&measure(&always), MONDAY_8 + 5 * HOUR);
        assert_eq!(
            find(&resolved, TargetKind::Resolution, 0).state,
            TargetState::Met
        );
        ledger.apply("reopened", &json!({}), "customer", MONDAY_8 + 5 * HOUR);
        ledger.apply("message_in", &json!({}), "customer", MONDAY_8 + 5 * HOUR);
        status(&mut ledger, "resolved", "assigned", MONDAY_8 + 5 * HOUR);
        let report = ledger.report(&measure(&always), MONDAY_8 + 5 * HOUR);
        let resolution = find(&report, TargetKind::Resolution, 0);
        assert_eq!(resolution.state, TargetState::Running);
        assert_eq!(resolution.elapsed, HOUR);
        assert_eq!(resolution.due_at, Some(MONDAY_8 + 8 * HOUR));
    }

    #[test]
    fn an_escalation_starts_a_return_timer_that_the_receivers_reply_stops() {
        let always = Calendar::always_open();
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        ledger.apply("escalated", &json!({}), "sla", MONDAY_8 + 30 * MINUTE);
        let report = ledger.report(&measure(&always), MONDAY_8 + 30 * MINUTE);
        let handover = find(&report, TargetKind::Handover, 0);
        assert_eq!(handover.escalate_at, Some(MONDAY_8 + 45 * MINUTE));
        ledger.apply("message_out", &json!({}), "agent:2", MONDAY_8 + 40 * MINUTE);
        let report = ledger.report(&measure(&always), MONDAY_8 + 50 * MINUTE);
        assert_eq!(
            find(&report, TargetKind::Handover, 0).state,
            TargetState::Met
        );
        assert!(report.due.iter().all(|a| a.target != TargetKind::Handover));
    }

    #[test]
    fn the_ledger_survives_its_json_form() {
        let mut ledger = SlaLedger::default();
        ledger.apply("created", &json!({}), "customer", MONDAY_8);
        status(&mut ledger, "created", "pending", MONDAY_8 + MINUTE);
        ledger.apply(
            "sla_warning",
            &json!({"target": "first_response", "cycle": 0}),
            "sla",
            MONDAY_8,
        );
        assert_eq!(SlaLedger::from_json(Some(&ledger.to_json())), ledger);
    }
}
