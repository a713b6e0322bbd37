//! Outbound governance in GraphQL: the approval queue (held messages, approve, edit and
//! approve, reject, and a subscription for inboxes) and the audit trail for auditors.

use super::types::{id_of, page_size};
use super::{api, conversation_error, principal};
use crate::clock::micros_to_datetime;
use crate::conversation::DecideHeld;
use crate::conversation::approval::Decision;
use crate::domain::{MAX_TEXT_CHARS, Permission};
use crate::error::{ApiError, ErrorCode};
use crate::store::entities::{audit_entry, held_message};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum HeldStatus {
    Pending,
    Approved,
    Rejected,
}

impl HeldStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

/// An outbound message the gate held for a person's approval.
pub struct HeldMessage(pub held_message::Model);

#[Object]
impl HeldMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn conversation_id(&self) -> ID {
        ID(self.0.conversation_id.to_string())
    }
    /// The stored message (its `deliveryStatus` is HELD, then PENDING once approved or
    /// REJECTED).
    async fn message_id(&self) -> ID {
        ID(self.0.message_id.to_string())
    }
    /// agent, integration, automation, ai_draft, survey or closing.
    async fn origin(&self) -> &str {
        &self.0.origin
    }
    /// service, marketing or surveys.
    async fn purpose(&self) -> &str {
        &self.0.purpose
    }
    /// The least role that may decide it.
    async fn approver(&self) -> super::types::Role {
        crate::domain::Role::parse(&self.0.approver)
            .unwrap_or(crate::domain::Role::Admin)
            .into()
    }
    /// The approval boundaries that held it.
    async fn boundaries(&self) -> Vec<String> {
        serde_json::from_str(&self.0.boundaries).unwrap_or_default()
    }
    /// Why, one sentence per boundary.
    async fn reasons(&self) -> Vec<String> {
        serde_json::from_str(&self.0.reasons).unwrap_or_default()
    }
    async fn status(&self) -> HeldStatus {
        HeldStatus::parse(&self.0.status)
    }
    /// The text as written (kept after an edit).
    async fn original_text(&self) -> Option<&str> {
        self.0.original_text.as_deref()
    }
    /// The approver's edit, which is what was sent.
    async fn edited_text(&self) -> Option<&str> {
        self.0.edited_text.as_deref()
    }
    async fn decided_by(&self) -> Option<&str> {
        self.0.decided_by.as_deref()
    }
    /// A rejection's reason.
    async fn decision_note(&self) -> Option<&str> {
        self.0.decision_note.as_deref()
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.decided_at.map(micros_to_datetime)
    }
    async fn held_at(&self) -> DateTime<Utc> {
        micros_to_datetime(self.0.created_at)
    }
}

