//! The commonest conversation change, coalesced across conversations.
//!
//! Nearly every change the store sees is a customer message landing on its case: a
//! contact (new or known), the case (opened or updated), the message and its events.
//! Written one change at a time that is five statements per message, each a round trip
//! to the database's writer thread. Changes of that shape that arrive while the previous
//! batch is being committed are written together instead (through a [`super::batcher::
//! Batcher`]): one multi-row statement per table for all of them, inside the same group
//! commit. Every other change (decisions on held messages, replies, notes, surveys, cases
//! closing, suppressed messages, CRM enrichment) keeps the one-at-a-time path.
//!
//! Each change keeps its own meaning: a redelivered message is answered as a duplicate
//! and writes nothing; each caller gets its own [`ChangeApplied`] after the commit; a
//! change that arrives alone is written exactly as it would be one at a time; and a batch
//! that fails is retried change by change by the batcher, so one bad change never fails
//! the others.

use super::WriteOp;
use super::batcher::BatchOp;
use super::conversations::{
    ChangeApplied, ContactUpsert, ConversationChange, NewMessage, duplicate_of, event_row,
    message_model, refresh_contact, skip_stored_message,
};
use super::entities::{contact, conversation, conversation_event, message};
use super::inbox::ROWS_PER_STATEMENT;
use crate::domain::TicketStatus;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    Iterable, QueryFilter, QuerySelect,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Most changes written together; the widest row (a case) has 26 columns, so a full
/// batch stays far under both databases' limits on statement parameters.
pub const CHANGES_PER_BATCH: usize = 256;

/// Whether `change` has the shape this module writes in bulk: an inbound message with a
/// provider id on an open case, and nothing else.
pub fn coalescable(change: &ConversationChange) -> bool {
    matches!(
        &change.message,
        Some(NewMessage {
            direction: "inbound",
            provider_message_id: Some(_),
            ..
        })
    ) && change.decision.is_none()
        && change.close_previous.is_none()
        && change.previous_events.is_empty()
        && change.outbox.is_none()
        && change.note.is_none()
        && change.csat.is_none()
        && change.suppression.is_none()
        && change.enrichment.is_none()
        && change.conversation.status != TicketStatus::Closed.as_str()
}

/// Coalescable changes of different conversations, written together.
pub struct ApplyChanges {
    changes: Arc<Vec<ConversationChange>>,
}

impl BatchOp for ApplyChanges {
    type Item = ConversationChange;
    type ItemOutput = ChangeApplied;
    fn from_items(changes: Arc<Vec<ConversationChange>>) -> Self {
        Self { changes }
    }
}

impl WriteOp for ApplyChanges {
    type Output = Vec<ChangeApplied>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Vec<ChangeApplied>, DbErr>> {
        Box::pin(async move {
            let changes = self.changes.as_slice();
            if let [alone] = changes {
                return Ok(vec![alone.apply(txn).await?]);
            }
            if !changes.iter().all(coalescable) || !distinct(changes) {
                // Two changes for one message or one case: their order matters, so they
                // are written one after the other, as they would be alone.
                let mut applied = Vec::with_capacity(changes.len());
                for change in changes {
                    applied.push(change.apply(txn).await?);
                }
                return Ok(applied);
            }
            apply_together(txn, changes).await
        })
    }
}

/// The channel and provider id of a change's message.
fn message_key(change: &ConversationChange) -> (&str, &str) {
    let pmid = change
        .message
        .as_ref()
        .and_then(|m| m.provider_message_id.as_deref())
        .unwrap_or_default();
    (change.conversation.channel_id.as_str(), pmid)
}

/// The case a change opens (contact, channel, number) or updates (its id).
fn case_key(change: &ConversationChange) -> (String, String, String, i64) {
    let contact = match &change.contact {
        ContactUpsert::Known(id) => id.to_string(),
        ContactUpsert::ByWaId { wa_id, .. } => wa_id.clone(),
    };
    let c = &change.conversation;
    (
        contact,
        c.channel_id.clone(),
        c.phone_number_id.clone(),
        c.id,
    )
}

/// No two changes name the same message or the same case.
fn distinct(changes: &[ConversationChange]) -> bool {
    let mut messages = HashSet::with_capacity(changes.len());
    let mut cases = HashSet::with_capacity(changes.len());
    changes
        .iter()
        .all(|change| messages.insert(message_key(change)) && cases.insert(case_key(change)))
}

