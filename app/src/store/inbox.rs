//! The webhook inbox: raw, verified payloads, stored before the provider is answered.
//!
//! A payload is stored once per channel (keyed by its SHA-256), so a redelivered webhook
//! finds its first copy. Rows stay `pending` until every item in them has been applied,
//! which is what start-up replays after a crash.

use super::batcher::BatchOp;
use super::entities::{dead_letter, inbox};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use bytes::Bytes;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use std::sync::Arc;

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";

/// One verified webhook body to store.
#[derive(Clone)]
pub struct NewInboxRow {
    pub channel_id: String,
    pub body: Bytes,
    pub body_sha256: String,
    pub received_at: Micros,
}

/// Stores verified webhook bodies: many webhooks, one multi-row statement.
pub struct InsertInbox {
    pub rows: Arc<Vec<NewInboxRow>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxInsert {
    /// Stored for the first time under this id.
    Stored(i64),
    /// The same body was stored before, under this id.
    Duplicate(i64),
}

impl BatchOp for InsertInbox {
    type Item = NewInboxRow;
    type ItemOutput = InboxInsert;
    fn from_items(rows: Arc<Vec<NewInboxRow>>) -> Self {
        Self { rows }
    }
}

impl WriteOp for InsertInbox {
    type Output = Vec<InboxInsert>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Vec<InboxInsert>, DbErr>> {
        Box::pin(async move {
            let mut stored: HashMap<(String, String), i64> =
                HashMap::with_capacity(self.rows.len());
            for chunk in self.rows.chunks(ROWS_PER_STATEMENT) {
                let mut insert = Query::insert()
                    .into_table(inbox::Entity)
                    .columns([
                        inbox::Column::ChannelId,
                        inbox::Column::Body,
                        inbox::Column::BodySha256,
                        inbox::Column::State,
                        inbox::Column::Attempts,
                        inbox::Column::ReceivedAt,
                    ])
                    .on_conflict(
                        OnConflict::columns([inbox::Column::ChannelId, inbox::Column::BodySha256])
                            .do_nothing()
                            .to_owned(),
                    )
                    .returning(Query::returning().columns([
                        inbox::Column::Id,
                        inbox::Column::ChannelId,
                        inbox::Column::BodySha256,
                    ]))
                    .to_owned();
                for row in chunk {
                    insert
                        .values([
                            row.channel_id.clone().into(),
                            row.body.to_vec().into(),
                            row.body_sha256.clone().into(),
                            PENDING.into(),
                            0i32.into(),
                            row.received_at.into(),
                        ])
                        .map_err(|e| DbErr::Custom(e.to_string()))?;
                }
                let backend = txn.get_database_backend();
                for returned in txn.query_all(backend.build(&insert)).await? {
                    let id: i64 = returned.try_get("", "id")?;
                    let key = (
                        returned.try_get("", "channel_id")?,
                        returned.try_get("", "body_sha256")?,
                    );
                    stored.insert(key, id);
                }
            }
            // The first occurrence of a body is the stored one; any other is a duplicate,
            // whether of a row from this batch or of an older one.
            let mut answered: HashMap<(&str, &str), i64> = HashMap::new();
            let mut outputs = Vec::with_capacity(self.rows.len());
            for row in self.rows.iter() {
                let key = (row.channel_id.as_str(), row.body_sha256.as_str());
                if let Some(id) = answered.get(&key) {
                    outputs.push(InboxInsert::Duplicate(*id));
                } else if let Some(id) =
                    stored.get(&(row.channel_id.clone(), row.body_sha256.clone()))
                {
                    answered.insert(key, *id);
                    outputs.push(InboxInsert::Stored(*id));
                } else {
                    let id: i64 = inbox::Entity::find()
                        .select_only()
                        .column(inbox::Column::Id)
                        .filter(inbox::Column::ChannelId.eq(&row.channel_id))
                        .filter(inbox::Column::BodySha256.eq(&row.body_sha256))
                        .into_tuple()
                        .one(txn)
                        .await?
                        .ok_or_else(|| {
                            DbErr::Custom("inbox conflict without a stored row".into())
                        })?;
                    answered.insert(key, id);
                    outputs.push(InboxInsert::Duplicate(id));
                }
            }
            Ok(outputs)
        })
    }
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's parameter limits.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// Marks inbox rows whose every item has been applied.
pub struct MarkInboxDone {
    pub ids: Vec<i64>,
    pub at: Micros,
}

impl WriteOp for MarkInboxDone {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            for chunk in self.ids.chunks(500) {
                inbox::Entity::update_many()
                    .col_expr(inbox::Column::State, Expr::value(DONE))
                    .col_expr(inbox::Column::ProcessedAt, Expr::value(self.at))
                    .filter(inbox::Column::Id.is_in(chunk.iter().copied()))
                    .exec(txn)
                    .await?;
            }
            Ok(())
        })
    }
}

