use sea_orm::entity::prelude::*;

/// A macro (canned response); `team_id` `None` is everyone's.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "macros")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub team_id: Option<i64>,
    pub body: String,
    /// JSON list of `{language, body}`.
    pub variants: String,
    /// JSON of [`crate::domain::macros::Actions`].
    pub actions: String,
    pub usage_count: i64,
    pub last_used_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
