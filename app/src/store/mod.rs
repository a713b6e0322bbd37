//! Persistence: the only module that talks to the database.
//!
//! Reads go through a pool; every write goes through one [`writer::Writer`], which groups
//! the writes of many concurrent callers into one transaction and one commit (one fsync on
//! SQLite). It knows the domain types and the database, nothing about HTTP, GraphQL or
//! actors.

pub mod audit;
pub mod batcher;
pub mod consent;
pub mod conversations;
pub mod directory;
pub mod entities;
pub mod erasure;
pub mod inbox;
pub mod noise;
pub mod outbox;
pub mod queries;
pub mod retention;
pub mod sla;
pub mod templates;
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
}

/// Handles to the database: a read pool and the group-commit writer.
#[derive(Clone)]
pub struct Store {
    read: DatabaseConnection,
    writer: Writer,
    backend: DbBackend,
}

impl Store {
    /// Opens the database named by `settings.url`. SQLite runs in WAL mode with the
    /// configured `synchronous` level; the writer gets a connection of its own.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Self, StoreError> {
        let url = settings.url.as_str();
        let (read, write) = if url.starts_with("sqlite:") {
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
            (
                SqlxSqliteConnector::from_sqlx_sqlite_pool(read),
                SqlxSqliteConnector::from_sqlx_sqlite_pool(write),
            )
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let read = PgPoolOptions::new()
                .max_connections(settings.max_connections.max(1))
                .connect(url)
                .await?;
            let write = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .connect(url)
                .await?;
            (
                SqlxPostgresConnector::from_sqlx_postgres_pool(read),
                SqlxPostgresConnector::from_sqlx_postgres_pool(write),
            )
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let backend = read.get_database_backend();
        let writer = Writer::start(write, settings.group_commit_max_batch);
        Ok(Self {
            read,
            writer,
            backend,
        })
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        parley_migrations::Migrator::up(&self.read, None).await?;
        Ok(())
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
        self.writer.write(op).await
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read.execute_unprepared("SELECT 1").await?;
        Ok(())
    }
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
