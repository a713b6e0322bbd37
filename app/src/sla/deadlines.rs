//! The SLA clock actor: every open case's next alarm, in due order.
//!
//! It holds two integers per case (its id and when its next alarm comes due) in an
//! ordered set, sleeps on the injected [`Clock`](crate::clock::Clock) until the earliest,
//! and hands the cases that came due to a [`DeadlinesDue`] recipient: in Parley, the
//! [`SlaDispatcher`], which asks each case's conversation actor to record what is due.
//! The conversation actor then schedules the case's next alarm, so the clock never
//! decides anything itself. Deadlines are durable because each case's next one is stored
//! with the case (`conversations.sla_due_at`): at start the clock reloads them all and
//! fires those that came due while Parley was down; recorded alarms are in the case's
//! ledger, so none fires twice.

use crate::actors::Conversations;
use crate::actors::conversation::{ConversationError, SlaCheck};
use crate::clock::SharedClock;
use crate::domain::{Micros, SECOND_MICROS};
use crate::store::Store;
use crate::telemetry::metrics;
use actix::prelude::*;
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap};

/// Sets (or with `due: None`, clears) a case's next alarm.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Schedule {
    pub conversation_id: i64,
    pub due: Option<Micros>,
}

/// Many at once (the reload at start).
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct ScheduleMany(pub Vec<(i64, Micros)>);

/// Cases whose alarm came due, with when it was due.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct DeadlinesDue(pub Vec<(i64, Micros)>);

/// Look at every scheduled case now: the policy or calendars changed, so their next
/// alarms may have moved either way.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct RecheckAll;

/// How many deadlines are pending (for tests and the health of the clock).
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct PendingDeadlines;

pub struct SlaClock {
    clock: SharedClock,
    queue: BTreeSet<(Micros, i64)>,
    due_of: HashMap<i64, Micros>,
    target: Recipient<DeadlinesDue>,
    /// The instant the clock sleeps until, and its timer.
    armed: Option<(Micros, SpawnHandle)>,
}

impl SlaClock {
    pub fn new(clock: SharedClock, target: Recipient<DeadlinesDue>) -> SlaClock {
        SlaClock {
            clock,
            queue: BTreeSet::new(),
            due_of: HashMap::new(),
            target,
            armed: None,
        }
    }

    fn set(&mut self, id: i64, due: Option<Micros>) {
        if let Some(old) = self.due_of.remove(&id) {
            self.queue.remove(&(old, id));
        }
        if let Some(due) = due {
            self.queue.insert((due, id));
            self.due_of.insert(id, due);
        }
    }

    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let Some(&(first, _)) = self.queue.first() else {
            return;
        };
        if let Some((at, handle)) = self.armed {
            if at <= first {
                return;
            }
            ctx.cancel_future(handle);
        }
        let handle = ctx.spawn(self.clock.sleep_until(first).into_actor(self).map(
            |_, act, ctx| {
                act.armed = None;
                act.fire(ctx);
            },
        ));
        self.armed = Some((first, handle));
    }

    fn fire(&mut self, ctx: &mut Context<Self>) {
        let now = self.clock.now();
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            self.due_of.remove(&id);
            due.push((id, at));
        }
        metrics().sla_pending_deadlines.set(self.queue.len() as i64);
        if !due.is_empty() {
            self.target.do_send(DeadlinesDue(due));
        }
        self.rearm(ctx);
    }
}

/// Conversation actors schedule with `do_send`, which is not bounded by the mailbox
/// capacity, so a burst of schedules never blocks a conversation.
impl Actor for SlaClock {
    type Context = Context<Self>;
}

impl Handler<Schedule> for SlaClock {
    type Result = ();
    fn handle(&mut self, msg: Schedule, ctx: &mut Self::Context) {
        self.set(msg.conversation_id, msg.due);
        metrics().sla_pending_deadlines.set(self.queue.len() as i64);
        if msg.due.is_some_and(|due| due <= self.clock.now()) {
            self.fire(ctx);
        } else {
            self.rearm(ctx);
        }
    }
}

impl Handler<ScheduleMany> for SlaClock {
    type Result = ();
    fn handle(&mut self, msg: ScheduleMany, ctx: &mut Self::Context) {
        for (id, due) in msg.0 {
            self.set(id, Some(due));
        }
        metrics().sla_pending_deadlines.set(self.queue.len() as i64);
        self.fire(ctx);
    }
}

