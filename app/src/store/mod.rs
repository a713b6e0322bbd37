//! Persistence: the only module that talks to the database.
//!
//! Reads go through a pool; every write goes through one [`writer::Writer`], which groups
//! the writes of many concurrent callers into one transaction and one commit (one fsync on
//! SQLite). It knows the domain types and the database, nothing about HTTP, GraphQL or
//! actors.

pub mod audit;
pub mod batcher;
pub mod changes;
pub mod consent;
pub mod contact_fields;
pub mod conversations;
pub mod corrections;
pub mod directory;
pub mod entities;
pub mod erasure;
pub mod fence;
pub mod inbox;
pub mod macros;
pub mod media;
pub mod noise;
pub mod outbox;
pub mod queries;
pub mod reports;
pub mod retention;
pub mod search;
pub mod sla;
pub mod templates;
pub mod tokens;
pub mod writer;

use crate::config::{DatabaseSettings, SqliteSynchronous};
use parley_migrations::MigratorTrait;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlxPostgresConnector,
    SqlxSqliteConnector,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous as SqlxSync,
};
use std::str::FromStr;
use std::time::Duration;
pub use writer::{WriteOp, Writer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("the commit failed: {0}")]
    Commit(String),
    #[error("the writer has stopped")]
    WriterStopped,
    #[error("database url {0:?} is neither sqlite:// nor postgres://")]
    UnsupportedUrl(String),
    #[error("could not create the database directory {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("could not start a writer thread: {0}")]
    Thread(std::io::Error),
}

/// Handles to the database: a read pool and the group-commit writer, and the same for
/// the webhook inbox.
#[derive(Clone)]
pub struct Store {
    read: DatabaseConnection,
    writer: Writer,
    /// Coalesces the commonest conversation change (a customer message on its case).
    changes: batcher::Batcher<changes::ApplyChanges>,
    backend: DbBackend,
    inbox: InboxDb,
    /// Set on the handle a conversation actor of a cluster node writes through: each of
    /// its writes commits only while the node holds the case's shard ([`fence`]).
    fence: Option<fence::Fence>,
}

/// Where webhook bodies are stored before they are acknowledged. It has a writer of its
/// own, so that an acknowledgement never waits behind the processing of earlier
/// webhooks; with SQLite it is a second file (one writer per file), with PostgreSQL the
/// same database unless configured otherwise.
#[derive(Clone)]
struct InboxDb {
    read: DatabaseConnection,
    writer: Writer,
    /// A database of its own (its schema is migrated on its own).
    apart: bool,
}

/// A database's read pool and its writer's connection.
async fn open(
    url: &str,
    settings: &DatabaseSettings,
) -> Result<(DatabaseConnection, DatabaseConnection), StoreError> {
    if url.starts_with("sqlite:") {
        create_sqlite_directory(url)?;
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match settings.sqlite_synchronous {
                SqliteSynchronous::Full => SqlxSync::Full,
                SqliteSynchronous::Normal => SqlxSync::Normal,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect_with(options)
            .await?;
        Ok((
            SqlxSqliteConnector::from_sqlx_sqlite_pool(read),
            SqlxSqliteConnector::from_sqlx_sqlite_pool(write),
        ))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let read = PgPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .connect(url)
            .await?;
        Ok((
            SqlxPostgresConnector::from_sqlx_postgres_pool(read),
            writer_connection_pg(url).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_string()))
    }
}

async fn writer_connection_pg(url: &str) -> Result<DatabaseConnection, StoreError> {
    let write = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect(url)
        .await?;
    Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(write))
}

