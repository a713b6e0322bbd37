//! The API: GraphQL (queries, mutations, subscriptions), health and metrics.
//!
//! Every GraphQL operation is authenticated by an API token; each role may do only what
//! [`crate::domain::Role::allows`]. Resolvers read from the store and send changes to
//! conversation actors; they hold no business rules of their own. Errors carry a stable
//! `extensions.code` from [`crate::error::ErrorCode`].

pub mod auth;
pub mod cluster;
pub mod contacts;
pub mod corrections;
pub mod cursor;
pub mod endpoint;
pub mod governance;
pub mod inbox;
pub mod macros;
pub mod media;
pub mod notifications;
pub mod payloads;
pub mod plugins;
pub mod reports;
mod resume;
pub mod routing;
pub mod search;
pub mod sla;
pub mod templates;
pub mod tokens;
pub mod types;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::conversation::{
    AddNote, AssignConversation, ChangeStatus, ConversationError, ConversationRegistry, SendReply,
};
use crate::domain::outbound::Origin;
use crate::domain::{MAX_TEXT_CHARS, Permission};
use crate::error::{ApiError, ErrorCode};
use crate::events::EventBus;
use crate::store::Store;
use crate::store::conversations::ChangeApplied;
use crate::store::directory::{AgentProfile, CreateAgent, CreateTeam, DirectoryError};
use crate::store::queries::{ConversationCursor, ConversationFilter as StoreFilter};
use actix_web::{HttpResponse, web};
use async_graphql::{Context, ID, InputObject, Object, Schema, SimpleObject, Subscription};
use auth::Principal;
use futures::{Stream, StreamExt};
use std::sync::Arc;
use types::*;

pub type ParleySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers share.
pub struct ApiContext {
    pub store: Store,
    /// The live actors on this node (to make a contact's actors reload after a change).
    pub registry: ConversationRegistry,
    /// How requests reach a conversation's actor.
    pub conversations: crate::actors::Conversations,
    pub settings: Arc<Settings>,
    pub events: EventBus,
    pub clock: SharedClock,
    pub routing: Arc<crate::routing::Routing>,
    pub plugins: Arc<crate::plugins::PluginRegistry>,
    /// The SLA clock and escalation actor; `None` when SLA tracking is off.
    pub sla: Option<crate::conversation::SlaActors>,
    /// Applies stored webhooks; re-drives dead letters.
    pub intake: crate::ingest::dispatcher::Dispatcher,
    /// Report figures, read from the projection's rollups.
    pub figures: crate::reports::figures::Figures,
    /// This node's shard leases, on a cluster node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Tells the other nodes of a cluster about changes made here (nothing on one node).
    pub relay: crate::cluster::bus::Relay,
    /// Media files: the blob store and the URL signer.
    pub media: Arc<crate::media::Media>,
}

pub fn build_schema(context: ApiContext) -> ParleySchema {
    let limits = context.settings.graphql.clone();
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .data(context)
    .limit_depth(limits.depth_limit)
    .limit_complexity(limits.complexity_limit)
    .finish()
}

/// The published SDL (`schema/schema.graphql`).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .finish()
    .sdl()
}

fn principal<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal, ApiError> {
    ctx.data_opt::<Principal>().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "send Authorization: Bearer <token>",
        )
    })
}

fn api<'a>(ctx: &Context<'a>) -> &'a ApiContext {
    ctx.data_unchecked::<ApiContext>()
}

