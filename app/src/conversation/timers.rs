//! The case clock's lifecycle steps, beside its SLA alarms: the satisfaction survey and
//! its follow-up after RESOLVED, closing the loop on a silent PENDING case, closing a
//! resolved case once its reopen window has passed. The SLA clock ([`crate::sla`]) only
//! says "look now"; what is due is decided and planned here.

use super::{csat, lifecycle};
use crate::domain::{ConversationKey, Micros, TicketStatus};
use crate::policy::Policies;
use crate::sla::ledger::{PauseReason, SlaLedger};
use crate::sla::{self, Terms, alarm_events};
use crate::store::conversations::{ActorState, ConversationChange};
use crate::store::entities::conversation;

/// The case clock's other timers: closing the loop and the satisfaction survey.
#[derive(Debug, Clone, Default)]
pub struct CaseTimers {
    /// The survey after RESOLVED; `None` when surveys are off.
    pub survey: Option<csat::Survey>,
    /// Resolve a PENDING case after this long without an answer; `None`: never.
    pub pending_close_after: Option<Micros>,
    /// What the closing message and the survey say, per language.
    pub texts: std::sync::Arc<crate::domain::texts::LocalizedTexts>,
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
    use csat::{SurveyStage, survey_state};
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
                .filter(|p| p.to.is_none() && p.reason == PauseReason::Pending)
                .map_or(case.updated_at, |p| p.from);
            Some((since.saturating_add(after), LifecycleDue::ResolvePending))
        }
        _ => None,
    }
}

/// Folds the events of `change` into its case's SLA ledger and records when the case
/// clock next needs to look at it (an SLA alarm or a lifecycle step). Cases that close
/// keep their ledger and have nothing due.
pub fn track(
    change: &mut ConversationChange,
    engine: &Policies,
    timers: &CaseTimers,
    vip: bool,
    now: Micros,
) {
    let (ledger, alarm) = sla::track(change, engine, vip, now);
    let case = &mut change.conversation;
    let step = lifecycle_next(case, &ledger, timers).map(|(at, _)| at.max(now));
    let next = match (alarm, step) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    case.sla_due_at = next.filter(|_| sla::clocked(case));
}

/// What a case-clock check writes: the SLA alarms due now and the lifecycle step due now
/// (a survey, a follow-up, resolving a silent PENDING case, closing a resolved one).
/// Possibly nothing, which still moves the next check after a policy change. `None`
/// when the case is not live.
pub fn clock_change(
    state: &ActorState,
    key: &ConversationKey,
    conversation_id: i64,
    engine: &Policies,
    timers: &CaseTimers,
    surveys_allowed: bool,
    now: Micros,
) -> Option<ConversationChange> {
    let live = state.live.as_ref().filter(|c| c.id == conversation_id)?;
    let terms = Terms::of(engine, live, state.contact_vip);
    let ledger = SlaLedger::from_json(live.sla.as_deref());
    let report = ledger.report(&terms.measure(), now);
    let step = lifecycle_next(live, &ledger, timers).filter(|(at, _)| *at <= now);
    // In the language the customer last wrote in.
    let texts = timers.texts.for_language(live.language.as_deref());
    let mut change = match (step.map(|(_, step)| step), &timers.survey) {
        (Some(LifecycleDue::Survey), Some(survey)) => {
            csat::plan_survey(state, key, live, survey, texts, surveys_allowed, now)
        }
        (Some(LifecycleDue::SurveyFollowUp), Some(_)) => {
            csat::plan_follow_up(state, key, live, texts, now)
        }
        (Some(LifecycleDue::ResolvePending), _) => {
            csat::plan_pending_timeout(state, key, live, &texts.closing_message, now)
        }
        (Some(LifecycleDue::CloseResolved), _) => csat::plan_close_resolved(state, live, now),
        _ => lifecycle::unchanged(state, live.clone(), now),
    };
    let mut events = alarm_events(&terms, &report.due, &engine.sla_sha256);
    events.append(&mut change.events);
    change.events = events;
    Some(change)
}
