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
    let mut data = record.data.clone();
    without_personal_data(&mut data);
    let data = data.to_string();
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

/// Conversation events that are also audit entries (`conversation.<kind>`): sends,
/// holds and decisions on held messages, assignments, transfers, escalations.
pub const AUDITED_EVENTS: &[&str] = &[
    "message_out",
    "csat_sent",
    "csat_follow_up_sent",
    "message_held",
    "message_approved",
    "message_rejected",
    "assigned",
    "owner_changed",
    "escalated",
];

/// Keys of details that carry personal data (what a customer or an agent wrote, an
/// escalation's packet with the customer's number, name, e-mail, phone and messages,
/// free-text reasons, notes and consent details): kept out of every audit entry at any
/// depth, because an erasure cannot touch the log without breaking its chain. The audit
/// log holds ids and counts; the event log and the tables keep the details, and erasure
/// scrubs them there.
const PERSONAL_KEYS: &[&str] = &[
    "text",
    "original_text",
    "edited_text",
    "packet",
    "reason",
    "note",
    "detail",
    "body",
    "comment",
    "email",
    "phone",
    "wa_id",
    "recipient",
    "excerpt",
];

/// Removes [`PERSONAL_KEYS`] from `value` at every depth.
fn without_personal_data(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !PERSONAL_KEYS.contains(&k.as_str()));
            map.values_mut().for_each(without_personal_data);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(without_personal_data),
        _ => {}
    }
}

/// The progress row of the conversation-event auditor.
const EVENTS_PROGRESS: &str = "conversation_events";

/// Looks at the next `limit` conversation events, oldest first, and chains the audited
/// ones: the entries and the new high-water mark commit together, so every audited event
/// is chained exactly once, even across a crash. Answers how many events it looked at
/// (0: caught up).
///
/// Batched off the conversation's own write, so a send or an assignment pays no audit
/// cost on its way; the entry follows within moments (the auditor is woken by the
/// event bus). Event ids grow in commit order because one writer commits them all; a
/// deployment with several writing nodes would need the auditor to wait out commits in
/// flight before moving the mark.
pub struct AuditConversationEvents {
    pub limit: u64,
}

impl WriteOp for AuditConversationEvents {
    type Output = u64;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<u64, DbErr>> {
        Box::pin(async move {
            use super::entities::conversation_event;
            use sea_orm::sea_query::{Alias, Expr, OnConflict, Query};
            use sea_orm::{ConnectionTrait, FromQueryResult};
            #[derive(FromQueryResult)]
            struct Progress {
                last_event_id: i64,
            }
            let progress = Progress::find_by_statement(
                txn.get_database_backend().build(
                    Query::select()
                        .column(Alias::new("last_event_id"))
                        .from(Alias::new("audit_progress"))
                        .and_where(Expr::col(Alias::new("name")).eq(EVENTS_PROGRESS)),
                ),
            )
            .one(txn)
            .await?
            .map_or(0, |p| p.last_event_id);
            // The next events in id order, whatever their kind (the primary key answers
            // that in time proportional to the batch); filtering by kind in the query
            // would let the database read every audited event of the whole history
            // through the (kind, time) index instead, each time.
            let scanned = conversation_event::Entity::find()
                .filter(conversation_event::Column::Id.gt(progress))
                .order_by_asc(conversation_event::Column::Id)
                .limit(self.limit)
                .all(txn)
                .await?;
            let Some(last) = scanned.last().map(|e| e.id) else {
                return Ok(0);
            };
            let looked_at = scanned.len() as u64;
            let events: Vec<_> = scanned
                .into_iter()
                .filter(|e| AUDITED_EVENTS.contains(&e.kind.as_str()))
                .collect();
            let mut prev = audit_entry::Entity::find()
                .order_by_desc(audit_entry::Column::Id)
                .limit(1)
                .one(txn)
                .await?
                .map_or_else(|| GENESIS.to_owned(), |last| last.hash);
            let rows: Vec<audit_entry::ActiveModel> = events
                .iter()
                .map(|event| {
                    let mut data: serde_json::Value =
                        serde_json::from_str(&event.data).unwrap_or_default();
                    without_personal_data(&mut data);
                    if let serde_json::Value::Object(map) = &mut data {
                        map.insert("event_id".into(), event.id.into());
                    }
                    let data = data.to_string();
                    let action = format!("conversation.{}", event.kind);
                    let subject = format!("conversation:{}", event.conversation_id);
                    let hash = entry_hash(
                        &prev,
                        event.created_at,
                        &event.actor,
                        &action,
                        Some(&subject),
                        &data,
                    );
                    audit_entry::ActiveModel {
                        at: Set(event.created_at),
                        actor: Set(event.actor.clone()),
                        action: Set(action),
                        subject: Set(Some(subject)),
                        data: Set(data),
                        prev_hash: Set(std::mem::replace(&mut prev, hash.clone())),
                        hash: Set(hash),
                        ..Default::default()
                    }
                })
                .collect();
            if !rows.is_empty() {
                audit_entry::Entity::insert_many(rows).exec(txn).await?;
            }
            let stmt = Query::insert()
                .into_table(Alias::new("audit_progress"))
                .columns([Alias::new("name"), Alias::new("last_event_id")])
                .values_panic([EVENTS_PROGRESS.into(), last.into()])
                .on_conflict(
                    OnConflict::column(Alias::new("name"))
                        .update_column(Alias::new("last_event_id"))
                        .to_owned(),
                )
                .to_owned();
            txn.execute(txn.get_database_backend().build(&stmt)).await?;
            Ok(looked_at)
        })
    }
}

