//! Writes that change a conversation, as decided by its actor, and the reads it needs to
//! load its state. One [`ConversationChange`] is everything one actor step persists:
//! the conversation row, an optional message, note or outbox entry, and the events that
//! describe it, committed together.

use super::entities::held_message;
use super::entities::{contact, conversation, conversation_event, message, note, outbox};
use super::{Store, StoreError, WriteOp};
use crate::domain::consent::Purpose;
use crate::domain::outbound::{Hold, Origin};
use crate::domain::{ConversationKey, Micros, Priority, TicketStatus};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, Condition,
    DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};

/// An event to append to a conversation's log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub data: serde_json::Value,
    pub actor: String,
}

/// A message to store with the change (inbound from the customer or outbound to them).
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub direction: &'static str,
    pub kind: String,
    pub text: Option<String>,
    pub content: Option<String>,
    pub provider_message_id: Option<String>,
    pub delivery_status: Option<&'static str>,
    pub reply_to: Option<String>,
    pub author_agent_id: Option<i64>,
    pub provider_sent_at: Option<Micros>,
    pub received_at: Option<Micros>,
}

/// An outbound send to queue for the message of this change.
#[derive(Debug, Clone)]
pub struct NewOutbox {
    pub recipient: String,
    /// The provider request, minus anything filled in at send time.
    pub payload: String,
    /// Who or what wrote it; the gate's boundaries depend on it.
    pub origin: Origin,
    /// What it is for; consent is checked per purpose.
    pub purpose: Purpose,
    /// A template's category (a template may be sent outside the service window);
    /// `None` for a free-form message.
    pub template_category: Option<&'static str>,
    /// Set by the gate: the message waits in the approval queue instead of the outbox.
    pub held: Option<Hold>,
}

/// A decision on a held message, written with the change that records it. Applied only
/// if the message is still pending, so two approvers never both send it.
#[derive(Debug, Clone)]
pub struct HeldDecision {
    pub held_id: i64,
    pub message_id: i64,
    /// `approved` or `rejected`.
    pub status: &'static str,
    /// An approver's edit: the new text, and the provider request carrying it.
    pub edit: Option<(String, String)>,
    pub decided_by: String,
    pub note: Option<String>,
}

/// The error a decision on a held message that is no longer pending fails with (the
/// whole change is rolled back).
pub const HELD_ALREADY_DECIDED: &str = "held message already decided";

/// Everything one conversation actor step persists, atomically.
#[derive(Debug, Clone)]
pub struct ConversationChange {
    /// The contact, created or renamed here when the actor does not know its id yet.
    pub contact: ContactUpsert,
    /// An older conversation to close first (its reopen window has passed).
    pub close_previous: Option<conversation::Model>,
    /// The conversation's new state; `id == 0` inserts a new conversation.
    pub conversation: conversation::Model,
    pub message: Option<NewMessage>,
    pub outbox: Option<NewOutbox>,
    pub note: Option<(String, String)>,
    /// Events in order; a `message_id`/`note_id` key is added to their data once known.
    pub events: Vec<NewEvent>,
    /// The closing events of `close_previous`.
    pub previous_events: Vec<NewEvent>,
    /// The noise filter kept this message from the human queues (recorded with the
    /// message it names).
    pub suppression: Option<super::noise::NewSuppression>,
    /// What the CRM said about the contact, stored on the contact with this change.
    pub enrichment: Option<ContactEnrichment>,
    /// A satisfaction survey sent or answered with this change.
    pub csat: Option<CsatRecord>,
    /// A decision on a message held for approval.
    pub decision: Option<HeldDecision>,
    /// The macro this change applied: its use is counted in the same transaction.
    pub macro_used: Option<i64>,
}

/// The survey row a change writes (one per surveyed case).
#[derive(Debug, Clone, PartialEq)]
pub enum CsatRecord {
    Surveyed {
        agent_id: Option<i64>,
        team_id: Option<i64>,
        via: &'static str,
    },
    Answered {
        score: i32,
    },
    Commented {
        comment: String,
    },
}

