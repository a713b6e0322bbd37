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
pub mod csat;
pub mod lifecycle;
pub mod triage;

use crate::clock::SharedClock;
use crate::domain::consent::{KeywordRequest, Purpose, keyword_request};
use crate::domain::inbound::InboundMessage;
use crate::domain::{Actor as Who, ConversationKey, Micros, SECOND_MICROS, TicketStatus};
use crate::events::EventBus;
use crate::outbound::gate::{self, Origin};
use crate::plugins::Connectors;
use crate::routing::Routing;
use crate::routing::noise::RateWindow;
use crate::routing::router::{CaseUpdated, RoutingNeeds};
use crate::store::consent::{ConsentContact, RecordConsent};
use crate::store::conversations::{ActorState, ChangeApplied, ConversationChange};
use crate::store::entities::{conversation, held_message};
use crate::store::noise::{RecordSuppression, SuppressionRecorded};
use crate::store::{Store, StoreError};
use crate::telemetry::metrics;
use actix::prelude::*;
use automation::AutomationOutcome;
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
    #[error(
        "conversation {conversation_id} is assigned to agent {assignee}; only they or a supervisor may reply until it is transferred"
    )]
    NotAssignee { conversation_id: i64, assignee: i64 },
    #[error("conversation {0} was assigned meanwhile")]
    AlreadyAssigned(i64),
    #[error("{agent_name} is typing in this conversation")]
    Collision { agent_id: i64, agent_name: String },
    /// Free-form messages are refused outside the customer service window, before any
    /// provider is called.
    #[error(
        "the 24-hour customer service window of conversation {conversation_id} {}; a free-form message cannot be sent, only an approved template",
        match closed_at { Some(_) => "has closed", None => "never opened" }
    )]
    WindowClosed {
        conversation_id: i64,
        closed_at: Option<Micros>,
    },
    #[error("the customer has withdrawn consent to {purpose} messages")]
    ConsentWithdrawn { purpose: &'static str },
    #[error(
        "conversation {conversation_id} is owned by {team}, the top of its escalation ladder; name the team to send it to"
    )]
    TopOfLadder { conversation_id: i64, team: String },
    #[error("conversation {conversation_id} already escalated for {trigger}")]
    AlreadyEscalated {
        conversation_id: i64,
        trigger: String,
    },
    #[error("held message {held_id} was already {status}; nothing was sent again")]
    AlreadyDecided { held_id: i64, status: String },
    #[error(
        "held message {held_id} waits for a {approver} or above; the {role} role may not decide it"
    )]
    NotApprover {
        held_id: i64,
        approver: String,
        role: String,
    },
    #[error("{0}")]
    InvalidEdit(String),
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
    /// Triage engine, noise state, presence and the router.
    pub routing: Arc<Routing>,
    /// The CRM and order plugins the configuration names.
    pub connectors: Connectors,
    /// A contact's CRM profile is fetched again after this long.
    pub crm_refresh: Micros,
    /// The SLA clock and the escalation actor; `None` when SLA tracking is off.
    pub sla: Option<SlaActors>,
    /// Closing the loop and the survey, run by the same clock.
    pub timers: Arc<crate::sla::CaseTimers>,
}

/// Where a conversation actor sends its case's next SLA alarm and its escalations.
#[derive(Clone)]
pub struct SlaActors {
    pub clock: Addr<crate::sla::deadlines::SlaClock>,
    pub escalation: Addr<crate::sla::escalation::EscalationActor>,
}

/// The case clock says something of this case came due (an SLA alarm, a survey, closing
/// the loop): record what is due.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SlaCheck {
    pub conversation_id: i64,
    /// The contact's consent to surveys, read just before.
    pub surveys_allowed: bool,
}

/// Move a case up its escalation ladder (decided by the escalation actor).
#[derive(Message, Clone, Debug)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct Escalate {
    pub conversation_id: i64,
    /// `manager_request`, `sla_breach:resolution`, `agent`...
    pub trigger: String,
    pub reason: Option<String>,
    pub to_team: String,
    pub to_team_id: Option<i64>,
    pub level: u8,
    /// Teams that watch the case from now on.
    pub watchers: Vec<String>,
    /// What the receiver reads.
    pub packet: serde_json::Value,
    pub by: Who,
    /// Refused when the case already escalated for this trigger.
    pub once: bool,
}