fn conversation_error(error: ConversationError) -> ApiError {
    match error {
        ConversationError::Closed(id) => ApiError::new(
            ErrorCode::ConversationClosed,
            format!("conversation {id} is closed; a new customer message opens a new one"),
        ),
        ConversationError::InvalidTransition { from, to } => ApiError::new(
            ErrorCode::InvalidStatusTransition,
            format!("a conversation cannot move from {from} to {to}"),
        ),
        ConversationError::Unavailable => {
            ApiError::new(ErrorCode::Unavailable, "the conversation is busy; retry")
        }
        ConversationError::NotOwner => ApiError::new(
            ErrorCode::Unavailable,
            "the conversation is moving to another node; retry",
        ),
        error @ ConversationError::NotAssignee { .. } => {
            ApiError::new(ErrorCode::NotAssignee, error.to_string())
        }
        error @ ConversationError::Collision { .. } => ApiError::new(
            ErrorCode::Collision,
            format!("{error}; a supervisor may send anyway with force: true"),
        ),
        error @ ConversationError::ConsentWithdrawn { .. } => {
            ApiError::new(ErrorCode::ConsentWithdrawn, error.to_string())
        }
        error @ ConversationError::WindowClosed { .. } => {
            ApiError::new(ErrorCode::WindowClosed, error.to_string())
        }
        error @ ConversationError::AlreadyAssigned(_) => {
            ApiError::new(ErrorCode::Unavailable, error.to_string())
        }
        error @ (ConversationError::AlreadyEscalated { .. }
        | ConversationError::TopOfLadder { .. }
        | ConversationError::InvalidEdit(_)) => {
            ApiError::new(ErrorCode::InvalidInput, error.to_string())
        }
        error @ ConversationError::MacroValueMissing { .. } => {
            ApiError::new(ErrorCode::MacroValueMissing, error.to_string())
        }
        error @ ConversationError::AlreadyDecided { .. } => {
            ApiError::new(ErrorCode::AlreadyDecided, error.to_string())
        }
        error @ (ConversationError::NotApprover { .. } | ConversationError::NotYours(_)) => {
            ApiError::new(ErrorCode::Forbidden, error.to_string())
        }
        other => ApiError::internal(other),
    }
}

async fn conversation_key(
    ctx: &Context<'_>,
    id: &ID,
) -> Result<
    (
        crate::domain::ConversationKey,
        crate::store::entities::conversation::Model,
    ),
    ApiError,
> {
    let id = id_of(id, "conversation")?;
    api(ctx)
        .store
        .conversation_key(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ConversationNotFound,
                format!("conversation {id} does not exist"),
            )
        })
}

/// Sends the request `build` makes (given the conversation's id) to the conversation's
/// actor and waits for the change it applied.
async fn ask_conversation<M>(
    ctx: &Context<'_>,
    id: &ID,
    build: impl FnOnce(i64) -> M,
) -> Result<ChangeApplied, ApiError>
where
    M: crate::actors::ConversationRequest<Output = ChangeApplied>,
{
    let (key, conversation) = conversation_key(ctx, id).await?;
    api(ctx)
        .conversations
        .ask(&key, build(conversation.id))
        .await
        .map_err(conversation_error)
}

/// Filters for the conversation list; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct ConversationFilter {
    pub status: Option<Vec<ConversationStatus>>,
    pub assignee_id: Option<ID>,
    pub team_id: Option<ID>,
    pub channel_id: Option<String>,
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    #[graphql(validator(chars_max_length = 200))]
    pub name: String,
    #[graphql(validator(chars_max_length = 320))]
    pub email: Option<String>,
    pub role: Role,
    pub team_id: Option<ID>,
    /// Skills the router matches against cases' needs (for example "refunds").
    pub skills: Option<Vec<String>>,
    /// Languages the agent answers in (ISO 639-1).
    pub languages: Option<Vec<String>>,
    /// Conversations the agent works at once (default 5).
    pub capacity: Option<i32>,
    pub senior: Option<bool>,
    /// Offline unless given.
    pub status: Option<AgentStatus>,
}

/// The caller, as the API sees them.
#[derive(SimpleObject)]
pub struct Viewer {
    pub token_id: ID,
    pub role: Role,
    pub agent_id: Option<ID>,
}

/// The whole query type: the core inbox and the routing views.
#[derive(async_graphql::MergedObject, Default)]
pub struct QueryRoot(
    CoreQuery,
    routing::RoutingQuery,
    contacts::ContactQuery,
    sla::SlaQuery,
    governance::GovernanceQuery,
    templates::TemplateQuery,
    macros::MacroQuery,
    tokens::TokenQuery,
    reports::ReportQuery,
    cluster::ClusterQuery,
    search::SearchQuery,
    contacts::ContactFieldQuery,
);

#[derive(async_graphql::MergedObject, Default)]
pub struct MutationRoot(
    CoreMutation,
    routing::RoutingMutation,
    contacts::ContactMutation,
    sla::SlaMutation,
    governance::GovernanceMutation,
    templates::TemplateMutation,
    macros::MacroMutation,
    tokens::TokenMutation,
    contacts::ContactFieldMutation,
    corrections::CorrectionMutation,
);

