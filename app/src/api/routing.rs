//! GraphQL for triage, routing and the noise filter: explaining a decision, the queues,
//! agents' routing profiles and status, presence (collision detection), the noise ledger,
//! and reloading the rules. Contacts (blocking, VIP, consent, erasure) are in
//! [`super::contacts`].

use super::types::{Agent, AgentStatus, id_of, page_size};
use super::{api, directory_error, principal};
use crate::clock::micros_to_datetime;
use crate::domain::{Micros, Permission, SECOND_MICROS};
use crate::error::{ApiError, ErrorCode};
use crate::policy::loader::{self as reload, LoadedPolicies};
use crate::policy::routing::ReviewReason;
use crate::routing::presence::{Presence, PresenceState};
use crate::routing::router::{AgentUpdated, ExplainRoute, QueueSnapshot};
use crate::routing::select::{CaseNeeds, RouteAction, RouteOutcome};
use crate::store::directory::{AgentProfile, UpdateAgent};
use crate::triage::noise::{is_acknowledgement, spam_score};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;

/// A tag value and how sure triage is of it.
#[derive(SimpleObject)]
pub struct ScoredTag {
    pub label: String,
    pub confidence: f64,
}

fn scored(tags: &[crate::triage::Scored]) -> Vec<ScoredTag> {
    tags.iter()
        .map(|s| ScoredTag {
            label: s.label.clone(),
            confidence: f64::from(s.confidence),
        })
        .collect()
}

/// A rule that matched, and what it contributed.
#[derive(SimpleObject)]
pub struct MatchedRule {
    pub name: String,
    /// Line of the rule in the routing file.
    pub line: i32,
    /// The conditions it matched on.
    pub matched_on: Vec<String>,
    /// What it asked for (owner, priority, review, ...), in words.
    pub contributed: Vec<String>,
}

/// The matched rules of a decision, as the API shows them.
pub fn matched_rules(matched: &[crate::policy::routing::MatchedRule]) -> Vec<MatchedRule> {
    matched
        .iter()
        .map(|m| MatchedRule {
            name: m.name.clone(),
            line: i32::try_from(m.line).unwrap_or(i32::MAX),
            matched_on: m.matched_on.clone(),
            contributed: m.contributed.iter().map(ToString::to_string).collect(),
        })
        .collect()
}

