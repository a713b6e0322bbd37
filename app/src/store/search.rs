//! The search index and its queries.
//!
//! Every message and note with text, and every contact's name, has one row in
//! `search_documents`, written in the same transaction as the text itself (so a search
//! is never behind a commit), deleted with it by erasure and retention. Its words are
//! Parley's own ([`crate::domain::text`]); SQLite finds them through FTS5, PostgreSQL
//! through a GIN index on the word array, and every candidate is checked and scored here
//! from its words, so both databases answer a query with the same cases in the same
//! order.
//!
//! A document matches when it holds every word of the query. A case's score adds up its
//! matching documents: each occurrence of a query word counts once in a message or note
//! and [`CONTACT_WEIGHT`] times in the contact's name. Ties go to the most recent activity.

use super::entities::{conversation, message, search_document};
use super::{Store, StoreError};
use crate::domain::text::{index_terms, snippet, term_counts};
use crate::domain::{Micros, TicketStatus};
use sea_orm::{
    ActiveValue::NotSet, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value,
};
use std::collections::HashMap;

/// A word found in a contact's name weighs this many words of a message.
pub const CONTACT_WEIGHT: i64 = 3;
/// Most matching documents a query reads before scoring (newest first); beyond it a
/// query is too broad to rank usefully, and the newest matches are the ones kept.
pub const MAX_CANDIDATES: usize = 10_000;
/// Most words a query may have.
pub const MAX_QUERY_TERMS: usize = 8;
/// Characters of text around the match in a snippet.
pub const SNIPPET_CHARS: usize = 160;

pub const KIND_MESSAGE: &str = "message";
pub const KIND_NOTE: &str = "note";
pub const KIND_CONTACT: &str = "contact";

/// A text to index with the change that writes it.
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub conversation_id: Option<i64>,
    pub contact_id: i64,
    pub kind: &'static str,
    pub source_id: i64,
    pub body: String,
    pub created_at: Micros,
}

impl NewDocument {
    pub fn message(case: &conversation::Model, message: &message::Model) -> Option<Self> {
        Some(Self {
            conversation_id: Some(case.id),
            contact_id: case.contact_id,
            kind: KIND_MESSAGE,
            source_id: message.id,
            body: message.text.clone()?,
            created_at: message.created_at,
        })
    }

    pub fn note(case: &conversation::Model, note_id: i64, body: &str, at: Micros) -> Self {
        Self {
            conversation_id: Some(case.id),
            contact_id: case.contact_id,
            kind: KIND_NOTE,
            source_id: note_id,
            body: body.to_owned(),
            created_at: at,
        }
    }
}

/// Indexes texts (those without a word are skipped).
pub async fn index(txn: &DatabaseTransaction, docs: Vec<NewDocument>) -> Result<(), DbErr> {
    let rows: Vec<search_document::ActiveModel> = docs
        .into_iter()
        .filter_map(|doc| {
            let terms = index_terms(&doc.body);
            (!terms.is_empty()).then(|| search_document::ActiveModel {
                id: NotSet,
                conversation_id: Set(doc.conversation_id),
                contact_id: Set(doc.contact_id),
                kind: Set(doc.kind.to_owned()),
                source_id: Set(doc.source_id),
                body: Set(doc.body),
                terms: Set(terms),
                created_at: Set(doc.created_at),
            })
        })
        .collect();
    for chunk in rows.chunks(super::inbox::ROWS_PER_STATEMENT) {
        search_document::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Indexes contacts' names as they are now: a name that did not change is left alone, a
/// new one replaces the old.
pub async fn index_contact_names(
    txn: &DatabaseTransaction,
    names: &[(i64, String)],
    at: Micros,
) -> Result<(), DbErr> {
    if names.is_empty() {
        return Ok(());
    }
    let indexed: HashMap<i64, String> = search_document::Entity::find()
        .filter(search_document::Column::Kind.eq(KIND_CONTACT))
        .filter(search_document::Column::ContactId.is_in(names.iter().map(|(id, _)| *id)))
        .all(txn)
        .await?
        .into_iter()
        .map(|d| (d.contact_id, d.body))
        .collect();
    let changed: Vec<&(i64, String)> = names
        .iter()
        .filter(|(id, name)| indexed.get(id) != Some(name))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    search_document::Entity::delete_many()
        .filter(search_document::Column::Kind.eq(KIND_CONTACT))
        .filter(search_document::Column::ContactId.is_in(changed.iter().map(|(id, _)| *id)))
        .exec(txn)
        .await?;
    let mut seen = std::collections::HashSet::new();
    let docs = changed
        .into_iter()
        .rev()
        .filter(|(id, _)| seen.insert(*id))
        .map(|(id, name)| NewDocument {
            conversation_id: None,
            contact_id: *id,
            kind: KIND_CONTACT,
            source_id: *id,
            body: name.clone(),
            created_at: at,
        })
        .collect();
    index(txn, docs).await
}

/// Forgets everything indexed about a contact and their cases (erasure).
pub async fn forget_contact(txn: &DatabaseTransaction, contact_id: i64) -> Result<u64, DbErr> {
    Ok(search_document::Entity::delete_many()
        .filter(search_document::Column::ContactId.eq(contact_id))
        .exec(txn)
        .await?
        .rows_affected)
}

/// Forgets the indexed messages of cases (retention removes their texts).
pub async fn forget_messages_of(
    txn: &DatabaseTransaction,
    cases: sea_orm::sea_query::SelectStatement,
) -> Result<u64, DbErr> {
    Ok(search_document::Entity::delete_many()
        .filter(search_document::Column::Kind.eq(KIND_MESSAGE))
        .filter(search_document::Column::ConversationId.in_subquery(cases))
        .exec(txn)
        .await?
        .rows_affected)
}

/// Which cases a search considers; empty lists and `None` do not filter.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub statuses: Vec<TicketStatus>,
    pub priorities: Vec<String>,
    pub urgencies: Vec<String>,
    pub languages: Vec<String>,
    /// Cases tagged with any of these intents.
    pub intents: Vec<String>,
    /// Cases tagged with any of these risks.
    pub risks: Vec<String>,
    pub team_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub channel_id: Option<String>,
    /// Keeps the cases it answers true for: a reading of the case's SLA ledger, which
    /// the store leaves to the SLA module.
    pub sla: Option<fn(&conversation::Model) -> bool>,
    /// Cases active at or after this instant.
    pub active_from: Option<Micros>,
    /// Cases opened before this instant.
    pub opened_before: Option<Micros>,
}

/// Position in a ranked result list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchCursor {
    pub score: i64,
    pub last_activity_at: Micros,
    pub id: i64,
}