/// A customer message to apply, in the order the intake received it.
#[derive(Message, Clone)]
#[rtype(result = "Result<Stepped, ConversationError>")]
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
    pub authority: lifecycle::ReplyAuthority,
    /// A supervisor replies even though another agent is typing.
    pub force: bool,
    /// Who wrote the text: a person, an integration on its own, an AI draft sent as is.
    pub origin: Origin,
}

/// An approved template to the customer (checked and rendered by the caller).
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct SendTemplate {
    pub conversation_id: i64,
    pub template: lifecycle::TemplateSend,
    pub by: Who,
    pub agent_id: Option<i64>,
    pub authority: lifecycle::ReplyAuthority,
    pub origin: Origin,
}

/// Approve (optionally with an edit) or reject a message the gate held.
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct DecideHeld {
    pub held: held_message::Model,
    pub decision: approval::Decision,
    pub by: Who,
    pub role: crate::domain::Role,
}

/// Give the case to an agent and/or team (`agent_id: None` unassigns).
#[derive(Message, Clone)]
#[rtype(result = "Result<ChangeApplied, ConversationError>")]
pub struct AssignConversation {
    pub conversation_id: i64,
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    pub by: Who,
    /// Set by the router: why this agent (kept in the event); such an assignment is
    /// refused if the case was assigned meanwhile.
    pub explanation: Option<serde_json::Value>,
}

/// What one actor step did: a change to the case, or a message set aside as noise.
#[derive(Debug, Clone)]
pub enum Stepped {
    Applied(Box<ChangeApplied>),
    Suppressed {
        reason: &'static str,
        recorded: SuppressionRecorded,
    },
}

impl Stepped {
    fn into_change(self) -> Result<ChangeApplied, ConversationError> {
        match self {
            Self::Applied(applied) => Ok(*applied),
            Self::Suppressed { .. } => Err(ConversationError::Store(
                "a request was recorded as noise".into(),
            )),
        }
    }
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

