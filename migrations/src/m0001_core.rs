//! The core: contacts, conversations, messages and their statuses, notes, agents, teams,
//! API tokens, the conversation event log, the webhook inbox, the outbox and dead letters.

use crate::columns::{big, big_null, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Teams::Table)
                .col(id(Teams::Id))
                .col(text(Teams::Name).unique_key())
                .col(big(Teams::CreatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Agents::Table)
                .col(id(Agents::Id))
                .col(text(Agents::Name))
                .col(text_null(Agents::Email).unique_key())
                .col(text(Agents::Role))
                .col(big_null(Agents::TeamId))
                .col(big(Agents::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Agents::Table, Agents::TeamId)
                        .to(Teams::Table, Teams::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(id(ApiTokens::Id))
                .col(text(ApiTokens::Name))
                .col(text(ApiTokens::Role))
                .col(text(ApiTokens::TokenHash).unique_key())
                .col(big_null(ApiTokens::AgentId))
                .col(big(ApiTokens::CreatedAt))
                .col(big_null(ApiTokens::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiTokens::Table, ApiTokens::AgentId)
                        .to(Agents::Table, Agents::Id),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Contacts::Table)
                .col(id(Contacts::Id))
                .col(text(Contacts::WaId).unique_key())
                .col(text_null(Contacts::Name))
                .col(big(Contacts::CreatedAt))
                .col(big(Contacts::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Conversations::Table)
                .col(id(Conversations::Id))
                .col(big(Conversations::ContactId))
                .col(text(Conversations::ChannelId))
                .col(text(Conversations::PhoneNumberId))
                .col(text(Conversations::Status))
                .col(text(Conversations::Priority))
                .col(big_null(Conversations::AssigneeId))
                .col(big_null(Conversations::TeamId))
                .col(
                    ColumnDef::new(Conversations::ReopenCount)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(big(Conversations::CreatedAt))
                .col(big(Conversations::UpdatedAt))
                .col(big(Conversations::LastActivityAt))
                .col(big_null(Conversations::LastCustomerMessageAt))
                .col(big_null(Conversations::FirstResponseAt))
                .col(big_null(Conversations::ResolvedAt))
                .col(big_null(Conversations::ClosedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Conversations::Table, Conversations::ContactId)
                        .to(Contacts::Table, Contacts::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Conversations::Table, Conversations::AssigneeId)
                        .to(Agents::Table, Agents::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Conversations::Table, Conversations::TeamId)
                        .to(Teams::Table, Teams::Id),
                )
                .to_owned(),
        )
        .await?;
        // The inbox lists newest activity first, optionally filtered; each filter has an
        // index that ends in the keyset (last_activity_at, id).
        m.create_index(index(
            "ix_conversations_activity",
            Conversations::Table,
            &["last_activity_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "ix_conversations_status_activity",
            Conversations::Table,
            &["status", "last_activity_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "ix_conversations_assignee_activity",
            Conversations::Table,
            &["assignee_id", "last_activity_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "ix_conversations_team_activity",
            Conversations::Table,
            &["team_id", "last_activity_at", "id"],
        ))
        .await?;
        m.create_index(index(
            "ix_conversations_channel_activity",
            Conversations::Table,
            &["channel_id", "last_activity_at", "id"],
        ))
        .await?;
        // One live case per contact and business number. Partial indexes read the same on
        // SQLite and PostgreSQL.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_conversations_live ON conversations \
                 (contact_id, channel_id, phone_number_id) WHERE status <> 'closed'",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(Messages::Table)
                .col(id(Messages::Id))
                .col(big(Messages::ConversationId))
                .col(text(Messages::ChannelId))
                .col(text(Messages::Direction))
                .col(text(Messages::Kind))
                .col(text_null(Messages::Text))
                .col(text_null(Messages::Content))
                .col(text_null(Messages::ProviderMessageId))
                .col(text_null(Messages::DeliveryStatus))
                .col(text_null(Messages::ErrorCode))
                .col(text_null(Messages::ErrorTitle))
                .col(text_null(Messages::ReplyTo))
                .col(big_null(Messages::AuthorAgentId))
                .col(big_null(Messages::ProviderSentAt))
                .col(big_null(Messages::ReceivedAt))
                .col(big(Messages::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Messages::Table, Messages::ConversationId)
                        .to(Conversations::Table, Conversations::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "ux_messages_provider_id",
                Messages::Table,
                &["channel_id", "provider_message_id"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_messages_conversation",
            Messages::Table,
            &["conversation_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(MessageStatuses::Table)
                .col(id(MessageStatuses::Id))
                .col(text(MessageStatuses::ChannelId))
                .col(text(MessageStatuses::ProviderMessageId))
                .col(text(MessageStatuses::Status))
                .col(big(MessageStatuses::At))
                .col(text_null(MessageStatuses::Errors))
                .col(big(MessageStatuses::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "ux_message_statuses",
                MessageStatuses::Table,
                &["channel_id", "provider_message_id", "status"],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Notes::Table)
                .col(id(Notes::Id))
                .col(big(Notes::ConversationId))
                .col(text(Notes::Body))
                .col(text(Notes::Author))
                .col(big(Notes::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Notes::Table, Notes::ConversationId)
                        .to(Conversations::Table, Conversations::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_notes_conversation",
            Notes::Table,
            &["conversation_id", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ConversationEvents::Table)
                .col(id(ConversationEvents::Id))
                .col(big(ConversationEvents::ConversationId))
                .col(text(ConversationEvents::Kind))
                .col(text(ConversationEvents::Data))
                .col(text(ConversationEvents::Actor))
                .col(big(ConversationEvents::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            ConversationEvents::Table,
                            ConversationEvents::ConversationId,
                        )
                        .to(Conversations::Table, Conversations::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_events_conversation",
            ConversationEvents::Table,
            &["conversation_id", "id"],
        ))
        .await?;
        m.create_index(index(
            "ix_events_kind",
            ConversationEvents::Table,
            &["kind", "created_at"],
        ))
        .await?;

        create_inbox(m).await?;

        m.create_table(
            Table::create()
                .table(Outbox::Table)
                .col(id(Outbox::Id))
                .col(big(Outbox::MessageId).unique_key())
                .col(text(Outbox::ChannelId))
                .col(text(Outbox::PhoneNumberId))
                .col(text(Outbox::Recipient))
                .col(text(Outbox::Payload))
                .col(text(Outbox::State))
                .col(
                    ColumnDef::new(Outbox::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(big(Outbox::NextAttemptAt))
                .col(text_null(Outbox::LastError))
                .col(big(Outbox::CreatedAt))
                .col(big(Outbox::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Outbox::Table, Outbox::MessageId)
                        .to(Messages::Table, Messages::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_outbox_due",
            Outbox::Table,
            &["state", "next_attempt_at", "id"],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(DeadLetters::Table)
                .col(id(DeadLetters::Id))
                .col(text(DeadLetters::ChannelId))
                .col(text(DeadLetters::Source))
                .col(text(DeadLetters::Reason))
                .col(ColumnDef::new(DeadLetters::Payload).blob().not_null())
                .col(big_null(DeadLetters::InboxId))
                .col(big(DeadLetters::CreatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "dead_letters",
            "outbox",
            "inbox",
            "conversation_events",
            "notes",
            "message_statuses",
            "messages",
            "conversations",
            "contacts",
            "api_tokens",
            "agents",
            "teams",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Teams {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    Name,
    Email,
    Role,
    TeamId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    TokenHash,
    AgentId,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    WaId,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    ContactId,
    ChannelId,
    PhoneNumberId,
    Status,
    Priority,
    AssigneeId,
    TeamId,
    ReopenCount,
    CreatedAt,
    UpdatedAt,
    LastActivityAt,
    LastCustomerMessageAt,
    FirstResponseAt,
    ResolvedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    ChannelId,
    Direction,
    Kind,
    Text,
    Content,
    ProviderMessageId,
    DeliveryStatus,
    ErrorCode,
    ErrorTitle,
    ReplyTo,
    AuthorAgentId,
    ProviderSentAt,
    ReceivedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MessageStatuses {
    Table,
    Id,
    ChannelId,
    ProviderMessageId,
    Status,
    At,
    Errors,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Notes {
    Table,
    Id,
    ConversationId,
    Body,
    Author,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationEvents {
    Table,
    Id,
    ConversationId,
    Kind,
    Data,
    Actor,
    CreatedAt,
}

/// The webhook inbox: in the main database (PostgreSQL) or in a file of its own
/// (SQLite, see `InboxMigrator`).
pub(crate) async fn create_inbox(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Inbox::Table)
            .col(id(Inbox::Id))
            .col(text(Inbox::ChannelId))
            .col(ColumnDef::new(Inbox::Body).blob().not_null())
            .col(text(Inbox::BodySha256))
            .col(text(Inbox::State))
            .col(
                ColumnDef::new(Inbox::Attempts)
                    .integer()
                    .not_null()
                    .default(0),
            )
            .col(text_null(Inbox::LastError))
            .col(big(Inbox::ReceivedAt))
            .col(big_null(Inbox::ProcessedAt))
            .to_owned(),
    )
    .await?;
    m.create_index(
        index(
            "ux_inbox_body",
            Inbox::Table,
            &["channel_id", "body_sha256"],
        )
        .unique()
        .to_owned(),
    )
    .await?;
    m.create_index(index("ix_inbox_state", Inbox::Table, &["state", "id"]))
        .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Inbox {
    Table,
    Id,
    ChannelId,
    Body,
    BodySha256,
    State,
    Attempts,
    LastError,
    ReceivedAt,
    ProcessedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    MessageId,
    ChannelId,
    PhoneNumberId,
    Recipient,
    Payload,
    State,
    Attempts,
    NextAttemptAt,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeadLetters {
    Table,
    Id,
    ChannelId,
    Source,
    Reason,
    Payload,
    InboxId,
    CreatedAt,
}
