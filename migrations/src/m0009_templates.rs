//! The template registry: each version of each language variant of a template, its
//! internal review state and the status Meta reports for it.

use crate::columns::{big, big_null, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let t = || Alias::new("templates");
        m.create_table(
            Table::create()
                .table(t())
                .col(id(Alias::new("id")))
                .col(text(Alias::new("name")))
                .col(text(Alias::new("language")))
                .col(
                    ColumnDef::new(Alias::new("version"))
                        .integer()
                        .not_null()
                        .take(),
                )
                .col(text(Alias::new("category")))
                .col(text(Alias::new("body")))
                // JSON: [{"name": ..., "type": ...}] in placeholder order.
                .col(text(Alias::new("variables")))
                // draft, submitted, approved, rejected, paused.
                .col(text(Alias::new("status")))
                .col(text_null(Alias::new("review_note")))
                // What Meta says: pending, approved, rejected, paused, disabled...
                .col(text_null(Alias::new("meta_status")))
                .col(text_null(Alias::new("meta_template_id")))
                .col(text_null(Alias::new("meta_reason")))
                .col(text(Alias::new("created_by")))
                .col(text(Alias::new("updated_by")))
                .col(big(Alias::new("created_at")))
                .col(big(Alias::new("updated_at")))
                .col(big_null(Alias::new("meta_updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index("templates_version", t(), &["name", "language", "version"])
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("templates")).to_owned())
            .await
    }
}
