//! Custom fields on contacts: their definitions and each contact's values. The values
//! arrive already checked against their field's type ([`crate::domain::fields`]).

use super::entities::{contact, contact_field, contact_field_value, conversation};
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use crate::domain::fields::FieldKind;
use futures::future::BoxFuture;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// Defines a field, or redefines one of the same type (its label, an enum's options).
pub struct DefineContactField {
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    pub options: Vec<String>,
    pub actor: String,
    pub now: Micros,
}

/// Why a definition was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefineError {
    /// The key is taken by a field of another type (its values would no longer fit).
    KindChanged { existing: String },
}

impl WriteOp for DefineContactField {
    type Output = Result<contact_field::Model, DefineError>;
    fn apply<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
    ) -> BoxFuture<'a, Result<Self::Output, DbErr>> {
        Box::pin(async move {
            let options = (self.kind == FieldKind::Enum)
                .then(|| serde_json::to_string(&self.options).unwrap_or_default());
            let existing = contact_field::Entity::find()
                .filter(contact_field::Column::Key.eq(&self.key))
                .one(txn)
                .await?;
            if let Some(existing) = existing {
                if existing.kind != self.kind.as_str() {
                    return Ok(Err(DefineError::KindChanged {
                        existing: existing.kind,
                    }));
                }
                let mut row: contact_field::ActiveModel = existing.into();
                row.label = Set(self.label.clone());
                row.options = Set(options);
                row.updated_at = Set(self.now);
                return Ok(Ok(sea_orm::ActiveModelTrait::update(row, txn).await?));
            }
            let row = contact_field::ActiveModel {
                id: NotSet,
                key: Set(self.key.clone()),
                label: Set(self.label.clone()),
                kind: Set(self.kind.as_str().to_owned()),
                options: Set(options),
                defined_by: Set(self.actor.clone()),
                created_at: Set(self.now),
                updated_at: Set(self.now),
            };
            Ok(Ok(contact_field::Entity::insert(row)
                .exec_with_returning(txn)
                .await?))
        })
    }
}

/// Sets (or, with `None`, clears) a contact's value of a field.
pub struct SetContactField {
    pub contact_id: i64,
    pub field_id: i64,
    pub value: Option<String>,
    pub actor: String,
    pub now: Micros,
}

impl WriteOp for SetContactField {
    type Output = ();
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            match &self.value {
                None => {
                    contact_field_value::Entity::delete_many()
                        .filter(contact_field_value::Column::ContactId.eq(self.contact_id))
                        .filter(contact_field_value::Column::FieldId.eq(self.field_id))
                        .exec(txn)
                        .await?;
                }
                Some(value) => {
                    contact_field_value::Entity::insert(contact_field_value::ActiveModel {
                        contact_id: Set(self.contact_id),
                        field_id: Set(self.field_id),
                        value: Set(value.clone()),
                        set_by: Set(self.actor.clone()),
                        updated_at: Set(self.now),
                    })
                    .on_conflict(
                        OnConflict::columns([
                            contact_field_value::Column::ContactId,
                            contact_field_value::Column::FieldId,
                        ])
                        .update_columns([
                            contact_field_value::Column::Value,
                            contact_field_value::Column::SetBy,
                            contact_field_value::Column::UpdatedAt,
                        ])
                        .to_owned(),
                    )
                    .exec_without_returning(txn)
                    .await?;
                }
            }
            contact::Entity::update_many()
                .col_expr(
                    contact::Column::UpdatedAt,
                    sea_orm::sea_query::Expr::value(self.now),
                )
                .filter(contact::Column::Id.eq(self.contact_id))
                .exec(txn)
                .await?;
            Ok(())
        })
    }
}

impl Store {
    /// Every custom field, in the order they were defined.
    pub async fn contact_fields(&self) -> Result<Vec<contact_field::Model>, StoreError> {
        Ok(contact_field::Entity::find()
            .order_by_asc(contact_field::Column::Id)
            .all(self.db())
            .await?)
    }

    pub async fn contact_field(
        &self,
        key: &str,
    ) -> Result<Option<contact_field::Model>, StoreError> {
        Ok(contact_field::Entity::find()
            .filter(contact_field::Column::Key.eq(key))
            .one(self.db())
            .await?)
    }

    /// A contact's values, with their fields, in the order the fields were defined.
    pub async fn contact_field_values(
        &self,
        contact_id: i64,
    ) -> Result<Vec<(contact_field::Model, contact_field_value::Model)>, StoreError> {
        let values = contact_field_value::Entity::find()
            .filter(contact_field_value::Column::ContactId.eq(contact_id))
            .all(self.db())
            .await?;
        let fields = self.contact_fields().await?;
        Ok(fields
            .into_iter()
            .filter_map(|field| {
                let value = values.iter().find(|v| v.field_id == field.id)?.clone();
                Some((field, value))
            })
            .collect())
    }

    /// A contact's cases, newest first, before case `before` (served by the
    /// contact/id index).
    pub async fn contact_cases_page(
        &self,
        contact_id: i64,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<conversation::Model>, StoreError> {
        let mut query =
            conversation::Entity::find().filter(conversation::Column::ContactId.eq(contact_id));
        if let Some(before) = before {
            query = query.filter(conversation::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(conversation::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }
}
