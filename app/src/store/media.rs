//! Media rows: the files customers sent (each row is also the durable job that fetches
//! it) and the files API clients uploaded to send. The bytes are in the blob store
//! (`crate::media::blobs`); a row says where, and what is known about them.
//!
//! An inbound file's row is written in the same commit as its message, so no file is
//! ever forgotten: a crash before the fetch leaves a `pending` row that the worker picks
//! up after the restart. Erasure and retention only mark rows `erased` in their own
//! transaction; the worker then deletes the bytes and forgets the key, so a crash between
//! the two never leaves a file nobody will delete.

use super::entities::{media, message, server_secret};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use crate::domain::inbound::MessageContent;
use crate::domain::media::MediaKind;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

pub const PENDING: &str = "pending";
pub const STORED: &str = "stored";
pub const FAILED: &str = "failed";
pub const ERASED: &str = "erased";

pub const INBOUND: &str = "inbound";
pub const OUTBOUND: &str = "outbound";

/// Called for every message a change stores: an inbound file gets its fetch job; an
/// outbound message that carries an upload is recorded as the upload's message.
pub(super) async fn link_message(
    txn: &DatabaseTransaction,
    message: &message::Model,
    now: Micros,
) -> Result<(), DbErr> {
    let Some(kind) = MediaKind::parse(&message.kind) else {
        return Ok(());
    };
    let Some(MessageContent::Media {
        media_id,
        mime_type,
        sha256,
        caption,
        filename,
        ..
    }) = message
        .content
        .as_deref()
        .and_then(|c| serde_json::from_str::<MessageContent>(c).ok())
    else {
        return Ok(());
    };
    if message.direction == OUTBOUND {
        // An outbound message names the upload by Parley's id.
        let Ok(id) = media_id.parse::<i64>() else {
            return Ok(());
        };
        media::Entity::update_many()
            .col_expr(media::Column::MessageId, Expr::value(message.id))
            .col_expr(media::Column::UpdatedAt, Expr::value(now))
            .filter(media::Column::Id.eq(id))
            .filter(media::Column::MessageId.is_null())
            .exec(txn)
            .await?;
        return Ok(());
    }
    media::Entity::insert(media::ActiveModel {
        message_id: Set(Some(message.id)),
        direction: Set(INBOUND.into()),
        channel_id: Set(message.channel_id.clone()),
        kind: Set(kind.as_str().into()),
        mime_type: Set(mime_type),
        expected_sha256: Set(sha256),
        file_name: Set(filename),
        caption: Set(caption),
        provider_media_id: Set(Some(media_id)),
        state: Set(PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(txn)
    .await?;
    Ok(())
}

/// Marks the files of these messages erased (their captions and names go at once; the
/// worker deletes the bytes). Answers how many files were marked.
pub(super) async fn erase_of_messages(
    txn: &DatabaseTransaction,
    message_ids: Vec<i64>,
    now: Micros,
) -> Result<u64, DbErr> {
    let mut erased = 0;
    for chunk in message_ids.chunks(super::inbox::ROWS_PER_STATEMENT) {
        erased += media::Entity::update_many()
            .col_expr(media::Column::State, Expr::value(ERASED))
            .col_expr(media::Column::Caption, Expr::value(Option::<String>::None))
            .col_expr(media::Column::FileName, Expr::value(Option::<String>::None))
            .col_expr(media::Column::UpdatedAt, Expr::value(now))
            .filter(media::Column::MessageId.is_in(chunk.iter().copied()))
            .filter(media::Column::State.ne(ERASED))
            .exec(txn)
            .await?
            .rows_affected;
    }
    Ok(erased)
}

/// A file an API client uploaded, already in the blob store under `blob_key`.
#[derive(Debug, Clone)]
pub struct RecordUpload {
    pub kind: MediaKind,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub file_name: Option<String>,
    pub blob_key: String,
    pub created_by: String,
    pub now: Micros,
}

impl WriteOp for RecordUpload {
    type Output = media::Model;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<media::Model, DbErr>> {
        Box::pin(async move {
            media::ActiveModel {
                message_id: Set(None),
                direction: Set(OUTBOUND.into()),
                channel_id: Set(String::new()),
                kind: Set(self.kind.as_str().into()),
                mime_type: Set(Some(self.mime_type.clone())),
                size: Set(Some(self.size)),
                sha256: Set(Some(self.sha256.clone())),
                file_name: Set(self.file_name.clone()),
                blob_key: Set(Some(self.blob_key.clone())),
                state: Set(STORED.into()),
                attempts: Set(0),
                next_attempt_at: Set(self.now),
                created_by: Set(Some(self.created_by.clone())),
                created_at: Set(self.now),
                updated_at: Set(self.now),
                ..Default::default()
            }
            .insert(txn)
            .await
        })
    }
}

/// What one fetch attempt came to.
#[derive(Debug, Clone)]
pub enum FetchOutcome {
    Stored {
        mime_type: String,
        size: i64,
        sha256: String,
        blob_key: String,
    },
    Retry {
        next_attempt_at: Micros,
        reason: String,
    },
    Failed {
        reason: String,
    },
}

pub struct RecordFetch {
    pub media_id: i64,
    pub outcome: FetchOutcome,
    pub now: Micros,
}

impl WriteOp for RecordFetch {
    type Output = bool;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<bool, DbErr>> {
        Box::pin(async move {
            let mut update = media::Entity::update_many()
                .col_expr(
                    media::Column::Attempts,
                    Expr::col(media::Column::Attempts).add(1),
                )
                .col_expr(media::Column::UpdatedAt, Expr::value(self.now));
            update = match &self.outcome {
                FetchOutcome::Stored {
                    mime_type,
                    size,
                    sha256,
                    blob_key,
                } => update
                    .col_expr(media::Column::State, Expr::value(STORED))
                    .col_expr(media::Column::MimeType, Expr::value(mime_type.clone()))
                    .col_expr(media::Column::Size, Expr::value(*size))
                    .col_expr(media::Column::Sha256, Expr::value(sha256.clone()))
                    .col_expr(media::Column::BlobKey, Expr::value(blob_key.clone()))
                    .col_expr(
                        media::Column::FailureReason,
                        Expr::value(Option::<String>::None),
                    ),
                FetchOutcome::Retry {
                    next_attempt_at,
                    reason,
                } => update
                    .col_expr(media::Column::NextAttemptAt, Expr::value(*next_attempt_at))
                    .col_expr(media::Column::FailureReason, Expr::value(reason.clone())),
                FetchOutcome::Failed { reason } => update
                    .col_expr(media::Column::State, Expr::value(FAILED))
                    .col_expr(media::Column::FailureReason, Expr::value(reason.clone())),
            };
            // An erasure that came meanwhile wins: its row is not brought back.
            let result = update
                .filter(media::Column::Id.eq(self.media_id))
                .filter(media::Column::State.eq(PENDING))
                .exec(txn)
                .await?;
            Ok(result.rows_affected == 1)
        })
    }
}

/// The bytes of an erased file are gone from the blob store: forget their key.
pub struct ForgetBlob {
    pub media_id: i64,
    pub now: Micros,
}

impl WriteOp for ForgetBlob {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            media::Entity::update_many()
                .col_expr(media::Column::BlobKey, Expr::value(Option::<String>::None))
                .col_expr(media::Column::UpdatedAt, Expr::value(self.now))
                .filter(media::Column::Id.eq(self.media_id))
                .filter(media::Column::State.eq(ERASED))
                .exec(txn)
                .await?;
            Ok(())
        })
    }
}

