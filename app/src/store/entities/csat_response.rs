use sea_orm::entity::prelude::*;

/// One satisfaction survey and its answer, against the case, agent and team.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "csat_responses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub conversation_id: i64,
    pub contact_id: i64,
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    pub channel_id: String,
    /// `interactive` (inside the 24-hour window) or `template`.
    pub via: String,
    pub surveyed_at: i64,
    /// 1 to 5, once answered.
    pub score: Option<i32>,
    pub answered_at: Option<i64>,
    pub comment: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