/// Moves a payload (or an item of it) that cannot be applied to the dead-letter table.
#[derive(Clone)]
pub struct RecordDeadLetter {
    pub channel_id: String,
    pub source: &'static str,
    pub reason: String,
    pub payload: Bytes,
    pub inbox_id: Option<i64>,
    pub at: Micros,
}

/// Marks an inbox row dead: its whole payload is unusable (and kept as a dead letter).
pub struct MarkInboxDead {
    pub id: i64,
    pub reason: String,
    pub at: Micros,
}

impl WriteOp for MarkInboxDead {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            inbox::Entity::update_many()
                .col_expr(inbox::Column::State, Expr::value(DEAD))
                .col_expr(inbox::Column::ProcessedAt, Expr::value(self.at))
                .col_expr(inbox::Column::LastError, Expr::value(self.reason.clone()))
                .filter(inbox::Column::Id.eq(self.id))
                .exec(txn)
                .await?;
            Ok(())
        })
    }
}

impl WriteOp for RecordDeadLetter {
    type Output = i64;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<i64, DbErr>> {
        Box::pin(async move {
            let id = dead_letter::Entity::insert(dead_letter::ActiveModel {
                channel_id: Set(self.channel_id.clone()),
                source: Set(self.source.into()),
                reason: Set(self.reason.clone()),
                payload: Set(self.payload.to_vec()),
                inbox_id: Set(self.inbox_id),
                created_at: Set(self.at),
                ..Default::default()
            })
            .exec(txn)
            .await?
            .last_insert_id;
            Ok(id)
        })
    }
}

impl Store {
    /// Moves webhooks left pending in the main database's inbox table (where earlier
    /// versions kept the inbox) into the inbox's own database, so that the replay finds
    /// them; each is stored there once, like any delivery. Nothing to do when the inbox
    /// shares the main database.
    pub async fn adopt_pending_from_main(&self, now: Micros) -> Result<usize, StoreError> {
        if !self.inbox_apart() {
            return Ok(0);
        }
        let mut moved = 0;
        loop {
            let rows = inbox::Entity::find()
                .filter(inbox::Column::State.eq(PENDING))
                .order_by_asc(inbox::Column::Id)
                .limit(ROWS_PER_STATEMENT as u64)
                .all(self.db())
                .await?;
            if rows.is_empty() {
                break;
            }
            let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
            moved += rows.len();
            let rows = rows
                .into_iter()
                .map(|row| NewInboxRow {
                    channel_id: row.channel_id,
                    body: Bytes::from(row.body),
                    body_sha256: row.body_sha256,
                    received_at: row.received_at,
                })
                .collect();
            self.write_inbox(InsertInbox {
                rows: Arc::new(rows),
            })
            .await?;
            self.write(MarkInboxDone { ids, at: now }).await?;
        }
        if moved > 0 {
            tracing::info!(
                moved,
                "Moved pending webhooks from the main database into the inbox's."
            );
        }
        Ok(moved)
    }

    /// The newest inbox row's id (0 when empty).
    pub async fn last_inbox_id(&self) -> Result<i64, StoreError> {
        Ok(inbox::Entity::find()
            .select_only()
            .column_as(inbox::Column::Id.max(), "last")
            .into_tuple::<Option<i64>>()
            .one(self.inbox_db())
            .await?
            .flatten()
            .unwrap_or(0))
    }

