//! The cluster stream: a Redis Stream (`<prefix>:bus`) every node appends to and reads
//! from. Entries are `k` (kind), `n` (node) and `v` (JSON); a node skips its own.

use super::link::RedisLink;
use super::{ClusterBus, Invalidation, Outgoing, PresenceChange, bus_metrics};
use crate::clock::SharedClock;
use crate::events::EventBus;
use crate::routing::presence::{Presence, PresenceBoard};
use crate::store::Store;
use crate::store::entities::conversation_event;
use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How long entries stay in the stream: long enough for any reader that is not cut off
/// (one that is catches up from the database), short enough that erased personal data
/// does not linger in Redis.
const STREAM_RETENTION: Duration = Duration::from_secs(600);
/// Entries handed to Redis in one round trip.
const PUBLISH_BATCH: usize = 512;
/// Entries read per round trip.
const READ_BATCH: usize = 500;
/// How long one read waits for new entries.
const READ_BLOCK: Duration = Duration::from_millis(1000);
/// The pause before trying again after Redis failed a read.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Invalidations kept for Redis's return when it is away (more: everything is dropped).
const PENDING_INVALIDATIONS: usize = 1_000;
/// How far before the highest event delivered a catch-up read starts, in event ids:
/// events committed on other nodes shortly before Redis went away may carry lower ids
/// than ones delivered already.
const CATCH_UP_OVERLAP: i64 = 10_000;
/// How far before the highest event delivered the reads of the log made while the
/// stream is unreadable start (they run every [`RETRY_PAUSE`]; a longer overlap only
/// matters for events whose transaction took longer to commit than others').
const OUTAGE_OVERLAP: i64 = 1_000;
/// Events read from the database per page of a catch-up.
const CATCH_UP_PAGE: u64 = 500;
/// A presence key outlives its longest entry by this much.
const PRESENCE_KEY_TTL_MS: i64 = 65_000;

/// A committed event as the stream carries it.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    id: i64,
    conversation_id: i64,
    kind: String,
    data: String,
    actor: String,
    created_at: i64,
}

impl From<&conversation_event::Model> for WireEvent {
    fn from(e: &conversation_event::Model) -> Self {
        Self {
            id: e.id,
            conversation_id: e.conversation_id,
            kind: e.kind.clone(),
            data: e.data.clone(),
            actor: e.actor.clone(),
            created_at: e.created_at,
        }
    }
}

impl From<WireEvent> for conversation_event::Model {
    fn from(e: WireEvent) -> Self {
        Self {
            id: e.id,
            conversation_id: e.conversation_id,
            kind: e.kind,
            data: e.data,
            actor: e.actor,
            created_at: e.created_at,
        }
    }
}

const KIND_EVENT: &str = "event";
const KIND_PRESENCE: &str = "presence";
const KIND_INVALIDATION: &str = "invalidation";
/// "Events from this id on may be missing from the stream: read them from the database."
const KIND_CATCH_UP: &str = "catch_up";

/// Entries older than this stream id are trimmed.
fn oldest_kept() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}", now.saturating_sub(STREAM_RETENTION).as_millis())
}

fn append(pipe: &mut redis::Pipeline, key: &str, node: &str, kind: &str, value: String) {
    pipe.cmd("XADD")
        .arg(key)
        .arg("MINID")
        .arg("~")
        .arg(oldest_kept())
        .arg("*")
        .arg("k")
        .arg(kind)
        .arg("n")
        .arg(node)
        .arg("v")
        .arg(value)
        .ignore();
    bus_metrics().published.with_label_values(&[kind]).inc();
}

fn presence_key(bus: &ClusterBus, conversation_id: i64) -> String {
    bus.key(&format!("presence:{conversation_id}"))
}