    /// Makes the live actors of a contact reload their state before their next message
    /// (after an admin changed the contact: VIP, blocked).
    pub fn forget_contact_state(&self, wa_id: &str) {
        for entry in self.inner.actors.iter() {
            if entry.key().wa_id == wa_id {
                entry.value().addr.do_send(ForgetState);
            }
        }
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
            rate: RateWindow::default(),
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
    /// events and tell the router. The actor's mailbox waits until the step is done
    /// (messages stay in order). A panic anywhere in the step restarts the actor instead
    /// of killing its thread.
    fn step_plan<F>(
        &mut self,
        span: tracing::Span,
        committed: Option<std::time::Instant>,
        connect: Connect,
        plan: F,
    ) -> ResponseActFuture<Self, Result<Stepped, ConversationError>>
    where
        F: FnOnce(&ActorState, Micros) -> Result<Plan, ConversationError> + Send + 'static,
    {
        self.last_activity = self.deps.clock.now();
        let deps = self.deps.clone();
        let key = self.key.clone();
        let cached = self.state.clone();
        let work = async move {
            let mut state = match cached {
                Some(state) => state,
                None => deps.store.load_actor_state(&key).await?,
            };
            let mut now = deps.clock.now();
            if let Some((request, keyword, message_ref)) = connect.consent {
                record_keyword(&deps.store, &key, (request, keyword), message_ref, now).await?;
                state.consent = None;
            }
            if let Some(purpose) = connect.sends
                && !consent_for(&deps.store, &mut state, purpose).await?
            {
                return Err(ConversationError::ConsentWithdrawn {
                    purpose: purpose.as_str(),
                });
            }
            let enrichment =
                if connect.crm && automation::needs_enrichment(&state, now, deps.crm_refresh) {
                    let enrichment = automation::enrich(&deps.connectors, &key.wa_id).await;
                    state.contact_vip |= enrichment.vip();
                    now = deps.clock.now();
                    Some(enrichment)
                } else {
                    None
                };
            match plan(&state, now)? {
                Plan::Suppress { record } => {
                    let reason = record.suppression.reason;
                    let recorded = deps.store.write(record).await?;
                    if !recorded.duplicate {
                        metrics()
                            .noise_suppressed
                            .with_label_values(&[reason])
                            .inc();
                    }
                    Ok::<_, ConversationError>((
                        state,
                        Stepped::Suppressed { reason, recorded },
                        None,
                    ))
                }
                Plan::Change { mut change, needs } => {
                    let engine = deps.routing.engine.current();
                    if change.outbox.is_some() {
                        pass_gate(&deps.store, &engine, &mut state, &mut change, now).await?;
                    }
                    if let Some(enrichment) = enrichment {
                        enrichment.attach(&mut change);
                    }
                    if deps.sla.is_some() {
                        crate::sla::track(
                            &mut change,
                            &engine,
                            &deps.timers,
                            state.contact_vip,
                            now,
                        );
                    }
                    let before = state.live.as_ref().map(|c| (c.id, c.sla_due_at));
                    let enriched = change.enrichment.is_some();
                    let suppressed = change.suppression.as_ref().map(|s| s.reason);
                    let triaged = needs.is_some();
                    let queues_send = change.outbox.as_ref().is_some_and(|o| o.held.is_none())
                        || change
                            .decision
                            .as_ref()
                            .is_some_and(|d| d.status == approval::APPROVED);
                    let decided = change.decision.as_ref().map(|d| d.held_id);
                    let applied = match deps.store.apply_change(*change).await {
                        Err(StoreError::Db(sea_orm::DbErr::Custom(reason)))
                            if reason == crate::store::conversations::HELD_ALREADY_DECIDED =>
                        {
                            return Err(ConversationError::AlreadyDecided {
                                held_id: decided.unwrap_or_default(),
                                status: "decided by someone else meanwhile".into(),
                            });
                        }
                        other => other?,
                    };
                    if !applied.duplicate {
                        if let Some(committed) = committed {
                            metrics()
                                .ingest_apply_lag_seconds
                                .observe(committed.elapsed().as_secs_f64());
                            metrics().messages.with_label_values(&["inbound"]).inc();
                        }
                        if let Some(reason) = suppressed {
                            metrics()
                                .noise_suppressed
                                .with_label_values(&[reason])
                                .inc();
                        }
                        if let Some(sla) = &deps.sla {
                            follow_sla(sla, &key, &applied, before, triaged, &engine);
                        }
                        deps.routing.router.do_send(CaseUpdated {
                            key: key.clone(),
                            conversation: applied.conversation.clone(),
                            needs,
                        });
                    }
                    deps.events.publish(applied.events.iter().cloned());
                    if queues_send {
                        deps.outbox_wakeup.notify_one();
                    }
                    let mut next = state;
                    if !applied.duplicate {
                        next.contact_id = Some(applied.contact_id);
                        next.live = (applied.conversation.status != TicketStatus::Closed.as_str())
                            .then(|| applied.conversation.clone());
                        if triaged {
                            remember_intents(&mut next, &applied.conversation, now);
                        }
                        if enriched {
                            next.crm_fetched_at = Some(now);
                        }
                    }
                    let question = (connect.orders && triaged && !applied.duplicate)
                        .then(|| {
                            automation::OrderQuestion::from_case(
                                &applied.conversation,
                                &key,
                                applied.message.as_ref().and_then(|m| m.text.as_deref()),
                            )
                        })
                        .flatten();
                    Ok((next, Stepped::Applied(Box::new(applied)), question))
                }
            }
        };
        let guarded = AssertUnwindSafe(work.instrument(span)).catch_unwind();
        Box::pin(guarded.into_actor(self).map(|outcome, act, ctx| match outcome {
            Ok(Ok((next, stepped, question))) => {
                act.state = Some(next);
                if let Some(question) = question {
                    act.ask_order_system(question, ctx);
                }
                Ok(stepped)
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
        }))
    }

    /// A step that changes the case (every request but a customer message), after the
    /// checks `connect` asks for (a send's consent).
    fn step<F>(
        &mut self,
        span: tracing::Span,
        connect: Connect,
        plan: F,
    ) -> AtomicResponse<Self, Result<ChangeApplied, ConversationError>>
    where
        F: FnOnce(&ActorState, Micros) -> Result<ConversationChange, ConversationError>
            + Send
            + 'static,
    {
        let stepped = self.step_plan(span, None, connect, move |state, now| {
            plan(state, now).map(Plan::from)
        });
        AtomicResponse::new(Box::pin(
            stepped.map(|result, _, _| result.and_then(Stepped::into_change)),
        ))
    }
}

/// What a customer message's step does besides planning the change: ask plugins, record
/// a consent keyword.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Look the contact up in the CRM before triaging a new case.
    crm: bool,
    /// Put an order question that automation may answer to the order system.
    orders: bool,
    /// A STOP/START keyword to record in the consent ledger first, with the message's
    /// `channel:provider id`.
    consent: Option<(KeywordRequest, &'static str, String)>,
    /// The step sends a message for this purpose: the contact's consent is checked first.
    sends: Option<Purpose>,
}

impl ConversationActor {
    /// Asks the order system off the mailbox (later messages are not held up); the
    /// answer comes back to this actor as an [`AutomationOutcome`].
    fn ask_order_system(&self, question: automation::OrderQuestion, ctx: &mut Context<Self>) {
        let connectors = self.deps.connectors.clone();
        let span = tracing::info_span!(
            "automation.order_status",
            conversation_id = question.conversation_id
        );
        let asked = async move { automation::answer_order_question(&connectors, question).await }
            .instrument(span);
        ctx.spawn(
            asked
                .into_actor(self)
                .map(|outcome, _, ctx| ctx.notify(outcome)),
        );
    }
}

impl Handler<AutomationOutcome> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, outcome: AutomationOutcome, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.automation",
            conversation_id = outcome.conversation_id
        );
        let key = self.key.clone();
        let connect = Connect::default();
        let stepped = self.step_plan(span, None, connect, move |state, now| {
            automation::plan_outcome(state, &key, &outcome, now).map(Plan::from)
        });
        AtomicResponse::new(Box::pin(stepped.map(|result, act, _| {
            let result = result.and_then(Stepped::into_change);
            if let Err(error) = &result {
                tracing::warn!(channel = %act.key.channel_id, error = %error, "Automation outcome not applied.");
            }
            result
        })))
    }
}

