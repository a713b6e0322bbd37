//! After the acknowledgement: from a stored webhook to applied messages and statuses.
//!
//! Each message goes to its conversation actor; messages of one conversation within a
//! payload are applied in payload order. Statuses go straight to the store (they change
//! no conversation state an actor decides on). An item whose apply fails is retried with
//! a growing pause (about nine seconds in all by default), then set aside in the
//! dead-letter table (that write retried the same way). An inbox row is marked done only
//! once every item in it has been applied or set aside; a row with an item that was
//! neither stays pending, and rows still pending at start-up are replayed, which is safe
//! because every item is recorded once.

use crate::actors::Conversations;
use crate::actors::conversation::CustomerMessageArrived;
use crate::clock::SharedClock;
use crate::domain::ConversationKey;
use crate::domain::inbound::{InboundMessage, StatusUpdate, TemplateStatusUpdate};
use crate::events::EventBus;
use crate::store::Store;
use crate::store::batcher::Batcher;
use crate::store::inbox::{ForgetDeadLetter, MarkInboxDead, MarkInboxDone, RecordDeadLetter};
use crate::store::outbox::{ApplyStatuses, StatusItem};
use crate::telemetry::metrics;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// A stored webhook waiting to be applied.
pub struct InboxItem {
    pub inbox_id: i64,
    pub channel_id: String,
    pub body: Bytes,
    pub received_at: i64,
    pub committed: std::time::Instant,
    pub span: tracing::Span,
}

/// A dead letter applied again.
#[derive(Debug, Clone)]
pub struct DeadLetterRedriven {
    pub id: i64,
    pub source: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RedriveError {
    #[error("no dead letter {0}")]
    NotFound(i64),
    #[error(
        "a {0} dead letter holds a payload that could not be read; it is kept for inspection and cannot be re-driven"
    )]
    NotRedrivable(String),
    #[error("the dead letter could not be applied again: {0}")]
    Failed(String),
}

/// Pause before retrying an item whose apply failed (a transient store error, a
/// restarted actor); doubled on each further attempt, up to [`APPLY_RETRY_LONGEST`].
const APPLY_RETRY_BASE: Duration = Duration::from_millis(50);
/// The longest pause between two attempts: with the default ten attempts an item rides
/// out about nine seconds of database trouble before it is set aside.
const APPLY_RETRY_LONGEST: Duration = Duration::from_secs(2);
/// Most delivery statuses written by one statement.
const STATUSES_PER_BATCH: usize = 1024;
/// Pause between two writes that mark processed inbox rows done.
const MARK_DONE_PAUSE: Duration = Duration::from_millis(100);
/// Inbox rows replayed per page at start-up.
const REPLAY_PAGE: u64 = 500;

#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

struct Inner {
    conversations: Conversations,
    store: Store,
    clock: SharedClock,
    events: EventBus,
    statuses: Batcher<ApplyStatuses>,
    done: mpsc::UnboundedSender<i64>,
    max_attempts: u32,
    numbers: ListedNumbers,
    /// On a cluster node: messages of cases owned elsewhere are left to their owner.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

/// The business numbers each Cloud API channel lists (`phone_number_ids`): a signed
/// webhook about any other number is not taken in. Channels absent from the map (transport
/// channels) take every number their provider sends.
#[derive(Debug, Clone, Default)]
pub struct ListedNumbers(Arc<std::collections::HashMap<String, Vec<String>>>);

impl ListedNumbers {
    pub fn from_settings(channels: &[crate::config::ChannelSettings]) -> Self {
        let listed = channels
            .iter()
            .filter_map(|channel| match channel {
                crate::config::ChannelSettings::WhatsappCloud(cloud) => {
                    Some((cloud.id.clone(), cloud.phone_number_ids.clone()))
                }
                crate::config::ChannelSettings::Transport(_) => None,
            })
            .collect();
        Self(Arc::new(listed))
    }

