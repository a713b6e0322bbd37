//! Conversation actors: one per live case, the only writer of its conversation.
//!
//! The [`ConversationRegistry`] starts an actor on demand for a contact on a business
//! number (its [`ConversationKey`]), on one of a fixed set of actor threads. Messages to
//! one actor are applied one at a time, in the order they arrived, so a case needs no
//! locks. An actor that panics is restarted by its supervisor and reloads its state from
//! the store; one that has been idle for the configured time stops, so memory follows the
//! active conversations rather than all of them. The actor never talks HTTP or GraphQL:
//! the API and the intake send it messages.

pub mod lifecycle;

use crate::clock::SharedClock;
use crate::domain::inbound::InboundMessage;
use crate::domain::{Actor as Who, ConversationKey, Micros, SECOND_MICROS, TicketStatus};
use crate::events::EventBus;
use crate::store::conversations::{ActorState, ChangeApplied, ConversationChange};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use actix::prelude::*;
use dashmap::DashMap;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;
use tracing::Instrument;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConversationError {
    #[error("conversation {0} is closed")]
    Closed(i64),
    #[error("a conversation cannot move from {from} to {to}")]
    InvalidTransition {
        from: TicketStatus,
        to: TicketStatus,
    },
    #[error("the store failed: {0}")]
    Store(String),
    #[error("the conversation actor failed while handling this request and was restarted")]
    Panicked,
    #[error("the conversation actor is unavailable")]
    Unavailable,
}

impl From<StoreError> for ConversationError {
    fn from(error: StoreError) -> Self {
        Self::Store(error.to_string())
    }
}

/// What every conversation actor needs; shared, never copied per actor.
pub struct ActorDeps {
    pub store: Store,
    pub clock: SharedClock,
    pub events: EventBus,
    /// Wakes the outbox when a reply was queued.
    pub outbox_wakeup: Arc<Notify>,
    pub idle_timeout: Micros,
    pub reopen_window: Micros,
}

/// A customer message to apply, in the order the intake received it.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct CustomerMessageArrived {
    pub message: Arc<InboundMessage>,
    /// When the webhook holding it was durably committed (clock time).
    pub received_at: Micros,
    /// The same instant on the monotonic clock, for the apply-lag metric.
    pub committed: std::time::Instant,
    pub span: tracing::Span,
}

/// An agent's (or integration's) text reply.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SendReply {
    pub conversation_id: i64,
    pub text: String,
    pub by: Who,
    pub agent_id: Option<i64>,
}

/// Give the case to an agent and/or team (`agent_id: None` unassigns).
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct AssignConversation {
    pub conversation_id: i64,
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    pub by: Who,
}

#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct ChangeStatus {
    pub conversation_id: i64,
    pub to: TicketStatus,
    pub by: Who,
}

#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct AddNote {
    pub conversation_id: i64,
    pub body: String,
    pub by: Who,
}

/// Makes the actor panic inside a handler: exercises supervision in tests and drills.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
#[doc(hidden)]
pub struct InjectPanic;

struct Entry {
    addr: Addr<ConversationActor>,
    /// Requests handed to this actor and not yet answered; it may stop only at zero.
    inflight: Arc<AtomicUsize>,
}

struct RegistryInner {
    actors: DashMap<ConversationKey, Entry>,
    arbiters: Vec<ArbiterHandle>,
    next_arbiter: AtomicUsize,
    deps: Arc<ActorDeps>,
}

/// Finds or starts the actor of a conversation key and delivers messages to it.
#[derive(Clone)]
pub struct ConversationRegistry {
    inner: Arc<RegistryInner>,
}

struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConversationRegistry {
    /// Starts `threads` actor threads. Must be called inside a running actix system.
    pub fn start(deps: ActorDeps, threads: usize) -> Self {
        let arbiters = (0..threads.max(1))
            .map(|_| Arbiter::new().handle())
            .collect();
        Self {
            inner: Arc::new(RegistryInner {
                actors: DashMap::new(),
                arbiters,
                next_arbiter: AtomicUsize::new(0),
                deps: Arc::new(deps),
            }),
        }
    }

    /// Stops every actor thread (at shutdown): the actors' state is in the store.
    pub fn stop(&self) {
        self.inner.actors.clear();
        for arbiter in &self.inner.arbiters {
            arbiter.stop();
        }
    }

    /// Actors currently running.
    pub fn live_actors(&self) -> usize {
        self.inner.actors.len()
    }

    pub fn is_live(&self, key: &ConversationKey) -> bool {
        self.inner.actors.contains_key(key)
    }

    fn spawn(&self, key: &ConversationKey) -> Entry {
        let n = self.inner.next_arbiter.fetch_add(1, Ordering::Relaxed) % self.inner.arbiters.len();
        let inflight = Arc::new(AtomicUsize::new(0));
        let actor = ConversationActor {
            key: key.clone(),
            deps: self.inner.deps.clone(),
            state: None,
            last_activity: self.inner.deps.clock.now(),
            inflight: inflight.clone(),
            registry: Arc::downgrade(&self.inner),
        };
        let addr = match self.inner.arbiters.get(n) {
            Some(arbiter) => Supervisor::start_in_arbiter(arbiter, move |_| actor),
            None => Supervisor::start(move |_| actor),
        };
        Entry { addr, inflight }
    }

    fn checkout(&self, key: &ConversationKey) -> (Addr<ConversationActor>, InflightGuard) {
        let mut entry = self
            .inner
            .actors
            .entry(key.clone())
            .or_insert_with(|| self.spawn(key));
        if !entry.addr.connected() {
            *entry = self.spawn(key);
        }
        entry.inflight.fetch_add(1, Ordering::SeqCst);
        (entry.addr.clone(), InflightGuard(entry.inflight.clone()))
    }

    /// Delivers `message` to the actor of `key`, starting it if needed, and waits for its
    /// answer. A message that reaches an actor just as it stops is delivered again to its
    /// successor.
    pub async fn send<M, R>(
        &self,
        key: &ConversationKey,
        message: M,
    ) -> Result<R, ConversationError>
    where
        M: Message<Result = Result<R, ConversationError>> + Clone + Send + 'static,
        R: Send + 'static,
        ConversationActor: Handler<M>,
    {
        for _ in 0..3 {
            let (addr, guard) = self.checkout(key);
            let answer = addr.send(message.clone()).await;
            drop(addr);
            drop(guard);
            match answer {
                Ok(result) => return result,
                Err(MailboxError::Closed) => continue,
                Err(MailboxError::Timeout) => return Err(ConversationError::Unavailable),
            }
        }
        Err(ConversationError::Unavailable)
    }
}

/// Owns one contact's live case on one business number.
pub struct ConversationActor {
    key: ConversationKey,
    deps: Arc<ActorDeps>,
    /// `None` until loaded, and again after a failure, so the next message reloads it.
    state: Option<ActorState>,
    last_activity: Micros,
    inflight: Arc<AtomicUsize>,
    registry: Weak<RegistryInner>,
}

impl Actor for ConversationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        metrics().live_actors.inc();
        self.last_activity = self.deps.clock.now();
        self.arm_idle_timer(ctx);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        metrics().live_actors.dec();
    }
}

impl Supervised for ConversationActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        tracing::warn!(channel = %self.key.channel_id, "Conversation actor restarting after a failure; state reloads from the store.");
        metrics().actor_restarts.inc();
        self.state = None;
    }
}

/// Messages queued for one actor before senders wait for room (a burst for one customer).
const MAILBOX_CAPACITY: usize = 4096;

/// Minimum wait between two idle checks, so a busy actor never spins on its timer.
const IDLE_RECHECK: Micros = SECOND_MICROS;

impl ConversationActor {
    fn arm_idle_timer(&self, ctx: &mut Context<Self>) {
        let now = self.deps.clock.now();
        let deadline = (self.last_activity + self.deps.idle_timeout)
            .max(now + IDLE_RECHECK.min(self.deps.idle_timeout));
        ctx.spawn(
            self.deps
                .clock
                .sleep_until(deadline)
                .into_actor(self)
                .map(|_, act, ctx| {
                    let now = act.deps.clock.now();
                    if now >= act.last_activity + act.deps.idle_timeout && act.passivate() {
                        ctx.stop();
                    } else {
                        act.arm_idle_timer(ctx);
                    }
                }),
        );
    }

    /// Leaves the registry if nobody is waiting on this actor. Once out of the registry
    /// no address to it remains, so its supervisor lets it stop for good.
    fn passivate(&self) -> bool {
        let Some(registry) = self.registry.upgrade() else {
            return true;
        };
        registry
            .actors
            .remove_if(&self.key, |_, entry| {
                Arc::ptr_eq(&entry.inflight, &self.inflight)
                    && entry.inflight.load(Ordering::SeqCst) == 0
            })
            .is_some()
    }

