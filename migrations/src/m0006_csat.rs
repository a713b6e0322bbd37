//! Satisfaction surveys: the survey state of each case (`conversations.csat`, JSON) and
//! one response row per surveyed case, stored against the case, the agent and the team
//! that resolved it, for CSAT and response-rate reporting.

use crate::columns::{add_columns, big, big_null, drop_columns, id, index, text, text_null};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        add_columns(m, "conversations", vec![text_null(Alias::new("csat"))]).await?;
        m.create_table(
            Table::create()
                .table(Alias::new("csat_responses"))
                .col(id(Alias::new("id")))
                .col(big(Alias::new("conversation_id")))
                .col(big(Alias::new("contact_id")))
                .col(big_null(Alias::new("agent_id")))
                .col(big_null(Alias::new("team_id")))
                .col(text(Alias::new("channel_id")))
                // interactive (inside the window) or template.
                .col(text(Alias::new("via")))
                .col(big(Alias::new("surveyed_at")))
                .col(ColumnDef::new(Alias::new("score")).integer().null())
                .col(big_null(Alias::new("answered_at")))
                .col(text_null(Alias::new("comment")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "csat_responses_conversation",
                Alias::new("csat_responses"),
                &["conversation_id"],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        m.create_index(index(
            "csat_responses_team_surveyed",
            Alias::new("csat_responses"),
            &["team_id", "surveyed_at"],
        ))
        .await?;
        m.create_index(index(
            "csat_responses_agent_surveyed",
            Alias::new("csat_responses"),
            &["agent_id", "surveyed_at"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Alias::new("csat_responses")).to_owned())
            .await?;
        drop_columns(m, "conversations", &["csat"]).await
    }
}