/// After a committed change: schedule the case's next SLA alarm (when it moved), count
/// the alarms recorded, and hand escalation triggers to the escalation actor.
fn follow_sla(
    sla: &SlaActors,
    key: &ConversationKey,
    applied: &ChangeApplied,
    before: Option<(i64, Option<Micros>)>,
    triaged: bool,
    engine: &crate::routing::engine::Engine,
) {
    use crate::sla::escalation::{EscalationTriggered, Trigger, triage_triggers};
    let case = &applied.conversation;
    if let Some((previous, _)) = before.filter(|(id, _)| *id != case.id) {
        sla.clock.do_send(crate::sla::deadlines::Schedule {
            conversation_id: previous,
            due: None,
        });
    }
    if before != Some((case.id, case.sla_due_at)) {
        sla.clock.do_send(crate::sla::deadlines::Schedule {
            conversation_id: case.id,
            due: case.sla_due_at,
        });
    }
    let mut triggers = Vec::new();
    for event in &applied.events {
        let counted = matches!(
            event.kind.as_str(),
            "escalated" | "status_changed" | "csat_answered"
        ) || event.kind.starts_with("sla_");
        if !counted {
            continue;
        }
        let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        if event.kind == "escalated" {
            let trigger = data["trigger"].as_str().unwrap_or_default();
            metrics()
                .escalations
                .with_label_values(&[
                    trigger.split(':').next().unwrap_or_default(),
                    &data["to_level"].to_string(),
                ])
                .inc();
        }
        if event.kind == "status_changed" && data["auto"] == true {
            metrics()
                .auto_closures
                .with_label_values(&[data["to"].as_str().unwrap_or_default()])
                .inc();
        }
        if event.kind == "csat_answered" {
            metrics()
                .csat_answers
                .with_label_values(&[&data["score"].to_string()])
                .inc();
        }
        let Some(alarm) = event.kind.strip_prefix("sla_") else {
            continue;
        };
        let target = data["target"].as_str().unwrap_or_default();
        metrics()
            .sla_alarms
            .with_label_values(&[target, alarm])
            .inc();
        if event.kind == crate::sla::ledger::AlarmKind::Escalate.event_kind() {
            triggers.push(match target {
                "first_response" => Trigger::NoFirstResponse,
                "handover" => Trigger::NoAnswer,
                "next_response" => Trigger::SlaBreach {
                    target: "next_response",
                },
                _ => Trigger::SlaBreach {
                    target: "resolution",
                },
            });
        }
    }
    if triaged {
        let opens_case = applied
            .events
            .iter()
            .any(|e| e.kind == "created" || e.kind == "reopened");
        triggers.extend(triage_triggers(case, engine, opens_case));
    }
    for trigger in triggers {
        sla.escalation.do_send(EscalationTriggered {
            key: key.clone(),
            conversation_id: case.id,
            trigger,
            by: Who::System,
        });
    }
}

