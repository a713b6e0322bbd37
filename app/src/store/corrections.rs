//! Tag corrections as labelled examples: each `tags_corrected` event with the customer
//! message it labels (the case's latest before the correction), in the JSONL shape
//! `parley triage eval` reads.

use super::{Store, StoreError};
use crate::store::entities::{conversation_event, message};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;

/// One labelled example: a line of `parley triage export-corrections`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelledCorrection {
    /// `correction:<event id>`.
    pub id: String,
    pub text: String,
    pub intents: Vec<String>,
    pub risk: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The event kind (see `conversation::corrections`; the store may not name that module).
const TAGS_CORRECTED: &str = "tags_corrected";

impl Store {
    /// Up to `limit` tag corrections logged after event `after`, oldest first, with the
    /// id of the last event looked at. Corrections whose message has no text left (a
    /// media message, or erased) are skipped.
    pub async fn tag_corrections(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<(Vec<LabelledCorrection>, Option<i64>), StoreError> {
        let db = self.db();
        let events = conversation_event::Entity::find()
            .filter(conversation_event::Column::Kind.eq(TAGS_CORRECTED))
            .filter(conversation_event::Column::Id.gt(after))
            .order_by_asc(conversation_event::Column::Id)
            .limit(limit)
            .all(db)
            .await?;
        let last = events.last().map(|e| e.id);
        let mut examples = Vec::with_capacity(events.len());
        for event in events {
            let labelled = message::Entity::find()
                .filter(message::Column::ConversationId.eq(event.conversation_id))
                .filter(message::Column::Direction.eq("inbound"))
                .filter(message::Column::CreatedAt.lte(event.created_at))
                .filter(message::Column::Text.is_not_null())
                .order_by_desc(message::Column::Id)
                .one(db)
                .await?;
            let Some(text) = labelled
                .and_then(|m| m.text)
                .filter(|t| !t.trim().is_empty())
            else {
                continue;
            };
            let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
            let list = |key: &str| -> Vec<String> {
                data[key]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            examples.push(LabelledCorrection {
                id: format!("correction:{}", event.id),
                text,
                intents: list("intents"),
                risk: list("risks"),
                language: data["language"]
                    .as_str()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            });
        }
        Ok((examples, last))
    }
}