/// One case found.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub conversation: conversation::Model,
    pub score: i64,
    /// Where its best match is: a message, a note or the contact's name.
    pub matched_kind: String,
    pub matched_id: i64,
    /// The best match, HTML-escaped, the query's words in `<mark>`.
    pub snippet: String,
}

impl SearchHit {
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor {
            score: self.score,
            last_activity_at: self.conversation.last_activity_at,
            id: self.conversation.id,
        }
    }
}

/// Orders hits best first: score, then most recent activity, then newest case.
fn rank_key(
    c: &SearchCursor,
) -> (
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<i64>,
    std::cmp::Reverse<i64>,
) {
    use std::cmp::Reverse;
    (Reverse(c.score), Reverse(c.last_activity_at), Reverse(c.id))
}

struct Candidate {
    doc_id: i64,
    kind: String,
    source_id: i64,
    body: String,
    terms: String,
    conversation_id: i64,
}

/// Builds the candidate query: matching documents of cases that pass the filters the
/// database can check, newest document first.
fn candidate_statement(backend: DbBackend, terms: &[String], filter: &SearchFilter) -> Statement {
    let mut values: Vec<Value> = Vec::new();
    let placeholder = |values: &mut Vec<Value>, value: Value| -> String {
        values.push(value);
        match backend {
            DbBackend::Postgres => format!("${}", values.len()),
            _ => "?".to_owned(),
        }
    };
    let half = |join: &str, only_contacts: bool, values: &mut Vec<Value>| -> String {
        let mut sql = format!(
            "SELECT d.id, d.kind, d.source_id, d.body, d.terms, c.id AS conversation_id \
             FROM search_documents d JOIN conversations c ON {join} WHERE "
        );
        sql.push_str(if only_contacts {
            "d.conversation_id IS NULL AND "
        } else {
            "d.conversation_id IS NOT NULL AND "
        });
        match backend {
            DbBackend::Postgres => {
                let list: Vec<String> = terms
                    .iter()
                    .map(|t| placeholder(values, t.clone().into()))
                    .collect();
                sql.push_str(&format!(
                    "string_to_array(d.terms, ' ') @> ARRAY[{}]::text[]",
                    list.join(", ")
                ));
            }
            _ => {
                let query: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
                let p = placeholder(values, query.join(" ").into());
                sql.push_str(&format!(
                    "d.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH {p})"
                ));
            }
        }
        let any_of = |column: &str, list: &[String], values: &mut Vec<Value>, sql: &mut String| {
            if list.is_empty() {
                return;
            }
            let ps: Vec<String> = list
                .iter()
                .map(|v| placeholder(values, v.clone().into()))
                .collect();
            sql.push_str(&format!(" AND c.{column} IN ({})", ps.join(", ")));
        };
        let statuses: Vec<String> = filter
            .statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        any_of("status", &statuses, values, &mut sql);
        any_of("priority", &filter.priorities, values, &mut sql);
        any_of("urgency", &filter.urgencies, values, &mut sql);
        any_of("language", &filter.languages, values, &mut sql);
        if let Some(channel) = &filter.channel_id {
            any_of(
                "channel_id",
                std::slice::from_ref(channel),
                values,
                &mut sql,
            );
        }
        if let Some(team) = filter.team_id {
            let p = placeholder(values, team.into());
            sql.push_str(&format!(" AND c.team_id = {p}"));
        }
        if let Some(agent) = filter.assignee_id {
            let p = placeholder(values, agent.into());
            sql.push_str(&format!(" AND c.assignee_id = {p}"));
        }
        if let Some(from) = filter.active_from {
            let p = placeholder(values, from.into());
            sql.push_str(&format!(" AND c.last_activity_at >= {p}"));
        }
        if let Some(before) = filter.opened_before {
            let p = placeholder(values, before.into());
            sql.push_str(&format!(" AND c.created_at < {p}"));
        }
        sql
    };
    let documents = half("c.id = d.conversation_id", false, &mut values);
    let names = half("c.contact_id = d.contact_id", true, &mut values);
    let sql = format!(
        "SELECT * FROM ({documents} UNION ALL {names}) AS found ORDER BY id DESC LIMIT {MAX_CANDIDATES}"
    );
    Statement::from_sql_and_values(backend, sql, values)
}

