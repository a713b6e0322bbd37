//! GraphQL object types: thin views over store rows.

use super::{ApiContext, cursor};
use crate::clock::micros_to_datetime;
use crate::domain::inbound::DeliveryStatus as Delivery;
use crate::domain::{Priority as DomainPriority, Role as DomainRole, TicketStatus};
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::{
    agent, consent_event, contact, conversation, conversation_event, dead_letter, message, note,
    team,
};
use async_graphql::{ComplexObject, Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

pub const DEFAULT_PAGE: i32 = 20;

/// Highest cost one field can claim: far above any complexity limit, and low enough that
/// async-graphql's (unchecked) sum over every field a 1 MB query can name never overflows.
const COST_CEILING: usize = 1 << 32;

/// The complexity of a list of `first` items (default [`DEFAULT_PAGE`]) costing `child`
/// each, plus `base` for the query behind it; saturating at [`COST_CEILING`] however large
/// `first` is asked.
pub fn page_cost(first: Option<i32>, child: usize, base: usize) -> usize {
    let first = first.unwrap_or(DEFAULT_PAGE).max(1) as usize;
    first
        .saturating_mul(child.max(1))
        .saturating_add(base)
        .min(COST_CEILING)
}

/// Fields that run a query or a computation of their own cost this much beside their
/// children: the SLA view (deadlines, ledger, policy), a triage explanation, a report.
pub const QUERY_COST: usize = 10;
pub const COMPUTE_COST: usize = 50;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConversationStatus {
    Created,
    Assigned,
    InProgress,
    Pending,
    Resolved,
    Closed,
}

impl From<TicketStatus> for ConversationStatus {
    fn from(status: TicketStatus) -> Self {
        match status {
            TicketStatus::Created => Self::Created,
            TicketStatus::Assigned => Self::Assigned,
            TicketStatus::InProgress => Self::InProgress,
            TicketStatus::Pending => Self::Pending,
            TicketStatus::Resolved => Self::Resolved,
            TicketStatus::Closed => Self::Closed,
        }
    }
}

impl From<ConversationStatus> for TicketStatus {
    fn from(status: ConversationStatus) -> Self {
        match status {
            ConversationStatus::Created => Self::Created,
            ConversationStatus::Assigned => Self::Assigned,
            ConversationStatus::InProgress => Self::InProgress,
            ConversationStatus::Pending => Self::Pending,
            ConversationStatus::Resolved => Self::Resolved,
            ConversationStatus::Closed => Self::Closed,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Priority {
    Low,
    Medium,
    High,
    Urgent,
}

impl From<Priority> for DomainPriority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Low => Self::Low,
            Priority::Medium => Self::Medium,
            Priority::High => Self::High,
            Priority::Urgent => Self::Urgent,
        }
    }
}

impl From<DomainPriority> for Priority {
    fn from(priority: DomainPriority) -> Self {
        match priority {
            DomainPriority::Low => Self::Low,
            DomainPriority::Medium => Self::Medium,
            DomainPriority::High => Self::High,
            DomainPriority::Urgent => Self::Urgent,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    Admin,
    Supervisor,
    Agent,
    Integration,
    /// Reads the audit trail; changes nothing.
    Auditor,
}

impl From<Role> for DomainRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::Supervisor => Self::Supervisor,
            Role::Agent => Self::Agent,
            Role::Integration => Self::Integration,
            Role::Auditor => Self::Auditor,
        }
    }
}