/// Puts the change's outbound message through the gate: consent for its purpose (read
/// now), the service window, and the approval boundaries over the case's latest tags.
/// Blocked: the step is refused with the reason. Held: the message is stored, marked
/// held, and waits in the approval queue instead of the outbox; it does not count as a
/// response until it is approved.
async fn pass_gate(
    store: &Store,
    engine: &crate::routing::engine::Engine,
    state: &mut ActorState,
    change: &mut ConversationChange,
    now: Micros,
) -> Result<(), ConversationError> {
    let Some(outbox) = change.outbox.as_ref() else {
        return Ok(());
    };
    let consent = consent_for(store, state, outbox.purpose).await?;
    let case = &change.conversation;
    let started = std::time::Instant::now();
    let verdict = engine.approvals.evaluate(
        &gate::Outbound {
            origin: outbox.origin,
            purpose: outbox.purpose,
            template_category: outbox.template_category,
            text: change
                .message
                .as_ref()
                .and_then(|m| m.text.as_deref())
                .unwrap_or_default(),
        },
        &gate::Context {
            triage: case.triage.as_deref(),
            vip: state.contact_vip,
            consent,
            last_customer_message_at: case.last_customer_message_at,
            now,
        },
    );
    let label = match &verdict {
        gate::Verdict::Allow => "allow",
        gate::Verdict::Hold(_) => "hold",
        gate::Verdict::Block(_) => "block",
    };
    let origin = outbox.origin;
    metrics()
        .outbound_gate
        .with_label_values(&[origin.as_str(), label])
        .inc();
    metrics()
        .outbound_gate_seconds
        .observe(started.elapsed().as_secs_f64());
    match verdict {
        gate::Verdict::Allow => Ok(()),
        // A case resolving on its own still resolves; only its closing message stays.
        gate::Verdict::Block(block) if origin == Origin::Closing => {
            let reason = match block {
                gate::Block::NoConsent { .. } => "no_consent",
                gate::Block::WindowClosed { .. } => "window_closed",
            };
            approval::drop_blocked(change, state, reason);
            Ok(())
        }
        gate::Verdict::Block(gate::Block::NoConsent { purpose }) => {
            Err(ConversationError::ConsentWithdrawn {
                purpose: purpose.as_str(),
            })
        }
        gate::Verdict::Block(gate::Block::WindowClosed { closed_at }) => {
            Err(ConversationError::WindowClosed {
                conversation_id: case.id,
                closed_at,
            })
        }
        gate::Verdict::Hold(hold) => {
            approval::hold(change, state, hold);
            Ok(())
        }
    }
}

/// The contact's consent to `purpose`: read from the ledger (every purpose at once) the
/// first time this actor needs it, then kept in its state until it changes. A contact
/// Parley has not stored yet has the purpose's default.
async fn consent_for(
    store: &Store,
    state: &mut ActorState,
    purpose: Purpose,
) -> Result<bool, StoreError> {
    if state.consent.is_none()
        && let Some(contact_id) = state.contact_id
    {
        let current = store.consent_of(contact_id).await?;
        state.consent = Some(Purpose::ALL.map(|p| {
            current
                .iter()
                .find(|c| c.purpose == p)
                .is_some_and(|c| c.granted)
        }));
    }
    Ok(
        match (
            &state.consent,
            Purpose::ALL.iter().position(|p| *p == purpose),
        ) {
            (Some(flags), Some(i)) => flags[i],
            _ => purpose.granted_by_default(),
        },
    )
}

