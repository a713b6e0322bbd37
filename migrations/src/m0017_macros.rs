//! Macros: canned responses of a team (or of everyone), with language variants, the
//! actions they take on the case, and how often and when they were last used.

use crate::columns::{big, big_null, id, index, text};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let t = || Alias::new("macros");
        m.create_table(
            Table::create()
                .table(t())
                .col(id(Alias::new("id")))
                .col(text(Alias::new("name")))
                // NULL: every team may use it.
                .col(
                    ColumnDef::new(Alias::new("team_id"))
                        .big_integer()
                        .null()
                        .take(),
                )
                // The body used when no variant answers the contact's language.
                .col(text(Alias::new("body")))
                // JSON: [{"language": ..., "body": ...}].
                .col(text(Alias::new("variants")))
                // JSON: {"status": ..., "priority": ..., "assign_agent_id": ..., "note": ...}.
                .col(text(Alias::new("actions")))
                .col(
                    ColumnDef::new(Alias::new("usage_count"))
                        .big_integer()
                        .not_null()
                        .default(0)
                        .take(),
                )
                .col(big_null(Alias::new("last_used_at")))
                .col(text(Alias::new("created_by")))
                .col(big(Alias::new("created_at")))
                .col(big(Alias::new("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("macros_team", t(), &["team_id"]).to_owned())
            .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("macros")).to_owned())
            .await
    }
}
