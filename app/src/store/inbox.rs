//! The webhook inbox: raw, verified payloads, stored before the provider is answered.
//!
//! A payload is stored once per channel (keyed by its SHA-256), so a redelivered webhook
//! finds its first copy. Rows stay `pending` until every item in them has been applied,
//! which is what start-up replays after a crash.

use super::entities::{dead_letter, inbox};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use bytes::Bytes;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

pub const PENDING: &str = "pending";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";

/// Stores one verified webhook body.
pub struct InsertInbox {
    pub channel_id: String,
    pub body: Bytes,
    pub body_sha256: String,
    pub received_at: Micros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxInsert {
    /// Stored for the first time under this id.
    Stored(i64),
    /// The same body was stored before, under this id.
    Duplicate(i64),
}

impl WriteOp for InsertInbox {
    type Output = InboxInsert;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<InboxInsert, DbErr>> {
        Box::pin(async move {
            let row = inbox::ActiveModel {
                channel_id: Set(self.channel_id.clone()),
                body: Set(self.body.to_vec()),
                body_sha256: Set(self.body_sha256.clone()),
                state: Set(PENDING.into()),
                attempts: Set(0),
                received_at: Set(self.received_at),
                ..Default::default()
            };
            let inserted = inbox::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([inbox::Column::ChannelId, inbox::Column::BodySha256])
                        .do_nothing()
                        .to_owned(),
                )
                .exec(txn)
                .await;
            match inserted {
                Ok(result) => Ok(InboxInsert::Stored(result.last_insert_id)),
                Err(DbErr::RecordNotInserted) => {
                    let id: Option<i64> = inbox::Entity::find()
                        .select_only()
                        .column(inbox::Column::Id)
                        .filter(inbox::Column::ChannelId.eq(&self.channel_id))
                        .filter(inbox::Column::BodySha256.eq(&self.body_sha256))
                        .into_tuple()
                        .one(txn)
                        .await?;
                    id.map(InboxInsert::Duplicate)
                        .ok_or_else(|| DbErr::Custom("inbox conflict without a stored row".into()))
                }
                Err(error) => Err(error),
            }
        })
    }
}

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
pub struct RecordDeadLetter {
    pub channel_id: String,
    pub source: &'static str,
    pub reason: String,
    pub payload: Bytes,
    pub inbox_id: Option<i64>,
    /// Also mark the inbox row dead (the whole payload is unusable).
    pub kill_inbox_row: bool,
    pub at: Micros,
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
            if let (true, Some(inbox_id)) = (self.kill_inbox_row, self.inbox_id) {
                inbox::Entity::update_many()
                    .col_expr(inbox::Column::State, Expr::value(DEAD))
                    .col_expr(inbox::Column::ProcessedAt, Expr::value(self.at))
                    .col_expr(inbox::Column::LastError, Expr::value(self.reason.clone()))
                    .filter(inbox::Column::Id.eq(inbox_id))
                    .exec(txn)
                    .await?;
            }
            Ok(id)
        })
    }
}

impl Store {
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
            .all(self.db())
            .await?)
    }
}
