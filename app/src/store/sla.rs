//! Reads for the case clock: every pending deadline (at start), a case's whole event log
//! (for a replay), and the satisfaction surveys (per case, and counted for reports).

use super::entities::{conversation, conversation_event, csat_response};
use super::{Store, StoreError};
use crate::domain::Micros;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Rows read per query when loading deadlines.
const PAGE: u64 = 50_000;

impl Store {
    /// Every case with a pending SLA alarm, as `(conversation id, due at)`, by id.
    pub async fn sla_deadlines(&self) -> Result<Vec<(i64, Micros)>, StoreError> {
        let mut out = Vec::new();
        let mut after = 0i64;
        loop {
            let page: Vec<(i64, Option<Micros>)> = conversation::Entity::find()
                .select_only()
                .column(conversation::Column::Id)
                .column(conversation::Column::SlaDueAt)
                .filter(conversation::Column::SlaDueAt.is_not_null())
                .filter(conversation::Column::Id.gt(after))
                .order_by_asc(conversation::Column::Id)
                .limit(PAGE)
                .into_tuple()
                .all(self.db())
                .await?;
            let Some(&(last, _)) = page.last() else {
                return Ok(out);
            };
            after = last;
            out.extend(page.into_iter().filter_map(|(id, due)| Some((id, due?))));
        }
    }

    /// A conversation's whole event log, oldest first.
    pub async fn all_events(
        &self,
        conversation_id: i64,
    ) -> Result<Vec<conversation_event::Model>, StoreError> {
        Ok(conversation_event::Entity::find()
            .filter(conversation_event::Column::ConversationId.eq(conversation_id))
            .order_by_asc(conversation_event::Column::Id)
            .all(self.db())
            .await?)
    }
}

/// Which surveys a CSAT summary counts.
#[derive(Debug, Clone, Default)]
pub struct CsatFilter {
    pub team_id: Option<i64>,
    pub agent_id: Option<i64>,
    /// Surveys sent at or after this instant.
    pub since: Option<Micros>,
}

/// Surveys sent and answers by score (index 0 is a score of 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsatCounts {
    pub surveyed: i64,
    pub by_score: [i64; 5],
}

impl Store {
    /// The survey of a case, if it was surveyed.
    pub async fn csat_response(
        &self,
        conversation_id: i64,
    ) -> Result<Option<csat_response::Model>, StoreError> {
        Ok(csat_response::Entity::find()
            .filter(csat_response::Column::ConversationId.eq(conversation_id))
            .one(self.db())
            .await?)
    }

    /// Surveys and scores, counted by the database (one grouped scan of the index).
    pub async fn csat_counts(&self, filter: &CsatFilter) -> Result<CsatCounts, StoreError> {
        use sea_orm::sea_query::Expr;
        let mut query = csat_response::Entity::find()
            .select_only()
            .column(csat_response::Column::Score)
            .column_as(Expr::col(csat_response::Column::Id).count(), "n")
            .group_by(csat_response::Column::Score);
        if let Some(team) = filter.team_id {
            query = query.filter(csat_response::Column::TeamId.eq(team));
        }
        if let Some(agent) = filter.agent_id {
            query = query.filter(csat_response::Column::AgentId.eq(agent));
        }
        if let Some(since) = filter.since {
            query = query.filter(csat_response::Column::SurveyedAt.gte(since));
        }
        let rows: Vec<(Option<i32>, i64)> = query.into_tuple().all(self.db()).await?;
        let mut counts = CsatCounts::default();
        for (score, n) in rows {
            counts.surveyed += n;
            if let Some(score) = score.filter(|s| (1..=5).contains(s)) {
                counts.by_score[score as usize - 1] += n;
            }
        }
        Ok(counts)
    }
}

impl Store {
    /// The data of every `escalated` event since `since` (the kind and time index).
    pub async fn escalations_since(&self, since: Micros) -> Result<Vec<String>, StoreError> {
        Ok(conversation_event::Entity::find()
            .select_only()
            .column(conversation_event::Column::Data)
            .filter(conversation_event::Column::Kind.eq("escalated"))
            .filter(conversation_event::Column::CreatedAt.gte(since))
            .into_tuple()
            .all(self.db())
            .await?)
    }
}
