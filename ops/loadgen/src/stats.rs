//! Latency percentiles over every recorded sample.
//!
//! Runs are at most a few million requests, so keeping each sample (microseconds, one
//! `u64`) and sorting once is exact and cheap; no bucketing error to explain.

use serde::{Deserialize, Serialize};

/// Percentiles of one run, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises samples given in microseconds.
    pub fn from_micros(mut samples: Vec<u64>) -> LatencySummary {
        if samples.is_empty() {
            return LatencySummary::default();
        }
        samples.sort_unstable();
        let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
        let ms = |us: u64| us as f64 / 1_000.0;
        LatencySummary {
            count: samples.len() as u64,
            mean_ms: total as f64 / samples.len() as f64 / 1_000.0,
            p50_ms: ms(percentile(&samples, 50.0)),
            p90_ms: ms(percentile(&samples, 90.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            p999_ms: ms(percentile(&samples, 99.9)),
            max_ms: ms(samples[samples.len() - 1]),
        }
    }
}

/// Nearest-rank percentile of sorted, non-empty samples: the smallest sample such that at
/// least `pct` % of all samples are less than or equal to it.
pub fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The epsilon keeps float error (0.999 × 1000 = 999.0000000000001) from skipping a rank.
    let rank = ((pct / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_of_one_to_a_thousand() {
        let samples: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&samples, 50.0), 500);
        assert_eq!(percentile(&samples, 90.0), 900);
        assert_eq!(percentile(&samples, 99.0), 990);
        assert_eq!(percentile(&samples, 99.9), 999);
        assert_eq!(percentile(&samples, 100.0), 1000);
        assert_eq!(percentile(&samples, 0.0), 1);
    }

    #[test]
    fn percentile_of_a_single_sample_is_that_sample() {
        assert_eq!(percentile(&[42], 50.0), 42);
        assert_eq!(percentile(&[42], 99.9), 42);
    }

    #[test]
    fn summary_sorts_and_converts_to_milliseconds() {
        let mut samples: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        samples.reverse();
        let summary = LatencySummary::from_micros(samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p90_ms, 90.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.p999_ms, 100.0);
        assert_eq!(summary.max_ms, 100.0);
        assert!((summary.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn tail_outlier_shows_in_p999_and_max_only() {
        let mut samples = vec![1_000u64; 9_999];
        samples.push(500_000);
        let summary = LatencySummary::from_micros(samples);
        assert_eq!(summary.p99_ms, 1.0);
        assert_eq!(summary.p999_ms, 1.0);
        assert_eq!(summary.max_ms, 500.0);
    }

    #[test]
    fn empty_run_reports_zeros() {
        assert_eq!(
            LatencySummary::from_micros(Vec::new()),
            LatencySummary::default()
        );
    }
}
