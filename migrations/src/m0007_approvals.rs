//! The approval queue: outbound messages the gate held for a person, with what held them,
//! who decided and how; the original text and any edit are both kept. Also indexes the
//! audit log for the auditor's filters (by action, by subject, by actor).

use crate::columns::{big, big_null, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let held = || Alias::new("held_messages");
        m.create_table(
            Table::create()
                .table(held())
                .col(id(Alias::new("id")))
                .col(big(Alias::new("conversation_id")))
                .col(big(Alias::new("message_id")))
                .col(text(Alias::new("channel_id")))
                .col(text(Alias::new("recipient")))
                // The provider request as planned (the edit replaces its text on approval).
                .col(text(Alias::new("payload")))
                .col(text(Alias::new("origin")))
                .col(text(Alias::new("purpose")))
                // The least role that may decide.
                .col(text(Alias::new("approver")))
                // JSON: the boundaries that matched and why.
                .col(text(Alias::new("boundaries")))
                .col(text(Alias::new("reasons")))
                // pending, approved, rejected.
                .col(text(Alias::new("status")))
                .col(text_null(Alias::new("original_text")))
                .col(text_null(Alias::new("edited_text")))
                .col(text_null(Alias::new("decided_by")))
                .col(text_null(Alias::new("decision_note")))
                .col(big_null(Alias::new("decided_at")))
                .col(big(Alias::new("created_at")))
                .to_owned(),
        )
        .await?;
        m.create_index(index("held_messages_status", held(), &["status", "id"]))
            .await?;
        m.create_index(index(
            "held_messages_conversation",
            held(),
            &["conversation_id", "id"],
        ))
        .await?;
        m.create_index(
            index("held_messages_message", held(), &["message_id"])
                .unique()
                .to_owned(),
        )
        .await?;
        for (name, columns) in [
            ("audit_log_action", ["action", "id"]),
            ("audit_log_subject", ["subject", "id"]),
            ("audit_log_actor", ["actor", "id"]),
        ] {
            m.create_index(index(name, Alias::new("audit_log"), &columns))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in ["audit_log_action", "audit_log_subject", "audit_log_actor"] {
            m.drop_index(
                Index::drop()
                    .name(name)
                    .table(Alias::new("audit_log"))
                    .to_owned(),
            )
            .await?;
        }
        m.drop_table(Table::drop().table(Alias::new("held_messages")).to_owned())
            .await
    }
}