/// Writes what this node hands over to the stream, in order. When Redis fails a batch,
/// the events in it are remembered as a gap (they are in the database) and announced
/// with the next batch that gets through; invalidations are kept and sent then.
pub async fn run_publisher(bus: Arc<ClusterBus>, mut outgoing: mpsc::UnboundedReceiver<Outgoing>) {
    let stream = bus.key("bus");
    let mut gap_from: Option<i64> = None;
    let mut pending: Vec<Invalidation> = Vec::new();
    while let Some(first) = outgoing.recv().await {
        let mut batch = vec![first];
        while batch.len() < PUBLISH_BATCH {
            match outgoing.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        if let Some(from) = gap_from {
            append(
                &mut pipe,
                &stream,
                &bus.node,
                KIND_CATCH_UP,
                from.to_string(),
            );
        }
        for invalidation in &pending {
            append(
                &mut pipe,
                &stream,
                &bus.node,
                KIND_INVALIDATION,
                serde_json::to_string(invalidation).unwrap_or_default(),
            );
        }
        let mut lowest_event = None;
        for item in &batch {
            match item {
                Outgoing::Events(events) => {
                    for event in events {
                        lowest_event =
                            Some(lowest_event.map_or(event.id, |l: i64| l.min(event.id)));
                        let wire = serde_json::to_string(&WireEvent::from(event.as_ref()));
                        append(
                            &mut pipe,
                            &stream,
                            &bus.node,
                            KIND_EVENT,
                            wire.unwrap_or_default(),
                        );
                    }
                }
                Outgoing::Presence(change) => {
                    let key = presence_key(&bus, change.conversation_id);
                    match &change.presence {
                        Some(presence) => {
                            pipe.hset(
                                &key,
                                change.agent_id,
                                serde_json::to_string(presence).unwrap_or_default(),
                            )
                            .ignore()
                            .pexpire(&key, PRESENCE_KEY_TTL_MS)
                            .ignore();
                        }
                        None => {
                            pipe.hdel(&key, change.agent_id).ignore();
                        }
                    }
                    let value = serde_json::to_string(change).unwrap_or_default();
                    append(&mut pipe, &stream, &bus.node, KIND_PRESENCE, value);
                }
                Outgoing::Invalidation(invalidation) => {
                    let value = serde_json::to_string(invalidation).unwrap_or_default();
                    append(&mut pipe, &stream, &bus.node, KIND_INVALIDATION, value);
                }
            }
        }
        let written = match bus.link.connection().await {
            Ok(mut connection) => pipe.query_async::<()>(&mut connection).await,
            Err(error) => Err(error),
        };
        match bus.link.observe(written) {
            Ok(()) => {
                gap_from = None;
                pending.clear();
            }
            Err(error) => {
                bus_metrics()
                    .fallbacks
                    .with_label_values(&["publish"])
                    .inc();
                tracing::warn!(error = %error, "Redis did not take this node's changes; other nodes will read the events from the database.");
                if let Some(lowest) = lowest_event {
                    gap_from = Some(gap_from.map_or(lowest, |g| g.min(lowest)));
                }
                for item in batch {
                    if let Outgoing::Invalidation(invalidation) = item
                        && !pending.contains(&invalidation)
                    {
                        pending.push(invalidation);
                    }
                }
                if pending.len() > PENDING_INVALIDATIONS {
                    pending = vec![Invalidation::Everything];
                }
            }
        }
    }
}

/// What the reader delivers into.
pub struct Sinks {
    pub events: EventBus,
    pub presence: Arc<PresenceBoard>,
    pub invalidations: broadcast::Sender<Invalidation>,
    pub store: Store,
    pub clock: SharedClock,
}

/// Reads the other nodes' entries and delivers them on this node. While Redis fails
/// it, every event (this node's own too) reaches subscribers from the database, in id
/// order. When Redis is back, the reader starts again at the stream's end and reads from
/// the database what it may have missed (events), from Redis what lives there
/// (presence), and drops every cache (invalidations).
pub async fn run_reader(bus: Arc<ClusterBus>, sinks: Sinks) {
    // A connection of its own: a blocking read must not hold up other commands.
    let link = match RedisLink::open(&bus.url, READ_BLOCK * 3) {
        Ok(link) => link,
        Err(error) => {
            tracing::error!(error = %error, "The cluster stream cannot be read.");
            return;
        }
    };
    // Events logged before this node joined are not delivered as if they were new.
    match sinks.store.last_event_id().await {
        Ok(id) => sinks.events.count_delivered_up_to(id),
        Err(error) => {
            tracing::warn!(error = %error, "Could not read where the event log ends; a catch-up may deliver older events.")
        }
    }
    let stream = bus.key("bus");
    let mut last: Option<String> = None;
    // Whether something may have been missed since the last good read.
    let mut missed = false;
    let mut last_read = std::time::Instant::now();
    loop {
        // Paused for longer than the stream keeps entries: some may be gone.
        if last_read.elapsed() > STREAM_RETENTION / 2 {
            missed = true;
        }
        let mut connection = match link.connection().await {
            Ok(connection) => connection,
            Err(error) => {
                read_failed(&sinks, &error, &mut missed).await;
                continue;
            }
        };
        if last.is_none() || missed {
            let end: redis::RedisResult<StreamRangeReply> = redis::cmd("XREVRANGE")
                .arg(&stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut connection)
                .await;
            match end {
                Ok(end) => {
                    let first_start = last.is_none() && !missed;
                    last = Some(
                        end.ids
                            .first()
                            .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()),
                    );
                    if !first_start {
                        // Live again first, so that nothing committed meanwhile falls
                        // between the last read of the log and live delivery.
                        sinks.events.hold_local(false);
                        recover(&bus, &sinks).await;
                    }
                    missed = false;
                    last_read = std::time::Instant::now();
                }
                Err(error) => {
                    read_failed(&sinks, &error, &mut missed).await;
                    continue;
                }
            }
        }
        let from = last.clone().unwrap_or_else(|| "0-0".to_owned());
        let read: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_BATCH)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&from)
            .query_async(&mut connection)
            .await;
        let reply = match read {
            Ok(reply) => {
                last_read = std::time::Instant::now();
                reply
            }
            Err(error) => {
                read_failed(&sinks, &error, &mut missed).await;
                continue;
            }
        };
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            last = Some(entry.id.clone());
            if entry.get::<String>("n").as_deref() == Some(bus.node.as_str()) {
                continue;
            }
            take(&sinks, &entry).await;
        }
    }
}