#[derive(async_graphql::MergedSubscription, Default)]
pub struct SubscriptionRoot(
    CoreSubscription,
    routing::RoutingSubscription,
    governance::GovernanceSubscription,
    reports::ReportSubscription,
    notifications::NotificationSubscription,
);

#[derive(Default)]
pub struct CoreQuery;

#[Object]
impl CoreQuery {
    /// Who is calling.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let who = principal(ctx)?;
        Ok(Viewer {
            token_id: ID(who.token_id.to_string()),
            role: who.role.into(),
            agent_id: who.agent_id.map(|id| ID(id.to_string())),
        })
    }

    /// Conversations, newest activity first.
    #[graphql(complexity = "types::page_cost(first, child_complexity, 1)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<ConversationFilter>,
    ) -> async_graphql::Result<ConversationConnection> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let limit = page_size(ctx, first)?;
        let after = after
            .as_deref()
            .map(cursor::decode_conversation)
            .transpose()?;
        let filter = filter.unwrap_or_default();
        let store_filter = StoreFilter {
            statuses: filter
                .status
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            assignee_id: filter
                .assignee_id
                .as_ref()
                .map(|id| id_of(id, "agent"))
                .transpose()?,
            team_id: filter
                .team_id
                .as_ref()
                .map(|id| id_of(id, "team"))
                .transpose()?,
            channel_id: filter.channel_id,
        };
        let mut rows = api(ctx)
            .store
            .conversations_page(&store_filter, after, limit + 1)
            .await
            .map_err(ApiError::internal)?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let edges: Vec<ConversationEdge> = rows
            .into_iter()
            .map(|c| ConversationEdge {
                cursor: cursor::encode_conversation(ConversationCursor {
                    last_activity_at: c.last_activity_at,
                    id: c.id,
                }),
                node: Conversation(c),
            })
            .collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Ok(ConversationConnection {
            edges,
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }

    async fn conversation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<Option<Conversation>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let id = id_of(&id, "conversation")?;
        Ok(api(ctx)
            .store
            .conversation(id)
            .await
            .map_err(ApiError::internal)?
            .map(Conversation))
    }

    async fn teams(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Team>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        Ok(api(ctx)
            .store
            .teams()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(Team)
            .collect())
    }

    async fn agents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Agent>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        Ok(api(ctx)
            .store
            .agents()
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(Agent)
            .collect())
    }

    /// Payloads and items that could not be applied, newest first (admins only).
    #[graphql(complexity = "types::page_cost(first, child_complexity, 1)")]
    async fn dead_letters(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        before: Option<ID>,
    ) -> async_graphql::Result<Vec<DeadLetter>> {
        principal(ctx)?.require(Permission::ReadDeadLetters)?;
        let limit = page_size(ctx, first)?;
        let before = before
            .as_ref()
            .map(|id| id_of(id, "dead letter"))
            .transpose()?;
        let rows = api(ctx)
            .store
            .dead_letters_page(before, limit)
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(DeadLetter::from).collect())
    }

    /// The loaded plugins with their health and call statistics (admins only).
    async fn plugins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<plugins::Plugin>> {
        Ok(plugins::plugins(ctx).await?)
    }

    /// Plugin manifests that failed to load and have not loaded since (admins only).
    async fn plugin_load_failures(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<plugins::PluginLoadFailure>> {
        Ok(plugins::load_failures(ctx).await?)
    }
}

#[derive(Default)]
pub struct CoreMutation;