    /// Why a number is not taken in on a channel, if it is not.
    pub fn refusal(&self, channel_id: &str, phone_number_id: &str) -> Option<String> {
        let listed = self.0.get(channel_id)?;
        (!listed.iter().any(|n| n == phone_number_id)).then(|| {
            format!(
                "business number {phone_number_id} is not one of channel {channel_id}'s phone_number_ids; not taken in"
            )
        })
    }
}

impl Dispatcher {
    pub fn start(
        conversations: Conversations,
        store: Store,
        clock: SharedClock,
        events: EventBus,
        max_attempts: u32,
        numbers: ListedNumbers,
    ) -> Self {
        let (done, finished) = mpsc::unbounded_channel();
        tokio::spawn(mark_done(store.clone(), clock.clone(), finished));
        let statuses = Batcher::start(store.writer(), STATUSES_PER_BATCH);
        Self {
            inner: Arc::new(Inner {
                conversations,
                store,
                clock,
                events,
                statuses,
                done,
                max_attempts: max_attempts.max(1),
                numbers,
                cluster: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Makes this dispatcher a cluster node's: it applies only the messages of cases this
    /// node owns, and leaves the others' rows pending for their owners.
    pub fn join_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.inner.cluster.set(cluster);
    }

    /// Applies the pending inbox rows whose messages this node owns (a cluster node's
    /// share of the work other nodes took in), oldest first.
    pub async fn apply_pending_owned(&self) -> Result<usize, crate::store::StoreError> {
        let mut after = 0;
        let mut seen = 0;
        loop {
            let rows = self.inner.store.pending_inbox(after, REPLAY_PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                let span = tracing::info_span!("intake.pending", inbox_id = row.id);
                self.process_stored(row, span).await;
                seen += 1;
            }
        }
        Ok(seen)
    }

    /// Processes an inbox row read back from the store (pending, or left by a previous run).
    async fn process_stored(&self, row: crate::store::entities::inbox::Model, span: tracing::Span) {
        self.process(InboxItem {
            inbox_id: row.id,
            channel_id: row.channel_id,
            body: Bytes::from(row.body),
            received_at: row.received_at,
            committed: std::time::Instant::now(),
            span: span.clone(),
        })
        .instrument(span)
        .await
    }

    /// Processes a committed webhook in the background.
    pub fn dispatch(&self, item: InboxItem) {
        let this = self.clone();
        let span =
            tracing::info_span!(parent: &item.span, "intake.process", inbox_id = item.inbox_id);
        tokio::spawn(async move { this.process(item).await }.instrument(span));
    }

    /// Replays the inbox rows left pending by a previous run, oldest first: those up to
    /// `up_to`, the newest row stored before this run started taking webhooks (later rows
    /// are being processed live).
    pub async fn replay_pending(&self, up_to: i64) -> Result<usize, crate::store::StoreError> {
        let mut after = 0;
        let mut replayed = 0;
        loop {
            let rows = self.inner.store.pending_inbox(after, REPLAY_PAGE).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows.into_iter().filter(|row| row.id <= up_to) {
                let span = tracing::info_span!("intake.replay", inbox_id = row.id);
                self.process_stored(row, span).await;
                replayed += 1;
            }
            if after >= up_to {
                break;
            }
        }
        if replayed > 0 {
            tracing::info!(
                replayed,
                "Replayed webhooks left pending by the previous run."
            );
        }
        Ok(replayed)
    }

    async fn process(&self, item: InboxItem) {
        let inner = &self.inner;
        let mut batch = match super::transport::parse_stored(&item.body) {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(error = %error, "Signed webhook cannot be parsed; kept as a dead letter.");
                self.dead_letter(&item, "webhook", error.to_string(), item.body.clone(), true)
                    .await;
                return;
            }
        };
        // Whether every item was applied or set aside as a dead letter: only then is the
        // row done; otherwise it stays pending and is replayed at the next start.
        let mut settled = true;
        for rejected in &batch.rejected {
            tracing::warn!(path = %rejected.path, reason = %rejected.reason, "Webhook item cannot be parsed; kept as a dead letter.");
            let reason = format!("{}: {}", rejected.path, rejected.reason);
            settled &= self
                .dead_letter(&item, "webhook_item", reason, item.body.clone(), false)
                .await;
        }

        // Items about a number the channel does not list: kept as dead letters (re-drivable
        // once the number is added), never applied.
        let numbers = &inner.numbers;
        let mut listed = Vec::with_capacity(batch.messages.len());
        for message in std::mem::take(&mut batch.messages) {
            let Some(reason) = numbers.refusal(&item.channel_id, &message.phone_number_id) else {
                listed.push(message);
                continue;
            };
            tracing::warn!(reason = %reason, "Webhook message for an unlisted number; kept as a dead letter.");
            let payload = serde_json::to_vec(&message).unwrap_or_default();
            settled &= self
                .dead_letter(&item, "message", reason, payload.into(), false)
                .await;
        }
        batch.messages = listed;
        let (listed, unlisted): (Vec<_>, Vec<_>) = std::mem::take(&mut batch.statuses)
            .into_iter()
            .partition(|s| {
                numbers
                    .refusal(&item.channel_id, &s.phone_number_id)
                    .is_none()
            });
        batch.statuses = listed;
        if let Some(reason) = unlisted
            .first()
            .and_then(|s| numbers.refusal(&item.channel_id, &s.phone_number_id))
        {
            let payload = serde_json::to_vec(&unlisted).unwrap_or_default();
            settled &= self
                .dead_letter(&item, "status", reason, payload.into(), false)
                .await;
        }

        // Messages of one conversation, in payload order; conversations in parallel.
        let mut groups: Vec<(ConversationKey, Vec<Arc<InboundMessage>>)> = Vec::new();
        for message in batch.messages {
            let key = ConversationKey {
                channel_id: item.channel_id.clone(),
                phone_number_id: message.phone_number_id.clone(),
                wa_id: message.wa_id.clone(),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(Arc::new(message)),
                None => groups.push((key, vec![Arc::new(message)])),
            }
        }
        // A cluster node applies the cases it owns; the others' owners apply theirs.
        let elsewhere: Vec<(ConversationKey, Vec<Arc<InboundMessage>>)> = match inner.cluster.get()
        {
            Some(cluster) => {
                let (owned, elsewhere) = groups.into_iter().partition(|(k, _)| cluster.owns(k));
                groups = owned;
                elsewhere
            }
            None => Vec::new(),
        };
        let conversations = groups.into_iter().map(|(key, messages)| {
            let item = &item;
            async move {
                let mut settled = true;
                for message in messages {
                    settled &= self.apply_message(item, &key, message).await;
                }
                settled
            }
        });
        let statuses = async {
            if batch.statuses.is_empty() {
                return true;
            }
            let Err(last_error) = self.apply_statuses(&item.channel_id, &batch.statuses).await
            else {
                return true;
            };
            let payload = serde_json::to_vec(&batch.statuses).unwrap_or_default();
            self.dead_letter(
                &item,
                "status",
                format!("statuses could not be applied: {last_error}"),
                payload.into(),
                false,
            )
            .await
        };
        let templates = async {
            let mut settled = true;
            for update in &batch.template_statuses {
                if let Err(error) = self.apply_template_status(update).await {
                    let payload = serde_json::to_vec(update).unwrap_or_default();
                    settled &= self
                        .dead_letter(
                            &item,
                            "template_status",
                            format!("template status could not be applied: {error}"),
                            payload.into(),
                            false,
                        )
                        .await;
                }
            }
            settled
        };
        let (conversations, statuses, templates) = futures::join!(
            futures::future::join_all(conversations),
            statuses,
            templates
        );
        let applied_here = settled && statuses && templates && conversations.into_iter().all(|s| s);
        if applied_here && !elsewhere.is_empty() {
            // Done once the owners have applied their messages; until then, wake them.
            let pmids: Vec<String> = elsewhere
                .iter()
                .flat_map(|(_, messages)| messages.iter().map(|m| m.provider_message_id.clone()))
                .collect();
            match inner
                .store
                .messages_recorded(&item.channel_id, &pmids)
                .await
            {
                Ok(true) => {
                    let _ = inner.done.send(item.inbox_id);
                }
                Ok(false) => crate::cluster::inbox::wake_owners(&inner.store).await,
                Err(error) => {
                    tracing::warn!(error = %error, "Could not tell whether other nodes applied a webhook; it stays pending.");
                }
            }
        } else if applied_here {
            let _ = inner.done.send(item.inbox_id);
        } else {
            metrics().inbox_unsettled.inc();
            tracing::error!(
                inbox_id = item.inbox_id,
                "A webhook item was neither applied nor kept as a dead letter; the webhook stays pending and is replayed at the next start."
            );
        }
    }

    /// Records delivery statuses (with retries); a `failed` callback for a send Meta
    /// refused as outside the window closes it on the case.
    async fn apply_statuses(
        &self,
        channel_id: &str,
        statuses: &[StatusUpdate],
    ) -> Result<(), String> {
        let inner = &self.inner;
        // Recording a status twice is harmless (its unique key skips it), so a failed
        // attempt simply resubmits them all.
        let events = with_retries(inner.max_attempts, "Statuses", || async move {
            let now = inner.clock.now();
            let submitted = statuses.iter().map(|status| {
                inner.statuses.submit(StatusItem {
                    channel_id: channel_id.to_owned(),
                    status: status.clone(),
                    now,
                })
            });
            let mut events = Vec::new();
            for result in futures::future::join_all(submitted).await {
                events.extend(result?);
            }
            Ok::<_, crate::store::StoreError>(events)
        })
        .await?;
        let now = inner.clock.now();
        inner
            .conversations
            .record_window_refusals(&inner.store, &events, now)
            .await;
        inner.events.publish(events);
        Ok(())
    }

    /// Records Meta's verdict on a template (with retries).
    async fn apply_template_status(&self, update: &TemplateStatusUpdate) -> Result<(), String> {
        let inner = &self.inner;
        with_retries(inner.max_attempts, "Template status", || async {
            inner
                .store
                .write(crate::store::templates::RecordMetaTemplateStatus {
                    name: update.name.clone(),
                    language: update.language.clone(),
                    event: update.event.clone(),
                    meta_template_id: update.meta_template_id.clone(),
                    reason: update.reason.clone(),
                    now: inner.clock.now(),
                })
                .await
        })
        .await
        .map(drop)
    }

    /// Hands one message to its conversation's actor (with retries).
    async fn deliver_message(
        &self,
        key: &ConversationKey,
        message: Arc<InboundMessage>,
        received_at: i64,
        committed: std::time::Instant,
        redriven: bool,
    ) -> Result<(), String> {
        let inner = &self.inner;
        let arrived = CustomerMessageArrived {
            message,
            received_at,
            committed,
            span: tracing::Span::current(),
            redriven,
        };
        let arrived = &arrived;
        with_retries(inner.max_attempts, "Message", || async move {
            inner.conversations.ask(key, arrived.clone()).await
        })
        .await
        .map(drop)
    }

    /// Applies a dead letter again, at an admin's request (once the cause is fixed): a
    /// message, delivery statuses or a template verdict that could not be applied. Once
    /// applied, the dead letter is removed (and the removal audited); if it fails again
    /// the dead letter stays and the error is answered. Payloads that could not be read
    /// at all are kept for inspection and cannot be re-driven.
    pub async fn redrive(&self, id: i64, actor: &str) -> Result<DeadLetterRedriven, RedriveError> {
        let inner = &self.inner;
        let letter = inner
            .store
            .dead_letter(id)
            .await
            .map_err(|e| RedriveError::Failed(e.to_string()))?
            .ok_or(RedriveError::NotFound(id))?;
        let unreadable =
            |e: serde_json::Error| RedriveError::Failed(format!("payload cannot be read: {e}"));
        match letter.source.as_str() {
            "message" => {
                let message: InboundMessage =
                    serde_json::from_slice(&letter.payload).map_err(unreadable)?;
                if let Some(reason) = inner
                    .numbers
                    .refusal(&letter.channel_id, &message.phone_number_id)
                {
                    return Err(RedriveError::Failed(reason));
                }
                let key = ConversationKey {
                    channel_id: letter.channel_id.clone(),
                    phone_number_id: message.phone_number_id.clone(),
                    wa_id: message.wa_id.clone(),
                };
                let received_at = message.sent_at.timestamp_micros().min(letter.created_at);
                self.deliver_message(
                    &key,
                    Arc::new(message),
                    received_at,
                    std::time::Instant::now(),
                    true,
                )
                .await
            }
            "status" => {
                let statuses: Vec<StatusUpdate> =
                    serde_json::from_slice(&letter.payload).map_err(unreadable)?;
                if let Some(reason) = statuses.iter().find_map(|s| {
                    inner
                        .numbers
                        .refusal(&letter.channel_id, &s.phone_number_id)
                }) {
                    return Err(RedriveError::Failed(reason));
                }
                self.apply_statuses(&letter.channel_id, &statuses).await
            }
            "template_status" => {
                let update: TemplateStatusUpdate =
                    serde_json::from_slice(&letter.payload).map_err(unreadable)?;
                self.apply_template_status(&update).await
            }
            other => return Err(RedriveError::NotRedrivable(other.to_owned())),
        }
        .map_err(RedriveError::Failed)?;
        inner
            .store
            .write(ForgetDeadLetter {
                id,
                actor: actor.to_owned(),
                at: inner.clock.now(),
            })
            .await
            .map_err(|e| RedriveError::Failed(e.to_string()))?;
        Ok(DeadLetterRedriven {
            id,
            source: letter.source,
        })
    }

    /// Applies one message, or keeps it as a dead letter; `false` when neither happened.
    async fn apply_message(
        &self,
        item: &InboxItem,
        key: &ConversationKey,
        message: Arc<InboundMessage>,
    ) -> bool {
        let applied = self
            .deliver_message(
                key,
                message.clone(),
                item.received_at,
                item.committed,
                false,
            )
            .await;
        let Err(last_error) = applied else {
            return true;
        };
        let payload = serde_json::to_vec(message.as_ref()).unwrap_or_default();
        let reason = format!(
            "message {} could not be applied: {last_error}",
            message.provider_message_id
        );
        self.dead_letter(item, "message", reason, payload.into(), false)
            .await
    }

    /// Keeps an item that cannot be applied as a dead letter, retrying the write as an
    /// apply is retried; `false` when it could not be stored either.
    async fn dead_letter(
        &self,
        item: &InboxItem,
        source: &'static str,
        reason: String,
        payload: Bytes,
        kill_inbox_row: bool,
    ) -> bool {
        metrics().dead_letters.with_label_values(&[source]).inc();
        let at = self.inner.clock.now();
        let op = RecordDeadLetter {
            channel_id: item.channel_id.clone(),
            source,
            reason: reason.clone(),
            payload,
            inbox_id: Some(item.inbox_id),
            at,
        };
        let stored = with_retries(self.inner.max_attempts, "Dead letter", || {
            self.inner.store.write(op.clone())
        })
        .await;
        if let Err(error) = stored {
            // The inbox row stays pending and is replayed at the next start.
            tracing::error!(error = %error, "Dead letter could not be stored.");
            return false;
        }
        if kill_inbox_row {
            // After the dead letter: a crash in between replays the row, which only
            // records the dead letter again.
            let op = MarkInboxDead {
                id: item.inbox_id,
                reason,
                at,
            };
            if let Err(error) = self.inner.store.write_inbox(op).await {
                tracing::error!(error = %error, "Inbox row could not be marked dead; it is replayed at the next start.");
            }
        }
        true
    }
}

/// Runs `attempt` up to `max` times, pausing between tries (the pause doubles each time);
/// answers the last error when every try failed.
async fn with_retries<T, E, F, Fut>(max: u32, what: &str, mut attempt: F) -> Result<T, String>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut last_error = String::new();
    for n in 0..max {
        if n > 0 {
            let pause = APPLY_RETRY_BASE.saturating_mul(2u32.saturating_pow(n - 1));
            tokio::time::sleep(pause.min(APPLY_RETRY_LONGEST)).await;
        }
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                tracing::warn!(error = %error, attempt = n, "{what} could not be applied; retrying.");
                last_error = error.to_string();
            }
        }
    }
    Err(last_error)
}

/// Marks finished inbox rows done, many per write, at most every [`MARK_DONE_PAUSE`]: the
/// inbox's writer is the one every acknowledgement waits on, so it gets one such
/// statement per pause rather than one per commit. (A row finished but not yet marked
/// when the process stops is replayed at the next start and found applied.)
async fn mark_done(store: Store, clock: SharedClock, mut finished: mpsc::UnboundedReceiver<i64>) {
    let mut ids = Vec::with_capacity(1024);
    while finished.recv_many(&mut ids, usize::MAX).await > 0 {
        let op = MarkInboxDone {
            ids: std::mem::take(&mut ids),
            at: clock.now(),
        };
        if let Err(error) = store.write_inbox(op).await {
            // Harmless: the rows are replayed (and found already applied) at the next start.
            tracing::warn!(error = %error, "Could not mark webhooks processed.");
        }
        tokio::time::sleep(MARK_DONE_PAUSE).await;
    }
}
