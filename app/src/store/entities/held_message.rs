use sea_orm::entity::prelude::*;

/// An outbound message the gate held for a person's approval, and the decision.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "held_messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    pub message_id: i64,
    pub channel_id: String,
    pub recipient: String,
    pub payload: String,
    pub origin: String,
    pub purpose: String,
    pub approver: String,
    pub boundaries: String,
    pub reasons: String,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub original_text: Option<String>,
    pub edited_text: Option<String>,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub decided_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
