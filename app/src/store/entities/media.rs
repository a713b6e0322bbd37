use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub message_id: Option<i64>,
    pub direction: String,
    pub channel_id: String,
    pub kind: String,
    pub mime_type: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    pub expected_sha256: Option<String>,
    pub file_name: Option<String>,
    pub caption: Option<String>,
    pub provider_media_id: Option<String>,
    pub blob_key: Option<String>,
    pub state: String,
    pub failure_reason: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
