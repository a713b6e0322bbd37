//! Erasing a contact's personal data: what they wrote and were sent, what agents noted
//! about them, their CRM profile, the raw webhook payloads that carried their number,
//! escalation packets and reasons, survey comments, consent notes, the provider payloads
//! of sends kept as in flight or in doubt, the sample of a scam wave they started, and
//! their number itself, and the media files either side sent (marked here, their bytes
//! deleted by the media worker once this commits). The case skeleton stays (statuses, timings, tags, assignments) so
//! that metrics still add up. The audit log never held any of it (entries keep ids and
//! counts only, see `audit`), so it is not rewritten and its chain stays verifiable; it
//! records that an erasure happened and by whom.

use super::audit::{AuditRecord, append};
use super::entities::{
    consent_event, contact, conversation, conversation_event, csat_response, dead_letter,
    held_message, inbox, message, noise_cluster, note, outbox, suppression,
};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// What an erasure replaces text with.
pub const ERASED: &str = "[erased]";
/// Raw payloads looked at per query when searching for the contact's number.
const PAYLOAD_PAGE: u64 = 500;

/// Erase one contact.
#[derive(Debug, Clone)]
pub struct EraseContact {
    pub wa_id: String,
    pub reason: String,
    pub actor: String,
    pub at: Micros,
    /// Dead letters whose raw payload holds the number (found beforehand with
    /// [`Store::payloads_mentioning`]).
    pub dead_letter_ids: Vec<i64>,
    /// Inbox payloads holding the number that [`DeleteInboxPayloads`] removed just
    /// before (the inbox may be a database of its own): counted with the erasure.
    pub inbox_payloads: u64,
}

/// Removes processed inbox rows (raw webhook payloads) by id.
pub struct DeleteInboxPayloads {
    pub ids: Vec<i64>,
}

impl WriteOp for DeleteInboxPayloads {
    type Output = u64;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<u64, DbErr>> {
        Box::pin(async move {
            let mut deleted = 0;
            for chunk in self.ids.chunks(PAYLOAD_PAGE as usize) {
                deleted += inbox::Entity::delete_many()
                    .filter(inbox::Column::Id.is_in(chunk.iter().copied()))
                    .filter(inbox::Column::ProcessedAt.is_not_null())
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
            Ok(deleted)
        })
    }
}

/// What an erasure touched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub contact_id: i64,
    pub conversations: u64,
    pub messages: u64,
    pub notes: u64,
    pub payloads: u64,
    /// Replies still waiting to be sent, cancelled.
    pub cancelled_sends: u64,
    /// Media files (sent and received) marked erased; their bytes are deleted from the
    /// blob store right after.
    pub media_files: u64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ErasureError {
    #[error("no contact with this WhatsApp id")]
    NotFound,
}

impl WriteOp for EraseContact {
    type Output = Result<Erasure, ErasureError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(erase(txn, self))
    }
}