/// One audit entry: who did what, when, why, on what; chained to the one before.
#[derive(SimpleObject)]
pub struct AuditEntry {
    pub id: ID,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    /// Details, as JSON.
    pub data: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<audit_entry::Model> for AuditEntry {
    fn from(e: audit_entry::Model) -> Self {
        Self {
            id: ID(e.id.to_string()),
            at: micros_to_datetime(e.at),
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            data: e.data,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// Filters for the audit trail; all given conditions hold.
#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// An action (`conversation.message_approved`) or a family of them ending in `.`
    /// (`consent.`, `conversation.`).
    pub action: Option<String>,
    /// `agent:3`, `token:7`, `system`, `customer`, `cli`...
    pub actor: Option<String>,
    /// `conversation:42`, `contact:7`...
    pub subject: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; none at the start of the log.
    pub next_before: Option<ID>,
}

#[derive(Default)]
pub struct GovernanceQuery;

#[Object]
impl GovernanceQuery {
    /// The approval queue: held messages, oldest first (PENDING by default), of one
    /// conversation or all.
    #[graphql(complexity = "super::types::page_cost(first, child_complexity, 1)")]
    async fn held_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "HeldStatus::Pending")] status: HeldStatus,
        conversation_id: Option<ID>,
        first: Option<i32>,
        #[graphql(desc = "A held message id from the previous page.")] after: Option<ID>,
    ) -> async_graphql::Result<Vec<HeldMessage>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let limit = page_size(ctx, first)?;
        let mut query = held_message::Entity::find()
            .filter(held_message::Column::Status.eq(status.as_str()))
            .order_by_asc(held_message::Column::Id)
            .limit(limit);
        if let Some(id) = &conversation_id {
            query =
                query.filter(held_message::Column::ConversationId.eq(id_of(id, "conversation")?));
        }
        if let Some(after) = &after {
            query = query.filter(held_message::Column::Id.gt(id_of(after, "held message")?));
        }
        let rows = query
            .all(api(ctx).store.db())
            .await
            .map_err(ApiError::internal)?;
        Ok(rows.into_iter().map(HeldMessage).collect())
    }

    /// The audit trail, newest first (auditors and admins). Entries cannot be edited or
    /// deleted through any API; `parley audit verify` checks the chain.
    #[graphql(complexity = "super::types::page_cost(first, child_complexity, 1)")]
    async fn audit_log(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        first: Option<i32>,
        #[graphql(desc = "An entry id: return entries older than it.")] before: Option<ID>,
    ) -> async_graphql::Result<AuditPage> {
        principal(ctx)?.require(Permission::ReadAudit)?;
        let limit = page_size(ctx, first)?;
        let filter = filter.unwrap_or_default();
        let mut query = audit_entry::Entity::find()
            .order_by_desc(audit_entry::Column::Id)
            .limit(limit);
        if let Some(action) = filter.action.as_deref().filter(|a| !a.is_empty()) {
            query = if action.ends_with('.') {
                query.filter(audit_entry::Column::Action.starts_with(action))
            } else {
                query.filter(audit_entry::Column::Action.eq(action))
            };
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(audit_entry::Column::Actor.eq(actor.as_str()));
        }
        if let Some(subject) = &filter.subject {
            query = query.filter(audit_entry::Column::Subject.eq(subject.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_entry::Column::At.gte(since.timestamp_micros()));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_entry::Column::At.lt(until.timestamp_micros()));
        }
        if let Some(before) = &before {
            query = query.filter(audit_entry::Column::Id.lt(id_of(before, "audit entry")?));
        }
        let rows = query
            .all(api(ctx).store.db())
            .await
            .map_err(ApiError::internal)?;
        let next_before = (rows.len() as u64 == limit)
            .then(|| rows.last().map(|e| ID(e.id.to_string())))
            .flatten();
        Ok(AuditPage {
            entries: rows.into_iter().map(AuditEntry::from).collect(),
            next_before,
        })
    }
}

#[derive(Default)]
pub struct GovernanceMutation;

#[Object]
impl GovernanceMutation {
    /// Applies a dead letter again once its cause is fixed (admins only): a message,
    /// delivery statuses or a template verdict that could not be applied. Answers the
    /// dead letter's source; the dead letter is removed once applied, and the re-drive is
    /// in the audit log. `dead_letter_not_found` for an unknown id, `invalid_input` for a
    /// payload that could never be read (kept for inspection), `unavailable` when it
    /// fails again (the dead letter stays).
    async fn redrive_dead_letter(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<String> {
        let who = principal(ctx)?;
        who.require(Permission::RedriveDeadLetters)?;
        let id = id_of(&id, "dead letter")?;
        let redriven = api(ctx)
            .intake
            .redrive(id, &who.actor().label())
            .await
            .map_err(|error| {
                use crate::ingest::dispatcher::RedriveError;
                let code = match &error {
                    RedriveError::NotFound(_) => ErrorCode::DeadLetterNotFound,
                    RedriveError::NotRedrivable(_) => ErrorCode::InvalidInput,
                    RedriveError::Failed(_) => ErrorCode::Unavailable,
                };
                ApiError::new(code, error.to_string())
            })?;
        Ok(redriven.source)
    }

    /// Sends a held message, as written or with `text` instead (the original is kept).
    /// Refused with `already_decided` once it was approved or rejected (nothing is sent
    /// twice, whoever clicks second), `forbidden` below the role it waits for,
    /// `window_closed` when a free-form message can no longer be sent, and
    /// `consent_withdrawn` when the customer opted out meanwhile.
    async fn approve_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
        text: Option<String>,
    ) -> async_graphql::Result<HeldMessage> {
        if let Some(text) = &text
            && text.chars().count() > MAX_TEXT_CHARS
        {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("the text is longer than {MAX_TEXT_CHARS} characters"),
            )
            .into());
        }
        decide(ctx, &id, Decision::Approve { text }).await
    }

    /// Rejects a held message: it is never sent; the reason is kept.
    async fn reject_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(validator(chars_max_length = 1000))] reason: String,
    ) -> async_graphql::Result<HeldMessage> {
        decide(ctx, &id, Decision::Reject { reason }).await
    }
}

