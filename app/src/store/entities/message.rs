use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    pub channel_id: String,
    pub direction: String,
    pub kind: String,
    pub text: Option<String>,
    pub content: Option<String>,
    pub provider_message_id: Option<String>,
    pub delivery_status: Option<String>,
    pub error_code: Option<String>,
    pub error_title: Option<String>,
    pub reply_to: Option<String>,
    pub author_agent_id: Option<i64>,
    pub provider_sent_at: Option<i64>,
    pub received_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
