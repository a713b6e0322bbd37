//! What the CRM plugin said about a contact: the profile it returned (JSON, `NULL` when
//! the CRM does not know the customer) and when it was asked, so that a new case of a
//! contact looked up recently does not ask again.

use crate::columns::{add_columns, big_null, drop_columns, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(
            m,
            "contacts",
            vec![
                text_null(Alias::new("crm_profile")),
                big_null(Alias::new("crm_fetched_at")),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(m, "contacts", &["crm_profile", "crm_fetched_at"]).await
    }
}
