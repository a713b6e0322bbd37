use sea_orm::entity::prelude::*;

/// One version of one language variant of a message template.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "templates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub language: String,
    pub version: i32,
    pub category: String,
    pub body: String,
    /// JSON: the typed variables in placeholder order.
    pub variables: String,
    /// `draft`, `submitted`, `approved`, `rejected` or `paused`.
    pub status: String,
    pub review_note: Option<String>,
    /// Meta's status (`pending`, `approved`, `rejected`, `paused`, `disabled`...).
    pub meta_status: Option<String>,
    pub meta_template_id: Option<String>,
    pub meta_reason: Option<String>,
    pub created_by: String,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub meta_updated_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
