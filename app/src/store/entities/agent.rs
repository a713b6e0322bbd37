use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub team_id: Option<i64>,
    pub created_at: i64,
    /// JSON list of skill names.
    pub skills: String,
    /// JSON list of ISO 639-1 codes.
    pub languages: String,
    /// Conversations this agent works at once.
    pub capacity: i32,
    /// online, away or offline.
    pub presence: String,
    pub senior: bool,
    /// When the router last gave this agent a case (0 = never).
    pub last_assigned_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
