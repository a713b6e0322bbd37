//! The router actor: the one place that knows every agent's load and every team's queue,
//! and gives unowned cases to agents.
//!
//! Conversation actors tell it about every change they commit ([`CaseUpdated`]); the API
//! tells it about agents ([`AgentUpdated`]). When a case needs an agent it asks the policy
//! ([`select::route`]) with the team's agents as they are now, reserves the chosen agent's
//! capacity at once (so two cases never take the last slot), and sends the assignment to the
//! case's conversation actor, which records it with the explanation. A case nobody can take
//! waits in its team's queue and is assigned the moment capacity frees up: an agent resolves
//! a case, comes online or gets more capacity, or the team opens.
//!
//! Its state is rebuilt from the store at start-up (open cases, their assignees and
//! triage), so a restart loses no queue.

use crate::actors::Conversations;
use crate::actors::conversation::AssignConversation;
use crate::clock::SharedClock;
use crate::domain::{Actor as Who, ConversationKey, Micros, Priority, TicketStatus};
use crate::policy::PolicyHandle;
use crate::routing::select::{self, AgentView, CaseNeeds, Presence, RouteAction, RouteOutcome};
use crate::store::Store;
use crate::store::entities::{agent, conversation};
use crate::telemetry::metrics;
use actix::prelude::*;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// What routing needs to know about a case, kept with its triage (`conversations.triage`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RoutingNeeds {
    pub language: Option<String>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub vip: bool,
    /// Automation holds the case (suppressed or answered by a bot): no agent needed.
    #[serde(default)]
    pub no_agent: bool,
}

impl RoutingNeeds {
    fn case_needs(&self) -> CaseNeeds {
        CaseNeeds {
            language: self.language.clone(),
            skills: self.skills.clone(),
            vip: self.vip,
        }
    }
}

/// A committed change to a case, as its conversation actor saw it.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct CaseUpdated {
    pub key: ConversationKey,
    pub conversation: conversation::Model,
    /// Set when the change carried a new triage decision.
    pub needs: Option<RoutingNeeds>,
}

/// An agent was created or changed (presence, capacity, skills, team).
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct AgentUpdated(pub agent::Model);

/// Attach the registry assignments are sent through (it starts after the router).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachRegistry(pub Conversations);

/// Who would get a case of `team` with these needs now, without assigning it.
#[derive(Message)]
#[rtype(result = "Option<RouteOutcome>")]
pub struct ExplainRoute {
    pub team: String,
    pub needs: CaseNeeds,
}

/// Queue lengths and waiting reasons per team.
#[derive(Message)]
#[rtype(result = "Vec<QueueReport>")]
pub struct QueueSnapshot;

