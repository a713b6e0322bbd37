//! The outbox and delivery statuses.
//!
//! An outbound message is queued in the same commit as the message itself. A send is
//! claimed (`sending`) durably before the provider is called; a row found `sending` at
//! start-up may or may not have reached the provider, so it is never resent: it becomes
//! `in_doubt` and its message shows the outcome as unknown until a status callback names it.

use super::batcher::BatchOp;
use super::conversations::{NewEvent, insert_event};
use super::entities::{conversation_event, message, message_status, outbox};
use super::inbox::ROWS_PER_STATEMENT;
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use crate::domain::inbound::{DeliveryStatus, StatusUpdate};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const QUEUED: &str = "queued";
pub const SENDING: &str = "sending";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const IN_DOUBT: &str = "in_doubt";

/// Error code shown on a message whose send was interrupted by a crash.
pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";

/// Claims a queued send. False when another claim got there first.
pub struct ClaimSend {
    pub outbox_id: i64,
    pub now: Micros,
}

impl WriteOp for ClaimSend {
    type Output = bool;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<bool, DbErr>> {
        Box::pin(async move {
            let result = outbox::Entity::update_many()
                .col_expr(outbox::Column::State, Expr::value(SENDING))
                .col_expr(
                    outbox::Column::Attempts,
                    Expr::col(outbox::Column::Attempts).add(1),
                )
                .col_expr(outbox::Column::UpdatedAt, Expr::value(self.now))
                .filter(outbox::Column::Id.eq(self.outbox_id))
                .filter(outbox::Column::State.eq(QUEUED))
                .exec(txn)
                .await?;
            Ok(result.rows_affected == 1)
        })
    }
}

/// Moves a customer's queued sends on one channel to `until` (the pair rate), keeping
/// their order.
pub struct DeferRecipient {
    pub channel_id: String,
    pub recipient: String,
    pub until: Micros,
    pub now: Micros,
}

impl WriteOp for DeferRecipient {
    type Output = u64;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<u64, DbErr>> {
        Box::pin(async move {
            let result = outbox::Entity::update_many()
                .col_expr(outbox::Column::NextAttemptAt, Expr::value(self.until))
                .col_expr(outbox::Column::UpdatedAt, Expr::value(self.now))
                .filter(outbox::Column::ChannelId.eq(self.channel_id.as_str()))
                .filter(outbox::Column::Recipient.eq(self.recipient.as_str()))
                .filter(outbox::Column::State.eq(QUEUED))
                .filter(outbox::Column::NextAttemptAt.lt(self.until))
                .exec(txn)
                .await?;
            Ok(result.rows_affected)
        })
    }
}

/// What came of one call to the provider.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    Sent {
        provider_message_id: String,
    },
    Retry {
        next_attempt_at: Micros,
        error: String,
    },
    Failed {
        code: String,
        title: String,
    },
}

pub struct RecordSendOutcome {
    pub outbox_id: i64,
    pub message_id: i64,
    pub outcome: SendOutcome,
    pub now: Micros,
}

