//! Several nodes on one PostgreSQL: who owns which shard of conversations (a lease with
//! an epoch, the fencing token every owner's write checks), the leader lease (shard -1)
//! and the nodes that take part, with the address they answer forwarded requests on.
//!
//! Only PostgreSQL gets these tables: a cluster on SQLite is refused at start, and a
//! single node never reads them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE TABLE shard_leases (
                shard INTEGER PRIMARY KEY,
                node_id TEXT NOT NULL,
                epoch BIGINT NOT NULL,
                acquired_at TIMESTAMPTZ NOT NULL,
                renewed_at TIMESTAMPTZ NOT NULL,
                expires_at TIMESTAMPTZ NOT NULL
            )",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX shard_leases_node ON shard_leases (node_id)")
            .await?;
        db.execute_unprepared(
            "CREATE TABLE cluster_nodes (
                node_id TEXT PRIMARY KEY,
                address TEXT NOT NULL,
                started_at TIMESTAMPTZ NOT NULL,
                heartbeat_at TIMESTAMPTZ NOT NULL,
                stopped_at TIMESTAMPTZ
            )",
        )
        .await?;
        // The token nodes present to each other when forwarding a request; created by
        // the first node, read by the others from the database they share.
        db.execute_unprepared(
            "CREATE TABLE cluster_secret (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                token TEXT NOT NULL
            )",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        for table in ["cluster_secret", "cluster_nodes", "shard_leases"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
