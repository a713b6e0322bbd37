use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_statuses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel_id: String,
    pub provider_message_id: String,
    pub status: String,
    pub at: i64,
    pub errors: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
