//! The append-only audit log. Each entry's hash covers its content and the previous
//! entry's hash, so editing or deleting any entry breaks every hash after it.
//!
//! Appends go through the single writer, which applies them one after another inside its
//! transaction: the previous hash read here is always the newest committed or pending one.

use super::entities::audit_entry;
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseTransaction, DbErr, EntityTrait, QueryOrder,
    QuerySelect,
};
use sha2::{Digest, Sha256};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, on what; `data` is free-form JSON detail.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: String,
    pub action: String,
    pub subject: Option<String>,
    pub data: serde_json::Value,
    pub at: Micros,
}

/// The hash of an entry: SHA-256 over its fields (length-prefixed) and the previous hash.
pub fn entry_hash(
    prev_hash: &str,
    at: Micros,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    data: &str,
) -> String {
    let mut hasher = Sha256::new();
    for field in [
        prev_hash.as_bytes(),
        &at.to_be_bytes(),
        actor.as_bytes(),
        action.as_bytes(),
        subject.unwrap_or("\u{0}").as_bytes(),
        data.as_bytes(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hex::encode(hasher.finalize())
}

impl WriteOp for AuditRecord {
    type Output = audit_entry::Model;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<audit_entry::Model, DbErr>> {
        Box::pin(append(txn, self))
    }
}

/// Appends `record` inside a transaction (for writes that must be audited atomically).
pub async fn append(
    txn: &DatabaseTransaction,
    record: &AuditRecord,
) -> Result<audit_entry::Model, DbErr> {
    let prev_hash = audit_entry::Entity::find()
        .order_by_desc(audit_entry::Column::Id)
        .limit(1)
        .one(txn)
        .await?
        .map_or_else(|| GENESIS.to_owned(), |last| last.hash);
    let data = record.data.to_string();
    let hash = entry_hash(
        &prev_hash,
        record.at,
        &record.actor,
        &record.action,
        record.subject.as_deref(),
        &data,
    );
    audit_entry::ActiveModel {
        at: Set(record.at),
        actor: Set(record.actor.clone()),
        action: Set(record.action.clone()),
        subject: Set(record.subject.clone()),
        data: Set(data),
        prev_hash: Set(prev_hash),
        hash: Set(hash),
        ..Default::default()
    }
    .insert(txn)
    .await
}

impl Store {
    pub async fn audit(&self, record: AuditRecord) -> Result<audit_entry::Model, StoreError> {
        self.write(record).await
    }
}
