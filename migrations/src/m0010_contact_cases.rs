//! A contact's cases, newest first: what a conversation actor reads when it starts for a
//! contact Parley knows (their recent intents), and what erasure and the contact views
//! look up. Without it each such read scanned the whole conversations table.

use crate::columns::index;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "ix_conversations_contact";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(index(
            NAME,
            Alias::new("conversations"),
            &["contact_id", "id"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name(NAME)
                .table(Alias::new("conversations"))
                .to_owned(),
        )
        .await
    }
}