async fn decide(
    ctx: &Context<'_>,
    id: &ID,
    decision: Decision,
) -> async_graphql::Result<HeldMessage> {
    let who = principal(ctx)?;
    who.require(Permission::ApproveMessages)?;
    let held_id = id_of(id, "held message")?;
    let db = api(ctx).store.db();
    let not_found = || {
        ApiError::new(
            ErrorCode::HeldMessageNotFound,
            format!("there is no held message {held_id}"),
        )
    };
    let held = held_message::Entity::find_by_id(held_id)
        .one(db)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let (key, _) = super::conversation_key(ctx, &ID(held.conversation_id.to_string())).await?;
    let drafted_by = crate::store::entities::message::Entity::find_by_id(held.message_id)
        .one(db)
        .await
        .map_err(ApiError::internal)?
        .and_then(|message| message.author_agent_id);
    let decision_label = match &decision {
        Decision::Approve { text: Some(_) } => "approved_edited",
        Decision::Approve { text: None } => "approved",
        Decision::Reject { .. } => "rejected",
    };
    api(ctx)
        .conversations
        .ask(
            &key,
            DecideHeld {
                held,
                decision,
                by: who.actor(),
                role: who.role,
                drafted_by,
            },
        )
        .await
        .map_err(conversation_error)?;
    crate::telemetry::metrics()
        .approvals
        .with_label_values(&[decision_label])
        .inc();
    let decided = held_message::Entity::find_by_id(held_id)
        .one(db)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    Ok(HeldMessage(decided))
}

/// What happened in the approval queue.
#[derive(SimpleObject)]
pub struct ApprovalQueueEvent {
    /// message_held, message_approved or message_rejected.
    pub kind: String,
    pub conversation_id: ID,
    pub message_id: Option<ID>,
    pub actor: String,
    /// The event's details, as JSON (boundaries and reasons of a hold; the edit of an
    /// approval; the reason of a rejection).
    pub data: String,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct GovernanceSubscription;

#[Subscription]
impl GovernanceSubscription {
    /// Held messages as they are held and decided, for an approval inbox.
    async fn approval_queue(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ApprovalQueueEvent>> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let receiver = api(ctx).events.subscribe();
        Ok(futures::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event)
                            if matches!(
                                event.kind.as_str(),
                                "message_held" | "message_approved" | "message_rejected"
                            ) =>
                        {
                            let data: serde_json::Value =
                                serde_json::from_str(&event.data).unwrap_or_default();
                            let item = ApprovalQueueEvent {
                                kind: event.kind.clone(),
                                conversation_id: ID(event.conversation_id.to_string()),
                                message_id: data["message_id"]
                                    .as_i64()
                                    .map(|id| ID(id.to_string())),
                                actor: event.actor.clone(),
                                data: event.data.clone(),
                                at: micros_to_datetime(event.created_at),
                            };
                            return Some((item, receiver));
                        }
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "An approval-queue subscriber fell behind.");
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}
