//! Read models for the API: keyset-paginated lists (no `COUNT(*)`, no `OFFSET`, so a
//! page costs the same on the millionth conversation as on the first).

use super::entities::{contact, conversation, conversation_event, dead_letter, message, note};
use super::{Store, StoreError};
use crate::domain::{Micros, TicketStatus};
use sea_orm::sea_query::Cond;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// Which conversations a list shows.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub statuses: Vec<TicketStatus>,
    pub assignee_id: Option<i64>,
    pub team_id: Option<i64>,
    pub channel_id: Option<String>,
}

/// Position in the newest-activity-first conversation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub last_activity_at: Micros,
    pub id: i64,
}

impl Store {
    /// Up to `limit` conversations after `after`, newest activity first.
    pub async fn conversations_page(
        &self,
        filter: &ConversationFilter,
        after: Option<ConversationCursor>,
        limit: u64,
    ) -> Result<Vec<conversation::Model>, StoreError> {
        let mut query = conversation::Entity::find();
        if !filter.statuses.is_empty() {
            query = query.filter(
                conversation::Column::Status.is_in(filter.statuses.iter().map(|s| s.as_str())),
            );
        }
        if let Some(id) = filter.assignee_id {
            query = query.filter(conversation::Column::AssigneeId.eq(id));
        }
        if let Some(id) = filter.team_id {
            query = query.filter(conversation::Column::TeamId.eq(id));
        }
        if let Some(channel) = &filter.channel_id {
            query = query.filter(conversation::Column::ChannelId.eq(channel.as_str()));
        }
        if let Some(cursor) = after {
            query = query.filter(
                Cond::any()
                    .add(conversation::Column::LastActivityAt.lt(cursor.last_activity_at))
                    .add(
                        Cond::all()
                            .add(conversation::Column::LastActivityAt.eq(cursor.last_activity_at))
                            .add(conversation::Column::Id.lt(cursor.id)),
                    ),
            );
        }
        Ok(query
            .order_by_desc(conversation::Column::LastActivityAt)
            .order_by_desc(conversation::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    pub async fn conversation(&self, id: i64) -> Result<Option<conversation::Model>, StoreError> {
        Ok(conversation::Entity::find_by_id(id).one(self.db()).await?)
    }

    pub async fn contact(&self, id: i64) -> Result<Option<contact::Model>, StoreError> {
        Ok(contact::Entity::find_by_id(id).one(self.db()).await?)
    }

    pub async fn contact_by_wa_id(
        &self,
        wa_id: &str,
    ) -> Result<Option<contact::Model>, StoreError> {
        Ok(contact::Entity::find()
            .filter(contact::Column::WaId.eq(wa_id))
            .one(self.db())
            .await?)
    }

    /// Messages of a conversation in the order they happened, after message `after`.
    pub async fn messages_page(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<message::Model>, StoreError> {
        let mut query =
            message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
        if let Some(after) = after {
            query = query.filter(message::Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(message::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    pub async fn note(&self, id: i64) -> Result<Option<note::Model>, StoreError> {
        Ok(note::Entity::find_by_id(id).one(self.db()).await?)
    }

    /// A page of a conversation's notes, oldest first, after note `after`.
    pub async fn notes_page(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<note::Model>, StoreError> {
        let mut query = note::Entity::find()
            .filter(note::Column::ConversationId.eq(conversation_id))
            .order_by_asc(note::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(note::Column::Id.gt(after));
        }
        Ok(query.all(self.db()).await?)
    }

    /// A conversation's event log, oldest first, after event `after`.
    pub async fn events_page(
        &self,
        conversation_id: i64,
        after: Option<i64>,
        limit: u64,
    ) -> Result<Vec<conversation_event::Model>, StoreError> {
        let mut query = conversation_event::Entity::find()
            .filter(conversation_event::Column::ConversationId.eq(conversation_id));
        if let Some(after) = after {
            query = query.filter(conversation_event::Column::Id.gt(after));
        }
        Ok(query
            .order_by_asc(conversation_event::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    /// A conversation's latest event of `kind` (served by the conversation/id index).
    pub async fn latest_event(
        &self,
        conversation_id: i64,
        kind: &str,
    ) -> Result<Option<conversation_event::Model>, StoreError> {
        Ok(conversation_event::Entity::find()
            .filter(conversation_event::Column::ConversationId.eq(conversation_id))
            .filter(conversation_event::Column::Kind.eq(kind))
            .order_by_desc(conversation_event::Column::Id)
            .one(self.db())
            .await?)
    }

    /// Dead letters, newest first, before `before`.
    pub async fn dead_letters_page(
        &self,
        before: Option<i64>,
        limit: u64,
    ) -> Result<Vec<dead_letter::Model>, StoreError> {
        let mut query = dead_letter::Entity::find();
        if let Some(before) = before {
            query = query.filter(dead_letter::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(dead_letter::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    /// Counts the stored rows of a table; for tests and operational checks, never on a
    /// request path.
    pub async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        use sea_orm::{ConnectionTrait, Statement};
        if !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(StoreError::Corrupt(format!("not a table name: {table}")));
        }
        // The inbox may be a database of its own.
        let db = if table == "inbox" {
            self.inbox_db()
        } else {
            self.db()
        };
        let row = db
            .query_one(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await?
            .ok_or_else(|| StoreError::Corrupt("COUNT returned no row".into()))?;
        Ok(row.try_get::<i64>("", "n")?)
    }
}
