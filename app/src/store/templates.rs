//! The template registry: versions of each language variant, the internal workflow
//! (draft, submitted, approved, rejected, paused) and the status Meta reports. Every
//! change is written to the audit log with who made it, in the same transaction.

use super::audit::{AuditRecord, append};
use super::entities::template;
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use crate::domain::template::Definition;
use futures::future::BoxFuture;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};

pub const DRAFT: &str = "draft";
pub const SUBMITTED: &str = "submitted";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";
pub const PAUSED: &str = "paused";

/// Why a registry change was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("there is no template {0}")]
    NotFound(i64),
    #[error("template {id} is {status}; it cannot be {action}")]
    InvalidTransition {
        id: i64,
        status: String,
        action: &'static str,
    },
}

fn subject(t: &template::Model) -> String {
    format!("template:{}/{}/v{}", t.name, t.language, t.version)
}

/// A new version of a template's language variant, as a draft.
pub struct CreateTemplate {
    pub definition: Definition,
    pub by: String,
    pub now: Micros,
}

impl WriteOp for CreateTemplate {
    type Output = template::Model;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<template::Model, DbErr>> {
        Box::pin(async move {
            let d = &self.definition;
            let latest = template::Entity::find()
                .filter(template::Column::Name.eq(&d.name))
                .filter(template::Column::Language.eq(&d.language))
                .order_by_desc(template::Column::Version)
                .one(txn)
                .await?;
            let created = template::ActiveModel {
                name: Set(d.name.clone()),
                language: Set(d.language.clone()),
                version: Set(latest.map_or(1, |t| t.version + 1)),
                category: Set(d.category.clone()),
                body: Set(d.body.clone()),
                variables: Set(serde_json::json!(d.variables).to_string()),
                status: Set(DRAFT.into()),
                created_by: Set(self.by.clone()),
                updated_by: Set(self.by.clone()),
                created_at: Set(self.now),
                updated_at: Set(self.now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            append(
                txn,
                &AuditRecord {
                    actor: self.by.clone(),
                    action: "template.created".into(),
                    subject: Some(subject(&created)),
                    data: serde_json::json!({
                        "category": created.category,
                        "variables": d.variables,
                    }),
                    at: self.now,
                },
            )
            .await?;
            Ok(created)
        })
    }
}

/// One step of the internal workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateAction {
    Submit,
    Approve,
    Reject,
    Pause,
}

impl TemplateAction {
    fn transition(self) -> (&'static [&'static str], &'static str, &'static str) {
        match self {
            Self::Submit => (&[DRAFT, REJECTED], SUBMITTED, "submitted"),
            Self::Approve => (&[SUBMITTED, PAUSED], APPROVED, "approved"),
            Self::Reject => (&[SUBMITTED], REJECTED, "rejected"),
            Self::Pause => (&[APPROVED], PAUSED, "paused"),
        }
    }
}

pub struct TransitionTemplate {
    pub id: i64,
    pub action: TemplateAction,
    pub note: Option<String>,
    pub by: String,
    pub now: Micros,
}

impl WriteOp for TransitionTemplate {
    type Output = Result<template::Model, RegistryError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let Some(found) = template::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(Err(RegistryError::NotFound(self.id)));
            };
            let (from, to, action) = self.action.transition();
            if !from.contains(&found.status.as_str()) {
                return Ok(Err(RegistryError::InvalidTransition {
                    id: found.id,
                    status: found.status,
                    action,
                }));
            }
            let previous = found.status.clone();
            let mut active = found.into_active_model();
            active.status = Set(to.into());
            active.review_note = Set(self.note.clone());
            active.updated_by = Set(self.by.clone());
            active.updated_at = Set(self.now);
            let updated = active.update(txn).await?;
            append(
                txn,
                &AuditRecord {
                    actor: self.by.clone(),
                    action: format!("template.{action}"),
                    subject: Some(subject(&updated)),
                    data: serde_json::json!({ "from": previous, "note": self.note }),
                    at: self.now,
                },
            )
            .await?;
            Ok(Ok(updated))
        })
    }
}

/// Meta's `message_template_status_update` for a template: applied to the newest version
/// of that name and language (the one Meta reviewed), recorded in the audit log. A
/// template Parley does not know is recorded there too.
pub struct RecordMetaTemplateStatus {
    pub name: String,
    pub language: String,
    pub event: String,
    pub meta_template_id: Option<String>,
    pub reason: Option<String>,
    pub now: Micros,
}

impl WriteOp for RecordMetaTemplateStatus {
    type Output = Option<template::Model>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let latest = template::Entity::find()
                .filter(template::Column::Name.eq(&self.name))
                .filter(template::Column::Language.eq(&self.language))
                .order_by_desc(template::Column::Version)
                .one(txn)
                .await?;
            let status = self.event.to_lowercase();
            let updated = match latest {
                Some(found) => {
                    let mut active = found.into_active_model();
                    active.meta_status = Set(Some(status.clone()));
                    if self.meta_template_id.is_some() {
                        active.meta_template_id = Set(self.meta_template_id.clone());
                    }
                    active.meta_reason = Set(self.reason.clone());
                    active.meta_updated_at = Set(Some(self.now));
                    Some(active.update(txn).await?)
                }
                None => None,
            };
            append(
                txn,
                &AuditRecord {
                    actor: "meta".into(),
                    action: "template.meta_status".into(),
                    subject: Some(updated.as_ref().map_or_else(
                        || format!("template:{}/{}", self.name, self.language),
                        subject,
                    )),
                    data: serde_json::json!({
                        "status": status,
                        "meta_template_id": self.meta_template_id,
                        "reason": self.reason,
                        "known": updated.is_some(),
                    }),
                    at: self.now,
                },
            )
            .await?;
            Ok(updated)
        })
    }
}

impl Store {
    /// Every version of every template (optionally of one name), newest first.
    pub async fn templates(&self, name: Option<&str>) -> Result<Vec<template::Model>, StoreError> {
        let mut query = template::Entity::find()
            .order_by_asc(template::Column::Name)
            .order_by_asc(template::Column::Language)
            .order_by_desc(template::Column::Version);
        if let Some(name) = name {
            query = query.filter(template::Column::Name.eq(name));
        }
        Ok(query.all(self.db()).await?)
    }

    /// The newest version of `name` that may be sent (approved inside and by Meta), per
    /// language.
    pub async fn sendable_templates(&self, name: &str) -> Result<Vec<template::Model>, StoreError> {
        let all = template::Entity::find()
            .filter(template::Column::Name.eq(name))
            .filter(template::Column::Status.eq(APPROVED))
            .filter(template::Column::MetaStatus.eq(APPROVED))
            .order_by_desc(template::Column::Version)
            .all(self.db())
            .await?;
        let mut newest: Vec<template::Model> = Vec::new();
        for t in all {
            if !newest.iter().any(|n| n.language == t.language) {
                newest.push(t);
            }
        }
        Ok(newest)
    }
}