/// Writes a customer's STOP/START keyword to the consent ledger (and the audit log).
async fn record_keyword(
    store: &Store,
    key: &ConversationKey,
    (request, keyword): (KeywordRequest, &'static str),
    message_ref: String,
    now: Micros,
) -> Result<(), ConversationError> {
    let recorded = store
        .write(RecordConsent {
            contact: ConsentContact::WaId(key.wa_id.clone()),
            purposes: request.purposes().to_vec(),
            granted: request.granted(),
            source: "keyword",
            detail: Some(keyword.to_owned()),
            message_ref: Some(message_ref),
            actor: Who::Customer.label(),
            at: now,
        })
        .await?;
    recorded.map_err(|e| ConversationError::Store(e.to_string()))?;
    Ok(())
}

/// Intents remembered per contact for repeat-contact detection.
const REMEMBERED_INTENTS: usize = 32;

fn remember_intents(state: &mut ActorState, conversation: &conversation::Model, now: Micros) {
    let Some(triage) = conversation.triage.as_deref() else {
        return;
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(triage) else {
        return;
    };
    for intent in value["intents"].as_array().into_iter().flatten() {
        if let Some(label) = intent["label"].as_str() {
            state.recent_intents.push((label.to_owned(), now));
        }
    }
    let excess = state
        .recent_intents
        .len()
        .saturating_sub(REMEMBERED_INTENTS);
    state.recent_intents.drain(..excess);
}

impl Handler<CustomerMessageArrived> for ConversationActor {
    type Result = AtomicResponse<Self, Result<Stepped, ConversationError>>;

    fn handle(&mut self, msg: CustomerMessageArrived, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(parent: &msg.span, "conversation.apply", kind = msg.message.kind.as_str());
        let key = self.key.clone();
        let reopen_window = self.deps.reopen_window;
        let routing = self.deps.routing.clone();
        let engine = routing.engine.current();
        let noise = engine.policy.noise();
        let now = self.deps.clock.now();
        let rate_limited =
            self.rate
                .exceeded(now, noise.rate_limit_messages, noise.rate_limit_window_secs);
        let message = msg.message.clone();
        let received_at = msg.received_at;
        let connectors = &self.deps.connectors;
        let blocked = routing.noise.is_blocked(&key.wa_id);
        let keyword = msg.message.text.as_deref().and_then(keyword_request);
        let spam = || {
            noise.suppress_spam
                && msg
                    .message
                    .text
                    .as_deref()
                    .is_some_and(|t| crate::triage::noise::spam_score(t).is_spam())
        };
        let connect = Connect {
            // Noise the filter will set aside costs no CRM call: blocked, over the rate
            // limit, or spam by its text.
            crm: connectors.has_crm() && !rate_limited && !blocked && !spam(),
            orders: connectors.has_orders(),
            consent: keyword.filter(|_| !blocked).map(|(request, keyword)| {
                let message_ref = format!("{}:{}", key.channel_id, msg.message.provider_message_id);
                (request, keyword, message_ref)
            }),
            sends: None,
        };
        let stepped = self.step_plan(span, Some(msg.committed), connect, move |state, now| {
            Ok(triage::plan_arrival(triage::Arrival {
                state,
                key: &key,
                message: &message,
                received_at,
                now,
                reopen_window,
                rate_limited,
                keyword,
                routing: &routing,
                engine: &engine,
            }))
        });
        AtomicResponse::new(stepped)
    }
}

impl Handler<SendReply> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SendReply, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!("conversation.reply", conversation_id = msg.conversation_id);
        let presence = self.deps.routing.presence.clone();
        self.step(span, Connect::default(), move |state, now| {
            let supervisor = msg.authority == lifecycle::ReplyAuthority::Supervisor;
            if !(msg.force && supervisor)
                && let Some(typing) =
                    presence.typing_other_than(msg.conversation_id, msg.agent_id, now)
            {
                return Err(ConversationError::Collision {
                    agent_id: typing.agent_id,
                    agent_name: typing.agent_name,
                });
            }
            lifecycle::plan_reply(
                state,
                &key,
                msg.conversation_id,
                &msg.text,
                lifecycle::Replier {
                    actor: &msg.by,
                    agent_id: msg.agent_id,
                    authority: msg.authority,
                },
                now,
            )
            .map(|mut change| {
                if let Some(outbox) = change.outbox.as_mut() {
                    outbox.origin = msg.origin;
                }
                change
            })
        })
    }
}

