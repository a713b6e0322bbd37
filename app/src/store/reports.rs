//! Storage of the reporting projection (`report_checkpoints`, `report_cases`,
//! `report_rollups`): the events still to fold, the per-case state of the fold, the batch
//! that adds a fold's output and moves the checkpoint in one transaction, and the grouped
//! reads that answer reports. The fold itself lives in `reports`.

use super::entities::conversation_event;
use super::{Store, StoreError, WriteOp};
use crate::domain::Micros;
use futures::future::BoxFuture;
use parley_migrations::m0011_reports::BUCKETS;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QueryResult, QuerySelect, Statement, Value,
};
use std::collections::BTreeMap;

/// The checkpoint's name (one projection today; room for more).
pub const PROJECTION: &str = "reports";

/// Rollup rows per INSERT statement (54 parameters each: below both databases' limits).
const ROWS_PER_STATEMENT: usize = 200;

/// Where a rollup cell lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub metric: String,
    pub dim: String,
    pub value: String,
    /// The start of the local hour, as an instant.
    pub hour: Micros,
}

/// Counts, a sum and a histogram; cells merge by adding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupCell {
    pub count: i64,
    pub total: i64,
    pub histogram: [i64; BUCKETS],
}

impl Default for RollupCell {
    fn default() -> Self {
        Self {
            count: 0,
            total: 0,
            histogram: [0; BUCKETS],
        }
    }
}

impl RollupCell {
    pub fn merge(&mut self, other: &RollupCell) {
        self.count += other.count;
        self.total += other.total;
        for (a, b) in self.histogram.iter_mut().zip(other.histogram.iter()) {
            *a += b;
        }
    }
}

/// A case's fold state as stored, with the columns drill-downs read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    pub conversation_id: i64,
    pub created_at: Micros,
    pub resolved_at: Option<Micros>,
    pub agent_id: Option<i64>,
    pub team_id: Option<i64>,
    /// The fold's state, JSON.
    pub state: String,
}

/// One fold step's output: written with the checkpoint move, or not at all.
pub struct ApplyReportBatch {
    /// The checkpoint the fold started from; the batch fails if it moved meanwhile.
    pub from_event_id: i64,
    pub to_event_id: i64,
    pub cases: Vec<CaseRow>,
    pub cells: Vec<(CellKey, RollupCell)>,
    pub now: Micros,
}

fn placeholders(backend: DbBackend, next: &mut usize, n: usize) -> String {
    let marks: Vec<String> = (0..n)
        .map(|_| {
            *next += 1;
            match backend {
                DbBackend::Postgres => format!("${next}"),
                _ => "?".to_string(),
            }
        })
        .collect();
    format!("({})", marks.join(","))
}

fn bucket_columns() -> Vec<String> {
    (0..BUCKETS).map(|b| format!("h{b}")).collect()
}