async fn apply_together(
    txn: &DatabaseTransaction,
    changes: &[ConversationChange],
) -> Result<Vec<ChangeApplied>, DbErr> {
    let mut answered: Vec<Option<ChangeApplied>> = vec![None; changes.len()];
    let mut messages: Vec<Option<message::Model>> = vec![None; changes.len()];
    let (existing, new): (Vec<usize>, Vec<usize>) =
        (0..changes.len()).partition(|&i| changes[i].conversation.id != 0);

    // A case that exists takes its message first: the unique key tells a redelivery,
    // which then writes nothing else.
    let rows = existing
        .iter()
        .map(|&i| new_message_row(&changes[i], changes[i].conversation.id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stored = insert_messages(txn, rows).await?;
    for &i in &existing {
        let (channel_id, pmid) = message_key(&changes[i]);
        match stored.remove(&(channel_id.to_owned(), pmid.to_owned())) {
            Some(message) => messages[i] = Some(message),
            None => {
                answered[i] = Some(
                    duplicate_of(txn, channel_id, pmid)
                        .await?
                        .ok_or_else(|| DbErr::RecordNotFound(format!("message {pmid}")))?,
                );
            }
        }
    }

    // A new case looks first, so that a late duplicate never opens one. One query per
    // channel, so that the unique index (channel, provider id) answers it.
    let mut by_channel: HashMap<&str, Vec<&str>> = HashMap::new();
    for &i in &new {
        let (channel_id, pmid) = message_key(&changes[i]);
        by_channel.entry(channel_id).or_default().push(pmid);
    }
    let mut known: HashSet<(String, String)> = HashSet::new();
    for (channel_id, pmids) in by_channel {
        let found: Vec<String> = message::Entity::find()
            .select_only()
            .column(message::Column::ProviderMessageId)
            .filter(message::Column::ChannelId.eq(channel_id))
            .filter(message::Column::ProviderMessageId.is_in(pmids))
            .into_tuple::<String>()
            .all(txn)
            .await?;
        known.extend(found.into_iter().map(|pmid| (channel_id.to_owned(), pmid)));
    }
    for &i in &new {
        let (channel_id, pmid) = message_key(&changes[i]);
        if known.contains(&(channel_id.to_owned(), pmid.to_owned())) {
            answered[i] = duplicate_of(txn, channel_id, pmid).await?;
        }
    }
    let pending = |i: &usize| answered[*i].is_none();
    let new: Vec<usize> = new.into_iter().filter(pending).collect();
    let existing: Vec<usize> = existing.into_iter().filter(pending).collect();

    let contact_ids = upsert_contacts(txn, changes, new.iter().chain(&existing).copied()).await?;
    let contact_of = |i: usize| -> Result<i64, DbErr> {
        match &changes[i].contact {
            ContactUpsert::Known(id) => Ok(*id),
            ContactUpsert::ByWaId { wa_id, .. } => contact_ids
                .get(wa_id)
                .copied()
                .ok_or_else(|| DbErr::RecordNotFound(format!("contact {wa_id}"))),
        }
    };

    let mut cases: Vec<Option<conversation::Model>> = vec![None; changes.len()];
    if !new.is_empty() {
        let mut rows = Vec::with_capacity(new.len());
        for &i in &new {
            let mut row = changes[i].conversation.clone();
            row.contact_id = contact_of(i)?;
            let mut active = row.into_active_model();
            active.id = NotSet;
            rows.push(active);
        }
        let mut opened: HashMap<(i64, String, String), conversation::Model> = HashMap::new();
        for chunk in chunked(rows) {
            for case in conversation::Entity::insert_many(chunk)
                .exec_with_returning_many(txn)
                .await?
            {
                let key = (
                    case.contact_id,
                    case.channel_id.clone(),
                    case.phone_number_id.clone(),
                );
                opened.insert(key, case);
            }
        }
        for &i in &new {
            let c = &changes[i].conversation;
            let key = (
                contact_of(i)?,
                c.channel_id.clone(),
                c.phone_number_id.clone(),
            );
            cases[i] = Some(
                opened
                    .remove(&key)
                    .ok_or_else(|| DbErr::RecordNotFound("a case just opened".into()))?,
            );
        }
    }
    // Cases that exist are updated in one statement too: an insert that meets their
    // primary key and so updates every column instead (cases are never deleted).
    if !existing.is_empty() {
        let mut rows = Vec::with_capacity(existing.len());
        for &i in &existing {
            let mut row = changes[i].conversation.clone();
            row.contact_id = contact_of(i)?;
            rows.push(row.into_active_model());
        }
        // What a case is (its id, contact, channel, number, opening time) never
        // changes; leaving those columns out spares their indexes the update.
        let columns = conversation::Column::iter().filter(|c| {
            !matches!(
                c,
                conversation::Column::Id
                    | conversation::Column::ContactId
                    | conversation::Column::ChannelId
                    | conversation::Column::PhoneNumberId
                    | conversation::Column::CreatedAt
            )
        });
        let mut updated: HashMap<i64, conversation::Model> = HashMap::new();
        for chunk in chunked(rows) {
            for case in conversation::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::column(conversation::Column::Id)
                        .update_columns(columns.clone())
                        .to_owned(),
                )
                .exec_with_returning_many(txn)
                .await?
            {
                updated.insert(case.id, case);
            }
        }
        for &i in &existing {
            let id = changes[i].conversation.id;
            cases[i] = Some(
                updated
                    .remove(&id)
                    .ok_or_else(|| DbErr::RecordNotFound(format!("case {id}")))?,
            );
        }
    }

    if !new.is_empty() {
        let mut rows = Vec::with_capacity(new.len());
        for &i in &new {
            let case_id = cases[i].as_ref().map_or(0, |c| c.id);
            rows.push(new_message_row(&changes[i], case_id)?);
        }
        let mut stored = insert_messages(txn, rows).await?;
        for &i in &new {
            let (channel_id, pmid) = message_key(&changes[i]);
            messages[i] = Some(
                stored
                    .remove(&(channel_id.to_owned(), pmid.to_owned()))
                    .ok_or_else(|| DbErr::RecordNotFound(format!("message {pmid}")))?,
            );
        }
    }

    // Every change's events, in one statement; ids grow in insertion order, so sorting
    // by id gives each case its events in the order given.
    let written: Vec<usize> = new.iter().chain(&existing).copied().collect();
    for &i in &written {
        if let Some(message) = &messages[i] {
            super::media::link_message(txn, message, changes[i].conversation.updated_at).await?;
        }
    }
    let mut rows = Vec::new();
    for &i in &written {
        let (Some(case), Some(message)) = (&cases[i], &messages[i]) else {
            continue;
        };
        let refs = Some((Some(message.id), None));
        let now = changes[i].conversation.updated_at;
        rows.extend(
            changes[i]
                .events
                .iter()
                .map(|event| event_row(case.id, event, refs, now)),
        );
    }
    let mut events: HashMap<i64, Vec<conversation_event::Model>> = HashMap::new();
    let mut inserted = Vec::with_capacity(rows.len());
    for chunk in chunked(rows) {
        inserted.extend(
            conversation_event::Entity::insert_many(chunk)
                .exec_with_returning_many(txn)
                .await?,
        );
    }
    inserted.sort_by_key(|event| event.id);
    for event in inserted {
        events.entry(event.conversation_id).or_default().push(event);
    }

    // The messages and contact names are searchable from this commit on.
    let mut documents = Vec::with_capacity(written.len());
    let mut names = Vec::new();
    for &i in &written {
        let (Some(case), Some(message)) = (&cases[i], &messages[i]) else {
            continue;
        };
        documents.extend(super::search::NewDocument::message(case, message));
        if let ContactUpsert::ByWaId {
            name: Some(name), ..
        } = &changes[i].contact
        {
            names.push((case.contact_id, name.clone()));
        }
    }
    super::search::index(txn, documents).await?;
    let now = changes
        .iter()
        .map(|c| c.conversation.updated_at)
        .max()
        .unwrap_or_default();
    super::search::index_contact_names(txn, &names, now).await?;

    for &i in &written {
        let (Some(conversation), Some(message)) = (cases[i].take(), messages[i].take()) else {
            return Err(DbErr::Custom(
                "a coalesced change was left unwritten".into(),
            ));
        };
        answered[i] = Some(ChangeApplied {
            contact_id: conversation.contact_id,
            events: events.remove(&conversation.id).unwrap_or_default(),
            conversation,
            message: Some(message),
            note_id: None,
            duplicate: false,
        });
    }
    answered
        .into_iter()
        .map(|applied| {
            applied.ok_or_else(|| DbErr::Custom("a coalesced change was left unanswered".into()))
        })
        .collect()
}

fn new_message_row(
    change: &ConversationChange,
    conversation_id: i64,
) -> Result<message::ActiveModel, DbErr> {
    let new = change
        .message
        .as_ref()
        .ok_or_else(|| DbErr::Custom("a coalesced change without a message".into()))?;
    let now = change.conversation.updated_at;
    let mut active = message_model(conversation_id, &change.conversation.channel_id, new, now)
        .into_active_model();
    active.id = NotSet;
    Ok(active)
}

fn chunked<T>(rows: Vec<T>) -> Vec<Vec<T>> {
    let mut chunks = Vec::with_capacity(rows.len().div_ceil(ROWS_PER_STATEMENT));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        chunks.push(rows.by_ref().take(ROWS_PER_STATEMENT).collect());
    }
    chunks
}

