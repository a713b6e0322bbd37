use sea_orm::entity::prelude::*;

/// One message the noise filter kept away from the human queues, and why.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "suppressions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub channel_id: String,
    pub wa_id: String,
    pub provider_message_id: Option<String>,
    /// The case the message was attached to, when it was kept on one.
    pub conversation_id: Option<i64>,
    pub message_id: Option<i64>,
    pub cluster_id: Option<i64>,
    /// blocked_contact, rate_limited, spam, duplicate_cluster, ack_after_resolution, rule.
    pub reason: String,
    pub detail: Option<String>,
    /// The start of the text, for trust and safety review.
    pub excerpt: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