/// One agent the router considered, and why they were or were not chosen.
#[derive(SimpleObject)]
pub struct CandidateAgent {
    pub agent_id: ID,
    pub name: String,
    pub eligible: bool,
    pub chosen: bool,
    pub reasons: Vec<String>,
    pub score: f64,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum RouteActionKind {
    /// An agent gets the case now.
    Assign,
    /// The case waits in the team's queue (nobody can take it yet, or the team is closed).
    Queue,
    /// Automation holds the case (the team is closed and says so).
    HoldForBot,
}

/// Where the case goes within its team.
#[derive(SimpleObject)]
pub struct RoutingExplanation {
    /// The team that would take the case (after hours and VIP redirection).
    pub team: String,
    pub action: RouteActionKind,
    pub agent_id: Option<ID>,
    pub reason: Option<String>,
    pub steps: Vec<String>,
    pub candidates: Vec<CandidateAgent>,
}

impl From<RouteOutcome> for RoutingExplanation {
    fn from(outcome: RouteOutcome) -> Self {
        let (action, agent_id, reason) = match outcome.action {
            RouteAction::Assign(id) => (RouteActionKind::Assign, Some(ID(id.to_string())), None),
            RouteAction::Queue { reason } => (RouteActionKind::Queue, None, Some(reason)),
            RouteAction::HoldForBot { reason } => (RouteActionKind::HoldForBot, None, Some(reason)),
        };
        Self {
            team: outcome.team,
            action,
            agent_id,
            reason,
            steps: outcome.steps,
            candidates: outcome
                .candidates
                .into_iter()
                .map(|c| CandidateAgent {
                    agent_id: ID(c.agent_id.to_string()),
                    name: c.name,
                    eligible: c.eligible,
                    chosen: c.chosen,
                    reasons: c.reasons,
                    score: c.score,
                })
                .collect(),
        }
    }
}

/// What the noise filter thinks of the text alone.
#[derive(SimpleObject)]
pub struct NoiseAssessment {
    pub spam: bool,
    pub spam_score: f64,
    pub spam_reasons: Vec<String>,
    /// "ok", "thanks", "?": closes a resolved case instead of reopening it.
    pub acknowledgement: bool,
}

/// Everything triage and routing would decide for a message, and why.
#[derive(SimpleObject)]
pub struct TriageExplanation {
    pub intents: Vec<ScoredTag>,
    pub urgency: ScoredTag,
    pub risks: Vec<ScoredTag>,
    pub language: ScoredTag,
    pub tones: Vec<ScoredTag>,
    pub low_confidence: bool,
    /// The best intents whatever their confidence, for a reviewer.
    pub candidate_intents: Vec<ScoredTag>,
    /// Facts about the customer: vip_customer, repeat_contact.
    pub context: Vec<String>,
    pub matched_rules: Vec<MatchedRule>,
    pub owner: String,
    pub watchers: Vec<String>,
    pub priority: String,
    /// Urgency after the rules.
    pub decided_urgency: String,
    pub review: String,
    pub review_reason: String,
    pub skills: Vec<String>,
    pub suppress: Option<String>,
    pub reasons: Vec<String>,
    pub noise: NoiseAssessment,
    /// Who would get it now (none when the owner team has no database row yet).
    pub routing: Option<RoutingExplanation>,
}

#[derive(SimpleObject)]
pub struct QueueInfo {
    pub team: String,
    pub waiting: i32,
    pub oldest_since: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(SimpleObject)]
pub struct SuppressionCount {
    pub reason: String,
    pub count: i64,
}

/// How much of what customers sent the noise filter kept away from people.
#[derive(SimpleObject)]
pub struct NoiseStats {
    pub since: DateTime<Utc>,
    /// Customer messages received (stored on a case or recorded as noise only).
    pub inbound: i64,
    pub suppressed: i64,
    /// suppressed / inbound, in percent.
    pub noise_filtered_percent: f64,
    pub by_reason: Vec<SuppressionCount>,
}

#[derive(SimpleObject)]
pub struct Suppression {
    pub id: ID,
    pub channel_id: String,
    pub wa_id: String,
    pub provider_message_id: Option<String>,
    pub conversation_id: Option<ID>,
    pub cluster_id: Option<ID>,
    pub reason: String,
    pub detail: Option<String>,
    pub excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Near-identical texts from many numbers, one item for trust and safety.
#[derive(SimpleObject)]
pub struct NoiseCluster {
    pub id: ID,
    pub sample: String,
    pub reason: String,
    pub contacts: i32,
    pub messages: i32,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[derive(SimpleObject)]
pub struct RoutingTeam {
    pub id: String,
    pub name: String,
    pub strategy: String,
    pub languages: Vec<String>,
    pub skills: Vec<String>,
    pub time_zone: String,
    pub open_now: bool,
}

#[derive(SimpleObject)]
pub struct RoutingRule {
    pub name: String,
    pub line: i32,
}

/// The taxonomy and rules in force.
#[derive(SimpleObject)]
pub struct RoutingPolicyInfo {
    pub triage_sha256: String,
    pub rules_sha256: String,
    /// The approval boundaries in force (`config/approvals.toml`).
    pub approvals_sha256: String,
    /// How many approval boundaries are in force.
    pub approval_boundaries: i32,
    pub loaded_at: DateTime<Utc>,
    pub intents: Vec<String>,
    pub teams: Vec<RoutingTeam>,
    pub rules: Vec<RoutingRule>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum PresenceKind {
    Viewing,
    Typing,
}

#[derive(SimpleObject, Clone)]
pub struct AgentPresence {
    pub agent_id: ID,
    pub agent_name: String,
    pub state: PresenceKind,
    pub since: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<Presence> for AgentPresence {
    fn from(p: Presence) -> Self {
        Self {
            agent_id: ID(p.agent_id.to_string()),
            agent_name: p.agent_name,
            state: match p.state {
                PresenceState::Viewing => PresenceKind::Viewing,
                PresenceState::Typing => PresenceKind::Typing,
            },
            since: micros_to_datetime(p.since),
            expires_at: micros_to_datetime(p.expires_at),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct ConversationPresence {
    pub conversation_id: ID,
    pub present: Vec<AgentPresence>,
}

/// Changes to an agent's routing profile; omitted fields stay as they are.
#[derive(InputObject, Default)]
pub struct UpdateAgentInput {
    pub team_id: Option<ID>,
    /// Take the agent out of their team.
    #[graphql(default)]
    pub clear_team: bool,
    pub skills: Option<Vec<String>>,
    pub languages: Option<Vec<String>>,
    pub capacity: Option<i32>,
    pub senior: Option<bool>,
}

/// Most conversations one agent may be given at once.
pub const MAX_CAPACITY: i32 = 100;

pub fn check_capacity(capacity: Option<i32>) -> Result<(), ApiError> {
    match capacity {
        Some(c) if !(0..=MAX_CAPACITY).contains(&c) => Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("capacity must be between 0 and {MAX_CAPACITY}"),
        )),
        _ => Ok(()),
    }
}

pub fn review_reason(reason: &ReviewReason) -> String {
    match reason {
        ReviewReason::LowConfidence => "low_confidence".into(),
        ReviewReason::Rule(rule) => format!("rule: {rule}"),
        ReviewReason::Default => "default: no rule allows automation".into(),
    }
}

fn loaded_info(ctx: &Context<'_>, _: Option<LoadedPolicies>) -> RoutingPolicyInfo {
    let routing = &api(ctx).routing;
    let engine = routing.engine.current();
    let now = api(ctx).clock.now();
    RoutingPolicyInfo {
        triage_sha256: engine.triage_sha256.clone(),
        rules_sha256: engine.routing_sha256.clone(),
        approvals_sha256: engine.approvals_sha256.clone(),
        approval_boundaries: engine.approvals.boundaries() as i32,
        loaded_at: micros_to_datetime(engine.loaded_at),
        intents: engine.classifier.intent_labels().to_vec(),
        teams: engine
            .routing
            .teams()
            .iter()
            .map(|t| RoutingTeam {
                id: t.id.clone(),
                name: t.name.clone(),
                strategy: t.strategy.as_str().to_owned(),
                languages: t.languages.clone(),
                skills: t.skills.clone(),
                time_zone: t.calendar.time_zone_name().to_owned(),
                open_now: t.calendar.is_open(now),
            })
            .collect(),
        rules: engine
            .routing
            .rules()
            .iter()
            .map(|r| RoutingRule {
                name: r.name().to_owned(),
                line: i32::try_from(r.line()).unwrap_or(i32::MAX),
            })
            .collect(),
    }
}

/// Writes an agent change and tells the router (a new status or capacity may let it
/// assign waiting cases at once).
pub(crate) async fn write_agent<O>(ctx: &Context<'_>, op: O) -> async_graphql::Result<Agent>
where
    O: crate::store::WriteOp<
            Output = Result<
                crate::store::entities::agent::Model,
                crate::store::directory::DirectoryError,
            >,
        >,
{
    let agent = api(ctx)
        .store
        .write(op)
        .await
        .map_err(ApiError::internal)?
        .map_err(directory_error)?;
    api(ctx).routing.router.do_send(AgentUpdated(agent.clone()));
    Ok(Agent(agent))
}

#[derive(Default)]
pub struct RoutingQuery;

#[Object]
impl RoutingQuery {
    /// What triage and routing would do with `text` from the contact `waId` (its VIP flag
    /// and recent history count), without storing anything.
    #[graphql(complexity = "super::types::COMPUTE_COST.saturating_add(child_complexity)")]
    async fn explain_triage(
        &self,
        ctx: &Context<'_>,
        text: String,
        wa_id: Option<String>,
    ) -> async_graphql::Result<TriageExplanation> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        if text.chars().count() > crate::domain::MAX_TEXT_CHARS * 4 {
            return Err(
                ApiError::new(ErrorCode::InvalidInput, "the text is too long to explain").into(),
            );
        }
        let a = api(ctx);
        let engine = a.routing.engine.current();
        let classification = engine.classify(&text);
        let mut context = Vec::new();
        if let Some(wa_id) = &wa_id {
            let history = a
                .store
                .contact_history(wa_id)
                .await
                .map_err(ApiError::internal)?;
            if history.vip {
                context.push("vip_customer".to_owned());
            }
            let window = i64::try_from(engine.routing.settings().repeat_contact_window_secs)
                .unwrap_or(i64::MAX / SECOND_MICROS)
                .saturating_mul(SECOND_MICROS);
            let now = a.clock.now();
            let repeat = classification.intents.iter().any(|i| {
                i.label != "greeting_or_thanks"
                    && history
                        .recent_intents
                        .iter()
                        .any(|(l, at)| *l == i.label && now.saturating_sub(*at) <= window)
            });
            if repeat {
                context.push("repeat_contact".to_owned());
            }
        }
        let vip = context.iter().any(|c| c == "vip_customer");
        let triaged = engine.decide(classification, context);
        let d = &triaged.decision;
        let needs = CaseNeeds {
            language: Some(triaged.tags.language.clone()),
            skills: d.skills.clone(),
            vip,
        };
        let routing = a
            .routing
            .router
            .send(ExplainRoute {
                team: d.owner.clone(),
                needs,
            })
            .await
            .map_err(|_| ApiError::new(ErrorCode::Unavailable, "the router is restarting; retry"))?
            .map(RoutingExplanation::from);
        let spam = spam_score(&text);
        let c = &triaged.classification;
        Ok(TriageExplanation {
            intents: scored(&c.intents),
            urgency: scored(std::slice::from_ref(&c.urgency)).remove(0),
            risks: scored(&c.risks),
            language: scored(std::slice::from_ref(&c.language)).remove(0),
            tones: scored(&c.tones),
            low_confidence: c.low_confidence,
            candidate_intents: scored(&c.candidates),
            context: triaged.tags.context.clone(),
            matched_rules: matched_rules(&d.matched),
            owner: d.owner.clone(),
            watchers: d.watchers.clone(),
            priority: d.priority.as_str().to_owned(),
            decided_urgency: d.urgency.clone(),
            review: d.review.as_str().to_owned(),
            review_reason: review_reason(&d.review_reason),
            skills: d.skills.clone(),
            suppress: d.suppress.clone(),
            reasons: d.reasons.clone(),
            noise: NoiseAssessment {
                spam: spam.is_spam(),
                spam_score: f64::from(spam.score),
                spam_reasons: spam
                    .reasons
                    .iter()
                    .map(|r| {
                        serde_json::to_value(r)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    })
                    .collect(),
                acknowledgement: is_acknowledgement(&text),
            },
            routing,
        })
    }

    /// Cases waiting for an agent, per team, with why the oldest is waiting.
    async fn routing_queues(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QueueInfo>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let queues = api(ctx)
            .routing
            .router
            .send(QueueSnapshot)
            .await
            .map_err(|_| {
                ApiError::new(ErrorCode::Unavailable, "the router is restarting; retry")
            })?;
        Ok(queues
            .into_iter()
            .map(|q| QueueInfo {
                team: q.team,
                waiting: i32::try_from(q.waiting).unwrap_or(i32::MAX),
                oldest_since: q.oldest_since.map(micros_to_datetime),
                reason: q.reason,
            })
            .collect())
    }

    /// The taxonomy and routing rules in force.
    async fn routing_policy(&self, ctx: &Context<'_>) -> async_graphql::Result<RoutingPolicyInfo> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        Ok(loaded_info(ctx, None))
    }

    /// The share of customer messages the noise filter kept from people, by reason.
    async fn noise_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 24)] since_hours: i32,
    ) -> async_graphql::Result<NoiseStats> {
        principal(ctx)?.require(Permission::ManageContacts)?;
        if since_hours <= 0 {
            return Err(
                ApiError::new(ErrorCode::InvalidInput, "sinceHours must be positive").into(),
            );
        }
        let since: Micros = api(ctx).clock.now() - i64::from(since_hours) * 3600 * SECOND_MICROS;
        let counts = api(ctx)
            .store
            .noise_counts(since)
            .await
            .map_err(ApiError::internal)?;
        let percent = if counts.inbound > 0 {
            counts.suppressed as f64 * 100.0 / counts.inbound as f64
        } else {
            0.0
        };
        Ok(NoiseStats {
            since: micros_to_datetime(since),
            inbound: counts.inbound,
            suppressed: counts.suppressed,
            noise_filtered_percent: percent,
            by_reason: counts
                .by_reason
                .into_iter()
                .map(|(reason, count)| SuppressionCount { reason, count })
                .collect(),
        })
    }

