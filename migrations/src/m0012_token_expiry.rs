//! API tokens may be given an expiry: after `expires_at` a token authenticates no one, as
//! if it were revoked. Tokens made before have none.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("api_tokens"))
                .add_column(
                    ColumnDef::new(Alias::new("expires_at"))
                        .big_integer()
                        .null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("api_tokens"))
                .drop_column(Alias::new("expires_at"))
                .to_owned(),
        )
        .await
    }
}
