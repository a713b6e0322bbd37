//! Call statistics per plugin: counts, latency percentiles over a recent
//! window, the last error.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// Number of recent calls the latency percentiles are computed over.
pub const LATENCY_WINDOW: usize = 1024;

/// The last error a plugin call ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct LastError {
    /// Stable error code, e.g. `plugin_timeout`.
    pub code: &'static str,
    /// Human-readable description.
    pub message: String,
    /// When it happened.
    pub at: SystemTime,
}

/// Counters of one plugin, kept across reloads of the same id.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: u64,
    errors: u64,
    rejected: u64,
    latencies_us: VecDeque<u64>,
    last_error: Option<LastError>,
}

/// A copy of a plugin's statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// Calls made (not counting those the breaker refused).
    pub calls: u64,
    /// Calls that ended in an error.
    pub errors: u64,
    /// Calls the circuit breaker refused without calling the plugin.
    pub rejected: u64,
    /// Median latency over the last calls, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: Option<f64>,
    /// The most recent error.
    pub last_error: Option<LastError>,
}

impl CallStats {
    /// Records a completed call.
    pub fn record(&mut self, latency: Duration, error: Option<(&'static str, String)>) {
        self.calls += 1;
        if self.latencies_us.len() == LATENCY_WINDOW {
            self.latencies_us.pop_front();
        }
        self.latencies_us
            .push_back(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        if let Some((code, message)) = error {
            self.errors += 1;
            self.last_error = Some(LastError {
                code,
                message,
                at: SystemTime::now(),
            });
        }
    }

    /// Records a call refused by the circuit breaker.
    pub fn record_rejected(&mut self) {
        self.rejected += 1;
    }

    /// A copy with percentiles computed.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut sorted: Vec<u64> = self.latencies_us.iter().copied().collect();
        sorted.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            // Nearest-rank percentile.
            let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted.get(rank - 1).map(|us| *us as f64 / 1000.0)
        };
        StatsSnapshot {
            calls: self.calls,
            errors: self.errors,
            rejected: self.rejected,
            p50_ms: pct(0.50),
            p95_ms: pct(0.95),
            p99_ms: pct(0.99),
            last_error: self.last_error.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_recent_window() {
        let mut s = CallStats::default();
        for ms in 1..=100 {
            s.record(Duration::from_millis(ms), None);
        }
        let snap = s.snapshot();
        assert_eq!(snap.p50_ms, Some(50.0));
        assert_eq!(snap.p95_ms, Some(95.0));
        assert_eq!(snap.p99_ms, Some(99.0));
        assert_eq!(snap.calls, 100);
        assert_eq!(snap.errors, 0);
    }

    #[test]
    fn errors_are_counted_and_the_last_one_kept() {
        let mut s = CallStats::default();
        s.record(
            Duration::from_millis(1),
            Some(("plugin_trap", "first".into())),
        );
        s.record(
            Duration::from_millis(1),
            Some(("plugin_timeout", "second".into())),
        );
        let snap = s.snapshot();
        assert_eq!(snap.errors, 2);
        assert_eq!(snap.last_error.map(|e| e.code), Some("plugin_timeout"));
    }
}
