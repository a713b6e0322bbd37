//! GraphQL for search: `searchConversations`, full text over messages, notes and contact
//! names with filters on the case, ranked, with highlighted snippets (see
//! [`crate::store::search`] for the index and [`crate::domain::text`] for how text is
//! read). Whoever may read conversations may search them; auditors may not.

use super::types::{Conversation, ConversationStatus, PageInfo, Priority, id_of, page_size};
use super::{api, principal};
use crate::domain::Permission;
use crate::domain::text::query_terms;
use crate::error::{ApiError, ErrorCode};
use crate::sla::ledger::SlaLedger;
use crate::store::entities::conversation;
use crate::store::search::{
    KIND_CONTACT, KIND_NOTE, MAX_QUERY_TERMS, SearchCursor, SearchFilter as StoreFilter,
};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

/// A case's SLA in a search filter.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SlaState {
    /// A target breached.
    Breached,
    /// The clock is paused.
    Paused,
    /// Neither breached nor paused.
    OnTrack,
}

/// Which cases a search looks at; every field given must hold (a list holds when any of
/// its values does).
#[derive(InputObject, Default)]
pub struct SearchFilter {
    pub status: Option<Vec<ConversationStatus>>,
    pub priority: Option<Vec<Priority>>,
    /// Urgency levels as the taxonomy names them (`immediate`, `priority`, ...).
    pub urgency: Option<Vec<String>>,
    /// Cases tagged with any of these intents.
    pub intents: Option<Vec<String>>,
    /// Cases tagged with any of these risks.
    pub risks: Option<Vec<String>>,
    /// ISO 639-1 codes of the latest customer message's language.
    pub language: Option<Vec<String>>,
    pub team_id: Option<ID>,
    pub assignee_id: Option<ID>,
    pub channel_id: Option<String>,
    pub sla: Option<SlaState>,
    /// Cases with activity at or after this instant.
    pub active_from: Option<DateTime<Utc>>,
    /// Cases opened before this instant.
    pub opened_before: Option<DateTime<Utc>>,
}

/// Where a case's best match is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SearchMatchKind {
    Message,
    Note,
    ContactName,
}

/// One case found.
#[derive(SimpleObject)]
pub struct SearchHit {
    pub conversation: Conversation,
    /// Higher is better: occurrences of the query's words in the case's matching
    /// messages and notes, those in the contact's name counting three times.
    pub score: i32,
    pub matched: SearchMatchKind,
    /// The message, note or contact the snippet comes from.
    pub matched_id: ID,
    /// The best match, HTML-escaped, with the query's words in `<mark>`: safe to put in
    /// a page as HTML.
    pub snippet: String,
}

#[derive(SimpleObject)]
pub struct SearchEdge {
    pub cursor: String,
    pub node: SearchHit,
}

#[derive(SimpleObject)]
pub struct SearchConnection {
    pub edges: Vec<SearchEdge>,
    pub page_info: PageInfo,
    /// The words searched for, as Parley normalised them (lowercase, accents and Arabic
    /// letter forms folded).
    pub terms: Vec<String>,
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Cases whose messages, notes or contact name hold every word of `query`, best
    /// first. Words are matched whole, after folding case, accents and Arabic letter
    /// forms, in any language.
    #[graphql(
        complexity = "super::types::page_cost(first, child_complexity, super::types::COMPUTE_COST)"
    )]
    async fn search_conversations(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(chars_max_length = 200))] query: String,
        filter: Option<SearchFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SearchConnection> {
        principal(ctx)?.require(Permission::ReadConversations)?;
        let limit = page_size(ctx, first)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let terms = query_terms(&query);
        if terms.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "the query has no word to search for",
            )
            .into());
        }
        if terms.len() > MAX_QUERY_TERMS {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                format!("a query has at most {MAX_QUERY_TERMS} words"),
            )
            .into());
        }
        let filter = store_filter(filter.unwrap_or_default())?;
        let mut hits = api(ctx)
            .store
            .search_conversations(&terms, &filter, after, limit as usize + 1)
            .await
            .map_err(ApiError::internal)?;
        let has_next_page = hits.len() as u64 > limit;
        hits.truncate(limit as usize);
        let edges: Vec<SearchEdge> = hits
            .into_iter()
            .map(|hit| SearchEdge {
                cursor: encode_cursor(hit.cursor()),
                node: SearchHit {
                    score: i32::try_from(hit.score).unwrap_or(i32::MAX),
                    matched: match hit.matched_kind.as_str() {
                        KIND_CONTACT => SearchMatchKind::ContactName,
                        KIND_NOTE => SearchMatchKind::Note,
                        _ => SearchMatchKind::Message,
                    },
                    matched_id: ID(hit.matched_id.to_string()),
                    snippet: hit.snippet,
                    conversation: Conversation(hit.conversation),
                },
            })
            .collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone());
        Ok(SearchConnection {
            edges,
            page_info: PageInfo {
                has_next_page,
                end_cursor,
            },
            terms,
        })
    }
}

fn store_filter(filter: SearchFilter) -> Result<StoreFilter, ApiError> {
    let trimmed = |list: Option<Vec<String>>| -> Vec<String> {
        list.unwrap_or_default()
            .into_iter()
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
            .collect()
    };
    Ok(StoreFilter {
        statuses: filter
            .status
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        priorities: filter
            .priority
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                match p {
                    Priority::Low => "low",
                    Priority::Medium => "medium",
                    Priority::High => "high",
                    Priority::Urgent => "urgent",
                }
                .to_owned()
            })
            .collect(),
        urgencies: trimmed(filter.urgency),
        languages: trimmed(filter.language),
        intents: trimmed(filter.intents),
        risks: trimmed(filter.risks),
        team_id: filter
            .team_id
            .as_ref()
            .map(|id| id_of(id, "team"))
            .transpose()?,
        assignee_id: filter
            .assignee_id
            .as_ref()
            .map(|id| id_of(id, "agent"))
            .transpose()?,
        channel_id: filter.channel_id,
        sla: filter.sla.map(|want| match want {
            SlaState::Breached => sla_breached as fn(&conversation::Model) -> bool,
            SlaState::Paused => sla_paused,
            SlaState::OnTrack => sla_on_track,
        }),
        active_from: filter.active_from.map(|t| t.timestamp_micros()),
        opened_before: filter.opened_before.map(|t| t.timestamp_micros()),
    })
}

fn sla_state(case: &conversation::Model) -> SlaState {
    let ledger = SlaLedger::from_json(case.sla.as_deref());
    if ledger.breached() {
        SlaState::Breached
    } else if ledger.paused() {
        SlaState::Paused
    } else {
        SlaState::OnTrack
    }
}

fn sla_breached(case: &conversation::Model) -> bool {
    sla_state(case) == SlaState::Breached
}

fn sla_paused(case: &conversation::Model) -> bool {
    sla_state(case) == SlaState::Paused
}

fn sla_on_track(case: &conversation::Model) -> bool {
    sla_state(case) == SlaState::OnTrack
}

fn encode_cursor(c: SearchCursor) -> String {
    super::cursor::encode_parts("s", &[c.score, c.last_activity_at, c.id])
}

fn decode_cursor(s: &str) -> Result<SearchCursor, ApiError> {
    let [score, last_activity_at, id] = super::cursor::decode_parts::<3>("s", s)?;
    Ok(SearchCursor {
        score,
        last_activity_at,
        id,
    })
}
