use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub wa_id: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Blocked contacts are dropped at intake (recorded, never processed).
    pub blocked_at: Option<i64>,
    pub blocked_reason: Option<String>,
    pub vip: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