    /// Runs one step: load state if needed, plan the change, persist it, publish its
    /// events. The actor's mailbox waits until the step is done (messages stay in order).
    /// A panic anywhere in the step restarts the actor instead of killing its thread.
    fn step<F>(
        &mut self,
        span: tracing::Span,
        committed: Option<std::time::Instant>,
        plan: F,
    ) -> AtomicResponse<Self, Result<ChangeApplied, ConversationError>>
    where
        F: FnOnce(&ActorState, Micros) -> Result<ConversationChange, ConversationError>
            + Send
            + 'static,
    {
        self.last_activity = self.deps.clock.now();
        let deps = self.deps.clone();
        let key = self.key.clone();
        let cached = self.state.clone();
        let work = async move {
            let state = match cached {
                Some(state) => state,
                None => deps.store.load_actor_state(&key).await?,
            };
            let now = deps.clock.now();
            let change = plan(&state, now)?;
            let applied = deps.store.write(change).await?;
            if let (Some(committed), false) = (committed, applied.duplicate) {
                metrics()
                    .ingest_apply_lag_seconds
                    .observe(committed.elapsed().as_secs_f64());
                metrics().messages.with_label_values(&["inbound"]).inc();
            }
            deps.events.publish(applied.events.iter().cloned());
            if applied
                .message
                .as_ref()
                .is_some_and(|m| m.direction == "outbound")
            {
                deps.outbox_wakeup.notify_one();
            }
            let mut next = state;
            if !applied.duplicate {
                next.contact_id = Some(applied.contact_id);
                next.live = (applied.conversation.status != TicketStatus::Closed.as_str())
                    .then(|| applied.conversation.clone());
            }
            Ok::<_, ConversationError>((next, applied))
        };
        let guarded = AssertUnwindSafe(work.instrument(span)).catch_unwind();
        AtomicResponse::new(Box::pin(guarded.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(Ok((next, applied))) => {
                act.state = Some(next);
                Ok(applied)
            }
            Ok(Err(error)) => {
                // After a store failure the store may hold something newer than our copy:
                // reload next time. A refused request changed nothing.
                if matches!(error, ConversationError::Store(_)) {
                    act.state = None;
                }
                Err(error)
            }
            Err(_) => {
                tracing::error!(channel = %act.key.channel_id, "Conversation actor panicked; restarting it.");
                ctx.stop();
                Err(ConversationError::Panicked)
            }
        })))
    }
}

impl Handler<CustomerMessageArrived> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: CustomerMessageArrived, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(parent: &msg.span, "conversation.apply", kind = msg.message.kind.as_str());
        let key = self.key.clone();
        let reopen_window = self.deps.reopen_window;
        let message = msg.message.clone();
        self.step(span, Some(msg.committed), move |state, now| {
            let (arrival, change) = lifecycle::plan_customer_message(
                state,
                &key,
                &message,
                msg.received_at,
                now,
                reopen_window,
            );
            if arrival == lifecycle::Arrival::Reopen {
                metrics().reopens.inc();
            }
            Ok(change)
        })
    }
}

impl Handler<SendReply> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SendReply, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!("conversation.reply", conversation_id = msg.conversation_id);
        self.step(span, None, move |state, now| {
            lifecycle::plan_reply(
                state,
                &key,
                msg.conversation_id,
                &msg.text,
                &msg.by,
                msg.agent_id,
                now,
            )
        })
    }
}

impl Handler<AssignConversation> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AssignConversation, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.assign", conversation_id = msg.conversation_id);
        self.step(span, None, move |state, now| {
            lifecycle::plan_assignment(
                state,
                msg.conversation_id,
                msg.agent_id,
                msg.team_id,
                &msg.by,
                now,
            )
        })
    }
}

impl Handler<ChangeStatus> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: ChangeStatus, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.status", conversation_id = msg.conversation_id);
        self.step(span, None, move |state, now| {
            lifecycle::plan_status_change(state, msg.conversation_id, msg.to, &msg.by, now)
        })
    }
}

impl Handler<AddNote> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AddNote, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!("conversation.note", conversation_id = msg.conversation_id);
        self.step(span, None, move |state, now| {
            lifecycle::plan_note(state, msg.conversation_id, &msg.body, &msg.by, now)
        })
    }
}

impl Handler<InjectPanic> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) -> Self::Result {
        self.step(tracing::Span::current(), None, |_, _| {
            panic!("injected failure")
        })
    }
}
