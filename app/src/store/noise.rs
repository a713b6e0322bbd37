//! The noise ledger: every message the noise filter kept away from the human queues,
//! with its reason; near-duplicate clusters; blocked contacts.

use super::audit::{self, AuditRecord};
use super::entities::{contact, message, noise_cluster, suppression};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// A suppressed message to record.
#[derive(Debug, Clone)]
pub struct NewSuppression {
    pub channel_id: String,
    pub wa_id: String,
    pub provider_message_id: Option<String>,
    pub reason: &'static str,
    pub detail: Option<String>,
    pub excerpt: Option<String>,
}

/// A cluster to create or bring up to date with the suppression. Clusters are keyed by
/// the fingerprint of their first text, so concurrent members of one wave land on one row.
#[derive(Debug, Clone)]
pub struct ClusterUpsert {
    pub fingerprint: u64,
    pub sample: String,
    pub reason: &'static str,
    pub contacts: u32,
    pub messages: u32,
    pub first_seen_at: Micros,
}

/// Records one suppression that touches no case (blocked contact, spam, cluster).
#[derive(Debug, Clone)]
pub struct RecordSuppression {
    pub suppression: NewSuppression,
    pub cluster: Option<ClusterUpsert>,
    pub now: Micros,
}

/// What was recorded: the cluster's id, and whether the message was already recorded.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct SuppressionRecorded {
    pub cluster_id: Option<i64>,
    pub duplicate: bool,
}

fn excerpt(text: &str) -> String {
    text.chars().take(280).collect()
}

impl NewSuppression {
    pub fn new(
        channel_id: &str,
        wa_id: &str,
        provider_message_id: Option<&str>,
        reason: &'static str,
        detail: Option<String>,
        text: Option<&str>,
    ) -> Self {
        Self {
            channel_id: channel_id.to_owned(),
            wa_id: wa_id.to_owned(),
            provider_message_id: provider_message_id.map(str::to_owned),
            reason,
            detail,
            excerpt: text.map(excerpt),
        }
    }
}