impl From<DomainRole> for Role {
    fn from(role: DomainRole) -> Self {
        match role {
            DomainRole::Admin => Self::Admin,
            DomainRole::Supervisor => Self::Supervisor,
            DomainRole::Agent => Self::Agent,
            DomainRole::Integration => Self::Integration,
            DomainRole::Auditor => Self::Auditor,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MessageDirection {
    Inbound,
    Outbound,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    /// A voice message was played.
    Played,
    Failed,
    /// Held by the outbound gate for a person's approval (see `heldMessages`).
    Held,
    /// Held, then rejected by the approver: never sent.
    Rejected,
}

/// Why an outbound message failed, for the inbox to explain.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum MessageErrorReason {
    /// 131047 (or `window_closed` from a transport plugin): more than 24 hours since the
    /// customer last wrote; only a template can reach them.
    OutsideWindow,
    /// The provider throttled us and retries ran out.
    RateLimited,
    /// The server stopped or the provider did not answer while sending; not resent.
    OutcomeUnknown,
    /// Any other error reported by the provider.
    Provider,
}

#[derive(SimpleObject)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

pub fn id_of(id: &ID, what: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("{what} id {:?} is not a valid id", id.as_str()),
        )
    })
}

pub fn page_size(ctx: &Context<'_>, first: Option<i32>) -> Result<u64, ApiError> {
    let max = ctx
        .data_unchecked::<ApiContext>()
        .settings
        .graphql
        .max_page_size;
    let first = first.unwrap_or(DEFAULT_PAGE);
    if first < 1 || first as usize > max {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("first must be between 1 and {max}"),
        ));
    }
    Ok(first as u64)
}

pub struct Conversation(pub conversation::Model);

#[derive(SimpleObject)]
pub struct ConversationEdge {
    pub cursor: String,
    pub node: Conversation,
}

#[derive(SimpleObject)]
pub struct ConversationConnection {
    pub edges: Vec<ConversationEdge>,
    pub page_info: PageInfo,
}

