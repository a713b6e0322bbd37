//! Conversation actors: one per live case, the only writer of its conversation.
//!
//! The [`ConversationRegistry`] starts an actor on demand for a contact on a business
//! number (its [`ConversationKey`]), on one of a fixed set of actor threads. Messages to
//! one actor are applied one at a time, in the order they arrived, so a case needs no
//! locks. An actor that panics is restarted by its supervisor and reloads its state from
//! the store; one that has been idle for the configured time stops, so memory follows the
//! active conversations rather than all of them. The actor never talks HTTP or GraphQL:
//! the API and the intake send it messages.

pub mod approval;
pub mod automation;
pub mod corrections;
pub mod csat;
mod handlers;
pub mod lifecycle;
pub mod macros;
pub mod ownership;
mod registry;
mod step;
pub mod timers;
pub mod triage;

pub use crate::actors::conversation::{
    AddNote, ApplyMacro, AssignConversation, ChangeStatus, ConversationError,
    CustomerMessageArrived, DecideHeld, Escalate, InjectPanic, SendReply, SendTemplate, SlaCheck,
    Stepped,
};
pub use registry::ConversationRegistry;
pub use step::Connect;

use crate::clock::SharedClock;
use crate::domain::{ConversationKey, Micros, SECOND_MICROS};
use crate::events::EventBus;
use crate::plugins::Connectors;
use crate::routing::Routing;
use crate::routing::noise::RateWindow;
use crate::routing::router::RoutingNeeds;
use crate::store::Store;
use crate::store::conversations::{ActorState, ConversationChange};
use crate::store::noise::RecordSuppression;
use crate::telemetry::metrics;
use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// What every conversation actor needs; shared, never copied per actor.
pub struct ActorDeps {
    pub store: Store,
    pub clock: SharedClock,
    pub events: EventBus,
    /// Wakes the outbox when a reply was queued.
    pub outbox_wakeup: Arc<Notify>,
    pub idle_timeout: Micros,
    pub reopen_window: Micros,
    /// Triage engine, noise state, presence and the router.
    pub routing: Arc<Routing>,
    /// The CRM and order plugins the configuration names.
    pub connectors: Connectors,
    /// A contact's CRM profile is fetched again after this long.
    pub crm_refresh: Micros,
    /// The SLA clock and the escalation actor; `None` when SLA tracking is off.
    pub sla: Option<SlaActors>,
    /// Closing the loop and the survey, run by the same clock.
    pub timers: Arc<timers::CaseTimers>,
    /// This node's shard leases when it is one node of a cluster.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Where a conversation actor sends its case's next SLA alarm and its escalations.
#[derive(Clone)]
pub struct SlaActors {
    pub clock: Addr<crate::sla::deadlines::SlaClock>,
    pub escalation: Addr<crate::sla::escalation::EscalationActor>,
}

/// What a step plans to write.
pub enum Plan {
    Change {
        change: Box<ConversationChange>,
        /// The case's routing needs when this change carries a triage decision.
        needs: Option<RoutingNeeds>,
    },
    /// Record the message as noise; no case is touched.
    Suppress { record: RecordSuppression },
}

impl From<ConversationChange> for Plan {
    fn from(change: ConversationChange) -> Self {
        Plan::Change {
            change: Box::new(change),
            needs: None,
        }
    }
}

/// Drop the cached state; the next message reloads it from the store.
#[derive(Message, Clone)]
#[rtype(result = "()")]
struct ForgetState;

impl Handler<ForgetState> for ConversationActor {
    type Result = ();
    fn handle(&mut self, _: ForgetState, _: &mut Self::Context) {
        self.state = None;
    }
}

/// Owns one contact's live case on one business number.
pub struct ConversationActor {
    key: ConversationKey,
    deps: Arc<ActorDeps>,
    /// The store this actor writes through: fenced by its shard's lease on a cluster node.
    store: Store,
    /// `None` until loaded, and again after a failure, so the next message reloads it.
    state: Option<ActorState>,
    last_activity: Micros,
    inflight: Arc<AtomicUsize>,
    registry: Weak<registry::RegistryInner>,
    /// This contact's recent message times, for the noise filter's rate limit.
    rate: RateWindow,
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

    /// Leaves the registry at once, waiting or not (the actor lost its shard: whoever
    /// waits on it gets an error and asks again, reaching the owner).
    fn passivate_now(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.actors.remove_if(&self.key, |_, entry| {
                Arc::ptr_eq(&entry.inflight, &self.inflight)
            });
        }
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
}