/// Events chained per write.
const AUDIT_BATCH: u64 = 500;

/// Chains audited conversation events as they are committed: woken by the event bus,
/// and every few seconds regardless (a lagging bus, events committed by another node).
pub async fn run_auditor(
    store: Store,
    mut receiver: tokio::sync::broadcast::Receiver<
        std::sync::Arc<super::entities::conversation_event::Model>,
    >,
) {
    loop {
        match store
            .write(AuditConversationEvents { limit: AUDIT_BATCH })
            .await
        {
            Ok(n) if n == AUDIT_BATCH => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "Could not append conversation events to the audit log; retrying.");
            }
        }
        // Let events gather: one write chains many, and intake and sending keep the
        // writer to themselves in between.
        tokio::time::sleep(AUDIT_PAUSE).await;
        let wake = async {
            loop {
                match receiver.recv().await {
                    Ok(event) if AUDITED_EVENTS.contains(&event.kind.as_str()) => return true,
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                }
            }
        };
        tokio::select! {
            open = wake => if !open { tokio::time::sleep(AUDITOR_POLL).await },
            _ = tokio::time::sleep(AUDITOR_POLL) => {}
        }
    }
}

/// The least time between two chaining writes that are not catching up with a backlog:
/// how long an audited event may wait for its entry.
pub const AUDIT_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// How often the auditor looks even when nothing woke it.
const AUDITOR_POLL: std::time::Duration = std::time::Duration::from_secs(2);

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
    check_fields(
        prev_hash,
        &EntryFields {
            id: entry.id,
            at: entry.at,
            actor: &entry.actor,
            action: &entry.action,
            subject: entry.subject.as_deref(),
            data: &entry.data,
            prev_hash: &entry.prev_hash,
            hash: &entry.hash,
        },
    )
}

/// An entry's stored columns, borrowed.
struct EntryFields<'a> {
    id: i64,
    at: Micros,
    actor: &'a str,
    action: &'a str,
    subject: Option<&'a str>,
    data: &'a str,
    prev_hash: &'a str,
    hash: &'a str,
}