    /// Suppressed messages, newest first.
    #[graphql(complexity = "super::types::page_cost(first, child_complexity, 1)")]
    async fn suppressions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        before: Option<ID>,
        reason: Option<String>,
    ) -> async_graphql::Result<Vec<Suppression>> {
        principal(ctx)?.require(Permission::ManageContacts)?;
        let limit = page_size(ctx, first)?;
        let before = before
            .as_ref()
            .map(|id| id_of(id, "suppression"))
            .transpose()?;
        let rows = api(ctx)
            .store
            .suppressions_page(reason.as_deref(), before, limit)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows
            .into_iter()
            .map(|s| Suppression {
                id: ID(s.id.to_string()),
                channel_id: s.channel_id,
                wa_id: s.wa_id,
                provider_message_id: s.provider_message_id,
                conversation_id: s.conversation_id.map(|id| ID(id.to_string())),
                cluster_id: s.cluster_id.map(|id| ID(id.to_string())),
                reason: s.reason,
                detail: s.detail,
                excerpt: s.excerpt,
                created_at: micros_to_datetime(s.created_at),
            })
            .collect())
    }

    /// Near-duplicate waves (the same text from many numbers), latest first.
    async fn noise_clusters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<NoiseCluster>> {
        principal(ctx)?.require(Permission::ManageContacts)?;
        let limit = page_size(ctx, first)?;
        let rows = api(ctx)
            .store
            .noise_clusters(limit)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows
            .into_iter()
            .map(|c| NoiseCluster {
                id: ID(c.id.to_string()),
                sample: c.sample,
                reason: c.reason,
                contacts: c.contacts,
                messages: c.messages,
                first_seen_at: micros_to_datetime(c.first_seen_at),
                last_seen_at: micros_to_datetime(c.last_seen_at),
            })
            .collect())
    }