/// The CRM's answer about a contact.
#[derive(Debug, Clone)]
pub struct ContactEnrichment {
    /// The profile as JSON; `None` when the CRM does not know the customer.
    pub profile: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ContactUpsert {
    Known(i64),
    ByWaId { wa_id: String, name: Option<String> },
}

/// What a change wrote.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ChangeApplied {
    pub contact_id: i64,
    pub conversation: conversation::Model,
    pub message: Option<message::Model>,
    pub note_id: Option<i64>,
    pub events: Vec<conversation_event::Model>,
    /// The inbound message was stored before: nothing was written.
    pub duplicate: bool,
}

impl WriteOp for ConversationChange {
    type Output = ChangeApplied;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<ChangeApplied, DbErr>> {
        Box::pin(async move {
            let now = self.conversation.updated_at;
            let channel_id = self.conversation.channel_id.as_str();
            if let Some(decision) = &self.decision {
                apply_decision(txn, decision, &self.conversation, now).await?;
            }
            // A redelivered inbound message changes nothing. For a case that exists, its row
            // goes in first and the unique key tells; for a new case, look first, so that a
            // late duplicate never opens one.
            let mut stored_message = None;
            if let Some(
                new @ NewMessage {
                    direction: "inbound",
                    provider_message_id: Some(pmid),
                    ..
                },
            ) = &self.message
            {
                if self.conversation.id == 0 {
                    if let Some(duplicate) = duplicate_of(txn, channel_id, pmid).await? {
                        return Ok(duplicate);
                    }
                } else {
                    match insert_message(txn, self.conversation.id, channel_id, new, now).await? {
                        Some(message) => stored_message = Some(message),
                        None => {
                            return duplicate_of(txn, channel_id, pmid)
                                .await?
                                .ok_or_else(|| DbErr::RecordNotFound(format!("message {pmid}")));
                        }
                    }
                }
            }

            let contact_id = match &self.contact {
                ContactUpsert::Known(id) => *id,
                ContactUpsert::ByWaId { wa_id, name } => {
                    upsert_contact(txn, wa_id, name.as_deref(), now).await?
                }
            };
            if let Some(enrichment) = &self.enrichment {
                contact::Entity::update_many()
                    .col_expr(
                        contact::Column::CrmProfile,
                        Expr::value(enrichment.profile.clone()),
                    )
                    .col_expr(contact::Column::CrmFetchedAt, Expr::value(now))
                    .col_expr(contact::Column::UpdatedAt, Expr::value(now))
                    .filter(contact::Column::Id.eq(contact_id))
                    .exec(txn)
                    .await?;
            }

            let mut events = Vec::with_capacity(self.events.len() + self.previous_events.len());
            if let Some(previous) = &self.close_previous {
                let mut closed = previous.clone().into_active_model();
                closed.status = Set(TicketStatus::Closed.as_str().into());
                closed.closed_at = Set(Some(now));
                closed.updated_at = Set(now);
                closed.sla = Set(previous.sla.clone());
                closed.sla_due_at = Set(None);
                closed.update(txn).await?;
                reject_pending_held(txn, vec![previous.id], "system", CLOSED_UNDECIDED, now)
                    .await?;
                for event in &self.previous_events {
                    events.push(insert_event(txn, previous.id, event, None, now).await?);
                }
            }

            let mut row = self.conversation.clone();
            row.contact_id = contact_id;
            let conversation = if row.id == 0 {
                let mut active = row.into_active_model();
                active.id = NotSet;
                active.insert(txn).await?
            } else {
                let mut active = row.into_active_model().reset_all();
                active.id = sea_orm::ActiveValue::Unchanged(self.conversation.id);
                active.update(txn).await?
            };
            if conversation.status == TicketStatus::Closed.as_str() {
                reject_pending_held(txn, vec![conversation.id], "system", CLOSED_UNDECIDED, now)
                    .await?;
            }

            let message = match (stored_message, &self.message) {
                (Some(stored), _) => Some(stored),
                (None, Some(new)) => {
                    insert_message(txn, conversation.id, &conversation.channel_id, new, now).await?
                }
                (None, None) => None,
            };
            if let Some(message) = &message {
                super::media::link_message(txn, message, now).await?;
            }
            if let (Some(held), Some(queued), Some(message)) = (
                self.outbox.as_ref().and_then(|o| o.held.as_ref()),
                &self.outbox,
                &message,
            ) {
                held_message::Entity::insert(held_message::ActiveModel {
                    conversation_id: Set(conversation.id),
                    message_id: Set(message.id),
                    channel_id: Set(conversation.channel_id.clone()),
                    recipient: Set(queued.recipient.clone()),
                    payload: Set(queued.payload.clone()),
                    origin: Set(queued.origin.as_str().into()),
                    purpose: Set(queued.purpose.as_str().into()),
                    approver: Set(held.approver.as_str().into()),
                    boundaries: Set(serde_json::json!(held.boundaries).to_string()),
                    reasons: Set(serde_json::json!(held.reasons).to_string()),
                    status: Set(HELD_PENDING.into()),
                    original_text: Set(message.text.clone()),
                    created_at: Set(now),
                    ..Default::default()
                })
                .exec(txn)
                .await?;
            } else if let (Some(queued), Some(message)) = (&self.outbox, &message) {
                outbox::Entity::insert(queued_send(
                    message.id,
                    &conversation,
                    &queued.recipient,
                    queued.payload.clone(),
                    now,
                ))
                .exec(txn)
                .await?;
            }
            let note_id = match &self.note {
                Some((body, author)) => Some(
                    note::Entity::insert(note::ActiveModel {
                        conversation_id: Set(conversation.id),
                        body: Set(body.clone()),
                        author: Set(author.clone()),
                        created_at: Set(now),
                        ..Default::default()
                    })
                    .exec(txn)
                    .await?
                    .last_insert_id,
                ),
                None => None,
            };
            // The texts are searchable from the commit that stores them.
            let mut documents: Vec<super::search::NewDocument> = Vec::new();
            if let Some(message) = &message {
                documents.extend(super::search::NewDocument::message(&conversation, message));
            }
            if let (Some(id), Some((body, _))) = (note_id, &self.note) {
                documents.push(super::search::NewDocument::note(
                    &conversation,
                    id,
                    body,
                    now,
                ));
            }
            super::search::index(txn, documents).await?;
            if let ContactUpsert::ByWaId {
                name: Some(name), ..
            } = &self.contact
            {
                super::search::index_contact_names(txn, &[(contact_id, name.clone())], now).await?;
            }
            if let Some(record) = &self.csat {
                write_csat(txn, &conversation, record, now).await?;
            }
            if let Some(id) = self.macro_used {
                super::macros::count_use(txn, id, now).await?;
            }
            if let Some(suppression) = &self.suppression {
                super::noise::insert_suppression(
                    txn,
                    suppression,
                    Some(conversation.id),
                    message.as_ref().map(|m| m.id),
                    None,
                    now,
                )
                .await?;
            }
            let refs = (message.as_ref().map(|m| m.id), note_id);
            events.extend(insert_events(txn, conversation.id, &self.events, refs, now).await?);
            Ok(ChangeApplied {
                contact_id,
                conversation,
                message,
                note_id,
                events,
                duplicate: false,
            })
        })
    }
}

