//! The Redis side of a cluster: one stream per cluster that carries what every node must
//! hear about (committed events, presence changes, cache invalidations), a shared limiter
//! for outbound pacing ([`limiter`]), and a roll of the nodes alive.
//!
//! Nothing here is a source of truth. Events are in PostgreSQL before they are published;
//! a node that could not publish (Redis away) leaves a catch-up marker when Redis is back,
//! and a node that could not read re-reads the event log from the database by event id,
//! so subscribers on every node see every event once ([`crate::events::EventBus`] drops
//! what arrives twice). Invalidations a node missed are made up for by dropping all of its
//! caches; presence is reloaded from Redis, where it lives with an expiry.
//!
//! The node that committed an event delivers it to its own subscribers at once; Redis
//! only carries it to the others, so local subscribers never wait for Redis.

pub mod apply;
pub mod limiter;
mod link;
mod metrics;
mod stream;

pub use metrics::bus_metrics;

pub use crate::cluster::bus::{Invalidation, Outgoing, PresenceChange, Relay};
use crate::config::ClusterSettings;
use link::RedisLink;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a command may wait for Redis before the node does without.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);
/// How often a node announces itself on the roll of live nodes.
const NODE_HEARTBEAT: Duration = Duration::from_secs(1);
/// A node not heard from for this long no longer counts (for pacing shares).
const NODE_EXPIRY_MS: u64 = 5_000;

/// This node's membership of a cluster, on the Redis side.
pub struct ClusterBus {
    node: String,
    prefix: String,
    url: String,
    link: RedisLink,
    live_nodes: AtomicUsize,
}

impl ClusterBus {
    /// Checks the settings; Redis is reached at the first use, so a node starts (and
    /// serves) while Redis is away.
    pub fn new(settings: &ClusterSettings) -> anyhow::Result<Arc<Self>> {
        let url = settings.redis_url.clone().unwrap_or_default();
        let link = RedisLink::open(&url, COMMAND_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("cluster.redis_url is not a Redis URL: {e}"))?;
        bus_metrics().nodes.set(1);
        Ok(Arc::new(Self {
            node: settings.node_id(),
            prefix: settings.key_prefix.trim().to_owned(),
            url,
            link,
            live_nodes: AtomicUsize::new(1),
        }))
    }

    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// A Redis key of this cluster.
    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    /// Nodes alive at the last look (at least this one).
    pub fn live_nodes(&self) -> usize {
        self.live_nodes.load(Ordering::Relaxed).max(1)
    }

    /// Starts the publisher, the reader and the heartbeat; returns the relay the rest of
    /// the node publishes through.
    pub fn start(self: &Arc<Self>) -> (Relay, mpsc::UnboundedReceiver<Outgoing>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(self.clone().announce());
        (Relay::to(sender), receiver)
    }

    /// Keeps this node on the roll of live nodes and counts them.
    async fn announce(self: Arc<Self>) {
        let script = redis::Script::new(
            r"
            local t = redis.call('TIME')
            local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
            redis.call('ZADD', KEYS[1], now, ARGV[1])
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
            redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
            return redis.call('ZCARD', KEYS[1])
            ",
        );
        let key = self.key("nodes");
        loop {
            if let Ok(mut connection) = self.link.connection().await {
                let counted: redis::RedisResult<i64> = script
                    .key(&key)
                    .arg(&self.node)
                    .arg(NODE_EXPIRY_MS)
                    .invoke_async(&mut connection)
                    .await;
                if let Ok(count) = self.link.observe(counted) {
                    let count = usize::try_from(count).unwrap_or(1).max(1);
                    self.live_nodes.store(count, Ordering::Relaxed);
                    bus_metrics().nodes.set(count as i64);
                }
            }
            tokio::time::sleep(NODE_HEARTBEAT).await;
        }
    }
}

pub use stream::{Sinks, run_publisher, run_reader};