    /// Agents viewing or typing in a conversation now.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<Vec<AgentPresence>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let id = id_of(&conversation_id, "conversation")?;
        let now = api(ctx).clock.now();
        Ok(api(ctx)
            .routing
            .presence
            .present(id, now)
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct RoutingMutation;

#[Object]
impl RoutingMutation {
    /// Re-reads the taxonomy, the routing rules and the SLA policy. A file with a mistake
    /// is refused with its line (`invalid_config`) and the rules in force stay. Audited
    /// either way. Open cases follow the new SLA targets and calendars from then on.
    async fn reload_routing(&self, ctx: &Context<'_>) -> async_graphql::Result<RoutingPolicyInfo> {
        let who = principal(ctx)?;
        who.require(Permission::ManageRouting)?;
        let a = api(ctx);
        let result = reload::reload(
            &a.routing.engine,
            &a.routing.sources,
            &a.store,
            who.actor().label(),
            a.clock.now(),
        )
        .await;
        match result {
            Ok(loaded) => {
                a.relay
                    .invalidate(crate::cluster::bus::Invalidation::PoliciesReloaded);
                // Open cases are measured by the new targets and calendars from now on.
                if let Some(sla) = &a.sla {
                    sla.clock.do_send(crate::sla::deadlines::RecheckAll);
                }
                Ok(loaded_info(ctx, Some(loaded)))
            }
            Err(error) if error.is_invalid() => {
                Err(ApiError::new(ErrorCode::InvalidConfig, error.to_string()).into())
            }
            Err(other) => Err(ApiError::internal(other).into()),
        }
    }

    /// Changes an agent's team or routing profile (skills, languages, capacity, seniority).
    async fn update_agent(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateAgentInput,
    ) -> async_graphql::Result<Agent> {
        principal(ctx)?.require(Permission::ManageAgents)?;
        check_capacity(input.capacity)?;
        let id = id_of(&id, "agent")?;
        let team_id = match (input.clear_team, &input.team_id) {
            (true, _) => Some(None),
            (false, Some(team)) => Some(Some(id_of(team, "team")?)),
            (false, None) => None,
        };
        let op = UpdateAgent {
            id,
            team_id,
            profile: AgentProfile {
                skills: input.skills,
                languages: input.languages,
                capacity: input.capacity,
                senior: input.senior,
                presence: None,
            },
            now: api(ctx).clock.now(),
        };
        write_agent(ctx, op).await
    }

    /// Sets whether an agent takes cases now. Agents set their own; supervisors anyone's.
    /// Coming online assigns waiting cases at once.
    async fn set_agent_status(
        &self,
        ctx: &Context<'_>,
        agent_id: Option<ID>,
        status: AgentStatus,
    ) -> async_graphql::Result<Agent> {
        let who = principal(ctx)?;
        who.require(Permission::TakeCases)?;
        let id = match agent_id {
            Some(id) => id_of(&id, "agent")?,
            None => who.agent_id.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    "this token is not an agent's: name agentId",
                )
            })?,
        };
        if Some(id) != who.agent_id {
            who.require(Permission::OverrideOwnership)?;
        }
        let op = UpdateAgent {
            id,
            team_id: None,
            profile: AgentProfile {
                presence: Some(status.into()),
                ..AgentProfile::default()
            },
            now: api(ctx).clock.now(),
        };
        write_agent(ctx, op).await
    }

    /// Reports the calling agent viewing or typing in a conversation (or gone, with no
    /// `state`). Refresh every few seconds while it lasts; reports lapse on their own.
    async fn set_presence(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        state: Option<PresenceKind>,
    ) -> async_graphql::Result<Vec<AgentPresence>> {
        let who = principal(ctx)?;
        who.require(Permission::ReplyToCustomers)?;
        let agent_id = who.agent_id.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                "presence is reported by agents' tokens",
            )
        })?;
        let id = id_of(&conversation_id, "conversation")?;
        let a = api(ctx);
        if a.store
            .conversation(id)
            .await
            .map_err(ApiError::internal)?
            .is_none()
        {
            return Err(ApiError::new(
                ErrorCode::ConversationNotFound,
                format!("conversation {id} does not exist"),
            )
            .into());
        }
        let name = a
            .store
            .agent(agent_id)
            .await
            .map_err(ApiError::internal)?
            .map(|agent| agent.name)
            .unwrap_or_default();
        let state = state.map(|s| match s {
            PresenceKind::Viewing => PresenceState::Viewing,
            PresenceKind::Typing => PresenceState::Typing,
        });
        Ok(a.routing
            .presence
            .set(id, agent_id, &name, state, a.clock.now())
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

#[derive(Default)]
pub struct RoutingSubscription;

#[Subscription]
impl RoutingSubscription {
    /// Who is viewing or typing in a conversation, on every change.
    async fn conversation_presence(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = ConversationPresence>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let id = id_of(&conversation_id, "conversation")?;
        let receiver = api(ctx).routing.presence.subscribe();
        Ok(futures::stream::unfold(
            receiver,
            move |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(update) if update.conversation_id == id => {
                            let item = ConversationPresence {
                                conversation_id: ID(id.to_string()),
                                present: update.present.into_iter().map(Into::into).collect(),
                            };
                            return Some((item, receiver));
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}