/// The stream could not be read: until it can, subscribers here get every event from
/// the database, read every [`RETRY_PAUSE`].
async fn read_failed(sinks: &Sinks, error: &redis::RedisError, missed: &mut bool) {
    if !*missed {
        bus_metrics().fallbacks.with_label_values(&["read"]).inc();
        bus_metrics().up.set(0);
        tracing::warn!(error = %error, "The cluster stream cannot be read; events reach this node's subscribers from the database until it can.");
        sinks.events.hold_local(true);
    }
    *missed = true;
    catch_up(sinks, sinks.events.highest_delivered() - OUTAGE_OVERLAP).await;
    tokio::time::sleep(RETRY_PAUSE).await;
}

/// Delivers one entry of another node.
async fn take(sinks: &Sinks, entry: &StreamId) {
    let (Some(kind), Some(value)) = (entry.get::<String>("k"), entry.get::<String>("v")) else {
        tracing::warn!(entry = %entry.id, "A cluster stream entry without kind or value is skipped.");
        return;
    };
    bus_metrics()
        .received
        .with_label_values(&[kind.as_str()])
        .inc();
    match kind.as_str() {
        KIND_EVENT => match serde_json::from_str::<WireEvent>(&value) {
            Ok(event) => {
                sinks.events.deliver_remote(Arc::new(event.into()));
            }
            Err(error) => {
                tracing::warn!(error = %error, "An unreadable event on the cluster stream is skipped; it is in the database.")
            }
        },
        KIND_PRESENCE => match serde_json::from_str::<PresenceChange>(&value) {
            Ok(change) => sinks.presence.apply_remote(change, sinks.clock.now()),
            Err(error) => {
                tracing::warn!(error = %error, "An unreadable presence change is skipped.")
            }
        },
        KIND_INVALIDATION => match serde_json::from_str::<Invalidation>(&value) {
            Ok(invalidation) => {
                let _ = sinks.invalidations.send(invalidation);
            }
            Err(error) => {
                tracing::warn!(error = %error, "An unreadable invalidation: every cache is dropped.");
                let _ = sinks.invalidations.send(Invalidation::Everything);
            }
        },
        KIND_CATCH_UP => match value.parse::<i64>() {
            Ok(from) => catch_up(sinks, from.saturating_sub(1)).await,
            Err(_) => catch_up(sinks, sinks.events.highest_delivered() - CATCH_UP_OVERLAP).await,
        },
        other => tracing::debug!(
            kind = other,
            "An entry of a kind this version does not know is skipped."
        ),
    }
}

