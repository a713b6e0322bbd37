//! Pacing the outbox to WhatsApp's limits instead of discovering them as errors:
//!
//! - **Pair rate** (131056): one business number may send one user about one message per
//!   6 seconds, after a short burst. A token bucket per (number, user), on the service
//!   clock; a send without a token is deferred, with every later message to that user, so
//!   their order holds.
//! - **Throughput** (130429): a number sends at most its tier's messages per second. Calls
//!   are spaced in real time per number.
//!
//! Both are per process. In a cluster the same limits are taken from Redis by every node
//! (a [`SharedLimits`], [`crate::node::bus::limiter`]), and these pace one node's share
//! when Redis is away.

use crate::domain::Micros;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Buckets kept before idle full ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// One token bucket per (business number, user).
pub struct PairPacer {
    burst: f64,
    interval: Micros,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Micros,
}

impl PairPacer {
    /// `burst` messages at once, then one per `interval`; `interval == 0` turns pacing off.
    pub fn new(burst: u32, interval: Micros) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            interval,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for a message to `user` from `number` at `now`, or says when one
    /// will be there.
    pub fn take(&self, number: &str, user: &str, now: Micros) -> Result<(), Micros> {
        if self.interval <= 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let full_after = (self.burst * self.interval as f64) as Micros;
            buckets.retain(|_, b| now.saturating_sub(b.at) < full_after);
        }
        let bucket = buckets
            .entry((number.to_owned(), user.to_owned()))
            .or_insert(Bucket {
                tokens: self.burst,
                at: now,
            });
        let refilled = now.saturating_sub(bucket.at).max(0) as f64 / self.interval as f64;
        bucket.tokens = (bucket.tokens + refilled).min(self.burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) * self.interval as f64).ceil() as Micros;
            Err(now + wait.max(1))
        }
    }
}

/// Spaces calls per business number to its messages-per-second tier, in real time.
pub struct ThroughputPacer {
    spacing: Duration,
    next: Mutex<HashMap<String, tokio::time::Instant>>,
}

impl ThroughputPacer {
    /// `per_second == 0` turns pacing off.
    pub fn new(per_second: u32) -> Self {
        Self {
            spacing: if per_second == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(1) / per_second
            },
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for this number's next slot; true when it had to wait.
    pub async fn wait_turn(&self, number: &str) -> bool {
        if self.spacing.is_zero() {
            return false;
        }
        let now = tokio::time::Instant::now();
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let slot = next.get(number).copied().unwrap_or(now).max(now);
            next.insert(number.to_owned(), slot + self.spacing);
            slot
        };
        if slot > now {
            tokio::time::sleep_until(slot).await;
            true
        } else {
            false
        }
    }
}

/// Pacing limits shared with other processes (a cluster's), taken instead of this
/// process's own pacers.
pub trait SharedLimits: Send + Sync {
    /// Takes a pair token for a message to `user` from `number` at `now`, or says when
    /// one will be there.
    fn take_pair<'a>(
        &'a self,
        number: &'a str,
        user: &'a str,
        now: Micros,
    ) -> BoxFuture<'a, Result<(), Micros>>;

    /// Waits for `number`'s next slot; true when it had to wait.
    fn wait_turn<'a>(&'a self, number: &'a str) -> BoxFuture<'a, bool>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SECOND_MICROS;

    #[test]
    fn a_user_gets_a_burst_then_one_message_per_interval() {
        let pacer = PairPacer::new(2, 6 * SECOND_MICROS);
        assert_eq!(pacer.take("n", "u", 0), Ok(()));
        assert_eq!(pacer.take("n", "u", 0), Ok(()));
        assert_eq!(pacer.take("n", "u", 0), Err(6 * SECOND_MICROS));
        // Another user, or another number, has its own bucket.
        assert_eq!(pacer.take("n", "v", 0), Ok(()));
        assert_eq!(pacer.take("m", "u", 0), Ok(()));
        assert_eq!(
            pacer.take("n", "u", 3 * SECOND_MICROS),
            Err(6 * SECOND_MICROS)
        );
        assert_eq!(pacer.take("n", "u", 6 * SECOND_MICROS), Ok(()));
        assert_eq!(
            pacer.take("n", "u", 6 * SECOND_MICROS),
            Err(12 * SECOND_MICROS)
        );
        // Long idle refills the burst, no more.
        assert_eq!(pacer.take("n", "u", 600 * SECOND_MICROS), Ok(()));
        assert_eq!(pacer.take("n", "u", 600 * SECOND_MICROS), Ok(()));
        assert!(pacer.take("n", "u", 600 * SECOND_MICROS).is_err());
    }

    #[test]
    fn pacing_off_lets_everything_through() {
        let pacer = PairPacer::new(1, 0);
        for _ in 0..100 {
            assert_eq!(pacer.take("n", "u", 0), Ok(()));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_to_the_tier() {
        let pacer = ThroughputPacer::new(80);
        let started = tokio::time::Instant::now();
        let mut waited = 0;
        for _ in 0..81 {
            waited += usize::from(pacer.wait_turn("n").await);
        }
        assert_eq!(waited, 80);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        assert!(!pacer.wait_turn("other").await);
    }
}
