//! The SLA clock's state on each case: its ledger (JSON timestamps folded from the event
//! log: targets started and stopped, pauses, alarms recorded) and when its next alarm
//! comes due, indexed so that a restart reloads every pending deadline in one scan.

use crate::columns::{add_columns, big_null, drop_columns, index, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            m,
            "conversations",
            vec![
                text_null(Alias::new("sla")),
                big_null(Alias::new("sla_due_at")),
            ],
        )
        .await?;
        m.create_index(index(
            "conversations_sla_due_at",
            Alias::new("conversations"),
            &["sla_due_at"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("conversations_sla_due_at")
                .table(Alias::new("conversations"))
                .to_owned(),
        )
        .await?;
        drop_columns(m, "conversations", &["sla", "sla_due_at"]).await
    }
}
