//! Media files, both ways. One row per file: an image, voice note, video, document or
//! sticker a customer sent (fetched from the provider in the background, so its row is
//! also the durable fetch job), or a file an API client uploaded to send. The bytes live
//! in the blob store under `blob_key`; the row keeps what the provider and the fetch said
//! about them. The outbox keeps the provider's id of an uploaded file, so a retried send
//! never uploads it twice. `server_secrets` holds secrets generated once and shared by
//! every node (the key that signs media URLs).

use crate::columns::{add_columns, big, big_null, drop_columns, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

fn media() -> Alias {
    Alias::new("media")
}

fn secrets() -> Alias {
    Alias::new("server_secrets")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(media())
                .col(id(Alias::new("id")))
                // The message the file belongs to (an upload gets one when it is sent).
                .col(big_null(Alias::new("message_id")))
                // inbound or outbound.
                .col(text(Alias::new("direction")))
                .col(text(Alias::new("channel_id")))
                // image, audio, video, document, sticker.
                .col(text(Alias::new("kind")))
                .col(text_null(Alias::new("mime_type")))
                .col(big_null(Alias::new("size")))
                // Hex SHA-256 of the stored bytes.
                .col(text_null(Alias::new("sha256")))
                // What the provider said the hash is (inbound).
                .col(text_null(Alias::new("expected_sha256")))
                .col(text_null(Alias::new("file_name")))
                .col(text_null(Alias::new("caption")))
                // The provider's media id (inbound).
                .col(text_null(Alias::new("provider_media_id")))
                .col(text_null(Alias::new("blob_key")))
                // pending, stored, failed, erased.
                .col(text(Alias::new("state")))
                .col(text_null(Alias::new("failure_reason")))
                .col(
                    ColumnDef::new(Alias::new("attempts"))
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(big(Alias::new("next_attempt_at")))
                // Who uploaded it (outbound).
                .col(text_null(Alias::new("created_by")))
                .col(big(Alias::new("created_at")))
                .col(big(Alias::new("updated_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("media_by_message", media(), &["message_id"]).to_owned())
            .await?;
        // The fetch worker's queue and the erasure sweep read by state and due time.
        m.create_index(index("media_by_state", media(), &["state", "next_attempt_at"]).to_owned())
            .await?;
        m.create_table(
            Table::create()
                .table(secrets())
                .col(
                    ColumnDef::new(Alias::new("name"))
                        .text()
                        .not_null()
                        .primary_key(),
                )
                .col(text(Alias::new("value")))
                .col(big(Alias::new("created_at")))
                .to_owned(),
        )
        .await?;
        add_columns(
            m,
            "outbox",
            vec![text_null(Alias::new("provider_media_id"))],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop_columns(m, "outbox", &["provider_media_id"]).await?;
        m.drop_table(Table::drop().table(secrets()).to_owned())
            .await?;
        m.drop_table(Table::drop().table(media()).to_owned()).await
    }
}