/// Creates the contact or refreshes its name, in one statement that returns its id either
/// way (`DO UPDATE ... RETURNING` answers for the existing row too).
pub(super) async fn upsert_contact(
    txn: &DatabaseTransaction,
    wa_id: &str,
    name: Option<&str>,
    now: Micros,
) -> Result<i64, DbErr> {
    let contact = contact::Entity::insert(contact::ActiveModel {
        wa_id: Set(wa_id.into()),
        name: Set(name.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(refresh_contact(now.into()))
    .exec_with_returning(txn)
    .await?;
    Ok(contact.id)
}

/// The row a new message becomes (its id is the database's to give).
pub(super) fn message_model(
    conversation_id: i64,
    channel_id: &str,
    new: &NewMessage,
    now: Micros,
) -> message::Model {
    message::Model {
        id: 0,
        conversation_id,
        channel_id: channel_id.into(),
        direction: new.direction.into(),
        kind: new.kind.clone(),
        text: new.text.clone(),
        content: new.content.clone(),
        provider_message_id: new.provider_message_id.clone(),
        delivery_status: new.delivery_status.map(str::to_owned),
        error_code: None,
        error_title: None,
        reply_to: new.reply_to.clone(),
        author_agent_id: new.author_agent_id,
        provider_sent_at: new.provider_sent_at,
        received_at: new.received_at,
        created_at: now,
    }
}

/// A message whose provider id is already stored on its channel is not inserted again.
pub(super) fn skip_stored_message() -> OnConflict {
    OnConflict::columns([
        message::Column::ChannelId,
        message::Column::ProviderMessageId,
    ])
    .do_nothing()
    .to_owned()
}

/// A contact met again keeps its name unless a new one is given; `updated_at` is set to
/// `updated_at` (a value, or `excluded.updated_at` for a multi-row upsert).
pub(super) fn refresh_contact(updated_at: sea_orm::sea_query::SimpleExpr) -> OnConflict {
    OnConflict::column(contact::Column::WaId)
        .value(
            contact::Column::Name,
            Expr::cust("COALESCE(excluded.name, contacts.name)"),
        )
        .value(contact::Column::UpdatedAt, updated_at)
        .to_owned()
}

/// Inserts a message; `None` when its provider id is already stored on this channel.
async fn insert_message(
    txn: &DatabaseTransaction,
    conversation_id: i64,
    channel_id: &str,
    new: &NewMessage,
    now: Micros,
) -> Result<Option<message::Model>, DbErr> {
    let mut model = message_model(conversation_id, channel_id, new, now);
    let mut active = model.clone().into_active_model();
    active.id = NotSet;
    let inserted = message::Entity::insert(active)
        .on_conflict(skip_stored_message())
        .exec(txn)
        .await;
    match inserted {
        Ok(result) => {
            model.id = result.last_insert_id;
            Ok(Some(model))
        }
        Err(DbErr::RecordNotInserted) => Ok(None),
        Err(error) => Err(error),
    }
}

/// The stored copy of an inbound message, answered as a duplicate.
pub(super) async fn duplicate_of(
    txn: &DatabaseTransaction,
    channel_id: &str,
    pmid: &str,
) -> Result<Option<ChangeApplied>, DbErr> {
    let Some(existing) = message::Entity::find()
        .filter(message::Column::ChannelId.eq(channel_id))
        .filter(message::Column::ProviderMessageId.eq(pmid))
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let conversation = conversation::Entity::find_by_id(existing.conversation_id)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("conversation of a stored message".into()))?;
    Ok(Some(ChangeApplied {
        contact_id: conversation.contact_id,
        conversation,
        message: Some(existing),
        note_id: None,
        events: Vec::new(),
        duplicate: true,
    }))
}

/// A held message waiting for a decision.
pub const HELD_PENDING: &str = "pending";

/// Records a decision on a held message, if it is still pending; an approval queues the
/// (possibly edited) message for sending.
async fn apply_decision(
    txn: &DatabaseTransaction,
    decision: &HeldDecision,
    case: &conversation::Model,
    now: Micros,
) -> Result<(), DbErr> {
    let held = held_message::Entity::find_by_id(decision.held_id)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("held message {}", decision.held_id)))?;
    let updated = held_message::Entity::update_many()
        .col_expr(held_message::Column::Status, Expr::value(decision.status))
        .col_expr(
            held_message::Column::EditedText,
            Expr::value(decision.edit.as_ref().map(|(text, _)| text.clone())),
        )
        .col_expr(
            held_message::Column::DecidedBy,
            Expr::value(decision.decided_by.clone()),
        )
        .col_expr(
            held_message::Column::DecisionNote,
            Expr::value(decision.note.clone()),
        )
        .col_expr(held_message::Column::DecidedAt, Expr::value(now))
        .filter(held_message::Column::Id.eq(decision.held_id))
        .filter(held_message::Column::Status.eq(HELD_PENDING))
        .exec(txn)
        .await?;
    if updated.rows_affected != 1 {
        return Err(DbErr::Custom(HELD_ALREADY_DECIDED.into()));
    }
    let approved = decision.status == "approved";
    let mut message_update = message::Entity::update_many()
        .col_expr(
            message::Column::DeliveryStatus,
            Expr::value(if approved { "pending" } else { "rejected" }),
        )
        .filter(message::Column::Id.eq(decision.message_id));
    if let Some((text, _)) = &decision.edit {
        message_update = message_update.col_expr(message::Column::Text, Expr::value(text.clone()));
    }
    message_update.exec(txn).await?;
    if approved {
        let payload = decision
            .edit
            .as_ref()
            .map_or_else(|| held.payload.clone(), |(_, payload)| payload.clone());
        outbox::Entity::insert(queued_send(
            held.message_id,
            case,
            &held.recipient,
            payload,
            now,
        ))
        .exec(txn)
        .await?;
    }
    Ok(())
}