#[Object]
impl Conversation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn status(&self) -> ConversationStatus {
        TicketStatus::parse(&self.0.status)
            .unwrap_or(TicketStatus::Created)
            .into()
    }
    async fn priority(&self) -> Priority {
        match DomainPriority::parse(&self.0.priority) {
            Some(DomainPriority::Low) => Priority::Low,
            Some(DomainPriority::High) => Priority::High,
            Some(DomainPriority::Urgent) => Priority::Urgent,
            _ => Priority::Medium,
        }
    }
    async fn channel_id(&self) -> &str {
        &self.0.channel_id
    }
    /// The business number the customer wrote to.
    async fn phone_number_id(&self) -> &str {
        &self.0.phone_number_id
    }
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Contact> {
        let store = &ctx.data_unchecked::<ApiContext>().store;
        let contact = store
            .contact(self.0.contact_id)
            .await
            .map_err(ApiError::internal)?;
        Ok(Contact(contact.ok_or_else(|| {
            ApiError::internal("conversation without contact")
        })?))
    }
    async fn assignee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Agent>> {
        let Some(id) = self.0.assignee_id else {
            return Ok(None);
        };
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store
            .agent(id)
            .await
            .map_err(ApiError::internal)?
            .map(Agent))
    }
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Team>> {
        let Some(id) = self.0.team_id else {
            return Ok(None);
        };
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store.team(id).await.map_err(ApiError::internal)?.map(Team))
    }
    /// Times the customer wrote again after the case was resolved.
    async fn reopen_count(&self) -> i32 {
        self.0.reopen_count
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.updated_at)
    }
    /// Last customer or agent message: the inbox's sort key.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.last_activity_at)
    }
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at.map(micros_to_datetime)
    }
    /// WhatsApp's customer service window on this case: free-form messages only while it
    /// is open, templates after. `closesAt` drives an inbox countdown.
    async fn service_window(&self, ctx: &Context<'_>) -> ServiceWindow {
        let now = ctx.data_unchecked::<ApiContext>().clock.now();
        let closes_at = self.0.service_window_closes_at();
        ServiceWindow {
            open: closes_at.is_some_and(|closes| now < closes),
            opened_at: self.0.last_customer_message_at.map(micros_to_datetime),
            closes_at: closes_at.map(micros_to_datetime),
        }
    }
    /// The SLA clock on this case: every target with its state, due time and counted
    /// time, the pauses, the alarms recorded and the policy and calendar used. Replayed
    /// from the event log, so it also answers "why did this case breach?".
    #[graphql(complexity = "QUERY_COST.saturating_add(child_complexity)")]
    async fn sla(&self, ctx: &Context<'_>) -> async_graphql::Result<super::sla::Sla> {
        super::sla::sla_of(ctx, &self.0).await
    }
    /// The satisfaction survey sent after the case was resolved, and its answer.
    async fn csat(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::sla::CsatResponse>> {
        super::sla::csat_of(ctx, &self.0).await
    }
    /// Whether the case clock resolved it (the customer never answered while PENDING)
    /// rather than an agent: the auto-closure rate is reported apart.
    async fn auto_resolved(&self) -> bool {
        crate::sla::ledger::SlaLedger::from_json(self.0.sla.as_deref()).auto_resolved()
    }
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.0.resolved_at.map(micros_to_datetime)
    }
    /// The intents of the latest triage (or correction).
    async fn intents(&self) -> Vec<String> {
        crate::store::search::tags_of(&self.0).0
    }
    /// The risks of the latest triage (or correction).
    async fn risks(&self) -> Vec<String> {
        crate::store::search::tags_of(&self.0).1
    }
    /// How the case ended, if it did: when it was resolved and closed, and whether the
    /// case clock resolved it rather than an agent. Null while it is open.
    async fn resolution(&self) -> Option<Resolution> {
        let resolved_at = self.0.resolved_at.or(self.0.closed_at)?;
        Some(Resolution {
            resolved_at: micros_to_datetime(resolved_at),
            closed_at: self.0.closed_at.map(micros_to_datetime),
            auto_resolved: crate::sla::ledger::SlaLedger::from_json(self.0.sla.as_deref())
                .auto_resolved(),
        })
    }
    /// Urgency of the latest customer message after the rules; null before triage or
    /// for a level a custom taxonomy added (see `urgencyLabel`).
    async fn urgency(&self) -> Option<super::payloads::Urgency> {
        super::payloads::Urgency::parse(self.0.urgency.as_deref()?)
    }
    /// The urgency level as the taxonomy names it.
    async fn urgency_label(&self) -> Option<&str> {
        self.0.urgency.as_deref()
    }
    /// HUMAN when people must review what is sent (risk, low confidence, policy);
    /// AUTOMATION when the rules let automation answer.
    async fn review(&self) -> Option<ReviewMode> {
        match self.0.review.as_deref() {
            Some("human") => Some(ReviewMode::Human),
            Some("automation") => Some(ReviewMode::Automation),
            _ => None,
        }
    }
    /// Language of the latest customer message (ISO 639-1).
    async fn language(&self) -> Option<&str> {
        self.0.language.as_deref()
    }
    /// Teams that watch the case without owning it.
    async fn watcher_teams(&self) -> Vec<String> {
        self.0
            .watchers
            .as_deref()
            .and_then(|w| serde_json::from_str(w).ok())
            .unwrap_or_default()
    }
    /// The latest triage: tags with confidences, context, the decision and its rules.
    async fn triage(&self) -> Option<super::payloads::Triage> {
        super::payloads::Triage::of_case(self.0.triage.as_deref()?, self.0.id)
    }
    /// `triage` as stored, as JSON: an escape hatch for details the typed field lacks.
    async fn triage_json(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0
            .triage
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .map(async_graphql::Json)
    }
    /// Messages, oldest first.
    #[graphql(complexity = "page_cost(first, child_complexity, 1)")]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<MessageConnection> {
        let limit = page_size(ctx, first)?;
        let after = after.as_deref().map(cursor::decode_message).transpose()?;
        let store = &ctx.data_unchecked::<ApiContext>().store;
        let mut rows = store
            .messages_page(self.0.id, after, limit + 1)
            .await
            .map_err(ApiError::internal)?;
        let has_next_page = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let edges: Vec<MessageEdge> = rows
            .into_iter()
            .map(|m| MessageEdge {
                cursor: cursor::encode_message(m.id),
                node: Message(m),
            })
            .collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Ok(MessageConnection {
            edges,
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
        })
    }
    /// Internal notes, oldest first: `first` of them (default 20) after note `after`.
    #[graphql(complexity = "page_cost(first, child_complexity, 1)")]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        #[graphql(desc = "A note id from the previous page.")] after: Option<ID>,
    ) -> async_graphql::Result<Vec<Note>> {
        let limit = page_size(ctx, first)?;
        let after = after.as_ref().map(|id| id_of(id, "note")).transpose()?;
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store
            .notes_page(self.0.id, after, limit)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(Note)
            .collect())
    }
    /// The conversation's event log, oldest first.
    #[graphql(complexity = "page_cost(first, child_complexity, 1)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Vec<ConversationEvent>> {
        let limit = page_size(ctx, first)?;
        let after = after.as_deref().map(cursor::decode_message).transpose()?;
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store
            .events_page(self.0.id, after, limit)
            .await
            .map_err(ApiError::internal)?
            .into_iter()
            .map(ConversationEvent)
            .collect())
    }
}

