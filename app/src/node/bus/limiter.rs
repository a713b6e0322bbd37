//! Outbound pacing shared by every node: WhatsApp counts a business number's messages
//! per second and a customer's pair rate wherever they were sent from, so the limits live
//! in Redis, each taken by one atomic script.
//!
//! - **Throughput**: a reservation per number (`<prefix>:pace:tp:<number>` holds the next
//!   free slot, on Redis's clock); a send waits for its slot. Slots are spaced a little
//!   wider than 1/rate ([`ARRIVAL_GUARD`]) because Meta counts at its end, after network
//!   jitter between the nodes.
//! - **Pair rate**: GCRA per (number, customer) on the service clock, the customer's
//!   number hashed out of the key. Same burst and interval as one node's token bucket.
//!
//! When Redis does not answer, each node paces alone with its share: the rate divided by
//! the nodes last seen alive, and the pair interval multiplied by them.

use super::{ClusterBus, bus_metrics};
use crate::domain::Micros;
use crate::outbound::pacing::{PairPacer, SharedLimits, ThroughputPacer};
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Slots are this much wider than 1/rate (a twentieth): 50 ms of slack in any second.
const ARRIVAL_GUARD: f64 = 1.05;

const THROUGHPUT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local spacing = tonumber(ARGV[1])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
local following = slot + spacing
redis.call('SET', KEYS[1], string.format('%d', following), 'PX', math.floor((following - now) / 1000) + 1000)
return slot - now
";

const PAIR_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return tat - tolerance
end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', math.max(60000, math.floor((tat + interval - now) / 1000) + 1000))
return -1
";

pub struct SharedPacing {
    bus: Arc<ClusterBus>,
    throughput: redis::Script,
    pair: redis::Script,
    /// Microseconds between two slots of one number; 0: no throughput pacing.
    spacing: i64,
    per_second: u32,
    pair_burst: u32,
    pair_interval: Micros,
    fallback_pair: Mutex<Option<(usize, Arc<PairPacer>)>>,
    fallback_throughput: Mutex<Option<(usize, Arc<ThroughputPacer>)>>,
}

impl SharedPacing {
    /// The cluster-wide limits of `per_second` sends per number, and `pair_burst` then
    /// one per `pair_interval` to one customer (0 turns either off, as on one node).
    pub fn new(
        bus: Arc<ClusterBus>,
        per_second: u32,
        pair_burst: u32,
        pair_interval: Micros,
    ) -> Self {
        let spacing = if per_second == 0 {
            0
        } else {
            (1_000_000.0 * ARRIVAL_GUARD / f64::from(per_second)).ceil() as i64
        };
        Self {
            bus,
            throughput: redis::Script::new(THROUGHPUT_SCRIPT),
            pair: redis::Script::new(PAIR_SCRIPT),
            spacing,
            per_second,
            pair_burst: pair_burst.max(1),
            pair_interval,
            fallback_pair: Mutex::new(None),
            fallback_throughput: Mutex::new(None),
        }
    }

    /// Takes a pair token for a message to `user` from `number` at `now`, or says when
    /// one will be there.
    pub async fn take_pair(&self, number: &str, user: &str, now: Micros) -> Result<(), Micros> {
        if self.pair_interval <= 0 {
            return Ok(());
        }
        let key = self
            .bus
            .key(&format!("pace:pair:{number}:{}", hashed(user)));
        let tolerance = i64::from(self.pair_burst - 1) * self.pair_interval;
        let taken: redis::RedisResult<i64> = match self.bus.link.connection().await {
            Ok(mut connection) => {
                self.pair
                    .key(key)
                    .arg(now)
                    .arg(self.pair_interval)
                    .arg(tolerance)
                    .invoke_async(&mut connection)
                    .await
            }
            Err(error) => Err(error),
        };
        match self.bus.link.observe(taken) {
            Ok(until) if until < 0 => Ok(()),
            Ok(until) => Err(until.max(now + 1)),
            Err(error) => {
                bus_metrics()
                    .fallbacks
                    .with_label_values(&["pacing_pair"])
                    .inc();
                tracing::debug!(error = %error, "Pair pacing falls back to this node's share.");
                self.fallback_pair().take(number, user, now)
            }
        }
    }

    /// Waits for this number's next slot across the cluster; true when it had to wait.
    pub async fn wait_turn(&self, number: &str) -> bool {
        if self.spacing == 0 {
            return false;
        }
        let key = self.bus.key(&format!("pace:tp:{number}"));
        let reserved: redis::RedisResult<i64> = match self.bus.link.connection().await {
            Ok(mut connection) => {
                self.throughput
                    .key(key)
                    .arg(self.spacing)
                    .invoke_async(&mut connection)
                    .await
            }
            Err(error) => Err(error),
        };
        match self.bus.link.observe(reserved) {
            Ok(wait) if wait > 0 => {
                tokio::time::sleep(Duration::from_micros(wait as u64)).await;
                true
            }
            Ok(_) => false,
            Err(error) => {
                bus_metrics()
                    .fallbacks
                    .with_label_values(&["pacing_throughput"])
                    .inc();
                tracing::debug!(error = %error, "Throughput pacing falls back to this node's share.");
                self.fallback_throughput().wait_turn(number).await
            }
        }
    }

    /// This node's pair pacer while Redis is away: the interval times the nodes alive.
    fn fallback_pair(&self) -> Arc<PairPacer> {
        let nodes = self.bus.live_nodes();
        let mut slot = self.fallback_pair.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((n, pacer)) if *n == nodes => pacer.clone(),
            _ => {
                let pacer = Arc::new(PairPacer::new(
                    self.pair_burst.div_ceil(nodes as u32).max(1),
                    self.pair_interval * nodes as i64,
                ));
                *slot = Some((nodes, pacer.clone()));
                pacer
            }
        }
    }

    /// This node's throughput pacer while Redis is away: its share of the rate.
    fn fallback_throughput(&self) -> Arc<ThroughputPacer> {
        let nodes = self.bus.live_nodes();
        let mut slot = self
            .fallback_throughput
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some((n, pacer)) if *n == nodes => pacer.clone(),
            _ => {
                let share = (self.per_second / nodes as u32).max(1);
                let pacer = Arc::new(ThroughputPacer::new(share));
                *slot = Some((nodes, pacer.clone()));
                pacer
            }
        }
    }
}

impl SharedLimits for SharedPacing {
    fn take_pair<'a>(
        &'a self,
        number: &'a str,
        user: &'a str,
        now: Micros,
    ) -> BoxFuture<'a, Result<(), Micros>> {
        Box::pin(SharedPacing::take_pair(self, number, user, now))
    }

    fn wait_turn<'a>(&'a self, number: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(SharedPacing::wait_turn(self, number))
    }
}

/// A customer's number does not appear in Redis keys.
fn hashed(user: &str) -> String {
    let digest = Sha256::digest(user.as_bytes());
    hex::encode(&digest[..12])
}
