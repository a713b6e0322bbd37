//! Time, injected. Everything that waits for a deadline (passivation, retries, later SLA
//! and CSAT timers) reads a [`Clock`], so tests drive a [`ManualClock`] instead of sleeping.

use crate::domain::Micros;
use futures::future::BoxFuture;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A source of the current time and of timers that follow it.
pub trait Clock: Send + Sync + 'static {
    /// Now, in microseconds since the Unix epoch.
    fn now(&self) -> Micros;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: Micros) -> BoxFuture<'static, ()>;
}

pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        chrono::Utc::now().timestamp_micros()
    }

    fn sleep_until(&self, deadline: Micros) -> BoxFuture<'static, ()> {
        let wait = deadline.saturating_sub(self.now()).max(0);
        Box::pin(tokio::time::sleep(std::time::Duration::from_micros(
            wait as u64,
        )))
    }
}

/// A clock that moves only when told to. Sleepers wake when `advance` passes their deadline.
#[derive(Default)]
pub struct ManualClock {
    now: AtomicI64,
    next_id: AtomicU64,
    sleepers: Mutex<BTreeMap<(Micros, u64), oneshot::Sender<()>>>,
}

impl ManualClock {
    pub fn starting_at(now: Micros) -> Arc<Self> {
        Arc::new(Self {
            now: AtomicI64::new(now),
            ..Self::default()
        })
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    pub fn advance(&self, by: std::time::Duration) {
        let now =
            self.now.fetch_add(by.as_micros() as i64, Ordering::SeqCst) + by.as_micros() as i64;
        let due = {
            let mut sleepers = self.sleepers.lock().unwrap_or_else(|p| p.into_inner());
            let later = sleepers.split_off(&(now + 1, 0));
            std::mem::replace(&mut *sleepers, later)
        };
        for (_, waker) in due {
            let _ = waker.send(());
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Micros {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline: Micros) -> BoxFuture<'static, ()> {
        if deadline <= self.now() {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.sleepers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((deadline, id), tx);
        // Re-check: time may have moved between the first check and the insert.
        if deadline <= self.now() {
            self.advance(std::time::Duration::ZERO);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

pub fn micros_to_datetime(micros: Micros) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub const SECOND: Micros = 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_time_passes_their_deadline() {
        let clock = ManualClock::starting_at(1_000);
        let mut early = clock.sleep_until(1_000 + SECOND);
        let late = clock.sleep_until(1_000 + 10 * SECOND);
        clock.advance(Duration::from_millis(999));
        assert!(futures::poll!(&mut early).is_pending());
        clock.advance(Duration::from_millis(1));
        early.await;
        clock.advance(Duration::from_secs(9));
        late.await;
        assert_eq!(clock.now(), 1_000 + 10 * SECOND);
    }
}
