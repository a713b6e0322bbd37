//! Parley's schema, as sea-orm migrations that run unchanged on SQLite and PostgreSQL.
//!
//! Instants are stored as microseconds since the Unix epoch (BIGINT): they order the same
//! way on both databases and make keyset pagination a plain integer comparison.

pub use sea_orm_migration::prelude::*;

mod columns;
mod i0001_inbox;
mod m0001_core;
mod m0002_triage_routing;
mod m0003_crm_enrichment;
mod m0004_consent;
mod m0005_sla;
mod m0006_csat;
mod m0007_approvals;
mod m0008_audit_trail;
mod m0009_templates;
mod m0010_contact_cases;
pub mod m0011_reports;
mod m0012_token_expiry;
mod m0013_window_refusal;
mod m0014_cluster;
mod m0015_media;
mod m0016_search;
mod m0017_macros;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_core::Migration),
            Box::new(m0002_triage_routing::Migration),
            Box::new(m0003_crm_enrichment::Migration),
            Box::new(m0004_consent::Migration),
            Box::new(m0005_sla::Migration),
            Box::new(m0006_csat::Migration),
            Box::new(m0007_approvals::Migration),
            Box::new(m0008_audit_trail::Migration),
            Box::new(m0009_templates::Migration),
            Box::new(m0010_contact_cases::Migration),
            Box::new(m0011_reports::Migration),
            Box::new(m0012_token_expiry::Migration),
            Box::new(m0013_window_refusal::Migration),
            Box::new(m0014_cluster::Migration),
            Box::new(m0015_media::Migration),
            Box::new(m0016_search::Migration),
            Box::new(m0017_macros::Migration),
        ]
    }
}

/// The schema of a webhook inbox kept in a database of its own (SQLite keeps it in a
/// second file, so that acknowledging webhooks never waits behind the main database's
/// writes). Its own history table, so it can share a database with [`Migrator`] too.
pub struct InboxMigrator;

#[async_trait::async_trait]
impl MigratorTrait for InboxMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(i0001_inbox::Migration)]
    }

    fn migration_table_name() -> DynIden {
        Alias::new("parley_inbox_migrations").into_iden()
    }
}