/// The intents and risks of a case's latest triage.
pub fn tags_of(case: &conversation::Model) -> (Vec<String>, Vec<String>) {
    let Some(gist) = case
        .triage
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return (Vec::new(), Vec::new());
    };
    let labels = |key: &str| -> Vec<String> {
        gist.get(key)
            .and_then(|v| v.as_array())
            .map(|list| {
                list.iter()
                    .filter_map(|tag| {
                        tag.as_str()
                            .or_else(|| tag.get("label").and_then(|l| l.as_str()))
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    (labels("intents"), labels("risks"))
}

/// Whether a case passes the filters the database did not check (tags, SLA).
fn passes(case: &conversation::Model, filter: &SearchFilter) -> bool {
    if !filter.intents.is_empty() || !filter.risks.is_empty() {
        let (intents, risks) = tags_of(case);
        if !filter.intents.is_empty() && !filter.intents.iter().any(|i| intents.contains(i)) {
            return false;
        }
        if !filter.risks.is_empty() && !filter.risks.iter().any(|r| risks.contains(r)) {
            return false;
        }
    }
    filter.sla.is_none_or(|keep| keep(case))
}

impl Store {
    /// Up to `limit` cases matching every word of `terms` (normalised query words) and
    /// `filter`, best first, after `after`.
    pub async fn search_conversations(
        &self,
        terms: &[String],
        filter: &SearchFilter,
        after: Option<SearchCursor>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, StoreError> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db();
        let statement = candidate_statement(db.get_database_backend(), terms, filter);
        let rows = db.query_all(statement).await?;

        // The best document of each case, and the case's score.
        let mut scored: HashMap<i64, (i64, i64, Candidate)> = HashMap::new();
        for row in rows {
            let candidate = Candidate {
                doc_id: row.try_get("", "id")?,
                kind: row.try_get("", "kind")?,
                source_id: row.try_get("", "source_id")?,
                body: row.try_get("", "body")?,
                terms: row.try_get("", "terms")?,
                conversation_id: row.try_get("", "conversation_id")?,
            };
            // The index found the words; this confirms each one is whole and counts it.
            let Some(counts) = term_counts(&candidate.terms, terms) else {
                continue;
            };
            let weight = if candidate.kind == KIND_CONTACT {
                CONTACT_WEIGHT
            } else {
                1
            };
            let score = weight * counts.iter().map(|n| i64::from(*n)).sum::<i64>();
            let entry = scored.entry(candidate.conversation_id).or_insert((
                0,
                i64::MIN,
                candidate_placeholder(),
            ));
            entry.0 += score;
            let better = score > entry.1 || (score == entry.1 && candidate.doc_id > entry.2.doc_id);
            if better {
                entry.1 = score;
                entry.2 = candidate;
            }
        }
        if scored.is_empty() {
            return Ok(Vec::new());
        }

        let ids: Vec<i64> = scored.keys().copied().collect();
        let mut cases = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::inbox::ROWS_PER_STATEMENT) {
            cases.extend(
                conversation::Entity::find()
                    .filter(conversation::Column::Id.is_in(chunk.iter().copied()))
                    .all(db)
                    .await?,
            );
        }
        let mut hits: Vec<(SearchCursor, conversation::Model)> = cases
            .into_iter()
            .filter(|case| passes(case, filter))
            .filter_map(|case| {
                let (score, _, _) = scored.get(&case.id)?;
                let cursor = SearchCursor {
                    score: *score,
                    last_activity_at: case.last_activity_at,
                    id: case.id,
                };
                Some((cursor, case))
            })
            .filter(|(cursor, _)| after.is_none_or(|a| rank_key(cursor) > rank_key(&a)))
            .collect();
        hits.sort_by_key(|(cursor, _)| rank_key(cursor));
        hits.truncate(limit);
        Ok(hits
            .into_iter()
            .filter_map(|(cursor, case)| {
                let (_, _, best) = scored.remove(&case.id)?;
                Some(SearchHit {
                    snippet: snippet(&best.body, terms, SNIPPET_CHARS),
                    matched_kind: best.kind,
                    matched_id: best.source_id,
                    score: cursor.score,
                    conversation: case,
                })
            })
            .collect())
    }
}

fn candidate_placeholder() -> Candidate {
    Candidate {
        doc_id: i64::MIN,
        kind: String::new(),
        source_id: 0,
        body: String::new(),
        terms: String::new(),
        conversation_id: 0,
    }
}