impl WriteOp for RecordSendOutcome {
    type Output = Vec<conversation_event::Model>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let Some(row) = outbox::Entity::find_by_id(self.outbox_id).one(txn).await? else {
                return Err(DbErr::RecordNotFound(format!("outbox {}", self.outbox_id)));
            };
            let mut job = row.into_active_model();
            job.updated_at = Set(self.now);
            let mut events = Vec::new();
            match &self.outcome {
                SendOutcome::Sent {
                    provider_message_id,
                } => {
                    job.state = Set(DONE.into());
                    job.last_error = Set(None);
                    job.update(txn).await?;
                    let Some(message) = message::Entity::find_by_id(self.message_id)
                        .one(txn)
                        .await?
                    else {
                        return Ok(events);
                    };
                    let channel_id = message.channel_id.clone();
                    let mut active = message.clone().into_active_model();
                    active.provider_message_id = Set(Some(provider_message_id.clone()));
                    active.delivery_status = Set(Some(DeliveryStatus::Sent.as_str().into()));
                    let message = active.update(txn).await?;
                    events.push(
                        insert_event(
                            txn,
                            message.conversation_id,
                            &status_event(message.id, DeliveryStatus::Sent, None),
                            None,
                            self.now,
                        )
                        .await?,
                    );
                    // Callbacks that arrived before the provider's answer was recorded.
                    let early = message_status::Entity::find()
                        .filter(message_status::Column::ChannelId.eq(channel_id))
                        .filter(message_status::Column::ProviderMessageId.eq(provider_message_id))
                        .order_by_asc(message_status::Column::Id)
                        .all(txn)
                        .await?;
                    let mut message = message;
                    for status in early {
                        let Some(delivery) = DeliveryStatus::parse(&status.status) else {
                            continue;
                        };
                        let errors: Vec<crate::domain::inbound::ProviderError> = status
                            .errors
                            .as_deref()
                            .and_then(|e| serde_json::from_str(e).ok())
                            .unwrap_or_default();
                        if let Some((updated, event)) =
                            progress(txn, message.clone(), delivery, &errors, self.now).await?
                        {
                            message = updated;
                            events.push(event);
                        }
                    }
                }
                SendOutcome::Retry {
                    next_attempt_at,
                    error,
                } => {
                    job.state = Set(QUEUED.into());
                    job.next_attempt_at = Set(*next_attempt_at);
                    job.last_error = Set(Some(error.clone()));
                    job.update(txn).await?;
                }
                SendOutcome::Failed { code, title } => {
                    job.state = Set(FAILED.into());
                    job.last_error = Set(Some(format!("{code}: {title}")));
                    job.update(txn).await?;
                    if let Some(message) = message::Entity::find_by_id(self.message_id)
                        .one(txn)
                        .await?
                    {
                        let conversation_id = message.conversation_id;
                        let mut active = message.into_active_model();
                        active.delivery_status = Set(Some(DeliveryStatus::Failed.as_str().into()));
                        active.error_code = Set(Some(code.clone()));
                        active.error_title = Set(Some(title.clone()));
                        active.update(txn).await?;
                        let event = status_event(
                            self.message_id,
                            DeliveryStatus::Failed,
                            Some((code, title)),
                        );
                        events.push(
                            insert_event(txn, conversation_id, &event, None, self.now).await?,
                        );
                    }
                }
            }
            Ok(events)
        })
    }
}

/// At start-up: sends that were under way when the process stopped.
pub struct RecoverInDoubtSends {
    pub now: Micros,
}

impl WriteOp for RecoverInDoubtSends {
    type Output = Vec<conversation_event::Model>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let stuck = outbox::Entity::find()
                .filter(outbox::Column::State.eq(SENDING))
                .all(txn)
                .await?;
            let mut events = Vec::new();
            for job in stuck {
                let message_id = job.message_id;
                let mut active = job.into_active_model();
                active.state = Set(IN_DOUBT.into());
                active.updated_at = Set(self.now);
                active.update(txn).await?;
                let Some(message) = message::Entity::find_by_id(message_id).one(txn).await? else {
                    continue;
                };
                if message.provider_message_id.is_some() {
                    continue;
                }
                let conversation_id = message.conversation_id;
                let title = "the server stopped while sending; not resent, to avoid a duplicate";
                let mut active = message.into_active_model();
                active.delivery_status = Set(Some(DeliveryStatus::Failed.as_str().into()));
                active.error_code = Set(Some(OUTCOME_UNKNOWN.into()));
                active.error_title = Set(Some(title.into()));
                active.update(txn).await?;
                let event = status_event(
                    message_id,
                    DeliveryStatus::Failed,
                    Some((OUTCOME_UNKNOWN, title)),
                );
                events.push(insert_event(txn, conversation_id, &event, None, self.now).await?);
            }
            Ok(events)
        })
    }
}

/// One delivery status callback to record.
#[derive(Debug, Clone)]
pub struct StatusItem {
    pub channel_id: String,
    pub status: StatusUpdate,
    pub now: Micros,
}

/// Records delivery status callbacks (many webhooks' worth in one multi-row statement) and
/// moves the outbound messages they name forward. Each item answers the events it caused.
pub struct ApplyStatuses {
    pub items: Arc<Vec<StatusItem>>,
}

impl BatchOp for ApplyStatuses {
    type Item = StatusItem;
    type ItemOutput = Vec<conversation_event::Model>;
    fn from_items(items: Arc<Vec<StatusItem>>) -> Self {
        Self { items }
    }
}