/// Keeps `value` as the secret `name` unless one is stored already; answers the stored
/// one either way (so every node of a cluster ends up with the first node's).
pub struct KeepSecret {
    pub name: &'static str,
    pub value: String,
    pub now: Micros,
}

impl WriteOp for KeepSecret {
    type Output = String;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<String, DbErr>> {
        Box::pin(async move {
            let inserted = server_secret::Entity::insert(server_secret::ActiveModel {
                name: Set(self.name.into()),
                value: Set(self.value.clone()),
                created_at: Set(self.now),
            })
            .on_conflict(
                OnConflict::column(server_secret::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec(txn)
            .await;
            match inserted {
                Ok(_) | Err(DbErr::RecordNotInserted) => {}
                Err(error) => return Err(error),
            }
            server_secret::Entity::find_by_id(self.name)
                .one(txn)
                .await?
                .map(|s| s.value)
                .ok_or_else(|| DbErr::RecordNotFound(format!("secret {}", self.name)))
        })
    }
}

impl Store {
    pub async fn media(&self, id: i64) -> Result<Option<media::Model>, StoreError> {
        Ok(media::Entity::find_by_id(id).one(self.db()).await?)
    }

    /// The file of a message, if it has one.
    pub async fn media_of_message(
        &self,
        message_id: i64,
    ) -> Result<Option<media::Model>, StoreError> {
        Ok(media::Entity::find()
            .filter(media::Column::MessageId.eq(message_id))
            .order_by_asc(media::Column::Id)
            .one(self.db())
            .await?)
    }

    /// Inbound files whose fetch is due, oldest first.
    pub async fn due_fetches(
        &self,
        now: Micros,
        limit: u64,
    ) -> Result<Vec<media::Model>, StoreError> {
        Ok(media::Entity::find()
            .filter(media::Column::State.eq(PENDING))
            .filter(media::Column::NextAttemptAt.lte(now))
            .order_by_asc(media::Column::NextAttemptAt)
            .order_by_asc(media::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    /// When the next pending fetch is due, if any.
    pub async fn next_fetch_due(&self) -> Result<Option<Micros>, StoreError> {
        Ok(media::Entity::find()
            .select_only()
            .column_as(media::Column::NextAttemptAt.min(), "next")
            .filter(media::Column::State.eq(PENDING))
            .into_tuple::<Option<i64>>()
            .one(self.db())
            .await?
            .flatten())
    }

    /// Erased files whose bytes are still in the blob store.
    pub async fn erased_blobs(&self, limit: u64) -> Result<Vec<media::Model>, StoreError> {
        Ok(media::Entity::find()
            .filter(media::Column::State.eq(ERASED))
            .filter(media::Column::BlobKey.is_not_null())
            .order_by_asc(media::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }
}