impl Handler<RecheckAll> for SlaClock {
    type Result = ();
    fn handle(&mut self, _: RecheckAll, ctx: &mut Self::Context) {
        let now = self.clock.now();
        let all: Vec<(i64, Micros)> = self.due_of.drain().map(|(id, _)| (id, now)).collect();
        self.queue.clear();
        if let Some((_, handle)) = self.armed.take() {
            ctx.cancel_future(handle);
        }
        metrics().sla_pending_deadlines.set(0);
        if !all.is_empty() {
            self.target.do_send(DeadlinesDue(all));
        }
    }
}

impl Handler<PendingDeadlines> for SlaClock {
    type Result = usize;
    fn handle(&mut self, _: PendingDeadlines, _: &mut Self::Context) -> usize {
        self.queue.len()
    }
}

/// SLA checks running at once.
const CHECKS_IN_FLIGHT: usize = 32;

/// A check that failed (store down, actor unavailable) is tried again this much later.
const RETRY_AFTER: Micros = 5 * SECOND_MICROS;

/// The key of a case and whether its contact accepts surveys (consent is read at send
/// time, never from a stale list).
async fn checked(
    store: &Store,
    id: i64,
) -> Result<Option<(crate::domain::ConversationKey, bool)>, crate::store::StoreError> {
    let Some((key, case)) = store.conversation_key(id).await? else {
        return Ok(None);
    };
    let allowed = store
        .may_send(case.contact_id, crate::domain::consent::Purpose::Surveys)
        .await?;
    Ok(Some((key, allowed)))
}

/// Hands due cases to their conversation actors.
pub struct SlaDispatcher {
    store: Store,
    clock: SharedClock,
    registry: Option<Conversations>,
    sla_clock: Option<Addr<SlaClock>>,
}

/// Connects the dispatcher to the actors it talks to (they are built after it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachDispatcher {
    pub registry: Conversations,
    pub sla_clock: Addr<SlaClock>,
}

impl SlaDispatcher {
    pub fn new(store: Store, clock: SharedClock) -> SlaDispatcher {
        SlaDispatcher {
            store,
            clock,
            registry: None,
            sla_clock: None,
        }
    }
}

impl Actor for SlaDispatcher {
    type Context = Context<Self>;
}

impl Handler<AttachDispatcher> for SlaDispatcher {
    type Result = ();
    fn handle(&mut self, msg: AttachDispatcher, _: &mut Self::Context) {
        self.registry = Some(msg.registry);
        self.sla_clock = Some(msg.sla_clock);
    }
}

impl Handler<DeadlinesDue> for SlaDispatcher {
    type Result = ();
    fn handle(&mut self, msg: DeadlinesDue, ctx: &mut Self::Context) {
        let (Some(registry), Some(sla_clock)) = (self.registry.clone(), self.sla_clock.clone())
        else {
            return;
        };
        let store = self.store.clone();
        let clock = self.clock.clone();
        let retry_clock = self.clock.clone();
        let work = futures::stream::iter(msg.0)
            .map(move |(id, due)| {
                let (store, registry, clock) = (store.clone(), registry.clone(), clock.clone());
                async move {
                    metrics()
                        .sla_alarm_lateness_seconds
                        .observe((clock.now() - due).max(0) as f64 / SECOND_MICROS as f64);
                    let outcome = match checked(&store, id).await {
                        Ok(Some((key, surveys_allowed))) => registry
                            .ask(
                                &key,
                                SlaCheck {
                                    conversation_id: id,
                                    surveys_allowed,
                                },
                            )
                            .await
                            .map(|_| ())
                            .or_else(|e| match e {
                                // The case closed meanwhile: no clock any more.
                                ConversationError::Closed(_) => Ok(()),
                                // Another node owns the case: its clock fires there.
                                ConversationError::NotOwner => Ok(()),
                                other => Err(other.to_string()),
                            }),
                        // Gone (erased): nothing to look at.
                        Ok(None) => Ok(()),
                        Err(e) => Err(e.to_string()),
                    };
                    (id, outcome)
                }
            })
            .buffer_unordered(CHECKS_IN_FLIGHT)
            .for_each(move |(id, outcome)| {
                let sla_clock = sla_clock.clone();
                let retry_at = retry_clock.now() + RETRY_AFTER;
                async move {
                    if let Err(error) = outcome {
                        tracing::warn!(conversation_id = id, error = %error, "SLA check failed; trying again shortly.");
                        sla_clock.do_send(Schedule {
                            conversation_id: id,
                            due: Some(retry_at),
                        });
                    }
                }
            });
        ctx.spawn(work.into_actor(self));
    }
}