#[Object]
impl CoreMutation {
    /// Sends a text reply to the customer. It is stored and queued at once; its
    /// `deliveryStatus` follows the provider's callbacks.
    async fn send_reply(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        text: String,
        #[graphql(
            default,
            desc = "Supervisors: reply even though another agent is typing."
        )]
        force: bool,
        #[graphql(
            default,
            desc = "The text is a model-written draft sent as is: the approval boundaries apply to it as to automation."
        )]
        ai_draft: bool,
        #[graphql(
            desc = "A file uploaded with `POST /media` to send; the text becomes its caption (and may be empty)."
        )]
        media_id: Option<ID>,
    ) -> async_graphql::Result<Message> {
        let who = principal(ctx)?;
        who.require(Permission::ReplyToCustomers)?;
        if force {
            who.require(Permission::OverrideOwnership)?;
        }
        let authority = who.reply_authority();
        let media = match &media_id {
            Some(id) => Some(media::attachable(&api(ctx).store, id_of(id, "media")?, &text).await?),
            None => None,
        };
        if text.trim().is_empty() && media.is_none() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the reply text is empty").into());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("the reply is longer than {MAX_TEXT_CHARS} characters"),
            )
            .into());
        }
        let applied = ask_conversation(ctx, &conversation_id, |id| SendReply {
            conversation_id: id,
            text,
            by: who.actor(),
            agent_id: who.agent_id,
            authority,
            force,
            origin: if ai_draft {
                Origin::AiDraft
            } else {
                who.origin()
            },
            media,
        })
        .await?;
        let message = applied
            .message
            .ok_or_else(|| ApiError::internal("reply stored without its message"))?;
        Ok(Message(message))
    }

    /// Gives the conversation to an agent and/or a team. Omitting `agentId` unassigns the
    /// agent. Agents may only assign conversations to themselves, or unassign their own.
    async fn assign_conversation(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        agent_id: Option<ID>,
        team_id: Option<ID>,
    ) -> async_graphql::Result<Conversation> {
        let who = principal(ctx)?;
        who.require(Permission::AssignConversations)?;
        let agent_id = agent_id.as_ref().map(|id| id_of(id, "agent")).transpose()?;
        let team_id = team_id.as_ref().map(|id| id_of(id, "team")).transpose()?;
        let (key, conversation) = conversation_key(ctx, &conversation_id).await?;
        let store = &api(ctx).store;
        if let Some(id) = agent_id
            && store.agent(id).await.map_err(ApiError::internal)?.is_none()
        {
            return Err(ApiError::new(
                ErrorCode::AgentNotFound,
                format!("agent {id} does not exist"),
            )
            .into());
        }
        if let Some(id) = team_id
            && store.team(id).await.map_err(ApiError::internal)?.is_none()
        {
            return Err(ApiError::new(
                ErrorCode::TeamNotFound,
                format!("team {id} does not exist"),
            )
            .into());
        }
        let request = AssignConversation {
            conversation_id: conversation.id,
            agent_id,
            team_id,
            by: who.actor(),
            authority: who.authority(),
            explanation: None,
        };
        let applied = api(ctx)
            .conversations
            .ask(&key, request)
            .await
            .map_err(conversation_error)?;
        Ok(Conversation(applied.conversation))
    }

    /// Moves the conversation through its lifecycle (for example to PENDING or RESOLVED).
    async fn set_conversation_status(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        status: ConversationStatus,
    ) -> async_graphql::Result<Conversation> {
        let who = principal(ctx)?;
        who.require(Permission::ChangeStatus)?;
        let applied = ask_conversation(ctx, &conversation_id, |id| ChangeStatus {
            conversation_id: id,
            to: status.into(),
            by: who.actor(),
            authority: who.authority(),
        })
        .await?;
        Ok(Conversation(applied.conversation))
    }

    /// Adds an internal note (never sent to the customer). `@Name` mentions an agent, who
    /// is told through `notifications`.
    async fn add_note(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
        #[graphql(validator(chars_max_length = 4096))] body: String,
    ) -> async_graphql::Result<Note> {
        let who = principal(ctx)?;
        who.require(Permission::WriteNotes)?;
        if body.trim().is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the note is empty").into());
        }
        let agents: Vec<(i64, String)> = if body.contains('@') {
            api(ctx)
                .store
                .agents()
                .await
                .map_err(ApiError::internal)?
                .into_iter()
                .map(|a| (a.id, a.name))
                .collect()
        } else {
            Vec::new()
        };
        let mentions = notifications::mentions_in(&body, &agents, who.agent_id);
        let applied = ask_conversation(ctx, &conversation_id, |id| AddNote {
            conversation_id: id,
            body,
            by: who.actor(),
            mentions,
        })
        .await?;
        let note_id = applied
            .note_id
            .ok_or_else(|| ApiError::internal("note stored without an id"))?;
        let note = api(ctx)
            .store
            .note(note_id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("stored note not found"))?;
        Ok(Note(note))
    }

    async fn create_team(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(chars_max_length = 200))] name: String,
    ) -> async_graphql::Result<Team> {
        principal(ctx)?.require(Permission::ManageTeams)?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the team name is empty").into());
        }
        let now = api(ctx).clock.now();
        let team = api(ctx)
            .store
            .write(CreateTeam { name, now })
            .await
            .map_err(ApiError::internal)?;
        Ok(Team(team.map_err(directory_error)?))
    }

    async fn create_agent(
        &self,
        ctx: &Context<'_>,
        input: CreateAgentInput,
    ) -> async_graphql::Result<Agent> {
        principal(ctx)?.require(Permission::ManageAgents)?;
        let name = input.name.trim().to_owned();
        if name.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidInput, "the agent name is empty").into());
        }
        let email = input
            .email
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty());
        if email.as_deref().is_some_and(|e| !e.contains('@')) {
            return Err(
                ApiError::new(ErrorCode::InvalidInput, "the email address is not valid").into(),
            );
        }
        let team_id = input
            .team_id
            .as_ref()
            .map(|id| id_of(id, "team"))
            .transpose()?;
        routing::check_capacity(input.capacity)?;
        let op = CreateAgent {
            name,
            email,
            role: input.role.into(),
            team_id,
            profile: AgentProfile {
                skills: input.skills,
                languages: input.languages,
                capacity: input.capacity,
                senior: input.senior,
                presence: input.status.map(Into::into),
            },
            now: api(ctx).clock.now(),
        };
        routing::write_agent(ctx, op).await
    }

    /// Loads the plugin of a manifest (a path on the server), or replaces the loaded
    /// plugin with the same id; calls in flight finish on the old version (admins only).
    async fn load_plugin(
        &self,
        ctx: &Context<'_>,
        manifest_path: String,
    ) -> async_graphql::Result<plugins::LoadedPlugin> {
        Ok(plugins::load(ctx, manifest_path).await?)
    }

    /// Removes a plugin; calls in flight finish (admins only).
    async fn remove_plugin(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        Ok(plugins::remove(ctx, id).await?)
    }
}

