use sea_orm::entity::prelude::*;

/// One opt-in or opt-out of a contact for a purpose; the newest entry per purpose is the
/// contact's current consent.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "consent_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub contact_id: i64,
    /// `service`, `marketing` or `surveys`.
    pub purpose: String,
    pub granted: bool,
    /// `keyword` (the customer wrote STOP/START), `agent` (recorded by a person), `api`.
    pub source: String,
    /// The keyword or the note given.
    pub detail: Option<String>,
    /// `channel:provider message id` of the keyword message: a redelivered message is
    /// recorded once.
    pub message_ref: Option<String>,
    pub actor: String,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
