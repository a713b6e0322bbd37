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
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
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

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    /// Entries checked, in id order.
    pub entries: u64,
    /// The hash of the newest entry (`GENESIS` for an empty log): keep it elsewhere to
    /// detect later truncation of the tail, which no chain can reveal by itself.
    pub head: String,
    /// The first entry that does not follow from the ones before it.
    pub first_broken: Option<BrokenEntry>,
}

/// An entry that breaks the chain, and how.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenEntry {
    pub id: i64,
    /// `prev_hash_mismatch` (an entry before it was removed or rewritten) or
    /// `hash_mismatch` (this entry was edited).
    pub reason: &'static str,
    pub expected: String,
    pub found: String,
}

/// Checks one entry against the hash of the one before it.
pub fn check_entry(prev_hash: &str, entry: &audit_entry::Model) -> Option<BrokenEntry> {
    if entry.prev_hash != prev_hash {
        return Some(BrokenEntry {
            id: entry.id,
            reason: "prev_hash_mismatch",
            expected: prev_hash.to_owned(),
            found: entry.prev_hash.clone(),
        });
    }
    let hash = entry_hash(
        prev_hash,
        entry.at,
        &entry.actor,
        &entry.action,
        entry.subject.as_deref(),
        &entry.data,
    );
    (hash != entry.hash).then(|| BrokenEntry {
        id: entry.id,
        reason: "hash_mismatch",
        expected: hash,
        found: entry.hash.clone(),
    })
}

/// Entries read per query while verifying.
const VERIFY_PAGE: u64 = 1000;

impl Store {
    /// Walks the audit log from its first entry and names the first one that breaks the
    /// chain.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let mut prev = GENESIS.to_owned();
        let mut entries = 0;
        let mut after = i64::MIN;
        loop {
            let page = audit_entry::Entity::find()
                .filter(audit_entry::Column::Id.gt(after))
                .order_by_asc(audit_entry::Column::Id)
                .limit(VERIFY_PAGE)
                .all(self.db())
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.id;
            for entry in &page {
                entries += 1;
                if let Some(broken) = check_entry(&prev, entry) {
                    return Ok(ChainReport {
                        entries,
                        head: prev,
                        first_broken: Some(broken),
                    });
                }
                prev = entry.hash.clone();
            }
        }
        Ok(ChainReport {
            entries,
            head: prev,
            first_broken: None,
        })
    }

    pub async fn audit(&self, record: AuditRecord) -> Result<audit_entry::Model, StoreError> {
        self.write(record).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: i64, prev: &str, action: &str) -> audit_entry::Model {
        let hash = entry_hash(prev, id * 10, "admin", action, None, "{}");
        audit_entry::Model {
            id,
            at: id * 10,
            actor: "admin".into(),
            action: action.into(),
            subject: None,
            data: "{}".into(),
            prev_hash: prev.into(),
            hash,
        }
    }

    #[test]
    fn an_edited_entry_and_a_removed_one_are_told_apart() {
        let first = entry(1, GENESIS, "token.created");
        let second = entry(2, &first.hash, "routing.reloaded");
        assert_eq!(check_entry(GENESIS, &first), None);
        assert_eq!(check_entry(&first.hash, &second), None);

        let mut edited = second.clone();
        edited.actor = "someone else".into();
        let broken = check_entry(&first.hash, &edited).unwrap();
        assert_eq!((broken.id, broken.reason), (2, "hash_mismatch"));

        // With the first entry gone, the second no longer follows from the genesis.
        let broken = check_entry(GENESIS, &second).unwrap();
        assert_eq!((broken.id, broken.reason), (2, "prev_hash_mismatch"));
    }
}
