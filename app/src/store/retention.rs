//! Retention: each kind of personal data is kept for its configured time, then removed
//! by a periodic sweep. Raw webhook payloads (they carry numbers and words) once
//! processed, dead letters, the text of messages on cases closed long ago (with the
//! provider payloads of their finished sends), the media files of such cases (their
//! bytes deleted by the media worker), and the text of decided held messages. Case skeletons, events, metrics and the audit chain stay;
//! every sweep that removed something is in the audit log with its counts.

use super::audit::{AuditRecord, append};
use super::entities::{conversation, dead_letter, held_message, inbox, media, message, outbox};
use super::{Store, StoreError, WriteOp};
use crate::clock::SharedClock;
use crate::config::RetentionSettings;
use crate::domain::{Micros, SECOND_MICROS};
use futures::future::BoxFuture;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};

const DAY: Micros = 86_400 * SECOND_MICROS;

/// One sweep at `now`; a kind whose days are 0 is kept.
pub struct RetentionSweep {
    pub settings: RetentionSettings,
    pub now: Micros,
    /// Webhook payloads the inbox's own sweep ([`SweepInbox`]) removed just before.
    pub webhook_payloads: u64,
}

/// Removes processed webhook payloads received before `before` from the inbox.
pub struct SweepInbox {
    pub before: Micros,
}

impl WriteOp for SweepInbox {
    type Output = u64;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<u64, DbErr>> {
        Box::pin(async move {
            Ok(inbox::Entity::delete_many()
                .filter(inbox::Column::ProcessedAt.is_not_null())
                .filter(inbox::Column::ReceivedAt.lt(self.before))
                .exec(txn)
                .await?
                .rows_affected)
        })
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub webhook_payloads: u64,
    pub dead_letters: u64,
    pub message_texts: u64,
    /// Provider payloads of finished sends on those cases (they repeat the text).
    pub outbox_payloads: u64,
    pub held_message_texts: u64,
    /// Media files of cases closed long ago (their bytes are deleted right after).
    pub media_files: u64,
}

fn cutoff(now: Micros, days: u32) -> Option<Micros> {
    (days > 0).then(|| now - i64::from(days) * DAY)
}

impl WriteOp for RetentionSweep {
    type Output = Swept;
    fn apply<'a>(&'a self, txn: &'a DatabaseTransaction) -> BoxFuture<'a, Result<Swept, DbErr>> {
        Box::pin(async move {
            let s = &self.settings;
            let mut swept = Swept {
                webhook_payloads: self.webhook_payloads,
                ..Swept::default()
            };
            if let Some(before) = cutoff(self.now, s.dead_letters_days) {
                swept.dead_letters = dead_letter::Entity::delete_many()
                    .filter(dead_letter::Column::CreatedAt.lt(before))
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
            if let Some(before) = cutoff(self.now, s.message_text_days) {
                let closed_cases = cases_closed_before(before);
                swept.message_texts = message::Entity::update_many()
                    .col_expr(message::Column::Text, Expr::value(Option::<String>::None))
                    .col_expr(
                        message::Column::Content,
                        Expr::value(Option::<String>::None),
                    )
                    .filter(message::Column::ConversationId.in_subquery(closed_cases))
                    .filter(
                        message::Column::Text
                            .is_not_null()
                            .or(message::Column::Content.is_not_null()),
                    )
                    .exec(txn)
                    .await?
                    .rows_affected;
                // The provider payload of a send repeats its text: finished sends of
                // those cases keep their row (the record of what happened), not the text.
                let their_messages = messages_of_cases_closed_before(before);
                // The index forgets those texts too.
                let closed_cases = cases_closed_before(before);
                super::search::forget_messages_of(txn, closed_cases).await?;
                swept.outbox_payloads = outbox::Entity::update_many()
                    .col_expr(outbox::Column::Payload, Expr::value("{}"))
                    .filter(outbox::Column::MessageId.in_subquery(their_messages))
                    .filter(
                        outbox::Column::State
                            .is_not_in([super::outbox::QUEUED, super::outbox::SENDING]),
                    )
                    .filter(outbox::Column::Payload.ne("{}"))
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
            if let Some(before) = cutoff(self.now, s.media_days) {
                let their_messages = messages_of_cases_closed_before(before);
                swept.media_files = media::Entity::update_many()
                    .col_expr(media::Column::State, Expr::value(super::media::ERASED))
                    .col_expr(media::Column::Caption, Expr::value(Option::<String>::None))
                    .col_expr(media::Column::FileName, Expr::value(Option::<String>::None))
                    .col_expr(media::Column::UpdatedAt, Expr::value(self.now))
                    .filter(media::Column::MessageId.in_subquery(their_messages))
                    .filter(media::Column::State.ne(super::media::ERASED))
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
            if let Some(before) = cutoff(self.now, s.held_messages_days) {
                swept.held_message_texts = super::conversations::forget_held_texts()
                    .filter(held_message::Column::DecidedAt.lt(before))
                    .filter(held_message::Column::Payload.ne("{}"))
                    .exec(txn)
                    .await?
                    .rows_affected;
            }
            if swept != Swept::default() {
                append(
                    txn,
                    &AuditRecord {
                        actor: "system".into(),
                        action: "retention.swept".into(),
                        subject: None,
                        data: serde_json::json!({ "removed": swept, "policy": s }),
                        at: self.now,
                    },
                )
                .await?;
            }
            Ok(swept)
        })
    }
}

/// One sweep: the inbox's payloads first (their own database), then the rest with the
/// audit entry that counts both.
async fn sweep(
    store: &Store,
    settings: &RetentionSettings,
    now: Micros,
) -> Result<Swept, StoreError> {
    let webhook_payloads = match cutoff(now, settings.webhook_payloads_days) {
        Some(before) => store.write_inbox(SweepInbox { before }).await?,
        None => 0,
    };
    store
        .write(RetentionSweep {
            settings: settings.clone(),
            now,
            webhook_payloads,
        })
        .await
}

/// Sweeps at start and then every `sweep_interval_secs` of the service clock.
pub async fn run_retention(store: Store, clock: SharedClock, settings: RetentionSettings) {
    let interval = i64::try_from(settings.sweep_interval_secs.max(60))
        .unwrap_or(i64::MAX / SECOND_MICROS)
        * SECOND_MICROS;
    loop {
        let now = clock.now();
        match sweep(&store, &settings, now).await {
            Ok(swept) if swept != Swept::default() => {
                tracing::info!(
                    ?swept,
                    "Retention sweep removed personal data past its time."
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(error = %error, "The retention sweep failed; it runs again later.")
            }
        }
        clock.sleep_until(now + interval).await;
    }
}

/// The ids of the cases closed before `before`.
fn cases_closed_before(before: Micros) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(conversation::Column::Id)
        .from(conversation::Entity)
        .and_where(Expr::col(conversation::Column::ClosedAt).lt(before))
        .to_owned()
}

/// The ids of the messages of the cases closed before `before`.
fn messages_of_cases_closed_before(before: Micros) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(message::Column::Id)
        .from(message::Entity)
        .and_where(message::Column::ConversationId.in_subquery(cases_closed_before(before)))
        .to_owned()
}