impl Store {
    /// Opens the database named by `settings.url` and the inbox's (see
    /// [`DatabaseSettings::inbox_url`]). SQLite runs in WAL mode with the configured
    /// `synchronous` level; each writer gets a connection of its own.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let url = settings.url.as_str();
        let (read, write) = open(url, settings).await?;
        let backend = read.get_database_backend();
        let writer = if backend == DbBackend::Sqlite {
            Writer::start_on_thread(write, settings.group_commit_max_batch, "main")
                .map_err(StoreError::Thread)?
        } else {
            Writer::start(write, settings.group_commit_max_batch, "main")
        };
        let inbox_url = settings.inbox_url();
        let inbox = if inbox_url != url {
            let (read, write) = open(&inbox_url, settings).await?;
            let max_batch = settings.group_commit_max_batch;
            let writer = if read.get_database_backend() == DbBackend::Sqlite {
                Writer::start_on_thread(write, max_batch, "inbox").map_err(StoreError::Thread)?
            } else {
                Writer::start(write, max_batch, "inbox")
            };
            InboxDb {
                read,
                writer,
                apart: true,
            }
        } else if backend == DbBackend::Postgres {
            // The same database, but a writer of its own: PostgreSQL commits both at once.
            InboxDb {
                read: read.clone(),
                writer: Writer::start(
                    writer_connection_pg(url).await?,
                    settings.group_commit_max_batch,
                    "inbox",
                ),
                apart: false,
            }
        } else {
            // An in-memory SQLite database cannot be shared with a second file.
            InboxDb {
                read: read.clone(),
                writer: writer.clone(),
                apart: false,
            }
        };
        Ok(Self {
            read,
            changes: batcher::Batcher::start(writer.clone(), changes::CHANGES_PER_BATCH),
            writer,
            backend,
            inbox,
            fence: None,
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        parley_migrations::Migrator::up(&self.read, None).await?;
        if self.inbox.apart {
            parley_migrations::InboxMigrator::up(&self.inbox.read, None).await?;
        }
        Ok(())
    }

    /// The main database's writer (for batchers that feed it).
    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }

    /// The inbox's writer.
    pub fn inbox_writer(&self) -> Writer {
        self.inbox.writer.clone()
    }

    /// Runs one write operation on the inbox's database.
    pub async fn write_inbox<O: WriteOp>(&self, op: O) -> Result<O::Output, StoreError> {
        self.inbox.writer.write(op).await
    }

    /// The inbox's read pool.
    pub fn inbox_db(&self) -> &DatabaseConnection {
        &self.inbox.read
    }

    /// Whether the inbox is a database of its own.
    pub fn inbox_apart(&self) -> bool {
        self.inbox.apart
    }

    pub fn is_sqlite(&self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    /// The read pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.read
    }

    /// Runs one write operation inside the next group commit and returns its output once
    /// that commit is durable.
    pub async fn write<O: WriteOp>(&self, op: O) -> Result<O::Output, StoreError> {
        match &self.fence {
            Some(fence) => {
                let fence = fence.clone();
                let written = self.writer.write(fence::Fenced { fence, op }).await;
                if let Err(error) = &written
                    && error.is_fenced()
                    && let Some(count) = fence::ON_REFUSED.get()
                {
                    count();
                }
                written
            }
            None => self.writer.write(op).await,
        }
    }

    /// The same store, whose writes commit only under `fence` (for the actor of a case
    /// whose shard this node owns).
    pub fn fenced(&self, fence: fence::Fence) -> Self {
        Self {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Persists one conversation actor step. A customer message on its case is written
    /// together with the others that arrive meanwhile ([`changes`]); anything else alone.
    pub async fn apply_change(
        &self,
        change: conversations::ConversationChange,
    ) -> Result<conversations::ChangeApplied, StoreError> {
        if self.fence.is_some() {
            // Fenced changes are checked one by one; they still share the group commit.
            self.write(change).await
        } else if changes::coalescable(&change) {
            self.changes.submit(change).await
        } else {
            self.writer.write(change).await
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read.execute_unprepared("SELECT 1").await?;
        if self.inbox.apart {
            self.inbox.read.execute_unprepared("SELECT 1").await?;
        }
        Ok(())
    }
}

/// A migrated SQLite store in `dir` (its inbox in a second file beside it), for tests.
#[cfg(test)]
pub(crate) async fn test_store(dir: &std::path::Path) -> Store {
    let settings = DatabaseSettings {
        url: format!("sqlite://{}/parley.db?mode=rwc", dir.display()),
        inbox_url: None,
        max_connections: 2,
        sqlite_synchronous: SqliteSynchronous::Normal,
        migrate_on_start: true,
        group_commit_max_batch: 64,
    };
    let store = Store::connect(&settings).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn create_sqlite_directory(url: &str) -> Result<(), StoreError> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}
