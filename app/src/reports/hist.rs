//! A mergeable distribution of durations: fixed log-scale buckets, a factor of √2 apart.
//!
//! Bucket 0 holds durations under one second; bucket `i` (1 ..= 46) holds
//! `[2^((i-1)/2), 2^(i/2))` seconds; the last bucket holds everything from 2^23 s (97 days)
//! up. Two histograms merge by adding their counts, so hourly rollups add up to any range.
//! A quantile is read as the geometric middle of its bucket: within 19 % of the true value.

use crate::domain::{Micros, SECOND_MICROS};

/// Buckets per histogram (the `h0` .. `h47` columns of `report_rollups`).
pub const BUCKETS: usize = parley_migrations::m0011_reports::BUCKETS;

pub type Histogram = [i64; BUCKETS];

/// The bucket a duration falls in (negative durations count as zero).
pub fn bucket_of(duration: Micros) -> usize {
    if duration < SECOND_MICROS {
        return 0;
    }
    let seconds = duration as f64 / SECOND_MICROS as f64;
    let index = (seconds.log2() * 2.0).floor() as usize + 1;
    index.min(BUCKETS - 1)
}

/// The lower bound of a bucket, in microseconds.
pub fn lower_bound(bucket: usize) -> Micros {
    match bucket {
        0 => 0,
        b => (2f64.powf((b - 1) as f64 / 2.0) * SECOND_MICROS as f64).round() as Micros,
    }
}

/// The upper bound of a bucket (`None` for the last, open-ended one).
pub fn upper_bound(bucket: usize) -> Option<Micros> {
    (bucket + 1 < BUCKETS).then(|| lower_bound(bucket + 1))
}

/// The `q` quantile (0 < q <= 1) of a histogram: the geometric middle of the bucket that
/// holds it (half a second for bucket 0). `None` for an empty histogram.
pub fn quantile(histogram: &Histogram, q: f64) -> Option<Micros> {
    let total: i64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
    let mut seen = 0;
    for (bucket, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Some(middle(bucket));
        }
    }
    None
}

fn middle(bucket: usize) -> Micros {
    match bucket {
        0 => SECOND_MICROS / 2,
        b => (lower_bound(b) as f64 * 2f64.powf(0.25)).round() as Micros,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_half_powers_of_two() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(999_999), 0);
        assert_eq!(bucket_of(SECOND_MICROS), 1);
        assert_eq!(bucket_of(2 * SECOND_MICROS), 3);
        assert_eq!(bucket_of(60 * SECOND_MICROS), 12);
        assert_eq!(bucket_of(i64::MAX), BUCKETS - 1);
        for bucket in 1..BUCKETS - 1 {
            assert_eq!(
                bucket_of(lower_bound(bucket) + 1),
                bucket,
                "bucket {bucket}"
            );
        }
    }

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let mut h = [0; BUCKETS];
        for minutes in 1..=10 {
            h[bucket_of(minutes * 60 * SECOND_MICROS)] += 1;
        }
        let median = quantile(&h, 0.5).unwrap();
        // The 5th of ten values is 5 minutes; its bucket's middle is within 19 %.
        assert!(
            (median - 300 * SECOND_MICROS).abs() < 57 * SECOND_MICROS,
            "{median}"
        );
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
    }
}
