//! The consent ledger: append-only opt-ins and opt-outs per contact and purpose, each also
//! written to the audit log in the same transaction.

use super::audit::{AuditRecord, append};
use super::entities::{consent_event, contact};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use crate::domain::consent::Purpose;
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// Whose consent changes.
#[derive(Debug, Clone)]
pub enum ConsentContact {
    /// The customer who wrote a keyword; created if Parley has not seen them yet.
    WaId(String),
    /// A known contact (a person recording consent by hand).
    Id(i64),
}

/// One change of consent, for one or more purposes.
#[derive(Debug, Clone)]
pub struct RecordConsent {
    pub contact: ConsentContact,
    pub purposes: Vec<Purpose>,
    pub granted: bool,
    /// `keyword`, `agent` or `api`.
    pub source: &'static str,
    pub detail: Option<String>,
    /// The keyword message (`channel:provider id`), so that applying it again records
    /// nothing new.
    pub message_ref: Option<String>,
    pub actor: String,
    pub at: Micros,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsentError {
    #[error("contact {0} not found")]
    ContactNotFound(i64),
}

impl WriteOp for RecordConsent {
    type Output = Result<Vec<consent_event::Model>, ConsentError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let contact_id = match &self.contact {
                ConsentContact::WaId(wa_id) => {
                    super::conversations::upsert_contact(txn, wa_id, None, self.at).await?
                }
                ConsentContact::Id(id) => {
                    if contact::Entity::find_by_id(*id).one(txn).await?.is_none() {
                        return Ok(Err(ConsentError::ContactNotFound(*id)));
                    }
                    *id
                }
            };
            if let Some(message_ref) = &self.message_ref {
                let earlier = consent_event::Entity::find()
                    .filter(consent_event::Column::ContactId.eq(contact_id))
                    .filter(consent_event::Column::MessageRef.eq(message_ref.as_str()))
                    .all(txn)
                    .await?;
                if !earlier.is_empty() {
                    return Ok(Ok(earlier));
                }
            }
            let mut recorded = Vec::with_capacity(self.purposes.len());
            for purpose in &self.purposes {
                let row = consent_event::ActiveModel {
                    contact_id: Set(contact_id),
                    purpose: Set(purpose.as_str().into()),
                    granted: Set(self.granted),
                    source: Set(self.source.into()),
                    detail: Set(self.detail.clone()),
                    message_ref: Set(self.message_ref.clone()),
                    actor: Set(self.actor.clone()),
                    at: Set(self.at),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                recorded.push(row);
            }
            append(
                txn,
                &AuditRecord {
                    actor: self.actor.clone(),
                    action: if self.granted {
                        "consent.opted_in"
                    } else {
                        "consent.opted_out"
                    }
                    .into(),
                    subject: Some(format!("contact:{contact_id}")),
                    data: serde_json::json!({
                        "purposes": self.purposes,
                        "source": self.source,
                        "detail": self.detail,
                    }),
                    at: self.at,
                },
            )
            .await?;
            Ok(Ok(recorded))
        })
    }
}

/// A contact's consent for one purpose now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentState {
    pub purpose: Purpose,
    pub granted: bool,
    /// The entry that decided it; `None`: nobody said either way (the purpose's default).
    pub decided_by: Option<consent_event::Model>,
}

impl Store {
    /// The contact's ledger, newest first.
    pub async fn consent_history(
        &self,
        contact_id: i64,
    ) -> Result<Vec<consent_event::Model>, StoreError> {
        Ok(consent_event::Entity::find()
            .filter(consent_event::Column::ContactId.eq(contact_id))
            .order_by_desc(consent_event::Column::Id)
            .all(self.db())
            .await?)
    }

    /// A page of the contact's consent changes, newest first, before change `before`.
    pub async fn consent_history_page(
        &self,
        contact_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<consent_event::Model>, StoreError> {
        let mut query = consent_event::Entity::find()
            .filter(consent_event::Column::ContactId.eq(contact_id))
            .order_by_desc(consent_event::Column::Id)
            .limit(limit);
        if let Some(before) = before {
            query = query.filter(consent_event::Column::Id.lt(before));
        }
        Ok(query.all(self.db()).await?)
    }

    /// The contact's consent per purpose, as the send-time check sees it.
    pub async fn consent_of(&self, contact_id: i64) -> Result<Vec<ConsentState>, StoreError> {
        let history = self.consent_history(contact_id).await?;
        Ok(Purpose::ALL
            .into_iter()
            .map(|purpose| {
                let decided_by = history
                    .iter()
                    .find(|e| e.purpose == purpose.as_str())
                    .cloned();
                ConsentState {
                    purpose,
                    granted: decided_by
                        .as_ref()
                        .map_or(purpose.granted_by_default(), |e| e.granted),
                    decided_by,
                }
            })
            .collect())
    }

    /// Whether the contact may be sent a message for `purpose` now: the newest entry for
    /// that purpose, else its default.
    pub async fn may_send(&self, contact_id: i64, purpose: Purpose) -> Result<bool, StoreError> {
        let newest = consent_event::Entity::find()
            .filter(consent_event::Column::ContactId.eq(contact_id))
            .filter(consent_event::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(consent_event::Column::Id)
            .one(self.db())
            .await?;
        Ok(newest.map_or(purpose.granted_by_default(), |e| e.granted))
    }
}
