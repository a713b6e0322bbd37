//! Triage and routing: what each case was tagged with and who may own it, agents'
//! routing profile (skills, languages, capacity, presence), blocked and VIP contacts, the
//! noise ledger (every suppressed message and near-duplicate clusters) and the audit log.

use crate::columns::{add_columns, big, big_null, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn flag(name: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(name))
        .boolean()
        .not_null()
        .default(false)
        .take()
}

fn named(name: &str) -> Alias {
    Alias::new(name)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            m,
            "agents",
            vec![
                ColumnDef::new(named("skills"))
                    .text()
                    .not_null()
                    .default("[]")
                    .take(),
                ColumnDef::new(named("languages"))
                    .text()
                    .not_null()
                    .default("[]")
                    .take(),
                ColumnDef::new(named("capacity"))
                    .integer()
                    .not_null()
                    .default(5)
                    .take(),
                ColumnDef::new(named("presence"))
                    .text()
                    .not_null()
                    .default("offline")
                    .take(),
                flag("senior"),
                ColumnDef::new(named("last_assigned_at"))
                    .big_integer()
                    .not_null()
                    .default(0)
                    .take(),
            ],
        )
        .await?;
        add_columns(
            m,
            "contacts",
            vec![
                big_null(named("blocked_at")),
                text_null(named("blocked_reason")),
                flag("vip"),
            ],
        )
        .await?;
        add_columns(
            m,
            "conversations",
            vec![
                text_null(named("urgency")),
                text_null(named("review")),
                text_null(named("watchers")),
                text_null(named("language")),
                text_null(named("triage")),
            ],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Suppressions::Table)
                .col(id(Suppressions::Id))
                .col(text(Suppressions::ChannelId))
                .col(text(Suppressions::WaId))
                .col(text_null(Suppressions::ProviderMessageId))
                .col(big_null(Suppressions::ConversationId))
                .col(big_null(Suppressions::MessageId))
                .col(big_null(Suppressions::ClusterId))
                .col(text(Suppressions::Reason))
                .col(text_null(Suppressions::Detail))
                .col(text_null(Suppressions::Excerpt))
                .col(big(Suppressions::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "ux_suppressions_channel_pmid",
                Suppressions::Table,
                &["channel_id", "provider_message_id"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_suppressions_reason_time",
            Suppressions::Table,
            &["reason", "created_at"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(NoiseClusters::Table)
                .col(id(NoiseClusters::Id))
                .col(big(NoiseClusters::Fingerprint))
                .col(text(NoiseClusters::Sample))
                .col(text(NoiseClusters::Reason))
                .col(ColumnDef::new(NoiseClusters::Contacts).integer().not_null())
                .col(ColumnDef::new(NoiseClusters::Messages).integer().not_null())
                .col(big(NoiseClusters::FirstSeenAt))
                .col(big(NoiseClusters::LastSeenAt))
                .to_owned(),
        )
        .await?;

        m.create_index(
            index(
                "ux_noise_clusters_fingerprint",
                NoiseClusters::Table,
                &["fingerprint"],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(id(AuditLog::Id))
                .col(big(AuditLog::At))
                .col(text(AuditLog::Actor))
                .col(text(AuditLog::Action))
                .col(text_null(AuditLog::Subject))
                .col(text(AuditLog::Data))
                .col(text(AuditLog::PrevHash))
                .col(text(AuditLog::Hash))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["audit_log", "noise_clusters", "suppressions"] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    Id,
    ChannelId,
    WaId,
    ProviderMessageId,
    ConversationId,
    MessageId,
    ClusterId,
    Reason,
    Detail,
    Excerpt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NoiseClusters {
    Table,
    Id,
    Fingerprint,
    Sample,
    Reason,
    Contacts,
    Messages,
    FirstSeenAt,
    LastSeenAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    Subject,
    Data,
    PrevHash,
    Hash,
}