    /// Whether every message of `provider_message_ids` on `channel_id` has been recorded,
    /// as a message or as noise (a cluster node asks about messages other nodes apply).
    pub async fn messages_recorded(
        &self,
        channel_id: &str,
        provider_message_ids: &[String],
    ) -> Result<bool, StoreError> {
        use super::entities::{message, suppression};
        let wanted: std::collections::HashSet<&String> = provider_message_ids.iter().collect();
        let mut found: Vec<String> = message::Entity::find()
            .select_only()
            .column(message::Column::ProviderMessageId)
            .filter(message::Column::ChannelId.eq(channel_id))
            .filter(message::Column::ProviderMessageId.is_in(wanted.iter().map(|s| s.as_str())))
            .into_tuple::<String>()
            .all(self.db())
            .await?;
        found.extend(
            suppression::Entity::find()
                .select_only()
                .column(suppression::Column::ProviderMessageId)
                .filter(suppression::Column::ChannelId.eq(channel_id))
                .filter(
                    suppression::Column::ProviderMessageId.is_in(wanted.iter().map(|s| s.as_str())),
                )
                .into_tuple::<String>()
                .all(self.db())
                .await?,
        );
        let found: std::collections::HashSet<&String> = found.iter().collect();
        Ok(wanted.iter().all(|pmid| found.contains(pmid)))
    }

    /// Pending inbox rows after `after_id`, oldest first: what start-up replays.
    pub async fn pending_inbox(
        &self,
        after_id: i64,
        limit: u64,
    ) -> Result<Vec<inbox::Model>, StoreError> {
        Ok(inbox::Entity::find()
            .filter(inbox::Column::State.eq(PENDING))
            .filter(inbox::Column::Id.gt(after_id))
            .order_by_asc(inbox::Column::Id)
            .limit(limit)
            .all(self.inbox_db())
            .await?)
    }
}

/// Removes a dead letter that was applied again, with an audit entry naming who asked.
pub struct ForgetDeadLetter {
    pub id: i64,
    pub actor: String,
    pub at: Micros,
}

impl WriteOp for ForgetDeadLetter {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let Some(letter) = dead_letter::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(());
            };
            dead_letter::Entity::delete_by_id(self.id).exec(txn).await?;
            super::audit::append(
                txn,
                &super::audit::AuditRecord {
                    actor: self.actor.clone(),
                    action: "dead_letter.redriven".into(),
                    subject: Some(format!("dead_letter:{}", self.id)),
                    data: serde_json::json!({ "source": letter.source, "inbox_id": letter.inbox_id }),
                    at: self.at,
                },
            )
            .await?;
            Ok(())
        })
    }
}

impl Store {
    /// One dead letter.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<dead_letter::Model>, StoreError> {
        Ok(dead_letter::Entity::find_by_id(id).one(self.db()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhooks_left_pending_in_the_main_database_move_to_the_inbox_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_store(dir.path()).await;
        assert!(store.inbox_apart());
        assert!(dir.path().join("parley-inbox.db").exists());
        // What an earlier version left: two pending rows (and one done) in the main file.
        let row = |n: u8| NewInboxRow {
            channel_id: "meta".into(),
            body: Bytes::from(vec![n; 8]),
            body_sha256: format!("sha-{n}"),
            received_at: i64::from(n),
        };
        let old = store
            .write(InsertInbox {
                rows: Arc::new(vec![row(1), row(2), row(3)]),
            })
            .await
            .unwrap();
        let InboxInsert::Stored(done_id) = old[2] else {
            panic!("stored");
        };
        store
            .write(MarkInboxDone {
                ids: vec![done_id],
                at: 5,
            })
            .await
            .unwrap();
        // Row 2 was also delivered again since, into the new inbox.
        store
            .write_inbox(InsertInbox {
                rows: Arc::new(vec![row(2)]),
            })
            .await
            .unwrap();

        assert_eq!(store.adopt_pending_from_main(10).await.unwrap(), 2);
        assert_eq!(
            store.adopt_pending_from_main(11).await.unwrap(),
            0,
            "moved once"
        );
        let pending = store.pending_inbox(0, 10).await.unwrap();
        let mut bodies: Vec<_> = pending.iter().map(|r| r.body_sha256.clone()).collect();
        bodies.sort();
        assert_eq!(bodies, ["sha-1", "sha-2"]);
        assert_eq!(store.last_inbox_id().await.unwrap(), 2);
    }
}
