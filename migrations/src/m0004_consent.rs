//! The consent ledger: every opt-in and opt-out of a contact, per purpose (service,
//! marketing, surveys), with its source and time. Append-only; the current consent of a
//! purpose is its newest entry.

use crate::columns::{big, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ConsentEvents::Table)
                .col(id(ConsentEvents::Id))
                .col(big(ConsentEvents::ContactId))
                .col(text(ConsentEvents::Purpose))
                .col(
                    ColumnDef::new(ConsentEvents::Granted)
                        .boolean()
                        .not_null()
                        .take(),
                )
                .col(text(ConsentEvents::Source))
                .col(text_null(ConsentEvents::Detail))
                .col(text_null(ConsentEvents::MessageRef))
                .col(text(ConsentEvents::Actor))
                .col(big(ConsentEvents::At))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "consent_events_contact",
            ConsentEvents::Table,
            &["contact_id", "purpose", "id"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ConsentEvents::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ConsentEvents {
    Table,
    Id,
    ContactId,
    Purpose,
    Granted,
    Source,
    Detail,
    MessageRef,
    Actor,
    At,
}