/// Inserts messages, skipping any already stored on their channel; answers the stored
/// ones by channel and provider id.
async fn insert_messages(
    txn: &DatabaseTransaction,
    rows: Vec<message::ActiveModel>,
) -> Result<HashMap<(String, String), message::Model>, DbErr> {
    let mut stored = HashMap::new();
    for chunk in chunked(rows) {
        let inserted = message::Entity::insert_many(chunk)
            .on_conflict(skip_stored_message())
            .exec_with_returning_many(txn)
            .await?;
        for message in inserted {
            let key = (
                message.channel_id.clone(),
                message.provider_message_id.clone().unwrap_or_default(),
            );
            stored.insert(key, message);
        }
    }
    Ok(stored)
}

/// Creates the contacts of `which` changes that name one by WhatsApp id, or refreshes
/// their names, in one statement; answers their ids by WhatsApp id.
async fn upsert_contacts(
    txn: &DatabaseTransaction,
    changes: &[ConversationChange],
    which: impl Iterator<Item = usize>,
) -> Result<HashMap<String, i64>, DbErr> {
    // One row per contact (a statement may not update a row twice); a later change's
    // name wins, as it would one change at a time.
    let mut contacts: Vec<contact::ActiveModel> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for i in which {
        let ContactUpsert::ByWaId { wa_id, name } = &changes[i].contact else {
            continue;
        };
        let now = changes[i].conversation.updated_at;
        match index.get(wa_id.as_str()) {
            Some(&at) => {
                if name.is_some() {
                    contacts[at].name = sea_orm::ActiveValue::Set(name.clone());
                }
            }
            None => {
                index.insert(wa_id, contacts.len());
                contacts.push(contact::ActiveModel {
                    wa_id: sea_orm::ActiveValue::Set(wa_id.clone()),
                    name: sea_orm::ActiveValue::Set(name.clone()),
                    created_at: sea_orm::ActiveValue::Set(now),
                    updated_at: sea_orm::ActiveValue::Set(now),
                    ..Default::default()
                });
            }
        }
    }
    let mut ids = HashMap::with_capacity(contacts.len());
    for chunk in chunked(contacts) {
        let upserted = contact::Entity::insert_many(chunk)
            .on_conflict(refresh_contact(Expr::cust("excluded.updated_at")))
            .exec_with_returning_many(txn)
            .await?;
        ids.extend(upserted.into_iter().map(|c| (c.wa_id, c.id)));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConversationKey;
    use crate::store::Store;
    use crate::store::conversations::NewEvent;
    use crate::store::conversations::new_conversation;

    async fn store(dir: &tempfile::TempDir) -> Store {
        crate::store::test_store(dir.path()).await
    }

    fn arrival(channel: &str, wa_id: &str, pmid: &str, now: i64) -> ConversationChange {
        let key = ConversationKey {
            channel_id: channel.into(),
            phone_number_id: "106540352242922".into(),
            wa_id: wa_id.into(),
        };
        ConversationChange {
            contact: ContactUpsert::ByWaId {
                wa_id: wa_id.into(),
                name: Some(format!("name of {wa_id}")),
            },
            close_previous: None,
            conversation: new_conversation(&key, 0, now),
            message: Some(NewMessage {
                direction: "inbound",
                kind: "text".into(),
                text: Some(format!("text {pmid}")),
                content: None,
                provider_message_id: Some(pmid.into()),
                delivery_status: None,
                reply_to: None,
                author_agent_id: None,
                provider_sent_at: Some(now),
                received_at: Some(now),
            }),
            outbox: None,
            note: None,
            events: vec![
                NewEvent {
                    kind: "created",
                    data: serde_json::json!({}),
                    actor: "customer".into(),
                },
                NewEvent {
                    kind: "message_in",
                    data: serde_json::json!({}),
                    actor: "customer".into(),
                },
            ],
            previous_events: Vec::new(),
            suppression: None,
            enrichment: None,
            csat: None,
            decision: None,
            macro_used: None,
        }
    }

    /// The same change for the case `applied` opened, carrying another message.
    fn follow_up(applied: &ChangeApplied, pmid: &str, now: i64) -> ConversationChange {
        let mut change = arrival(&applied.conversation.channel_id, "", pmid, now);
        change.contact = ContactUpsert::Known(applied.contact_id);
        change.conversation = applied.conversation.clone();
        change.conversation.updated_at = now;
        change.conversation.last_customer_message_at = Some(now);
        change.events.remove(0);
        change
    }

    async fn together(store: &Store, changes: Vec<ConversationChange>) -> Vec<ChangeApplied> {
        store
            .write(ApplyChanges {
                changes: Arc::new(changes),
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_batch_writes_each_change_as_it_would_be_written_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        // Three new cases, two of them one contact's on two channels.
        let first = together(
            &store,
            vec![
                arrival("meta", "111", "wamid.a", 10),
                arrival("meta", "222", "wamid.b", 11),
                arrival("twilio", "111", "wamid.c", 12),
            ],
        )
        .await;
        assert!(first.iter().all(|a| !a.duplicate));
        assert_eq!(first[0].contact_id, first[2].contact_id);
        assert_ne!(first[0].contact_id, first[1].contact_id);
        assert_ne!(first[0].conversation.id, first[2].conversation.id);
        for (applied, pmid) in first.iter().zip(["wamid.a", "wamid.b", "wamid.c"]) {
            let message = applied.message.as_ref().unwrap();
            assert_eq!(message.provider_message_id.as_deref(), Some(pmid));
            assert_eq!(message.conversation_id, applied.conversation.id);
            let kinds: Vec<_> = applied.events.iter().map(|e| e.kind.as_str()).collect();
            assert_eq!(kinds, ["created", "message_in"]);
            assert!(applied.events.iter().all(|e| {
                e.conversation_id == applied.conversation.id
                    && e.data.contains(&format!("\"message_id\":{}", message.id))
            }));
        }

        // Existing cases, a redelivery to an existing case, a redelivery that would
        // open a new case, and a new case: only the new messages are written.
        let second = together(
            &store,
            vec![
                follow_up(&first[0], "wamid.d", 20),
                follow_up(&first[1], "wamid.b", 21),
                arrival("meta", "333", "wamid.a", 22),
                arrival("meta", "444", "wamid.e", 23),
            ],
        )
        .await;
        assert!(!second[0].duplicate);
        assert_eq!(second[0].conversation.id, first[0].conversation.id);
        assert_eq!(second[0].conversation.updated_at, 20);
        assert_eq!(second[0].events.len(), 1);
        assert!(second[1].duplicate);
        assert_eq!(
            second[1].message.as_ref().map(|m| m.id),
            first[1].message.as_ref().map(|m| m.id)
        );
        assert!(second[2].duplicate);
        assert_eq!(second[2].conversation.id, first[0].conversation.id);
        assert!(!second[3].duplicate);

        let messages = message::Entity::find().all(store.db()).await.unwrap();
        assert_eq!(messages.len(), 5);
        let contacts = contact::Entity::find().all(store.db()).await.unwrap();
        assert_eq!(contacts.len(), 3, "the redelivery opened no contact");
        let cases = conversation::Entity::find().all(store.db()).await.unwrap();
        assert_eq!(cases.len(), 4);
    }

    #[tokio::test]
    async fn two_changes_of_one_case_in_a_batch_are_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let opened = together(&store, vec![arrival("meta", "555", "wamid.x", 1)]).await;
        let applied = together(
            &store,
            vec![
                follow_up(&opened[0], "wamid.y", 2),
                follow_up(&opened[0], "wamid.y", 3),
            ],
        )
        .await;
        assert!(!applied[0].duplicate);
        assert!(applied[1].duplicate);
    }

    #[tokio::test]
    async fn concurrent_submissions_each_get_their_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let submitted = (0..200).map(|n| {
            let store = store.clone();
            async move {
                store
                    .apply_change(arrival("meta", &format!("9{n}"), &format!("wamid.{n}"), n))
                    .await
                    .unwrap()
            }
        });
        let applied = futures::future::join_all(submitted).await;
        for (n, applied) in applied.iter().enumerate() {
            let message = applied.message.as_ref().unwrap();
            assert_eq!(message.provider_message_id, Some(format!("wamid.{n}")));
            assert_eq!(applied.conversation.created_at, n as i64);
        }
        let cases = conversation::Entity::find().all(store.db()).await.unwrap();
        assert_eq!(cases.len(), 200);
    }
}