/// Inserts a suppression row; false when the same provider message was recorded before.
pub(crate) async fn insert_suppression(
    txn: &DatabaseTransaction,
    s: &NewSuppression,
    conversation_id: Option<i64>,
    message_id: Option<i64>,
    cluster_id: Option<i64>,
    now: Micros,
) -> Result<bool, DbErr> {
    let inserted = suppression::Entity::insert(suppression::ActiveModel {
        channel_id: Set(s.channel_id.clone()),
        wa_id: Set(s.wa_id.clone()),
        provider_message_id: Set(s.provider_message_id.clone()),
        conversation_id: Set(conversation_id),
        message_id: Set(message_id),
        cluster_id: Set(cluster_id),
        reason: Set(s.reason.into()),
        detail: Set(s.detail.clone()),
        excerpt: Set(s.excerpt.clone()),
        created_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            suppression::Column::ChannelId,
            suppression::Column::ProviderMessageId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec(txn)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(DbErr::RecordNotInserted) => Ok(false),
        Err(error) => Err(error),
    }
}

impl WriteOp for RecordSuppression {
    type Output = SuppressionRecorded;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<SuppressionRecorded, DbErr>> {
        Box::pin(async move {
            let cluster_id = match &self.cluster {
                None => None,
                Some(c) => Some(upsert_cluster(txn, c, self.now).await?),
            };
            let fresh =
                insert_suppression(txn, &self.suppression, None, None, cluster_id, self.now)
                    .await?;
            Ok(SuppressionRecorded {
                cluster_id,
                duplicate: !fresh,
            })
        })
    }
}

/// Counts only grow: members of a wave may commit out of order.
fn at_least(column: &str) -> sea_orm::sea_query::SimpleExpr {
    Expr::cust(format!(
        "CASE WHEN excluded.{column} > noise_clusters.{column} THEN excluded.{column} ELSE noise_clusters.{column} END"
    ))
}

async fn upsert_cluster(
    txn: &DatabaseTransaction,
    c: &ClusterUpsert,
    now: Micros,
) -> Result<i64, DbErr> {
    let row = noise_cluster::Entity::insert(noise_cluster::ActiveModel {
        fingerprint: Set(i64::from_ne_bytes(c.fingerprint.to_ne_bytes())),
        sample: Set(c.sample.clone()),
        reason: Set(c.reason.into()),
        contacts: Set(i32::try_from(c.contacts).unwrap_or(i32::MAX)),
        messages: Set(i32::try_from(c.messages).unwrap_or(i32::MAX)),
        first_seen_at: Set(c.first_seen_at),
        last_seen_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(noise_cluster::Column::Fingerprint)
            .value(noise_cluster::Column::Contacts, at_least("contacts"))
            .value(noise_cluster::Column::Messages, at_least("messages"))
            .value(noise_cluster::Column::LastSeenAt, at_least("last_seen_at"))
            .to_owned(),
    )
    .exec_with_returning(txn)
    .await?;
    Ok(row.id)
}

/// What an admin changes about a contact.
#[derive(Debug, Clone)]
pub enum ContactFlag {
    Blocked { reason: Option<String> },
    Unblocked,
    Vip(bool),
}

/// Blocks, unblocks or marks a contact VIP (creating it if Parley has not heard from it
/// yet), with an audit entry in the same transaction.
#[derive(Debug, Clone)]
pub struct FlagContact {
    pub wa_id: String,
    pub flag: ContactFlag,
    pub actor: String,
    pub now: Micros,
}

impl WriteOp for FlagContact {
    type Output = contact::Model;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<contact::Model, DbErr>> {
        Box::pin(async move {
            let mut row = contact::ActiveModel {
                wa_id: Set(self.wa_id.clone()),
                name: Set(None),
                created_at: Set(self.now),
                updated_at: Set(self.now),
                ..Default::default()
            };
            let mut on_conflict = OnConflict::column(contact::Column::WaId);
            on_conflict.value(contact::Column::UpdatedAt, self.now);
            let (action, data) = match &self.flag {
                ContactFlag::Blocked { reason } => {
                    row.blocked_at = Set(Some(self.now));
                    row.blocked_reason = Set(reason.clone());
                    on_conflict
                        .value(contact::Column::BlockedAt, self.now)
                        .value(contact::Column::BlockedReason, reason.clone());
                    ("contact.blocked", serde_json::json!({ "reason": reason }))
                }
                ContactFlag::Unblocked => {
                    on_conflict
                        .value(contact::Column::BlockedAt, Option::<i64>::None)
                        .value(contact::Column::BlockedReason, Option::<String>::None);
                    ("contact.unblocked", serde_json::json!({}))
                }
                ContactFlag::Vip(vip) => {
                    row.vip = Set(*vip);
                    on_conflict.value(contact::Column::Vip, *vip);
                    ("contact.vip_changed", serde_json::json!({ "vip": vip }))
                }
            };
            let contact = contact::Entity::insert(row)
                .on_conflict(on_conflict.to_owned())
                .exec_with_returning(txn)
                .await?;
            audit::append(
                txn,
                &AuditRecord {
                    actor: self.actor.clone(),
                    action: action.into(),
                    subject: Some(format!("contact:{}", contact.id)),
                    data,
                    at: self.now,
                },
            )
            .await?;
            Ok(contact)
        })
    }
}

/// Noise counts since an instant, for the noise-filtered percentage.
#[derive(Debug, Clone, Default)]
pub struct NoiseCounts {
    /// Customer messages that reached Parley: stored ones plus those recorded only as
    /// suppressions.
    pub inbound: i64,
    pub suppressed: i64,
    pub by_reason: Vec<(String, i64)>,
}

/// What explaining a message needs to know about its sender.
#[derive(Debug, Clone, Default)]
pub struct ContactHistory {
    pub vip: bool,
    pub recent_intents: Vec<(String, Micros)>,
}

impl Store {
    pub async fn contact_history(&self, wa_id: &str) -> Result<ContactHistory, StoreError> {
        let Some(contact) = contact::Entity::find()
            .filter(contact::Column::WaId.eq(wa_id))
            .one(self.db())
            .await?
        else {
            return Ok(ContactHistory::default());
        };
        Ok(ContactHistory {
            vip: contact.vip,
            recent_intents: self.recent_intents(contact.id).await?,
        })
    }

    /// WhatsApp ids of every blocked contact (loaded at start).
    pub async fn blocked_wa_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(contact::Entity::find()
            .filter(contact::Column::BlockedAt.is_not_null())
            .select_only()
            .column(contact::Column::WaId)
            .into_tuple::<String>()
            .all(self.db())
            .await?)
    }

    pub async fn noise_counts(&self, since: Micros) -> Result<NoiseCounts, StoreError> {
        let stored = message::Entity::find()
            .filter(message::Column::Direction.eq("inbound"))
            .filter(message::Column::CreatedAt.gte(since))
            .count(self.db())
            .await?;
        let rows: Vec<(String, i64, i64)> = suppression::Entity::find()
            .filter(suppression::Column::CreatedAt.gte(since))
            .select_only()
            .column(suppression::Column::Reason)
            .column_as(suppression::Column::Id.count(), "n")
            .column_as(
                Expr::cust("SUM(CASE WHEN message_id IS NULL THEN 1 ELSE 0 END)"),
                "unstored",
            )
            .group_by(suppression::Column::Reason)
            .order_by_asc(suppression::Column::Reason)
            .into_tuple()
            .all(self.db())
            .await?;
        let suppressed = rows.iter().map(|(_, n, _)| n).sum();
        let unstored: i64 = rows.iter().map(|(_, _, u)| u).sum();
        Ok(NoiseCounts {
            inbound: i64::try_from(stored).unwrap_or(i64::MAX) + unstored,
            suppressed,
            by_reason: rows.into_iter().map(|(r, n, _)| (r, n)).collect(),
        })
    }

    pub async fn suppressions_page(
        &self,
        reason: Option<&str>,
        before_id: Option<i64>,
        limit: u64,
    ) -> Result<Vec<suppression::Model>, StoreError> {
        let mut query = suppression::Entity::find().order_by_desc(suppression::Column::Id);
        if let Some(reason) = reason {
            query = query.filter(suppression::Column::Reason.eq(reason));
        }
        if let Some(before) = before_id {
            query = query.filter(suppression::Column::Id.lt(before));
        }
        Ok(query.limit(limit).all(self.db()).await?)
    }

    pub async fn noise_clusters(
        &self,
        limit: u64,
    ) -> Result<Vec<noise_cluster::Model>, StoreError> {
        Ok(noise_cluster::Entity::find()
            .order_by_desc(noise_cluster::Column::LastSeenAt)
            .limit(limit)
            .all(self.db())
            .await?)
    }
}
