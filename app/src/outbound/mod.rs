//! Outbound: the outbox worker that sends queued messages through the provider.
//!
//! Sends are read from the durable outbox, claimed (`sending`) in a commit before the
//! provider is called, and their outcome recorded afterwards. Throttling (429, 130429)
//! and server errors other than 500 and 504 are retried with exponential backoff (a
//! provider's `Retry-After` is followed, up to `max_backoff_ms`); permanent errors fail
//! the message with the provider's code, 131047 (outside the 24-hour window) included,
//! which also closes the window on the case. A call whose outcome is unknown (timeout,
//! crash, a 500 or 504 that may come after the provider accepted the message) is never
//! repeated: a message is never sent twice. Messages to one customer leave one at a
//! time, in order.
//!
//! A transport channel's messages leave through its plugin's `send` ([`transport`]),
//! whose typed errors map onto the same rules.

pub mod graph_api;
pub mod media;
pub mod pacing;
pub mod transport;

use crate::actors::Conversations;
use crate::clock::SharedClock;
use crate::config::{ChannelSettings, OutboundSettings, Settings};
use crate::events::EventBus;
use crate::plugins::PluginRegistry;
use crate::store::Store;
use crate::store::entities::outbox;
use crate::store::outbox::{
    ClaimSend, DeferRecipient, OUTCOME_UNKNOWN, RecordSendOutcome, RecoverInDoubtSends, SendOutcome,
};
use crate::telemetry::metrics;
use futures::StreamExt;
use graph_api::{CallOutcome, GraphApi};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often the worker looks at the outbox even when nothing woke it (a safety net;
/// replies wake it directly).
const IDLE_POLL: Duration = Duration::from_secs(5);

pub struct OutboxWorker {
    store: Store,
    clock: SharedClock,
    events: EventBus,
    wakeup: Arc<Notify>,
    channels: HashMap<String, ChannelSettings>,
    api: GraphApi,
    transports: transport::TransportSender,
    settings: OutboundSettings,
    pair: pacing::PairPacer,
    throughput: pacing::ThroughputPacer,
    /// In a cluster: the limits every node draws from (the two above are then unused).
    shared: Option<Arc<dyn pacing::SharedLimits>>,
    conversations: Conversations,
    /// How often the outbox is read when nothing woke it.
    idle_poll: Duration,
    media: Arc<crate::media::Media>,
}

impl OutboxWorker {
    // The worker's collaborators, wired once by `Application::build`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        clock: SharedClock,
        events: EventBus,
        wakeup: Arc<Notify>,
        config: &Settings,
        plugins: Arc<PluginRegistry>,
        conversations: Conversations,
        media: Arc<crate::media::Media>,
    ) -> Result<Self, reqwest::Error> {
        let (channels, settings) = (&config.channels, config.outbound.clone());
        let api = GraphApi::new(Duration::from_millis(settings.request_timeout_ms))?;
        Ok(Self {
            store,
            clock,
            events,
            wakeup,
            channels: channels
                .iter()
                .map(|c| (c.id().to_owned(), c.clone()))
                .collect(),
            api,
            transports: transport::TransportSender::new(plugins),
            pair: pacing::PairPacer::new(
                settings.pair_burst,
                settings.pair_interval_ms as i64 * 1000,
            ),
            throughput: pacing::ThroughputPacer::new(settings.messages_per_second),
            shared: None,
            settings,
            conversations,
            idle_poll: IDLE_POLL,
            media,
        })
    }

    /// Reads the outbox at least this often: on a cluster's leader, whose replies are
    /// queued by the owners of their cases on other nodes, without waking it.
    pub fn polling_every(mut self, every: Duration) -> Self {
        self.idle_poll = every.min(IDLE_POLL);
        self
    }

    /// Paces with the cluster's shared limits instead of this node's own.
    pub fn with_shared_pacing(mut self, shared: Arc<dyn pacing::SharedLimits>) -> Self {
        self.shared = Some(shared);
        self
    }

    async fn take_pair(
        &self,
        job: &outbox::Model,
        now: crate::domain::Micros,
    ) -> Result<(), crate::domain::Micros> {
        match &self.shared {
            Some(shared) => {
                shared
                    .take_pair(&job.phone_number_id, &job.recipient, now)
                    .await
            }
            None => self.pair.take(&job.phone_number_id, &job.recipient, now),
        }
    }

    async fn wait_turn(&self, number: &str) -> bool {
        match &self.shared {
            Some(shared) => shared.wait_turn(number).await,
            None => self.throughput.wait_turn(number).await,
        }
    }

    /// Runs until the process stops.
    pub async fn run(self) {
        match self
            .store
            .write(RecoverInDoubtSends {
                now: self.clock.now(),
            })
            .await
        {
            Ok(events) => {
                if !events.is_empty() {
                    tracing::warn!(
                        count = events.len(),
                        "Sends interrupted by the last stop are marked unknown, not resent."
                    );
                }
                self.events.publish(events);
            }
            Err(error) => tracing::error!(error = %error, "Could not recover interrupted sends."),
        }
        loop {
            let now = self.clock.now();
            let due = match self
                .store
                .due_sends(now, (self.settings.concurrency * 4).max(1) as u64)
                .await
            {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(error = %error, "Could not read the outbox.");
                    tokio::time::sleep(self.idle_poll).await;
                    continue;
                }
            };
            if due.is_empty() {
                let next = self.store.next_send_due().await.ok().flatten();
                let timer = match next {
                    Some(at) => self.clock.sleep_until(at),
                    None => Box::pin(futures::future::pending()),
                };
                tokio::select! {
                    _ = self.wakeup.notified() => {}
                    _ = timer => {}
                    _ = tokio::time::sleep(self.idle_poll) => {}
                }
                continue;
            }
            // One send per customer at a time keeps their messages in order; a customer
            // past the pair rate waits, with all their later messages.
            let mut recipients = HashSet::new();
            let mut batch = Vec::new();
            for job in due {
                if !recipients.insert((job.channel_id.clone(), job.recipient.clone())) {
                    continue;
                }
                match self.take_pair(&job, now).await {
                    Ok(()) => batch.push(job),
                    Err(until) => self.defer(&job, until, now).await,
                }
            }
            futures::stream::iter(batch)
                .for_each_concurrent(self.settings.concurrency.max(1), |job| self.send(job))
                .await;
        }
    }

    async fn defer(
        &self,
        job: &outbox::Model,
        until: crate::domain::Micros,
        now: crate::domain::Micros,
    ) {
        metrics().outbound_paced.with_label_values(&["pair"]).inc();
        let deferred = self
            .store
            .write(DeferRecipient {
                channel_id: job.channel_id.clone(),
                recipient: job.recipient.clone(),
                until,
                now,
            })
            .await;
        if let Err(error) = deferred {
            tracing::error!(error = %error, "Could not defer a send to the pair rate.");
        }
    }

    #[tracing::instrument(skip_all, fields(outbox_id = job.id, message_id = job.message_id))]
    async fn send(&self, job: outbox::Model) {
        match self
            .store
            .write(ClaimSend {
                outbox_id: job.id,
                now: self.clock.now(),
            })
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::error!(error = %error, "Could not claim a send.");
                return;
            }
        }
        if self.wait_turn(&job.phone_number_id).await {
            metrics()
                .outbound_paced
                .with_label_values(&["throughput"])
                .inc();
        }
        let attempt = job.attempts as u32 + 1;
        let outcome = match self.channels.get(&job.channel_id) {
            None => SendOutcome::Failed {
                code: "channel_not_configured".into(),
                title: format!("channel {:?} is not configured", job.channel_id),
            },
            Some(channel) => match self.call(channel, &job).await {
                CallOutcome::Sent(id) => SendOutcome::Sent {
                    provider_message_id: id,
                },
                CallOutcome::Retryable { error, retry_after }
                    if attempt < self.settings.max_attempts =>
                {
                    // A provider's `Retry-After` is followed up to the configured longest
                    // pause, never beyond it.
                    let longest = Duration::from_millis(self.settings.max_backoff_ms);
                    let delay = retry_after
                        .map(|asked| asked.min(longest))
                        .unwrap_or_else(|| self.backoff(attempt));
                    SendOutcome::Retry {
                        next_attempt_at: self.clock.now() + delay.as_micros() as i64,
                        error,
                    }
                }
                CallOutcome::Retryable { error, .. } => SendOutcome::Failed {
                    code: "retries_exhausted".into(),
                    title: format!("gave up after {attempt} attempts: {error}"),
                },
                CallOutcome::Permanent { code, title } => SendOutcome::Failed { code, title },
                CallOutcome::Unknown(reason) => SendOutcome::Failed {
                    code: OUTCOME_UNKNOWN.into(),
                    title: format!("{reason}; not resent, to avoid a duplicate"),
                },
            },
        };
        let label = match &outcome {
            SendOutcome::Sent { .. } => "sent",
            SendOutcome::Retry { .. } => "retry",
            SendOutcome::Failed { .. } => "failed",
        };
        metrics().outbound_sends.with_label_values(&[label]).inc();
        if label == "sent" {
            metrics().messages.with_label_values(&["outbound"]).inc();
        }
        let record = RecordSendOutcome {
            outbox_id: job.id,
            message_id: job.message_id,
            outcome,
            now: self.clock.now(),
        };
        let events = match self.store.write(record).await {
            Ok(events) => events,
            // The row stays `sending`: at the next start it is marked unknown, never resent.
            Err(error) => {
                tracing::error!(error = %error, "Could not record a send's outcome.");
                return;
            }
        };
        let now = self.clock.now();
        self.conversations
            .record_window_refusals(&self.store, &events, now)
            .await;
        self.events.publish(events);
    }

    async fn call(&self, channel: &ChannelSettings, job: &outbox::Model) -> CallOutcome {
        match channel {
            ChannelSettings::WhatsappCloud(cloud) => {
                let job = match media::with_uploaded_media(
                    &self.api,
                    &self.media,
                    &self.store,
                    &self.clock,
                    cloud,
                    job.clone(),
                )
                .await
                {
                    Ok(job) => job,
                    Err(outcome) => return outcome,
                };
                self.api.send(cloud, &job).await
            }
            ChannelSettings::Transport(_)
                if serde_json::from_str::<serde_json::Value>(&job.payload)
                    .ok()
                    .and_then(|p| media::attached(&p))
                    .is_some() =>
            {
                // The transport contract carries no outbound files (yet).
                CallOutcome::Permanent {
                    code: "media_not_supported".into(),
                    title: "this channel's transport plugin cannot send files".into(),
                }
            }
            ChannelSettings::Transport(transport) => self.transports.send(transport, job).await,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
        Duration::from_millis(exp.min(self.settings.max_backoff_ms))
    }
}