type StatusKey = (String, String, &'static str);

impl WriteOp for ApplyStatuses {
    type Output = Vec<Vec<conversation_event::Model>>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let backend = txn.get_database_backend();
            // Which callbacks are new: redelivered ones are skipped by the unique key.
            let mut fresh: HashSet<StatusKey> = HashSet::new();
            for chunk in self.items.chunks(ROWS_PER_STATEMENT) {
                let mut insert = Query::insert()
                    .into_table(message_status::Entity)
                    .columns([
                        message_status::Column::ChannelId,
                        message_status::Column::ProviderMessageId,
                        message_status::Column::Status,
                        message_status::Column::At,
                        message_status::Column::Errors,
                        message_status::Column::CreatedAt,
                    ])
                    .on_conflict(
                        OnConflict::columns([
                            message_status::Column::ChannelId,
                            message_status::Column::ProviderMessageId,
                            message_status::Column::Status,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .returning(Query::returning().columns([
                        message_status::Column::ChannelId,
                        message_status::Column::ProviderMessageId,
                        message_status::Column::Status,
                    ]))
                    .to_owned();
                for item in chunk {
                    let errors = (!item.status.errors.is_empty())
                        .then(|| serde_json::to_string(&item.status.errors).ok())
                        .flatten();
                    insert
                        .values([
                            item.channel_id.clone().into(),
                            item.status.provider_message_id.clone().into(),
                            item.status.status.as_str().into(),
                            item.status.at.timestamp_micros().into(),
                            errors.into(),
                            item.now.into(),
                        ])
                        .map_err(|e| DbErr::Custom(e.to_string()))?;
                }
                for row in txn.query_all(backend.build(&insert)).await? {
                    let status: String = row.try_get("", "status")?;
                    let Some(status) = DeliveryStatus::parse(&status) else {
                        continue;
                    };
                    fresh.insert((
                        row.try_get("", "channel_id")?,
                        row.try_get("", "provider_message_id")?,
                        status.as_str(),
                    ));
                }
            }
            // The outbound messages the new callbacks name, in one query per channel and
            // chunk: with the channel given, the lookup uses the (channel, provider id)
            // index instead of scanning every message.
            let mut named: Vec<(&str, &str)> = fresh
                .iter()
                .map(|(channel, pmid, _)| (channel.as_str(), pmid.as_str()))
                .collect();
            named.sort_unstable();
            named.dedup();
            let mut messages: HashMap<(String, String), message::Model> = HashMap::new();
            for channel in named.chunk_by(|a, b| a.0 == b.0) {
                for chunk in channel.chunks(ROWS_PER_STATEMENT) {
                    let found = message::Entity::find()
                        .filter(message::Column::ChannelId.eq(chunk[0].0))
                        .filter(message::Column::Direction.eq("outbound"))
                        .filter(
                            message::Column::ProviderMessageId
                                .is_in(chunk.iter().map(|(_, pmid)| *pmid)),
                        )
                        .all(txn)
                        .await?;
                    for message in found {
                        if let Some(pmid) = message.provider_message_id.clone() {
                            messages.insert((message.channel_id.clone(), pmid), message);
                        }
                    }
                }
            }
            let mut outputs = Vec::with_capacity(self.items.len());
            for item in self.items.iter() {
                let status = &item.status;
                let key = (
                    item.channel_id.clone(),
                    status.provider_message_id.clone(),
                    status.status.as_str(),
                );
                if !fresh.remove(&key) {
                    outputs.push(Vec::new());
                    continue;
                }
                let message_key = (key.0, key.1);
                let message = match messages.remove(&message_key) {
                    Some(message) => Some(message),
                    None => find_by_callback(txn, &item.channel_id, status).await?,
                };
                let Some(message) = message else {
                    outputs.push(Vec::new());
                    continue;
                };
                match progress(
                    txn,
                    message.clone(),
                    status.status,
                    &status.errors,
                    item.now,
                )
                .await?
                {
                    Some((updated, event)) => {
                        messages.insert(message_key, updated);
                        outputs.push(vec![event]);
                    }
                    None => {
                        messages.insert(message_key, message);
                        outputs.push(Vec::new());
                    }
                }
            }
            Ok(outputs)
        })
    }
}

/// A status for a message whose send answer was lost (crash, timeout): the provider
/// echoes the reference Parley sent in `biz_opaque_callback_data`.
async fn find_by_callback(
    txn: &DatabaseTransaction,
    channel_id: &str,
    status: &StatusUpdate,
) -> Result<Option<message::Model>, DbErr> {
    let Some(id) = status
        .callback_data
        .as_deref()
        .and_then(parse_callback_data)
    else {
        return Ok(None);
    };
    let Some(message) = message::Entity::find_by_id(id).one(txn).await? else {
        return Ok(None);
    };
    if message.channel_id != channel_id || message.provider_message_id.is_some() {
        return Ok(None);
    }
    let mut active = message.into_active_model();
    active.provider_message_id = Set(Some(status.provider_message_id.clone()));
    active.error_code = Set(None);
    active.error_title = Set(None);
    active.delivery_status = Set(Some(DeliveryStatus::Pending.as_str().into()));
    Ok(Some(active.update(txn).await?))
}

/// The reference Parley puts in `biz_opaque_callback_data` for one message.
pub fn callback_data(message_id: i64) -> String {
    format!("parley:{message_id}")
}

fn parse_callback_data(data: &str) -> Option<i64> {
    data.strip_prefix("parley:")?.parse().ok()
}

fn rank(status: DeliveryStatus) -> u8 {
    match status {
        DeliveryStatus::Pending | DeliveryStatus::Held => 0,
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Played => 4,
        DeliveryStatus::Failed => 5,
        // Never sent: no callback moves it.
        DeliveryStatus::Rejected => 6,
    }
}

/// Moves a message's delivery status forward; callbacks arrive out of order, and a late
/// `sent` never undoes `read`. `failed` wins unless the message was already delivered.
async fn progress(
    txn: &DatabaseTransaction,
    message: message::Model,
    to: DeliveryStatus,
    errors: &[crate::domain::inbound::ProviderError],
    now: Micros,
) -> Result<Option<(message::Model, conversation_event::Model)>, DbErr> {
    let current = message
        .delivery_status
        .as_deref()
        .and_then(DeliveryStatus::parse)
        .unwrap_or(DeliveryStatus::Pending);
    let moves = match (current, to) {
        (DeliveryStatus::Failed, _) => false,
        (
            DeliveryStatus::Delivered | DeliveryStatus::Read | DeliveryStatus::Played,
            DeliveryStatus::Failed,
        ) => false,
        (from, to) => rank(to) > rank(from),
    };
    if !moves {
        return Ok(None);
    }
    let conversation_id = message.conversation_id;
    let message_id = message.id;
    let mut active = message.into_active_model();
    active.delivery_status = Set(Some(to.as_str().into()));
    let error = errors
        .first()
        .map(|e| (e.code.to_string(), e.title.clone()));
    if to == DeliveryStatus::Failed {
        active.error_code = Set(error.as_ref().map(|e| e.0.clone()));
        active.error_title = Set(error.as_ref().map(|e| e.1.clone()));
    }
    let updated = active.update(txn).await?;
    let event = status_event(
        message_id,
        to,
        error.as_ref().map(|(c, t)| (c.as_str(), t.as_str())),
    );
    let event = insert_event(txn, conversation_id, &event, None, now).await?;
    Ok(Some((updated, event)))
}

fn status_event(message_id: i64, status: DeliveryStatus, error: Option<(&str, &str)>) -> NewEvent {
    let mut data = serde_json::json!({ "message_id": message_id, "status": status.as_str() });
    if let (Some((code, title)), serde_json::Value::Object(map)) = (error, &mut data) {
        map.insert(
            "error".into(),
            serde_json::json!({ "code": code, "title": title }),
        );
    }
    NewEvent {
        kind: "message_status",
        data,
        actor: "system".into(),
    }
}

impl Store {
    /// Queued sends whose time has come, oldest first.
    pub async fn due_sends(
        &self,
        now: Micros,
        limit: u64,
    ) -> Result<Vec<outbox::Model>, StoreError> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::State.eq(QUEUED))
            .filter(outbox::Column::NextAttemptAt.lte(now))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    /// When the next queued send is due, if any.
    pub async fn next_send_due(&self) -> Result<Option<Micros>, StoreError> {
        Ok(outbox::Entity::find()
            .select_only()
            .column_as(outbox::Column::NextAttemptAt.min(), "next")
            .filter(outbox::Column::State.eq(QUEUED))
            .into_tuple::<Option<i64>>()
            .one(self.db())
            .await?
            .flatten())
    }
}

/// The provider accepted the file of a queued send: its id is kept on the send, so a
/// retry sends by it instead of uploading the file again.
pub struct RecordProviderMedia {
    pub outbox_id: i64,
    pub provider_media_id: String,
    pub now: Micros,
}

impl WriteOp for RecordProviderMedia {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            outbox::Entity::update_many()
                .col_expr(
                    outbox::Column::ProviderMediaId,
                    Expr::value(self.provider_media_id.clone()),
                )
                .col_expr(outbox::Column::UpdatedAt, Expr::value(self.now))
                .filter(outbox::Column::Id.eq(self.outbox_id))
                .exec(txn)
                .await?;
            Ok(())
        })
    }
}