async fn add_cells(
    txn: &DatabaseTransaction,
    cells: &[(CellKey, RollupCell)],
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let buckets = bucket_columns();
    let mut columns = vec!["hour", "metric", "dim", "value", "count", "total"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    columns.extend(buckets.iter().cloned());
    let updates = columns[4..]
        .iter()
        .map(|c| format!("{c} = report_rollups.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    for chunk in cells.chunks(ROWS_PER_STATEMENT) {
        let mut next = 0;
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * columns.len());
        for (key, cell) in chunk {
            rows.push(placeholders(backend, &mut next, columns.len()));
            values.push(key.hour.into());
            values.push(key.metric.clone().into());
            values.push(key.dim.clone().into());
            values.push(key.value.clone().into());
            values.push(cell.count.into());
            values.push(cell.total.into());
            values.extend(cell.histogram.iter().map(|&h| Value::from(h)));
        }
        let sql = format!(
            "INSERT INTO report_rollups ({}) VALUES {} ON CONFLICT (metric, dim, hour, value) DO UPDATE SET {updates}",
            columns.join(", "),
            rows.join(", ")
        );
        txn.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

async fn put_cases(txn: &DatabaseTransaction, cases: &[CaseRow]) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    for chunk in cases.chunks(ROWS_PER_STATEMENT) {
        let mut next = 0;
        let mut rows = Vec::with_capacity(chunk.len());
        let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for case in chunk {
            rows.push(placeholders(backend, &mut next, 6));
            values.push(case.conversation_id.into());
            values.push(case.created_at.into());
            values.push(case.resolved_at.into());
            values.push(case.agent_id.into());
            values.push(case.team_id.into());
            values.push(case.state.clone().into());
        }
        let sql = format!(
            "INSERT INTO report_cases (conversation_id, created_at, resolved_at, agent_id, team_id, state) VALUES {} \
             ON CONFLICT (conversation_id) DO UPDATE SET created_at = excluded.created_at, \
             resolved_at = excluded.resolved_at, agent_id = excluded.agent_id, \
             team_id = excluded.team_id, state = excluded.state",
            rows.join(", ")
        );
        txn.execute(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

impl WriteOp for ApplyReportBatch {
    type Output = ();

    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let backend = txn.get_database_backend();
            let mut next = 0;
            let (a, b, c, d) = (
                placeholders(backend, &mut next, 1),
                placeholders(backend, &mut next, 1),
                placeholders(backend, &mut next, 1),
                placeholders(backend, &mut next, 1),
            );
            // The fence: only the fold that started from the stored checkpoint may move it.
            let moved = txn
                .execute(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "UPDATE report_checkpoints SET last_event_id = {a}, updated_at = {b} \
                         WHERE name = {c} AND last_event_id = {d}"
                    ),
                    [
                        self.to_event_id.into(),
                        self.now.into(),
                        PROJECTION.into(),
                        self.from_event_id.into(),
                    ],
                ))
                .await?
                .rows_affected();
            if moved != 1 {
                return Err(DbErr::Custom(format!(
                    "the report checkpoint is no longer at event {}",
                    self.from_event_id
                )));
            }
            put_cases(txn, &self.cases).await?;
            add_cells(txn, &self.cells).await
        })
    }
}

/// Empties the projection and puts its checkpoint before the first event.
struct ResetReports {
    now: Micros,
}

impl WriteOp for ResetReports {
    type Output = ();

    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(async move {
            let backend = txn.get_database_backend();
            for table in ["report_rollups", "report_cases", "report_checkpoints"] {
                txn.execute(Statement::from_string(
                    backend,
                    format!("DELETE FROM {table}"),
                ))
                .await?;
            }
            insert_checkpoint(txn, self.now).await
        })
    }
}

async fn insert_checkpoint(txn: &DatabaseTransaction, now: Micros) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let mut next = 0;
    let marks = placeholders(backend, &mut next, 3);
    txn.execute(Statement::from_sql_and_values(
        backend,
        format!(
            "INSERT INTO report_checkpoints (name, last_event_id, updated_at) VALUES {marks} \
             ON CONFLICT (name) DO NOTHING"
        ),
        [PROJECTION.into(), 0i64.into(), now.into()],
    ))
    .await?;
    Ok(())
}

struct EnsureCheckpoint {
    now: Micros,
}

impl WriteOp for EnsureCheckpoint {
    type Output = ();

    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(insert_checkpoint(txn, self.now))
    }
}

/// Sums of rollup cells, grouped as a query asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellSum {
    pub metric: String,
    /// The dimension value (breakdowns) or empty.
    pub value: String,
    /// The hour (time series) or 0.
    pub hour: Micros,
    pub cell: RollupCell,
}

/// What a rollup read covers.
#[derive(Debug, Clone)]
pub struct RollupQuery {
    pub metrics: Vec<String>,
    /// `all` or one of the dimensions; `values` restricts it (empty: every value).
    pub dim: String,
    pub values: Vec<String>,
    pub from: Micros,
    pub to: Micros,
    pub by_value: bool,
    pub by_hour: bool,
}

fn read_cell(row: &QueryResult, buckets: &[String]) -> Result<RollupCell, DbErr> {
    let mut cell = RollupCell {
        count: row.try_get("", "count")?,
        total: row.try_get("", "total")?,
        ..RollupCell::default()
    };
    for (i, name) in buckets.iter().enumerate() {
        cell.histogram[i] = row.try_get("", name)?;
    }
    Ok(cell)
}

impl Store {
    /// Creates the projection's checkpoint if it is missing.
    pub async fn ensure_report_checkpoint(&self, now: Micros) -> Result<(), StoreError> {
        self.write(EnsureCheckpoint { now }).await
    }

