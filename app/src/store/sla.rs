//! Reads for the SLA clock: every pending deadline (at start) and a case's whole event
//! log (for a replay).

use super::entities::{conversation, conversation_event};
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
