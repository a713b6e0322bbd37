//! When the provider last refused a free-form message to a case as outside the customer
//! service window (Meta's 131047): the window stays closed from then until the customer
//! writes again, whatever Parley's own reckoning of the window said.

use crate::columns::{add_columns, big_null, drop_columns};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMN: &str = "window_refused_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(m, "conversations", vec![big_null(Alias::new(COLUMN))]).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(m, "conversations", &[COLUMN]).await
    }
}