async fn erase(
    txn: &DatabaseTransaction,
    op: &EraseContact,
) -> Result<Result<Erasure, ErasureError>, DbErr> {
    let Some(found) = contact::Entity::find()
        .filter(contact::Column::WaId.eq(&op.wa_id))
        .one(txn)
        .await?
    else {
        return Ok(Err(ErasureError::NotFound));
    };
    let cases: Vec<i64> = conversation::Entity::find()
        .filter(conversation::Column::ContactId.eq(found.id))
        .select_only()
        .column(conversation::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    let message_ids: Vec<i64> = message::Entity::find()
        .filter(message::Column::ConversationId.is_in(cases.clone()))
        .select_only()
        .column(message::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;

    let media_files = super::media::erase_of_messages(txn, message_ids.clone(), op.at).await?;

    // Sends not yet made are cancelled: nothing more goes to an erased contact.
    let pending: Vec<i64> = outbox::Entity::find()
        .filter(outbox::Column::MessageId.is_in(message_ids.clone()))
        .filter(outbox::Column::State.eq(super::outbox::QUEUED))
        .select_only()
        .column(outbox::Column::MessageId)
        .into_tuple()
        .all(txn)
        .await?;
    message::Entity::update_many()
        .col_expr(message::Column::DeliveryStatus, Expr::value("failed"))
        .col_expr(message::Column::ErrorCode, Expr::value("erased"))
        .filter(message::Column::Id.is_in(pending.clone()))
        .exec(txn)
        .await?;
    // A send in flight finishes (or is resolved) on its own, and one whose outcome is in
    // doubt stays as the record that it is never resent: both keep their row, without
    // what was said or to whom. The rest of the queue is forgotten with the number.
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Payload, Expr::value("{}"))
        .col_expr(
            outbox::Column::Recipient,
            Expr::value(format!("erased:{}", found.id)),
        )
        .filter(outbox::Column::MessageId.is_in(message_ids.clone()))
        .exec(txn)
        .await?;
    outbox::Entity::delete_many()
        .filter(outbox::Column::MessageId.is_in(message_ids.clone()))
        .filter(outbox::Column::State.is_in([
            super::outbox::QUEUED,
            super::outbox::DONE,
            super::outbox::FAILED,
        ]))
        .exec(txn)
        .await?;

    // A scam cluster's sample is the first text of its kind: when the contact wrote it,
    // it goes with their messages (the cluster's counts stay).
    let texts: Vec<Option<String>> = message::Entity::find()
        .filter(message::Column::Id.is_in(message_ids.clone()))
        .filter(message::Column::Direction.eq("inbound"))
        .select_only()
        .column(message::Column::Text)
        .into_tuple()
        .all(txn)
        .await?;
    // Samples keep a text's first 280 characters.
    let texts: Vec<String> = texts
        .into_iter()
        .flatten()
        .map(|t| t.chars().take(280).collect())
        .collect();
    for chunk in texts.chunks(PAYLOAD_PAGE as usize) {
        noise_cluster::Entity::update_many()
            .col_expr(noise_cluster::Column::Sample, Expr::value(ERASED))
            .filter(noise_cluster::Column::Sample.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
    }
    let messages = message::Entity::update_many()
        .col_expr(message::Column::Text, Expr::value(Option::<String>::None))
        .col_expr(
            message::Column::Content,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            message::Column::ErrorTitle,
            Expr::value(Option::<String>::None),
        )
        .filter(message::Column::Id.is_in(message_ids))
        .exec(txn)
        .await?
        .rows_affected;
    // What the index holds of their words and name goes with them.
    super::search::forget_contact(txn, found.id).await?;
    let notes = note::Entity::update_many()
        .col_expr(note::Column::Body, Expr::value(ERASED))
        .filter(note::Column::ConversationId.is_in(cases.clone()))
        .exec(txn)
        .await?
        .rows_affected;
    // Triage evidence quotes the customer's words; the labels stay on the case's columns.
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::Triage,
            Expr::value(Option::<String>::None),
        )
        .filter(conversation::Column::Id.is_in(cases.clone()))
        .exec(txn)
        .await?;
    conversation_event::Entity::update_many()
        .col_expr(
            conversation_event::Column::Data,
            Expr::value("{\"erased\":true}"),
        )
        .filter(conversation_event::Column::ConversationId.is_in(cases.clone()))
        .filter(conversation_event::Column::Kind.is_in([
            "triaged",
            "contact_enriched",
            "message_approved",
            "message_rejected",
            "csat_comment",
            // A person's correction: its reason may quote the customer; the labels
            // stay on the case's columns.
            "tags_corrected",
        ]))
        .exec(txn)
        .await?;
    // An escalation's packet quotes the customer (number, name, CRM e-mail and phone,
    // the last messages) and its reason may too; the rest of the event (teams, levels,
    // trigger) drives the SLA replay and stays. So does a priority change's, without
    // the reason given for it.
    let reasoned = conversation_event::Entity::find()
        .filter(conversation_event::Column::ConversationId.is_in(cases.clone()))
        .filter(conversation_event::Column::Kind.is_in(["escalated", "priority_changed"]))
        .all(txn)
        .await?;
    for event in reasoned {
        let mut data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
        if let Some(map) = data.as_object_mut() {
            if event.kind == "escalated" {
                map.insert("packet".into(), serde_json::json!({ "erased": true }));
            }
            if map.get("reason").is_some_and(|r| !r.is_null()) {
                map.insert("reason".into(), ERASED.into());
            }
        }
        conversation_event::Entity::update_many()
            .col_expr(
                conversation_event::Column::Data,
                Expr::value(data.to_string()),
            )
            .filter(conversation_event::Column::Id.eq(event.id))
            .exec(txn)
            .await?;
    }
    csat_response::Entity::update_many()
        .col_expr(
            csat_response::Column::Comment,
            Expr::value(Option::<String>::None),
        )
        .filter(csat_response::Column::ConversationId.is_in(cases.clone()))
        .exec(txn)
        .await?;
    // Opt-outs and opt-ins stay (they still bind), without the words or notes given.
    consent_event::Entity::update_many()
        .col_expr(
            consent_event::Column::Detail,
            Expr::value(Option::<String>::None),
        )
        .filter(consent_event::Column::ContactId.eq(found.id))
        .exec(txn)
        .await?;
    // Held messages: what they said and where they were going is forgotten; those still
    // waiting are rejected, so nothing is ever sent to an erased contact.
    super::conversations::reject_pending_held(
        txn,
        cases.clone(),
        &op.actor,
        "the contact's data was erased",
        op.at,
    )
    .await?;
    super::conversations::forget_held_texts()
        .col_expr(
            held_message::Column::Recipient,
            Expr::value(format!("erased:{}", found.id)),
        )
        .filter(held_message::Column::ConversationId.is_in(cases.clone()))
        .exec(txn)
        .await?;

    let erased_id = format!("erased:{}", found.id);
    suppression::Entity::update_many()
        .col_expr(suppression::Column::WaId, Expr::value(erased_id.clone()))
        .col_expr(
            suppression::Column::Excerpt,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            suppression::Column::Detail,
            Expr::value(Option::<String>::None),
        )
        .filter(suppression::Column::WaId.eq(&op.wa_id))
        .exec(txn)
        .await?;
    let mut payloads = op.inbox_payloads;
    payloads += dead_letter::Entity::delete_many()
        .filter(dead_letter::Column::Id.is_in(op.dead_letter_ids.clone()))
        .exec(txn)
        .await?
        .rows_affected;

    contact::Entity::update_many()
        .col_expr(contact::Column::WaId, Expr::value(erased_id))
        .col_expr(contact::Column::Name, Expr::value(Option::<String>::None))
        .col_expr(
            contact::Column::CrmProfile,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            contact::Column::CrmFetchedAt,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            contact::Column::BlockedReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(contact::Column::UpdatedAt, Expr::value(op.at))
        .filter(contact::Column::Id.eq(found.id))
        .exec(txn)
        .await?;

    let erasure = Erasure {
        contact_id: found.id,
        conversations: cases.len() as u64,
        messages,
        notes,
        payloads,
        cancelled_sends: pending.len() as u64,
        media_files,
    };
    append(
        txn,
        &AuditRecord {
            actor: op.actor.clone(),
            action: "contact.erased".into(),
            subject: Some(format!("contact:{}", found.id)),
            data: serde_json::json!({ "reason": op.reason, "erased": erasure }),
            at: op.at,
        },
    )
    .await?;
    Ok(Ok(erasure))
}

impl Store {
    /// Erases a contact ([`EraseContact`]): first the raw webhook payloads that hold the
    /// number (in the inbox's database), then everything else in one transaction. A
    /// crash in between leaves the contact as it was, less those payloads; erasing again
    /// finishes the work.
    pub async fn erase_contact(
        &self,
        wa_id: &str,
        reason: String,
        actor: String,
        at: Micros,
    ) -> Result<Result<Erasure, ErasureError>, StoreError> {
        let known = contact::Entity::find()
            .filter(contact::Column::WaId.eq(wa_id))
            .one(self.db())
            .await?;
        if known.is_none() {
            return Ok(Err(ErasureError::NotFound));
        }
        let (inbox_ids, dead_letter_ids) = self.payloads_mentioning(wa_id).await?;
        let inbox_payloads = self
            .write_inbox(DeleteInboxPayloads { ids: inbox_ids })
            .await?;
        self.write(EraseContact {
            wa_id: wa_id.to_owned(),
            reason,
            actor,
            at,
            dead_letter_ids,
            inbox_payloads,
        })
        .await
    }

    /// Processed inbox rows and dead letters whose raw payload contains `needle` (a
    /// number). Scans them in pages on the read pool, so the writer is not held up.
    pub async fn payloads_mentioning(
        &self,
        needle: &str,
    ) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
        let needle = needle.as_bytes();
        let holds = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        let mut inbox_ids = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = inbox::Entity::find()
                .filter(inbox::Column::Id.gt(after))
                .filter(inbox::Column::ProcessedAt.is_not_null())
                .order_by_asc(inbox::Column::Id)
                .limit(PAYLOAD_PAGE)
                .all(self.inbox_db())
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            inbox_ids.extend(page.iter().filter(|r| holds(&r.body)).map(|r| r.id));
        }
        let mut dead_ids = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = dead_letter::Entity::find()
                .filter(dead_letter::Column::Id.gt(after))
                .order_by_asc(dead_letter::Column::Id)
                .limit(PAYLOAD_PAGE)
                .all(self.db())
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            dead_ids.extend(page.iter().filter(|r| holds(&r.payload)).map(|r| r.id));
        }
        Ok((inbox_ids, dead_ids))
    }
}