pub(crate) fn directory_error(error: DirectoryError) -> ApiError {
    let code = match error {
        DirectoryError::TeamNameTaken(_) | DirectoryError::AgentEmailTaken(_) => {
            ErrorCode::NameTaken
        }
        DirectoryError::TeamNotFound(_) => ErrorCode::TeamNotFound,
        DirectoryError::AgentNotFound(_) => ErrorCode::AgentNotFound,
    };
    ApiError::new(code, error.to_string())
}

#[derive(Default)]
pub struct CoreSubscription;

#[Subscription]
impl CoreSubscription {
    /// Events as they are committed: of one conversation, or of all when no id is given.
    /// With `afterEventId` (the id of the last event a client saw), the events logged
    /// after it come first, then the live ones: a client that reconnects misses nothing.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: Option<ID>,
        after_event_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = ConversationEvent>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let only = conversation_id
            .as_ref()
            .map(|id| id_of(id, "conversation"))
            .transpose()?;
        let after = after_event_id
            .as_ref()
            .map(|id| id_of(id, "event"))
            .transpose()?;
        let live = api(ctx).events.subscribe();
        Ok(
            resume::events_after(api(ctx).store.clone(), live, only, after)
                .map(|event| ConversationEvent(event.as_ref().clone())),
        )
    }
}

fn unauthenticated(error: ApiError) -> HttpResponse {
    HttpResponse::Unauthorized().json(serde_json::json!({
        "errors": [{ "message": error.message, "extensions": { "code": error.code.as_str() } }]
    }))
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::telemetry::render_metrics())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(store: web::Data<Store>) -> HttpResponse {
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(error = %error, "Not ready: the database does not answer.");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "database unavailable" }))
        }
    }
}

/// `/metrics`, on the main listener or on `[http] metrics_bind`.
pub fn metrics_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics_text));
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/graphql")
            .route(web::post().to(endpoint::graphql))
            .route(web::get().to(endpoint::graphiql)),
    )
    .service(web::resource("/graphql/ws").route(web::get().to(endpoint::graphql_ws)))
    .route("/healthz", web::get().to(healthz))
    .route("/readyz", web::get().to(readyz))
    .configure(inbox::routes)
    .configure(media::routes);
}