/// Held messages of these cases that nobody decided are rejected, with their stored
/// messages, so they never leave: a case that closed (they would otherwise wait in the
/// queue for a case that can no longer send), an erased contact.
pub(crate) async fn reject_pending_held(
    txn: &DatabaseTransaction,
    case_ids: Vec<i64>,
    by: &str,
    note: &str,
    now: Micros,
) -> Result<(), DbErr> {
    let of_cases = || {
        Condition::all()
            .add(held_message::Column::ConversationId.is_in(case_ids.clone()))
            .add(held_message::Column::Status.eq(HELD_PENDING))
    };
    let held: Vec<i64> = held_message::Entity::find()
        .filter(of_cases())
        .select_only()
        .column(held_message::Column::MessageId)
        .into_tuple()
        .all(txn)
        .await?;
    if held.is_empty() {
        return Ok(());
    }
    held_message::Entity::update_many()
        .col_expr(held_message::Column::Status, Expr::value("rejected"))
        .col_expr(held_message::Column::DecidedBy, Expr::value(by))
        .col_expr(held_message::Column::DecidedAt, Expr::value(now))
        .col_expr(held_message::Column::DecisionNote, Expr::value(note))
        .filter(of_cases())
        .exec(txn)
        .await?;
    message::Entity::update_many()
        .col_expr(message::Column::DeliveryStatus, Expr::value("rejected"))
        .filter(message::Column::Id.is_in(held))
        .exec(txn)
        .await?;
    Ok(())
}