pub struct Contact(pub contact::Model);

/// How a case ended.
#[derive(SimpleObject)]
pub struct Resolution {
    pub resolved_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The case clock resolved it (the customer never answered while PENDING).
    pub auto_resolved: bool,
}

#[Object]
impl Contact {
    /// The customer's WhatsApp id.
    async fn wa_id(&self) -> &str {
        &self.0.wa_id
    }
    /// Profile name as WhatsApp reported it.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    /// Priority customer (marked in Parley or by the CRM): VIP routing and tighter targets.
    async fn vip(&self) -> bool {
        self.0.vip || crate::store::conversations::crm_says_vip(self.0.crm_profile.as_deref())
    }
    /// Marked VIP in Parley (`setContactVip`), whatever the CRM says.
    async fn vip_marked(&self) -> bool {
        self.0.vip
    }
    /// Blocked contacts' messages are recorded and never processed.
    async fn blocked(&self) -> bool {
        self.0.blocked_at.is_some()
    }
    async fn blocked_reason(&self) -> Option<&str> {
        self.0.blocked_reason.as_deref()
    }
    /// What the CRM plugin said about the customer when a case opened; null when no CRM
    /// answered or it does not know them.
    async fn crm_profile(&self) -> Option<CrmProfile> {
        serde_json::from_str(self.0.crm_profile.as_deref()?).ok()
    }
    /// The customer's cases, newest first: their status, tags, CSAT and resolution.
    #[graphql(complexity = "page_cost(first, child_complexity, 1)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<ConversationConnection> {
        super::contacts::cases_of(ctx, &self.0, first, after).await
    }
    /// The values of the custom fields set for this customer, in the order the fields
    /// were defined.
    async fn fields(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::contacts::ContactFieldValue>> {
        super::contacts::fields_of(ctx, &self.0).await
    }
    /// When the CRM was last asked about this customer.
    async fn crm_fetched_at(&self) -> Option<DateTime<Utc>> {
        self.0.crm_fetched_at.map(micros_to_datetime)
    }
    /// What the customer may be sent now, per purpose, as the send-time check sees it.
    async fn consents(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Consent>> {
        let store = &ctx.data_unchecked::<ApiContext>().store;
        let states = store
            .consent_of(self.0.id)
            .await
            .map_err(ApiError::internal)?;
        Ok(states
            .into_iter()
            .map(|state| Consent {
                purpose: state.purpose.into(),
                granted: state.granted,
                by_default: state.decided_by.is_none(),
                last_change: state.decided_by.map(ConsentChange),
            })
            .collect())
    }
    /// Opt-ins and opt-outs, newest first: `first` of them (default 20) before change
    /// `before`.
    #[graphql(complexity = "page_cost(first, child_complexity, 1)")]
    async fn consent_history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        #[graphql(desc = "A change id from the previous page.")] before: Option<ID>,
    ) -> async_graphql::Result<Vec<ConsentChange>> {
        let limit = page_size(ctx, first)?;
        let before = before
            .as_ref()
            .map(|id| id_of(id, "consent change"))
            .transpose()?;
        let store = &ctx.data_unchecked::<ApiContext>().store;
        let history = store
            .consent_history_page(self.0.id, before, limit)
            .await
            .map_err(ApiError::internal)?;
        Ok(history.into_iter().map(ConsentChange).collect())
    }
}

