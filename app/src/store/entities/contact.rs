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
    /// The CRM plugin's profile of the customer (JSON); `None` when it was never asked
    /// or did not know them.
    pub crm_profile: Option<String>,
    /// When the CRM was last asked about this contact.
    pub crm_fetched_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