impl Handler<SendTemplate> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SendTemplate, _: &mut Self::Context) -> Self::Result {
        let key = self.key.clone();
        let span = tracing::info_span!(
            "conversation.template",
            conversation_id = msg.conversation_id,
            template = %msg.template.name
        );
        self.step(span, Connect::default(), move |state, now| {
            let mut change = lifecycle::plan_template(
                state,
                &key,
                msg.conversation_id,
                &msg.template,
                lifecycle::Replier {
                    actor: &msg.by,
                    agent_id: msg.agent_id,
                    authority: msg.authority,
                },
                now,
            )?;
            if let Some(outbox) = change.outbox.as_mut() {
                outbox.origin = msg.origin;
            }
            Ok(change)
        })
    }
}

impl Handler<DecideHeld> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: DecideHeld, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.approval",
            conversation_id = msg.held.conversation_id,
            held_id = msg.held.id
        );
        let connect = Connect {
            sends: matches!(msg.decision, approval::Decision::Approve { .. })
                .then(|| Purpose::parse(&msg.held.purpose))
                .flatten(),
            ..Connect::default()
        };
        self.step(span, connect, move |state, now| {
            approval::plan_decision(state, &msg.held, &msg.decision, &msg.by, msg.role, now)
        })
    }
}

impl Handler<AssignConversation> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AssignConversation, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.assign", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            let plan = lifecycle::AssignmentPlan {
                agent_id: msg.agent_id,
                team_id: msg.team_id,
                explanation: msg.explanation.as_ref(),
                if_unassigned: msg.explanation.is_some(),
            };
            lifecycle::plan_assignment(state, msg.conversation_id, plan, &msg.by, now)
        })
    }
}

impl Handler<ChangeStatus> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: ChangeStatus, _: &mut Self::Context) -> Self::Result {
        let span =
            tracing::info_span!("conversation.status", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            lifecycle::plan_status_change(state, msg.conversation_id, msg.to, &msg.by, now)
        })
    }
}

impl Handler<AddNote> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: AddNote, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!("conversation.note", conversation_id = msg.conversation_id);
        self.step(span, Connect::default(), move |state, now| {
            lifecycle::plan_note(state, msg.conversation_id, &msg.body, &msg.by, now)
        })
    }
}

impl Handler<SlaCheck> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: SlaCheck, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!(
            "conversation.sla_check",
            conversation_id = msg.conversation_id
        );
        let routing = self.deps.routing.clone();
        let timers = self.deps.timers.clone();
        let key = self.key.clone();
        self.step(span, Connect::default(), move |state, now| {
            let engine = routing.engine.current();
            crate::sla::clock_change(
                state,
                &key,
                msg.conversation_id,
                &engine,
                &timers,
                msg.surveys_allowed,
                now,
            )
            .ok_or(ConversationError::Closed(msg.conversation_id))
        })
    }
}

impl Handler<Escalate> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, msg: Escalate, _: &mut Self::Context) -> Self::Result {
        let span = tracing::info_span!("conversation.escalate", conversation_id = msg.conversation_id, trigger = %msg.trigger);
        let routing = self.deps.routing.clone();
        self.step(span, Connect::default(), move |state, now| {
            let live = lifecycle::live_case(state, msg.conversation_id)?;
            let ledger = crate::sla::ledger::SlaLedger::from_json(live.sla.as_deref());
            if msg.once && ledger.escalated_for(&msg.trigger) {
                return Err(ConversationError::AlreadyEscalated {
                    conversation_id: live.id,
                    trigger: msg.trigger.clone(),
                });
            }
            let engine = routing.engine.current();
            let from_team = live.team_id.and_then(|id| engine.team_name(id));
            let from_level = from_team.map_or(1, |t| engine.sla.escalation.level(t));
            let (next, data) =
                crate::sla::escalation::plan_escalation(live, &msg, from_team, from_level);
            let mut change = lifecycle::unchanged(state, next, now);
            change.events.push(crate::store::conversations::NewEvent {
                kind: "escalated",
                data,
                actor: msg.by.label(),
            });
            Ok(change)
        })
    }
}

impl Handler<InjectPanic> for ConversationActor {
    type Result = AtomicResponse<Self, Result<ChangeApplied, ConversationError>>;

    fn handle(&mut self, _: InjectPanic, _: &mut Self::Context) -> Self::Result {
        self.step(tracing::Span::current(), Connect::default(), |_, _| {
            panic!("injected failure")
        })
    }
}