/// What a message to a contact is for; consent is kept per purpose.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ConsentPurpose {
    /// Answers to the customer's own requests.
    Service,
    /// Promotions and announcements; needs an opt-in.
    Marketing,
    /// Satisfaction surveys.
    Surveys,
}

impl From<crate::domain::consent::Purpose> for ConsentPurpose {
    fn from(p: crate::domain::consent::Purpose) -> Self {
        use crate::domain::consent::Purpose as P;
        match p {
            P::Service => Self::Service,
            P::Marketing => Self::Marketing,
            P::Surveys => Self::Surveys,
        }
    }
}

impl From<ConsentPurpose> for crate::domain::consent::Purpose {
    fn from(p: ConsentPurpose) -> Self {
        match p {
            ConsentPurpose::Service => Self::Service,
            ConsentPurpose::Marketing => Self::Marketing,
            ConsentPurpose::Surveys => Self::Surveys,
        }
    }
}

/// A contact's consent for one purpose now.
#[derive(SimpleObject)]
pub struct Consent {
    pub purpose: ConsentPurpose,
    pub granted: bool,
    /// Nobody said either way: service and surveys are allowed, marketing is not.
    pub by_default: bool,
    /// The opt-in or opt-out that decided it.
    pub last_change: Option<ConsentChange>,
}

/// One entry of the consent ledger.
pub struct ConsentChange(pub consent_event::Model);

#[Object]
impl ConsentChange {
    async fn purpose(&self) -> Option<ConsentPurpose> {
        crate::domain::consent::Purpose::parse(&self.0.purpose).map(Into::into)
    }
    async fn granted(&self) -> bool {
        self.0.granted
    }
    /// `keyword` (the customer wrote STOP/START), `agent` (recorded by a person).
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// The keyword, or the note given.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
    /// Who recorded it (`customer`, `agent:3`, `token:1`).
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.at)
    }
}

/// The 24-hour customer service window, opened and reset by each customer message.
#[derive(SimpleObject)]
pub struct ServiceWindow {
    /// Whether a free-form message may be sent now.
    pub open: bool,
    /// The customer's latest message, which opened the window.
    pub opened_at: Option<DateTime<Utc>>,
    /// When it closes (or closed); null when the customer never wrote.
    pub closes_at: Option<DateTime<Utc>>,
}

/// A customer as the CRM knows them.
#[derive(SimpleObject, serde::Deserialize)]
pub struct CrmProfile {
    /// The customer's id in the CRM.
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub vip: bool,
    /// Tier or segment as the CRM names it (`gold`).
    pub tier: Option<String>,
    /// Subscription plan or contract.
    pub plan: Option<String>,
    /// Further facts for the agent.
    pub attributes: Vec<CrmAttribute>,
    /// Recent history in a line (`3 orders in 90 days`).
    pub history_summary: Option<String>,
    /// Where the agent can open the customer in the CRM.
    pub profile_url: Option<String>,
}

/// One fact from the CRM.
#[derive(SimpleObject, serde::Deserialize)]
pub struct CrmAttribute {
    pub name: String,
    pub value: String,
}

/// Who must look at what is sent on a case.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum ReviewMode {
    Human,
    Automation,
}

/// Whether an agent can take cases now.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum AgentStatus {
    Online,
    Away,
    Offline,
}

