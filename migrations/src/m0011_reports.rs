//! The reporting projection: hourly rollups folded from the event log, the per-case state
//! the fold needs, and the checkpoint (the last event folded) written in the same
//! transaction as the rollups it produced.

use crate::columns::{big, big_null, index, text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Histogram buckets of a rollup row (`h0` .. `h47`), see `reports::hist` in the app.
pub const BUCKETS: usize = 48;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new("report_checkpoints"))
                .col(text(Alias::new("name")).primary_key())
                .col(big(Alias::new("last_event_id")))
                .col(big(Alias::new("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("report_cases"))
                .col(big(Alias::new("conversation_id")).primary_key())
                .col(big(Alias::new("created_at")))
                .col(big_null(Alias::new("resolved_at")))
                .col(big_null(Alias::new("agent_id")))
                .col(big_null(Alias::new("team_id")))
                .col(text(Alias::new("state")))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_report_cases_created",
            Alias::new("report_cases"),
            &["created_at", "conversation_id"],
        ))
        .await?;
        let mut rollups = Table::create()
            .table(Alias::new("report_rollups"))
            .col(big(Alias::new("hour")))
            .col(text(Alias::new("metric")))
            .col(text(Alias::new("dim")))
            .col(text(Alias::new("value")))
            .col(big(Alias::new("count")))
            .col(big(Alias::new("total")))
            .primary_key(
                Index::create()
                    .col(Alias::new("metric"))
                    .col(Alias::new("dim"))
                    .col(Alias::new("hour"))
                    .col(Alias::new("value")),
            )
            .to_owned();
        for bucket in 0..BUCKETS {
            rollups.col(
                ColumnDef::new(Alias::new(format!("h{bucket}")))
                    .big_integer()
                    .not_null()
                    .default(0),
            );
        }
        m.create_table(rollups).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["report_rollups", "report_cases", "report_checkpoints"] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
