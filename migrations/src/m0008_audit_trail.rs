//! The audit trail of conversation events, appended in batches from the durable event log:
//! `audit_progress` holds the last event written to the chain, updated in the same
//! transaction as the entries, so every audited event is chained exactly once, even
//! across a crash. And the audit log becomes append-only in the database itself: updates
//! and deletes are refused by triggers (the hash chain still reveals anyone who drops
//! them first).

use crate::columns::{big, text};
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_GUARDS: &str = "
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

const POSTGRES_GUARDS: &str = "
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("audit_progress"))
                .col(text(Alias::new("name")).primary_key())
                .col(big(Alias::new("last_event_id")))
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        match db.get_database_backend() {
            DatabaseBackend::Postgres => db.execute_unprepared(POSTGRES_GUARDS).await?,
            _ => db.execute_unprepared(SQLITE_GUARDS).await?,
        };
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let drop = match db.get_database_backend() {
            DatabaseBackend::Postgres => {
                "DROP TRIGGER IF EXISTS audit_log_no_update ON audit_log; \
                 DROP TRIGGER IF EXISTS audit_log_no_delete ON audit_log; \
                 DROP FUNCTION IF EXISTS audit_log_append_only();"
            }
            _ => {
                "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;"
            }
        };
        db.execute_unprepared(drop).await?;
        m.drop_table(Table::drop().table(Alias::new("audit_progress")).to_owned())
            .await
    }
}