impl From<AgentStatus> for crate::store::directory::AgentPresence {
    fn from(status: AgentStatus) -> Self {
        match status {
            AgentStatus::Online => Self::Online,
            AgentStatus::Away => Self::Away,
            AgentStatus::Offline => Self::Offline,
        }
    }
}

pub struct Agent(pub agent::Model);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    async fn role(&self) -> Role {
        DomainRole::parse(&self.0.role)
            .unwrap_or(DomainRole::Agent)
            .into()
    }
    async fn team(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Team>> {
        let Some(id) = self.0.team_id else {
            return Ok(None);
        };
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store.team(id).await.map_err(ApiError::internal)?.map(Team))
    }
    async fn skills(&self) -> Vec<String> {
        serde_json::from_str(&self.0.skills).unwrap_or_default()
    }
    /// Languages the agent answers in (ISO 639-1).
    async fn languages(&self) -> Vec<String> {
        serde_json::from_str(&self.0.languages).unwrap_or_default()
    }
    /// Conversations the agent works at once.
    async fn capacity(&self) -> i32 {
        self.0.capacity
    }
    async fn status(&self) -> AgentStatus {
        match self.0.presence.as_str() {
            "online" => AgentStatus::Online,
            "away" => AgentStatus::Away,
            _ => AgentStatus::Offline,
        }
    }
    /// Senior agents take VIP cases where the team's strategy says so.
    async fn senior(&self) -> bool {
        self.0.senior
    }
}

pub struct Team(pub team::Model);

#[Object]
impl Team {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
}

pub struct Message(pub message::Model);

#[derive(SimpleObject)]
pub struct MessageEdge {
    pub cursor: String,
    pub node: Message,
}

#[derive(SimpleObject)]
pub struct MessageConnection {
    pub edges: Vec<MessageEdge>,
    pub page_info: PageInfo,
}