/// The two checks that make the chain: the entry names the hash of the one before it,
/// and its own hash covers its content and that link. Both only look at the entry and
/// its predecessor, so the log can be checked in parallel segments.
fn check_fields(prev_hash: &str, entry: &EntryFields<'_>) -> Option<BrokenEntry> {
    if entry.prev_hash != prev_hash {
        return Some(BrokenEntry {
            id: entry.id,
            reason: "prev_hash_mismatch",
            expected: prev_hash.to_owned(),
            found: entry.prev_hash.to_owned(),
        });
    }
    let mut hasher = Sha256::new();
    for field in [
        prev_hash.as_bytes(),
        &entry.at.to_be_bytes(),
        entry.actor.as_bytes(),
        entry.action.as_bytes(),
        entry.subject.unwrap_or("\u{0}").as_bytes(),
        entry.data.as_bytes(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    let mut hex_hash = [0u8; 64];
    // A 32-byte digest always fits 64 hex digits.
    let _ = hex::encode_to_slice(hasher.finalize(), &mut hex_hash);
    (hex_hash != entry.hash.as_bytes()).then(|| BrokenEntry {
        id: entry.id,
        reason: "hash_mismatch",
        expected: String::from_utf8_lossy(&hex_hash).into_owned(),
        found: entry.hash.to_owned(),
    })
}

/// Entries read per query while verifying.
const VERIFY_PAGE: u64 = 5000;

type Row = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
);

/// What one segment of the log held: how many entries, its last hash, its first break.
struct Segment {
    entries: u64,
    last_hash: Option<String>,
    first_broken: Option<BrokenEntry>,
}

impl Store {
    /// Checks every entry of the log and names the first one that breaks the chain. The
    /// log is split into as many id ranges as there are cores, checked at once; each
    /// range starts from the hash of the entry before it.
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, StoreError> {
        let bounds: Option<(Option<i64>, Option<i64>)> = audit_entry::Entity::find()
            .select_only()
            .column_as(audit_entry::Column::Id.min(), "lo")
            .column_as(audit_entry::Column::Id.max(), "hi")
            .into_tuple()
            .one(self.db())
            .await?;
        let Some((Some(lo), Some(hi))) = bounds else {
            return Ok(ChainReport {
                entries: 0,
                head: GENESIS.to_owned(),
                first_broken: None,
            });
        };
        let parts = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8) as i64;
        let span = (hi - lo) / parts + 1;
        let segments = (0..parts).map(|k| {
            let start = lo + k * span;
            let end = (start + span - 1).min(hi);
            self.verify_segment(start, end)
        });
        let mut report = ChainReport {
            entries: 0,
            head: GENESIS.to_owned(),
            first_broken: None,
        };
        for segment in futures::future::try_join_all(segments).await? {
            if report.first_broken.is_some() {
                break;
            }
            report.entries += segment.entries;
            if let Some(hash) = segment.last_hash {
                report.head = hash;
            }
            report.first_broken = segment.first_broken;
        }
        Ok(report)
    }

    /// Checks the entries with ids from `start` to `end`, against the entry before them.
    async fn verify_segment(&self, start: i64, end: i64) -> Result<Segment, StoreError> {
        let mut prev = audit_entry::Entity::find()
            .filter(audit_entry::Column::Id.lt(start))
            .order_by_desc(audit_entry::Column::Id)
            .limit(1)
            .one(self.db())
            .await?
            .map_or_else(|| GENESIS.to_owned(), |before| before.hash);
        let mut segment = Segment {
            entries: 0,
            last_hash: None,
            first_broken: None,
        };
        let mut after = start - 1;
        while after < end {
            let page: Vec<Row> = audit_entry::Entity::find()
                .select_only()
                .columns([
                    audit_entry::Column::Id,
                    audit_entry::Column::At,
                    audit_entry::Column::Actor,
                    audit_entry::Column::Action,
                    audit_entry::Column::Subject,
                    audit_entry::Column::Data,
                    audit_entry::Column::PrevHash,
                    audit_entry::Column::Hash,
                ])
                .filter(audit_entry::Column::Id.gt(after))
                .filter(audit_entry::Column::Id.lte(end))
                .order_by_asc(audit_entry::Column::Id)
                .limit(VERIFY_PAGE)
                .into_tuple()
                .all(self.db())
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.0;
            for (id, at, actor, action, subject, data, prev_hash, hash) in &page {
                segment.entries += 1;
                let fields = EntryFields {
                    id: *id,
                    at: *at,
                    actor,
                    action,
                    subject: subject.as_deref(),
                    data,
                    prev_hash,
                    hash,
                };
                if let Some(broken) = check_fields(&prev, &fields) {
                    segment.first_broken = Some(broken);
                    return Ok(segment);
                }
                prev.clone_from(hash);
            }
            segment.last_hash = Some(prev.clone());
        }
        Ok(segment)
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