    /// Empties the projection (a rebuild folds the whole log again).
    pub async fn reset_reports(&self, now: Micros) -> Result<(), StoreError> {
        self.write(ResetReports { now }).await
    }

    /// The last event folded into the rollups.
    pub async fn report_checkpoint(&self) -> Result<i64, StoreError> {
        let backend = self.db().get_database_backend();
        let mut next = 0;
        let marks = placeholders(backend, &mut next, 1);
        let row = self
            .db()
            .query_one(Statement::from_sql_and_values(
                backend,
                format!("SELECT last_event_id FROM report_checkpoints WHERE name = {marks}"),
                [PROJECTION.into()],
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get("", "last_event_id")?,
            None => 0,
        })
    }

    /// Events after `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u64,
    ) -> Result<Vec<conversation_event::Model>, StoreError> {
        Ok(conversation_event::Entity::find()
            .filter(conversation_event::Column::Id.gt(after))
            .order_by_asc(conversation_event::Column::Id)
            .limit(limit)
            .all(self.db())
            .await?)
    }

    /// The last event of the log (0 for none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let last: Option<i64> = conversation_event::Entity::find()
            .select_only()
            .column(conversation_event::Column::Id)
            .order_by_desc(conversation_event::Column::Id)
            .limit(1)
            .into_tuple()
            .one(self.db())
            .await?;
        Ok(last.unwrap_or(0))
    }

    /// The fold states of these cases (those the projection has seen).
    pub async fn report_cases(&self, ids: &[i64]) -> Result<BTreeMap<i64, String>, StoreError> {
        let backend = self.db().get_database_backend();
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(500) {
            let mut next = 0;
            let marks = placeholders(backend, &mut next, chunk.len());
            let rows = self
                .db()
                .query_all(Statement::from_sql_and_values(
                    backend,
                    format!(
                        "SELECT conversation_id, state FROM report_cases WHERE conversation_id IN {marks}"
                    ),
                    chunk.iter().map(|&id| Value::from(id)),
                ))
                .await?;
            for row in rows {
                out.insert(
                    row.try_get("", "conversation_id")?,
                    row.try_get("", "state")?,
                );
            }
        }
        Ok(out)
    }

    /// Rollup cells summed over `[from, to)`, grouped by metric (and value, and hour when
    /// asked).
    pub async fn rollup_sums(&self, q: &RollupQuery) -> Result<Vec<CellSum>, StoreError> {
        let backend = self.db().get_database_backend();
        let buckets = bucket_columns();
        let sums = ["count", "total"]
            .iter()
            .map(|c| c.to_string())
            .chain(buckets.iter().cloned())
            .map(|c| format!("CAST(SUM({c}) AS BIGINT) AS {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut next = 0;
        let metrics = placeholders(backend, &mut next, q.metrics.len().max(1));
        let dim = placeholders(backend, &mut next, 1);
        let (from, to) = (
            placeholders(backend, &mut next, 1),
            placeholders(backend, &mut next, 1),
        );
        let mut values: Vec<Value> = q.metrics.iter().map(|m| m.clone().into()).collect();
        if q.metrics.is_empty() {
            values.push("".into());
        }
        values.push(q.dim.clone().into());
        values.push(q.from.into());
        values.push(q.to.into());
        let mut sql = format!(
            "SELECT metric, {value}, {hour}, {sums} FROM report_rollups \
             WHERE metric IN {metrics} AND dim = {dim} AND hour >= {from} AND hour < {to}",
            value = if q.by_value { "value" } else { "'' AS value" },
            hour = if q.by_hour {
                "hour"
            } else {
                "CAST(0 AS BIGINT) AS hour"
            },
        );
        if !q.values.is_empty() {
            let marks = placeholders(backend, &mut next, q.values.len());
            sql.push_str(&format!(" AND value IN {marks}"));
            values.extend(q.values.iter().map(|v| Value::from(v.clone())));
        }
        sql.push_str(" GROUP BY metric");
        if q.by_value {
            sql.push_str(", value");
        }
        if q.by_hour {
            sql.push_str(", hour");
        }
        let rows = self
            .db()
            .query_all(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(CellSum {
                    metric: row.try_get("", "metric")?,
                    value: row.try_get("", "value")?,
                    hour: row.try_get("", "hour")?,
                    cell: read_cell(row, &buckets)?,
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()
            .map_err(StoreError::from)
    }
}