/// Why a message could not be delivered.
#[derive(SimpleObject)]
pub struct MessageError {
    /// The provider's error code (for example "131047"), or a Parley code such as
    /// "outcome_unknown".
    pub code: String,
    pub title: String,
    pub reason: MessageErrorReason,
}

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn conversation_id(&self) -> ID {
        ID(self.0.conversation_id.to_string())
    }
    async fn direction(&self) -> MessageDirection {
        if self.0.direction == "outbound" {
            MessageDirection::Outbound
        } else {
            MessageDirection::Inbound
        }
    }
    /// text, image, audio, video, document, sticker, location, contacts, interactive,
    /// button, reaction, unsupported or other.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The text; a media message's caption; the chosen title of an interactive or
    /// template-button reply; a reaction's emoji.
    async fn text(&self) -> Option<&str> {
        self.0.text.as_deref()
    }
    /// Kind-specific details (text, media ids, location, reply ids), by kind.
    async fn content(&self) -> Option<super::payloads::MessageContent> {
        super::payloads::MessageContent::of_message(
            &self.0.kind,
            self.0.text.as_deref(),
            self.0.content.as_deref(),
        )
    }
    /// The file of an image, audio, video, document or sticker message: what it is,
    /// whether it has been fetched, and a signed URL to load it.
    async fn media(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::media::MediaFile>> {
        if crate::domain::media::MediaKind::parse(&self.0.kind).is_none() {
            return Ok(None);
        }
        let store = &ctx.data_unchecked::<ApiContext>().store;
        Ok(store
            .media_of_message(self.0.id)
            .await
            .map_err(ApiError::internal)?
            .map(super::media::MediaFile))
    }
    /// `content` as stored, as JSON: an escape hatch for details the typed field lacks.
    async fn content_json(&self) -> Option<async_graphql::Json<serde_json::Value>> {
        self.0
            .content
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .map(async_graphql::Json)
    }
    /// The provider's message id (`wamid...`).
    async fn provider_message_id(&self) -> Option<&str> {
        self.0.provider_message_id.as_deref()
    }
    /// The provider id of the message this one replies to.
    async fn reply_to(&self) -> Option<&str> {
        self.0.reply_to.as_deref()
    }
    /// Outbound messages only.
    async fn delivery_status(&self) -> Option<DeliveryStatus> {
        self.0
            .delivery_status
            .as_deref()
            .and_then(Delivery::parse)
            .map(|s| match s {
                Delivery::Pending => DeliveryStatus::Pending,
                Delivery::Sent => DeliveryStatus::Sent,
                Delivery::Delivered => DeliveryStatus::Delivered,
                Delivery::Read => DeliveryStatus::Read,
                Delivery::Played => DeliveryStatus::Played,
                Delivery::Failed => DeliveryStatus::Failed,
                Delivery::Held => DeliveryStatus::Held,
                Delivery::Rejected => DeliveryStatus::Rejected,
            })
    }
    async fn error(&self) -> Option<MessageError> {
        let code = self.0.error_code.clone()?;
        let reason = match code.as_str() {
            "131047" | crate::outbound::transport::WINDOW_CLOSED => {
                MessageErrorReason::OutsideWindow
            }
            "130429" | "131056" | "retries_exhausted" => MessageErrorReason::RateLimited,
            crate::store::outbox::OUTCOME_UNKNOWN => MessageErrorReason::OutcomeUnknown,
            _ => MessageErrorReason::Provider,
        };
        let title = match reason {
            MessageErrorReason::OutsideWindow => format!(
                "outside the 24-hour customer service window: send an approved template instead ({})",
                self.0.error_title.clone().unwrap_or_default()
            ),
            _ => self.0.error_title.clone().unwrap_or_default(),
        };
        Some(MessageError {
            code,
            title,
            reason,
        })
    }
    async fn author_agent_id(&self) -> Option<ID> {
        self.0.author_agent_id.map(|id| ID(id.to_string()))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
    /// When the customer sent it, as the provider reported.
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.provider_sent_at.map(micros_to_datetime)
    }
}

pub struct Note(pub note::Model);

#[Object]
impl Note {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// `agent:<id>` or `token:<id>`.
    async fn author(&self) -> &str {
        &self.0.author
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
}

pub struct ConversationEvent(pub conversation_event::Model);

#[Object]
impl ConversationEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn conversation_id(&self) -> ID {
        ID(self.0.conversation_id.to_string())
    }
    /// created, assigned, status_changed, reopened, message_in, message_out,
    /// message_status, note_added, triaged, owner_changed, escalated, message_held,
    /// message_approved, message_rejected, message_blocked, and more (`OtherEventData`).
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    /// The event's details, typed by kind.
    async fn data(&self) -> super::payloads::EventData {
        let data = serde_json::from_str(&self.0.data).unwrap_or_default();
        super::payloads::EventData::of_event(&self.0.kind, &data)
    }
    /// The event's details as stored, as JSON: an escape hatch.
    async fn data_json(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(serde_json::from_str(&self.0.data).unwrap_or_default())
    }
    /// customer, system, agent:<id> or token:<id>.
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn created_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct DeadLetter {
    pub id: ID,
    pub channel_id: String,
    /// webhook (whole payload unusable), webhook_item, message or status.
    pub source: String,
    pub reason: String,
    pub inbox_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub payload: Vec<u8>,
}

#[ComplexObject]
impl DeadLetter {
    /// The payload as received (lossy UTF-8).
    async fn payload(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

impl From<dead_letter::Model> for DeadLetter {
    fn from(row: dead_letter::Model) -> Self {
        Self {
            id: ID(row.id.to_string()),
            channel_id: row.channel_id,
            source: row.source,
            reason: row.reason,
            inbox_id: row.inbox_id.map(|id| ID(id.to_string())),
            created_at: micros_to_datetime(row.created_at),
            payload: row.payload,
        }
    }
}
