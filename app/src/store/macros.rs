//! Macros as stored: written by supervisors and admins (audited in the same
//! transaction), read by everyone who replies. Their usage is counted by the conversation
//! change that applied them (see [`super::conversations::ConversationChange::macro_used`]),
//! so a count never runs ahead of or behind what was sent.

use super::audit::{AuditRecord, append};
use super::entities::macro_entry;
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use futures::future::BoxFuture;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

/// A macro's content, checked by the caller.
#[derive(Debug, Clone)]
pub struct MacroContent {
    pub name: String,
    pub team_id: Option<i64>,
    pub body: String,
    /// JSON list of variants.
    pub variants: String,
    /// JSON of the actions.
    pub actions: String,
}

fn audit(action: &str, m: &macro_entry::Model, by: &str, at: Micros) -> AuditRecord {
    AuditRecord {
        actor: by.to_owned(),
        action: action.into(),
        subject: Some(format!("macro:{}", m.id)),
        data: serde_json::json!({ "name": m.name, "team_id": m.team_id }),
        at,
    }
}

pub struct CreateMacro {
    pub content: MacroContent,
    pub by: String,
    pub now: Micros,
}

impl WriteOp for CreateMacro {
    type Output = macro_entry::Model;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<macro_entry::Model, DbErr>> {
        Box::pin(async move {
            let c = &self.content;
            let created = macro_entry::ActiveModel {
                name: Set(c.name.clone()),
                team_id: Set(c.team_id),
                body: Set(c.body.clone()),
                variants: Set(c.variants.clone()),
                actions: Set(c.actions.clone()),
                usage_count: Set(0),
                last_used_at: Set(None),
                created_by: Set(self.by.clone()),
                created_at: Set(self.now),
                updated_at: Set(self.now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            append(txn, &audit("macro.created", &created, &self.by, self.now)).await?;
            Ok(created)
        })
    }
}

/// Replaces a macro's content; `None` when there is no such macro.
pub struct UpdateMacro {
    pub id: i64,
    pub content: MacroContent,
    pub by: String,
    pub now: Micros,
}

impl WriteOp for UpdateMacro {
    type Output = Option<macro_entry::Model>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let Some(found) = macro_entry::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(None);
            };
            let c = &self.content;
            let mut active = found.into_active_model();
            active.name = Set(c.name.clone());
            active.team_id = Set(c.team_id);
            active.body = Set(c.body.clone());
            active.variants = Set(c.variants.clone());
            active.actions = Set(c.actions.clone());
            active.updated_at = Set(self.now);
            let updated = active.update(txn).await?;
            append(txn, &audit("macro.updated", &updated, &self.by, self.now)).await?;
            Ok(Some(updated))
        })
    }
}

/// Removes a macro; `false` when there was none.
pub struct DeleteMacro {
    pub id: i64,
    pub by: String,
    pub now: Micros,
}

impl WriteOp for DeleteMacro {
    type Output = bool;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<bool, DbErr>> {
        Box::pin(async move {
            let Some(found) = macro_entry::Entity::find_by_id(self.id).one(txn).await? else {
                return Ok(false);
            };
            macro_entry::Entity::delete_by_id(self.id).exec(txn).await?;
            append(txn, &audit("macro.deleted", &found, &self.by, self.now)).await?;
            Ok(true)
        })
    }
}

/// Counts one use of macro `id` at `at`, inside the change that applied it.
pub(super) async fn count_use(txn: &DatabaseTransaction, id: i64, at: Micros) -> Result<(), DbErr> {
    macro_entry::Entity::update_many()
        .col_expr(
            macro_entry::Column::UsageCount,
            Expr::col(macro_entry::Column::UsageCount).add(1),
        )
        .col_expr(macro_entry::Column::LastUsedAt, Expr::value(at))
        .filter(macro_entry::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

impl Store {
    pub async fn macro_entry(&self, id: i64) -> Result<Option<macro_entry::Model>, StoreError> {
        Ok(macro_entry::Entity::find_by_id(id).one(self.db()).await?)
    }

    /// The macros a team may use (its own and everyone's), or all of them without a team.
    pub async fn macros(
        &self,
        team_id: Option<i64>,
    ) -> Result<Vec<macro_entry::Model>, StoreError> {
        let mut query = macro_entry::Entity::find();
        if let Some(team) = team_id {
            query = query.filter(
                Condition::any()
                    .add(macro_entry::Column::TeamId.eq(team))
                    .add(macro_entry::Column::TeamId.is_null()),
            );
        }
        Ok(query
            .order_by_asc(macro_entry::Column::Name)
            .order_by_asc(macro_entry::Column::Id)
            .all(self.db())
            .await?)
    }
}