#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub team: String,
    pub waiting: usize,
    pub oldest_since: Option<Micros>,
    /// Why the case at the head of the queue is waiting.
    pub reason: Option<String>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct AssignmentFinished {
    conversation_id: i64,
    agent_id: i64,
    ok: bool,
    /// When the capacity that made the assignment possible was freed (queued cases).
    freed_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct Case {
    key: ConversationKey,
    team_id: Option<i64>,
    assignee: Option<i64>,
    status: TicketStatus,
    priority: Priority,
    needs: RoutingNeeds,
    /// An assignment is on its way to the conversation actor.
    assigning: Option<i64>,
    queued_since: Option<Micros>,
    waiting_reason: Option<String>,
}

impl Case {
    fn active(&self) -> bool {
        !matches!(self.status, TicketStatus::Resolved | TicketStatus::Closed)
    }

    fn wants_agent(&self) -> bool {
        self.active()
            && self.assignee.is_none()
            && self.assigning.is_none()
            && self.team_id.is_some()
            && !self.needs.no_agent
    }

    /// Whose capacity the case takes.
    fn holder(&self) -> Option<i64> {
        if self.active() {
            self.assigning.or(self.assignee)
        } else {
            None
        }
    }
}

pub struct RouterActor {
    engine: PolicyHandle,
    store: Store,
    clock: SharedClock,
    registry: Option<Conversations>,
    agents: HashMap<i64, agent::Model>,
    /// Open cases. Changed only through [`RouterActor::put`], which keeps `loads` and
    /// `queues` in step, so no event ever scans every case.
    cases: HashMap<i64, Case>,
    /// Cases held (assigned or being assigned) per agent.
    loads: HashMap<i64, u32>,
    /// Cases waiting for an agent per team, most urgent then oldest first.
    queues: HashMap<i64, BTreeSet<QueueKey>>,
    /// When capacity last freed, per team, for the assignment-latency metric.
    freed: HashMap<i64, Instant>,
}

/// Order of a team's queue: priority (most urgent first), then waiting time, then id.
type QueueKey = (Reverse<Priority>, Micros, i64);

fn queue_key(id: i64, case: &Case) -> QueueKey {
    (Reverse(case.priority), case.queued_since.unwrap_or(0), id)
}

/// How often queues are looked at even without an event (teams opening).
const RECONSIDER_EVERY: Duration = Duration::from_secs(5);

/// Cases of one team looked at per event: when the first ones cannot be placed, the rest
/// (less urgent, younger) are unlikely to be, and an event must stay cheap. Anything left
/// is looked at again at the next event or the periodic pass.
const ATTEMPTS_PER_TEAM: usize = 64;
const MISSES_PER_TEAM: usize = 8;

fn has_room(agent: &AgentView) -> bool {
    agent.presence == Presence::Online && agent.load < agent.capacity
}

impl RouterActor {
    /// Loads agents and open cases from the store.
    /// A router that loads the agents and every open case from the store as its first
    /// act: it takes no message until they are in, but Parley's start does not wait for
    /// them (with a million open cases that takes a while, and the intake, the SLA clock
    /// and the conversation actors need not wait).
    pub fn new(engine: PolicyHandle, store: Store, clock: SharedClock) -> Self {
        Self {
            engine,
            store,
            clock,
            registry: None,
            agents: HashMap::new(),
            cases: HashMap::new(),
            loads: HashMap::new(),
            queues: HashMap::new(),
            freed: HashMap::new(),
        }
    }

    fn begin_load(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let load = async move {
            let agents = store.agents().await?;
            let open = store.open_conversations().await?;
            Ok::<_, crate::store::StoreError>((agents, open))
        };
        let started = std::time::Instant::now();
        ctx.wait(load.into_actor(self).map(move |loaded, act, ctx| match loaded {
            Ok((agents, open)) => {
                act.agents = agents.into_iter().map(|a| (a.id, a)).collect();
                let cases = open.len();
                for (conversation, wa_id) in open {
                    let key = ConversationKey {
                        channel_id: conversation.channel_id.clone(),
                        phone_number_id: conversation.phone_number_id.clone(),
                        wa_id,
                    };
                    let needs = needs_of(&conversation).unwrap_or_default();
                    act.put(conversation.id, Some(case_of(key, &conversation, needs)));
                }
                tracing::info!(
                    cases,
                    seconds = started.elapsed().as_secs_f64(),
                    "Router loaded agents and open cases."
                );
            }
            Err(error) => {
                tracing::error!(error = %error, "The router could not load agents and open cases; trying again in a second.");
                ctx.run_later(std::time::Duration::from_secs(1), |act, ctx| {
                    act.begin_load(ctx)
                });
            }
        }));
    }

    /// Replaces (or with `None` removes) a case, keeping loads and queues in step.
    fn put(&mut self, id: i64, case: Option<Case>) {
        if let Some(old) = self.cases.remove(&id) {
            if let Some(holder) = old.holder()
                && let Some(load) = self.loads.get_mut(&holder)
            {
                *load = load.saturating_sub(1);
            }
            if old.wants_agent()
                && let Some(queue) = old.team_id.and_then(|t| self.queues.get_mut(&t))
            {
                queue.remove(&queue_key(id, &old));
            }
        }
        let Some(case) = case.filter(Case::active) else {
            return;
        };
        if let Some(holder) = case.holder() {
            *self.loads.entry(holder).or_default() += 1;
        }
        if case.wants_agent()
            && let Some(team) = case.team_id
        {
            self.queues
                .entry(team)
                .or_default()
                .insert(queue_key(id, &case));
        }
        self.cases.insert(id, case);
    }

    /// Every agent as the policy sees it now.
    fn views(&self) -> Vec<AgentView> {
        let engine = self.engine.current();
        self.agents
            .values()
            .filter_map(|a| {
                let team = engine.team_name(a.team_id?)?;
                Some(AgentView {
                    id: a.id,
                    name: a.name.clone(),
                    team: team.to_owned(),
                    skills: serde_json::from_str(&a.skills).unwrap_or_default(),
                    languages: serde_json::from_str(&a.languages).unwrap_or_default(),
                    capacity: u32::try_from(a.capacity.max(0)).unwrap_or(0),
                    load: self.loads.get(&a.id).copied().unwrap_or(0),
                    presence: presence_of(&a.presence),
                    senior: a.senior,
                    last_assigned_at: a.last_assigned_at,
                })
            })
            .collect()
    }

    /// Tries to give the waiting cases of `team_id` (all teams when `None`) an agent.
    fn drain(&mut self, team_id: Option<i64>, ctx: &mut Context<Self>) {
        let teams: Vec<i64> = match team_id {
            Some(team) => vec![team],
            None => self.queues.keys().copied().collect(),
        };
        if teams.is_empty() {
            return;
        }
        let mut agents = self.views();
        // Nobody anywhere can take a case: nothing to try (the common state of a busy
        // queue; why each case waits is worked out when someone asks).
        if !agents.iter().any(has_room) {
            return;
        }
        for team in teams {
            self.drain_team(team, &mut agents, ctx);
        }
    }

    /// Gives waiting cases of one team an agent, most urgent and oldest first: at most
    /// [`ATTEMPTS_PER_TEAM`] cases, and it stops after [`MISSES_PER_TEAM`] in a row that
    /// nobody can take (the rest are less urgent or younger and would wait too).
    fn drain_team(&mut self, team_id: i64, agents: &mut [AgentView], ctx: &mut Context<Self>) {
        let Some(registry) = self.registry.clone() else {
            return;
        };
        let waiting: Vec<i64> = self
            .queues
            .get(&team_id)
            .map(|q| q.iter().take(ATTEMPTS_PER_TEAM).map(|k| k.2).collect())
            .unwrap_or_default();
        let engine = self.engine.current();
        let now = self.clock.now();
        let mut misses = 0;
        for conversation_id in waiting {
            if misses >= MISSES_PER_TEAM || !agents.iter().any(has_room) {
                break;
            }
            let Some(case) = self.cases.get(&conversation_id) else {
                continue;
            };
            let Some(team) = case
                .team_id
                .and_then(|id| engine.team_name(id))
                .map(str::to_owned)
            else {
                continue;
            };
            let outcome = select::route(
                &engine.routing,
                &team,
                &case.needs.case_needs(),
                agents,
                now,
            );
            tracing::debug!(conversation_id, team = %team, action = ?outcome.action, "Routed a case.");
            match &outcome.action {
                RouteAction::Assign(agent_id) => {
                    let agent_id = *agent_id;
                    let mut case = case.clone();
                    case.assigning = Some(agent_id);
                    let target_team = engine.team_id(&outcome.team).or(case.team_id);
                    let freed_at = case
                        .queued_since
                        .and(case.team_id)
                        .and_then(|t| self.freed.get(&t).copied());
                    let key = case.key.clone();
                    self.put(conversation_id, Some(case));
                    if let Some(agent) = self.agents.get_mut(&agent_id) {
                        agent.last_assigned_at = now;
                    }
                    if let Some(view) = agents.iter_mut().find(|a| a.id == agent_id) {
                        view.load += 1;
                        view.last_assigned_at = now;
                    }
                    let request = AssignConversation {
                        conversation_id,
                        agent_id: Some(agent_id),
                        team_id: target_team,
                        by: Who::System,
                        authority: crate::domain::Authority::System,
                        explanation: serde_json::to_value(&outcome).ok(),
                    };
                    let registry = registry.clone();
                    let store = self.store.clone();
                    let me = ctx.address();
                    tokio::spawn(async move {
                        let ok = registry.ask(&key, request).await.is_ok();
                        if ok && let Err(error) = store.touch_agent_assigned(agent_id, now).await {
                            tracing::warn!(error = %error, agent_id, "Could not record the assignment time.");
                        }
                        me.do_send(AssignmentFinished {
                            conversation_id,
                            agent_id,
                            ok,
                            freed_at,
                        });
                    });
                }
                RouteAction::Queue { reason } | RouteAction::HoldForBot { reason } => {
                    misses += 1;
                    // Not part of the queue key: safe to change in place.
                    if let Some(case) = self.cases.get_mut(&conversation_id) {
                        case.waiting_reason = Some(reason.clone());
                    }
                }
            }
        }
    }

    fn route(&self, team: &str, needs: &CaseNeeds, now: Micros) -> RouteOutcome {
        let engine = self.engine.current();
        select::route(&engine.routing, team, needs, &self.views(), now)
    }

    fn capacity_freed(&mut self, team_id: Option<i64>) {
        if let Some(team_id) = team_id {
            self.freed.insert(team_id, Instant::now());
        }
    }
}

fn presence_of(text: &str) -> Presence {
    match text {
        "online" => Presence::Online,
        "away" => Presence::Away,
        _ => Presence::Offline,
    }
}

fn needs_of(conversation: &conversation::Model) -> Option<RoutingNeeds> {
    let triage: serde_json::Value = serde_json::from_str(conversation.triage.as_deref()?).ok()?;
    serde_json::from_value(triage.get("needs")?.clone()).ok()
}

fn case_of(key: ConversationKey, c: &conversation::Model, needs: RoutingNeeds) -> Case {
    Case {
        key,
        team_id: c.team_id,
        assignee: c.assignee_id,
        status: TicketStatus::parse(&c.status).unwrap_or(TicketStatus::Created),
        priority: Priority::parse(&c.priority).unwrap_or(Priority::Medium),
        needs,
        assigning: None,
        queued_since: (c.assignee_id.is_none()).then_some(c.last_activity_at),
        waiting_reason: None,
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.begin_load(ctx);
        ctx.run_interval(RECONSIDER_EVERY, |act, ctx| act.drain(None, ctx));
    }
}

impl Handler<AttachRegistry> for RouterActor {
    type Result = ();
    fn handle(&mut self, msg: AttachRegistry, ctx: &mut Self::Context) {
        self.registry = Some(msg.0);
        self.drain(None, ctx);
    }
}

impl Handler<CaseUpdated> for RouterActor {
    type Result = ();
    fn handle(&mut self, msg: CaseUpdated, ctx: &mut Self::Context) {
        let id = msg.conversation.id;
        let previous = self.cases.get(&id).cloned();
        let needs = msg
            .needs
            .or_else(|| previous.as_ref().map(|c| c.needs.clone()))
            .unwrap_or_default();
        let mut case = case_of(msg.key, &msg.conversation, needs);
        let now = self.clock.now();
        case.queued_since = match &previous {
            _ if case.assignee.is_some() => None,
            Some(previous) => previous.queued_since.or(Some(now)),
            None => Some(now),
        };
        if let Some(previous) = &previous {
            // An assignment in flight is still ours until its answer arrives.
            if case.assignee.is_none() {
                case.assigning = previous.assigning;
            }
            case.waiting_reason = previous.waiting_reason.clone();
        }
        let freed = previous
            .as_ref()
            .and_then(Case::holder)
            .filter(|holder| case.holder() != Some(*holder));
        let team = case.team_id;
        let wants_agent = case.wants_agent();
        self.put(id, Some(case));
        let freed_team = freed.map(|agent_id| self.agents.get(&agent_id).and_then(|a| a.team_id));
        if let Some(freed_team) = freed_team {
            self.capacity_freed(freed_team);
            self.drain(freed_team, ctx);
        }
        if wants_agent && freed_team != Some(team) {
            self.drain(team, ctx);
        }
    }
}

impl Handler<AgentUpdated> for RouterActor {
    type Result = ();
    fn handle(&mut self, msg: AgentUpdated, ctx: &mut Self::Context) {
        let agent = msg.0;
        let team = agent.team_id;
        let previous_team = self.agents.get(&agent.id).and_then(|a| a.team_id);
        self.agents.insert(agent.id, agent);
        self.capacity_freed(team);
        self.drain(team, ctx);
        if previous_team != team {
            self.drain(previous_team, ctx);
        }
    }
}

impl Handler<AssignmentFinished> for RouterActor {
    type Result = ();
    fn handle(&mut self, msg: AssignmentFinished, ctx: &mut Self::Context) {
        let mut team = None;
        if let Some(case) = self.cases.get(&msg.conversation_id)
            && case.assigning == Some(msg.agent_id)
        {
            let mut case = case.clone();
            case.assigning = None;
            if msg.ok {
                case.assignee = case.assignee.or(Some(msg.agent_id));
                case.queued_since = None;
            }
            team = case.team_id;
            self.put(msg.conversation_id, Some(case));
        }
        if msg.ok {
            metrics().router_assignments.inc();
            if let Some(freed_at) = msg.freed_at {
                metrics()
                    .router_assignment_seconds
                    .observe(freed_at.elapsed().as_secs_f64());
            }
        } else {
            // The case moved on (closed, reassigned) or its actor failed: the capacity is
            // back; look again.
            self.drain(team, ctx);
        }
    }
}

impl Handler<ExplainRoute> for RouterActor {
    type Result = Option<RouteOutcome>;
    fn handle(&mut self, msg: ExplainRoute, _: &mut Self::Context) -> Self::Result {
        let engine = self.engine.current();
        engine.team_id(&msg.team)?;
        Some(self.route(&msg.team, &msg.needs, self.clock.now()))
    }
}

impl Handler<QueueSnapshot> for RouterActor {
    type Result = MessageResult<QueueSnapshot>;
    fn handle(&mut self, _: QueueSnapshot, _: &mut Self::Context) -> Self::Result {
        let engine = self.engine.current();
        let mut out: Vec<QueueReport> = self
            .queues
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(team_id, queue)| {
                let oldest = queue.iter().min_by_key(|k| (k.1, k.2));
                QueueReport {
                    team: engine.team_name(*team_id).unwrap_or("unknown").to_owned(),
                    waiting: queue.len(),
                    oldest_since: oldest.map(|k| k.1),
                    reason: oldest.and_then(|k| self.cases.get(&k.2)).map(|c| {
                        c.waiting_reason.clone().unwrap_or_else(|| {
                            let team = engine.team_name(*team_id).unwrap_or_default();
                            match self
                                .route(team, &c.needs.case_needs(), self.clock.now())
                                .action
                            {
                                RouteAction::Queue { reason }
                                | RouteAction::HoldForBot { reason } => reason,
                                RouteAction::Assign(_) => "an agent is free; assigning".to_owned(),
                            }
                        })
                    }),
                }
            })
            .collect();
        out.sort_by(|a, b| a.team.cmp(&b.team));
        MessageResult(out)
    }
}