/// Forgets what held messages said and where they were going (the caller filters which):
/// retention and erasure.
pub(crate) fn forget_held_texts() -> sea_orm::UpdateMany<held_message::Entity> {
    held_message::Entity::update_many()
        .col_expr(
            held_message::Column::OriginalText,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            held_message::Column::EditedText,
            Expr::value(Option::<String>::None),
        )
        .col_expr(held_message::Column::Payload, Expr::value("{}"))
}

/// Why a closed case's undecided held messages were rejected.
const CLOSED_UNDECIDED: &str = "the case closed before anyone decided";

/// The outbox row of a send due now.
fn queued_send(
    message_id: i64,
    case: &conversation::Model,
    recipient: &str,
    payload: String,
    now: Micros,
) -> outbox::ActiveModel {
    outbox::ActiveModel {
        message_id: Set(message_id),
        channel_id: Set(case.channel_id.clone()),
        phone_number_id: Set(case.phone_number_id.clone()),
        recipient: Set(recipient.to_owned()),
        payload: Set(payload),
        state: Set(super::outbox::QUEUED.into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

pub(super) fn event_row(
    conversation_id: i64,
    event: &NewEvent,
    refs: Option<(Option<i64>, Option<i64>)>,
    now: Micros,
) -> conversation_event::ActiveModel {
    let mut data = event.data.clone();
    if let (Some((message_id, note_id)), serde_json::Value::Object(map)) = (refs, &mut data) {
        if let Some(id) = message_id {
            map.entry("message_id").or_insert(id.into());
        }
        if let Some(id) = note_id {
            map.entry("note_id").or_insert(id.into());
        }
    }
    conversation_event::ActiveModel {
        conversation_id: Set(conversation_id),
        kind: Set(event.kind.into()),
        data: Set(data.to_string()),
        actor: Set(event.actor.clone()),
        created_at: Set(now),
        ..Default::default()
    }
}

pub(crate) async fn insert_event(
    txn: &DatabaseTransaction,
    conversation_id: i64,
    event: &NewEvent,
    refs: Option<(Option<i64>, Option<i64>)>,
    now: Micros,
) -> Result<conversation_event::Model, DbErr> {
    event_row(conversation_id, event, refs, now)
        .insert(txn)
        .await
}

/// Appends events in one statement, returned in the order given.
async fn insert_events(
    txn: &DatabaseTransaction,
    conversation_id: i64,
    events: &[NewEvent],
    refs: (Option<i64>, Option<i64>),
    now: Micros,
) -> Result<Vec<conversation_event::Model>, DbErr> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let rows = events
        .iter()
        .map(|event| event_row(conversation_id, event, Some(refs), now));
    let mut inserted = conversation_event::Entity::insert_many(rows)
        .exec_with_returning_many(txn)
        .await?;
    // Ids grow with insertion order, whatever order RETURNING lists them in.
    inserted.sort_by_key(|event| event.id);
    Ok(inserted)
}

/// Cases and triage events looked at for a contact's recent intents.
const RECENT_CASES: u64 = 5;
const RECENT_TRIAGES: u64 = 20;

/// What a conversation actor loads when it starts.
#[derive(Debug, Clone, Default)]
pub struct ActorState {
    pub contact_id: Option<i64>,
    pub contact_name: Option<String>,
    /// The newest conversation of this contact on this number that is not closed.
    pub live: Option<conversation::Model>,
    /// Marked VIP in Parley or by the CRM.
    pub contact_vip: bool,
    /// When the CRM was last asked about the contact.
    pub crm_fetched_at: Option<Micros>,
    /// Intents this contact wrote about recently (any case), newest last: the router marks
    /// `repeat_contact` when a new message is about one of them.
    pub recent_intents: Vec<(String, Micros)>,
    /// The contact's consent per purpose (in `Purpose::ALL` order), read from the ledger
    /// at the first send and kept until it changes: the contact's keywords go through
    /// this actor, and a consent recorded by hand makes it reload.
    pub consent: Option<[bool; 3]>,
}

async fn write_csat(
    txn: &DatabaseTransaction,
    conversation: &conversation::Model,
    record: &CsatRecord,
    now: Micros,
) -> Result<(), DbErr> {
    use super::entities::csat_response;
    let by_case = csat_response::Column::ConversationId.eq(conversation.id);
    match record {
        CsatRecord::Surveyed {
            agent_id,
            team_id,
            via,
        } => {
            csat_response::Entity::insert(csat_response::ActiveModel {
                conversation_id: Set(conversation.id),
                contact_id: Set(conversation.contact_id),
                agent_id: Set(*agent_id),
                team_id: Set(*team_id),
                channel_id: Set(conversation.channel_id.clone()),
                via: Set((*via).to_owned()),
                surveyed_at: Set(now),
                score: Set(None),
                answered_at: Set(None),
                comment: Set(None),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::column(csat_response::Column::ConversationId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        }
        CsatRecord::Answered { score } => {
            csat_response::Entity::update_many()
                .col_expr(csat_response::Column::Score, Expr::value(*score))
                .col_expr(csat_response::Column::AnsweredAt, Expr::value(now))
                .filter(by_case)
                .exec(txn)
                .await?;
        }
        CsatRecord::Commented { comment } => {
            csat_response::Entity::update_many()
                .col_expr(csat_response::Column::Comment, Expr::value(comment.clone()))
                .filter(by_case)
                .exec(txn)
                .await?;
        }
    }
    Ok(())
}

/// Whether a stored CRM profile marks the customer as a VIP.
pub fn crm_says_vip(profile: Option<&str>) -> bool {
    profile
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .is_some_and(|p| p["vip"] == serde_json::Value::Bool(true))
}

impl Store {
    pub async fn load_actor_state(&self, key: &ConversationKey) -> Result<ActorState, StoreError> {
        let contact = contact::Entity::find()
            .filter(contact::Column::WaId.eq(&key.wa_id))
            .one(self.db())
            .await?;
        let Some(contact) = contact else {
            return Ok(ActorState::default());
        };
        let live = conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(contact.id))
            .filter(conversation::Column::ChannelId.eq(&key.channel_id))
            .filter(conversation::Column::PhoneNumberId.eq(&key.phone_number_id))
            .filter(conversation::Column::Status.ne(TicketStatus::Closed.as_str()))
            .order_by_desc(conversation::Column::Id)
            .one(self.db())
            .await?;
        let recent_intents = self.recent_intents(contact.id).await?;
        Ok(ActorState {
            contact_id: Some(contact.id),
            contact_name: contact.name,
            live,
            contact_vip: contact.vip || crm_says_vip(contact.crm_profile.as_deref()),
            crm_fetched_at: contact.crm_fetched_at,
            recent_intents,
            consent: None,
        })
    }

    /// The intents of the contact's latest triaged messages, oldest first.
    pub(crate) async fn recent_intents(
        &self,
        contact_id: i64,
    ) -> Result<Vec<(String, Micros)>, StoreError> {
        let ids: Vec<i64> = conversation::Entity::find()
            .filter(conversation::Column::ContactId.eq(contact_id))
            .select_only()
            .column(conversation::Column::Id)
            .order_by_desc(conversation::Column::Id)
            .limit(RECENT_CASES)
            .into_tuple()
            .all(self.db())
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One query per case, each walking that case's events newest first on the
        // (conversation, id) index: given the cases together, SQLite would rather read
        // every triage event of every case through the (kind, ...) index, a cost that
        // grows with the whole history.
        let mut events = Vec::new();
        for id in ids {
            events.extend(
                conversation_event::Entity::find()
                    .filter(conversation_event::Column::ConversationId.eq(id))
                    .filter(conversation_event::Column::Kind.eq("triaged"))
                    .order_by_desc(conversation_event::Column::Id)
                    .limit(RECENT_TRIAGES)
                    .all(self.db())
                    .await?,
            );
        }
        events.sort_unstable_by_key(|event| std::cmp::Reverse(event.id));
        events.truncate(RECENT_TRIAGES as usize);
        let mut out = Vec::new();
        for event in events.into_iter().rev() {
            let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
            for intent in data["intents"].as_array().into_iter().flatten() {
                if let Some(label) = intent["label"].as_str() {
                    out.push((label.to_owned(), event.created_at));
                }
            }
        }
        Ok(out)
    }

    /// Every case not resolved or closed, with its contact's WhatsApp id (the router's
    /// state at start-up).
    pub async fn open_conversations(
        &self,
    ) -> Result<Vec<(conversation::Model, String)>, StoreError> {
        let rows = conversation::Entity::find()
            .filter(conversation::Column::Status.is_not_in([
                TicketStatus::Resolved.as_str(),
                TicketStatus::Closed.as_str(),
            ]))
            .all(self.db())
            .await?;
        let mut wa_ids = std::collections::HashMap::new();
        let ids: Vec<i64> = rows.iter().map(|c| c.contact_id).collect();
        for chunk in ids.chunks(500) {
            let contacts: Vec<(i64, String)> = contact::Entity::find()
                .filter(contact::Column::Id.is_in(chunk.iter().copied()))
                .select_only()
                .column(contact::Column::Id)
                .column(contact::Column::WaId)
                .into_tuple()
                .all(self.db())
                .await?;
            wa_ids.extend(contacts);
        }
        Ok(rows
            .into_iter()
            .filter_map(|c| wa_ids.get(&c.contact_id).cloned().map(|w| (c, w)))
            .collect())
    }

    /// The actor key of a conversation: which contact and number it belongs to.
    pub async fn conversation_key(
        &self,
        conversation_id: i64,
    ) -> Result<Option<(ConversationKey, conversation::Model)>, StoreError> {
        let Some(conversation) = conversation::Entity::find_by_id(conversation_id)
            .one(self.db())
            .await?
        else {
            return Ok(None);
        };
        let contact = contact::Entity::find_by_id(conversation.contact_id)
            .one(self.db())
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!("conversation {conversation_id} has no contact"))
            })?;
        let key = ConversationKey {
            channel_id: conversation.channel_id.clone(),
            phone_number_id: conversation.phone_number_id.clone(),
            wa_id: contact.wa_id,
        };
        Ok(Some((key, conversation)))
    }
}

/// A new case of `key`'s contact, as it is opened: nobody owns it yet.
pub(crate) fn new_conversation(
    key: &ConversationKey,
    contact_id: i64,
    now: Micros,
) -> conversation::Model {
    conversation::Model {
        id: 0,
        contact_id,
        channel_id: key.channel_id.clone(),
        phone_number_id: key.phone_number_id.clone(),
        status: TicketStatus::Created.as_str().into(),
        priority: Priority::Medium.as_str().into(),
        assignee_id: None,
        team_id: None,
        reopen_count: 0,
        created_at: now,
        updated_at: now,
        last_activity_at: now,
        last_customer_message_at: None,
        first_response_at: None,
        resolved_at: None,
        closed_at: None,
        urgency: None,
        review: None,
        watchers: None,
        language: None,
        triage: None,
        sla: None,
        sla_due_at: None,
        csat: None,
        window_refused_at: None,
    }
}
