//! Checks that every acknowledged webhook was processed, exactly once.
//!
//! After the load, the generator polls Parley's database until each acknowledged inbound
//! message has its row in `messages` and each acknowledged status callback its row in
//! `message_statuses`, or until the timeout. Rows are matched on the run's wamid prefix,
//! so several runs can share one database. A key with more than one row is a duplicate.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio::time::Instant;

use crate::payload::ExpectedRecord;

/// Pause between two polls of the database.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Missing keys listed in the report, at most.
const SAMPLE_MISSING: usize = 10;

/// The outcome of a verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub expected_messages: u64,
    pub found_messages: u64,
    pub missing_messages: u64,
    /// Message keys with more than one row.
    pub duplicate_messages: u64,
    /// Rows found for this run whose direction is not `inbound`.
    pub wrong_direction_messages: u64,
    pub expected_statuses: u64,
    pub found_statuses: u64,
    pub missing_statuses: u64,
    /// Status keys with more than one row.
    pub duplicate_statuses: u64,
    /// Rows of this run for requests that were not acknowledged (timed out, for example):
    /// allowed, since the server may commit a request whose answer never arrived.
    pub unacknowledged_rows: u64,
    /// Seconds from the end of the load until everything was found (or the timeout).
    pub waited_seconds: f64,
    pub sample_missing: Vec<String>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.missing_messages == 0
            && self.missing_statuses == 0
            && self.duplicate_messages == 0
            && self.duplicate_statuses == 0
            && self.wrong_direction_messages == 0
    }
}

/// What the acknowledged requests must have produced.
#[derive(Debug, Default)]
pub struct Expected {
    pub messages: HashSet<String>,
    /// `(wamid, status)`.
    pub statuses: HashSet<(String, String)>,
}

impl Expected {
    pub fn from_records<'a>(records: impl IntoIterator<Item = &'a ExpectedRecord>) -> Expected {
        let mut expected = Expected::default();
        for record in records {
            match record {
                ExpectedRecord::Message { wamid } => {
                    expected.messages.insert(wamid.clone());
                }
                ExpectedRecord::Status { wamid, status } => {
                    expected
                        .statuses
                        .insert((wamid.clone(), status.as_str().to_owned()));
                }
            }
        }
        expected
    }
}

/// Rows of one run as read from the database.
#[derive(Debug, Default)]
struct Observed {
    /// wamid → (rows, rows whose direction is `inbound`).
    messages: HashMap<String, (i64, i64)>,
    /// (wamid, status) → rows.
    statuses: HashMap<(String, String), i64>,
}

/// `(provider_message_id, direction or status, rows)`.
type GroupedRow = (String, String, i64);

/// Runs the same sqlx code on whichever pool the store holds (the query text and the
/// decoded types are the same for both databases).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite($pool) => $body,
            Store::Postgres($pool) => $body,
        }
    };
}

enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    async fn open(url: &str) -> Result<Store> {
        if url.starts_with("sqlite:") {
            // Never create the file: a wrong path must fail, not verify an empty database.
            let options = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("Failed to parse SQLite URL {url:?}"))?
                .create_if_missing(false);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .context("Failed to open the SQLite database to verify")?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .context("Failed to connect to the PostgreSQL database to verify")?;
            Ok(Store::Postgres(pool))
        } else {
            bail!("unsupported database URL {url:?} (sqlite: or postgres:)")
        }
    }

    async fn counts(&self, channel: &str, like: &str) -> Result<(i64, i64)> {
        const MESSAGES: &str =
            "SELECT COUNT(*) FROM messages WHERE channel_id = $1 AND provider_message_id LIKE $2";
        const STATUSES: &str = "SELECT COUNT(*) FROM message_statuses WHERE channel_id = $1 AND provider_message_id LIKE $2";
        Ok(on_pool!(self, pool => (
            sqlx::query_scalar(MESSAGES).bind(channel).bind(like).fetch_one(pool).await?,
            sqlx::query_scalar(STATUSES).bind(channel).bind(like).fetch_one(pool).await?,
        )))
    }

    async fn observe(&self, channel: &str, like: &str) -> Result<Observed> {
        const MESSAGES: &str = "SELECT provider_message_id, direction, COUNT(*) FROM messages \
             WHERE channel_id = $1 AND provider_message_id LIKE $2 \
             GROUP BY provider_message_id, direction";
        const STATUSES: &str = "SELECT provider_message_id, status, COUNT(*) FROM message_statuses \
             WHERE channel_id = $1 AND provider_message_id LIKE $2 \
             GROUP BY provider_message_id, status";
        let (message_rows, status_rows): (Vec<GroupedRow>, Vec<GroupedRow>) = on_pool!(self, pool => (
            sqlx::query_as(MESSAGES).bind(channel).bind(like).fetch_all(pool).await?,
            sqlx::query_as(STATUSES).bind(channel).bind(like).fetch_all(pool).await?,
        ));
        let mut observed = Observed::default();
        for (wamid, direction, rows) in message_rows {
            let entry = observed.messages.entry(wamid).or_default();
            entry.0 += rows;
            if direction == "inbound" {
                entry.1 += rows;
            }
        }
        for (wamid, status, rows) in status_rows {
            *observed.statuses.entry((wamid, status)).or_default() += rows;
        }
        Ok(observed)
    }

    async fn close(self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Polls `database_url` until everything expected is there or `timeout` passes.
pub async fn verify(
    database_url: &str,
    channel_id: &str,
    wamid_prefix: &str,
    expected: &Expected,
    timeout: Duration,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let store = Store::open(database_url).await?;
    // `_` and `%` never occur in a prefix (wamid.LG<alphanumeric run id>-).
    let like = format!("{wamid_prefix}%");
    let want_messages = expected.messages.len() as i64;
    let want_statuses = expected.statuses.len() as i64;

    let report = loop {
        // Cheap counts while processing catches up; the full comparison once the numbers
        // are there (or time is up).
        let (messages, statuses) = store
            .counts(channel_id, &like)
            .await
            .context("Failed to count the run's rows (are the tables there?)")?;
        let timed_out = started.elapsed() >= timeout;
        if (messages >= want_messages && statuses >= want_statuses) || timed_out {
            let observed = store
                .observe(channel_id, &like)
                .await
                .context("Failed to read the run's rows")?;
            let mut report = compare(expected, &observed);
            report.waited_seconds = started.elapsed().as_secs_f64();
            if report.passed() || timed_out {
                break report;
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    store.close().await;
    Ok(report)
}

fn compare(expected: &Expected, observed: &Observed) -> VerifyReport {
    let mut report = VerifyReport {
        expected_messages: expected.messages.len() as u64,
        expected_statuses: expected.statuses.len() as u64,
        ..VerifyReport::default()
    };
    for wamid in &expected.messages {
        match observed.messages.get(wamid) {
            Some(&(rows, inbound)) => {
                report.found_messages += 1;
                if rows > 1 {
                    report.duplicate_messages += 1;
                }
                if inbound < rows {
                    report.wrong_direction_messages += 1;
                }
            }
            None => {
                report.missing_messages += 1;
                if report.sample_missing.len() < SAMPLE_MISSING {
                    report.sample_missing.push(format!("message {wamid}"));
                }
            }
        }
    }
    for key in &expected.statuses {
        match observed.statuses.get(key) {
            Some(&rows) => {
                report.found_statuses += 1;
                if rows > 1 {
                    report.duplicate_statuses += 1;
                }
            }
            None => {
                report.missing_statuses += 1;
                if report.sample_missing.len() < SAMPLE_MISSING {
                    report
                        .sample_missing
                        .push(format!("status {} {}", key.1, key.0));
                }
            }
        }
    }
    report.unacknowledged_rows = observed
        .messages
        .iter()
        .filter(|(wamid, _)| !expected.messages.contains(*wamid))
        .map(|(_, &(rows, _))| rows as u64)
        .sum::<u64>()
        + observed
            .statuses
            .iter()
            .filter(|(key, _)| !expected.statuses.contains(*key))
            .map(|(_, &rows)| rows as u64)
            .sum::<u64>();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expected() -> Expected {
        let mut e = Expected::default();
        e.messages.insert("wamid.LGx-0".into());
        e.messages.insert("wamid.LGx-1".into());
        e.statuses.insert(("wamid.LGx-o0".into(), "sent".into()));
        e.statuses
            .insert(("wamid.LGx-o0".into(), "delivered".into()));
        e
    }

    #[test]
    fn everything_found_once_passes() {
        let mut observed = Observed::default();
        observed.messages.insert("wamid.LGx-0".into(), (1, 1));
        observed.messages.insert("wamid.LGx-1".into(), (1, 1));
        observed
            .statuses
            .insert(("wamid.LGx-o0".into(), "sent".into()), 1);
        observed
            .statuses
            .insert(("wamid.LGx-o0".into(), "delivered".into()), 1);
        let report = compare(&expected(), &observed);
        assert!(report.passed(), "{report:?}");
        assert_eq!(report.found_messages, 2);
        assert_eq!(report.found_statuses, 2);
    }

    #[test]
    fn missing_duplicate_and_extra_rows_are_reported() {
        let mut observed = Observed::default();
        observed.messages.insert("wamid.LGx-0".into(), (2, 2));
        observed.messages.insert("wamid.LGx-9".into(), (1, 1));
        observed
            .statuses
            .insert(("wamid.LGx-o0".into(), "sent".into()), 1);
        let report = compare(&expected(), &observed);
        assert!(!report.passed());
        assert_eq!(report.missing_messages, 1);
        assert_eq!(report.duplicate_messages, 1);
        assert_eq!(report.missing_statuses, 1);
        assert_eq!(report.unacknowledged_rows, 1);
        assert_eq!(report.sample_missing.len(), 2);
    }

    #[test]
    fn outbound_row_for_an_inbound_wamid_fails() {
        let mut observed = Observed::default();
        observed.messages.insert("wamid.LGx-0".into(), (1, 0));
        observed.messages.insert("wamid.LGx-1".into(), (1, 1));
        observed
            .statuses
            .insert(("wamid.LGx-o0".into(), "sent".into()), 1);
        observed
            .statuses
            .insert(("wamid.LGx-o0".into(), "delivered".into()), 1);
        let report = compare(&expected(), &observed);
        assert_eq!(report.wrong_direction_messages, 1);
        assert!(!report.passed());
    }
}