/// After this node could not read the stream: events from the database, presence from
/// Redis, and every cache dropped.
async fn recover(bus: &ClusterBus, sinks: &Sinks) {
    tracing::info!("The cluster stream is readable again; catching up.");
    catch_up(sinks, sinks.events.highest_delivered() - CATCH_UP_OVERLAP).await;
    load_presence(bus, sinks).await;
    let _ = sinks.invalidations.send(Invalidation::Everything);
}

/// Delivers the events logged after `after` that this node has not delivered, oldest
/// first. It never starts below what the bus has forgotten (those count as delivered).
async fn catch_up(sinks: &Sinks, after: i64) {
    let Some(floor) = sinks.events.catch_up_floor() else {
        return;
    };
    let mut after = after.max(floor).max(0);
    loop {
        let page = match sinks.store.events_after(after, CATCH_UP_PAGE).await {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(error = %error, "Catching up with the event log failed; subscribers can resume from their last event id.");
                return;
            }
        };
        let full = page.len() as u64 == CATCH_UP_PAGE;
        for event in page {
            after = event.id;
            if sinks.events.deliver_remote(Arc::new(event)) {
                bus_metrics().caught_up.inc();
            }
        }
        if !full {
            return;
        }
    }
}

/// Reads every presence entry Redis holds into this node's board.
async fn load_presence(bus: &ClusterBus, sinks: &Sinks) {
    let Ok(mut connection) = bus.link.connection().await else {
        return;
    };
    let pattern = presence_key(bus, 0).replace(":0", ":*");
    let keys: redis::RedisResult<Vec<String>> = async {
        let mut keys = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut connection)
                .await?;
            keys.extend(found);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
    .await;
    let Ok(keys) = bus.link.observe(keys) else {
        return;
    };
    let now = sinks.clock.now();
    for key in keys {
        let Some(conversation_id) = key.rsplit(':').next().and_then(|id| id.parse().ok()) else {
            continue;
        };
        let entries: redis::RedisResult<Vec<(i64, String)>> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut connection)
            .await;
        for (agent_id, value) in entries.unwrap_or_default() {
            if let Ok(presence) = serde_json::from_str::<Presence>(&value) {
                sinks.presence.apply_remote(
                    PresenceChange {
                        conversation_id,
                        agent_id,
                        presence: Some(presence),
                    },
                    now,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::presence::PresenceState;

    #[test]
    fn an_event_crosses_the_wire_unchanged() {
        let event = conversation_event::Model {
            id: 7,
            conversation_id: 3,
            kind: "message_in".into(),
            data: r#"{"text":"hi"}"#.into(),
            actor: "customer".into(),
            created_at: 1_669_233_778_000_000,
        };
        let wire = serde_json::to_string(&WireEvent::from(&event)).unwrap_or_default();
        let back: conversation_event::Model = serde_json::from_str::<WireEvent>(&wire)
            .map(Into::into)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
        let presence = Presence {
            agent_id: 1,
            agent_name: "Ana".into(),
            state: PresenceState::Typing,
            since: 1,
            expires_at: 2,
        };
        assert!(serde_json::to_string(&presence).is_ok());
    }
}
