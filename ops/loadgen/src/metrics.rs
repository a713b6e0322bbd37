//! The apply-lag histogram read from Parley's Prometheus endpoint.
//!
//! Parley exports `parley_ingest_apply_lag_seconds` (commit of a webhook to the conversation
//! actor having applied it). The generator scrapes it before and after a run and estimates
//! percentiles from the difference of the cumulative buckets, the way PromQL's
//! `histogram_quantile` does: linear interpolation inside the bucket holding the rank.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The histogram the generator reports on.
pub const APPLY_LAG_METRIC: &str = "parley_ingest_apply_lag_seconds";

/// One scrape of a histogram, summed over every label set other than `le`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, cumulative count)`, sorted by bound; `+Inf` is `f64::INFINITY`.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// Percentile estimates over the observations made during a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LagSummary {
    pub observations: u64,
    pub mean_seconds: Option<f64>,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

/// Extracts histogram `name` from Prometheus text exposition. A histogram that is absent
/// gives an empty snapshot (the server may not have observed anything yet).
pub fn parse_histogram(text: &str, name: &str) -> Result<HistogramSnapshot> {
    let bucket_name = format!("{name}_bucket");
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    let mut snapshot = HistogramSnapshot::default();

    for line in text.lines() {
        let line = line.trim();
        // Only this histogram's lines are read: a line of another metric never fails a scrape.
        if !line.starts_with(name) {
            continue;
        }
        let (series, labels, value) =
            split_sample(line).with_context(|| format!("Failed to parse metrics line {line:?}"))?;
        if series == bucket_name {
            let le = label_value(labels, "le")
                .with_context(|| format!("Bucket without an `le` label: {line:?}"))?;
            let bound = parse_float(le)?;
            match snapshot.buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, cumulative)) => *cumulative += value,
                None => snapshot.buckets.push((bound, value)),
            }
        } else if series == sum_name {
            snapshot.sum += value;
        } else if series == count_name {
            snapshot.count += value;
        }
    }
    snapshot.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(snapshot)
}

impl HistogramSnapshot {
    /// What was observed between `earlier` and `self` (counters only grow, so each bucket
    /// of the later scrape minus the same bucket of the earlier one).
    pub fn minus(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, cumulative)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == bound)
                    .map_or(0.0, |&(_, c)| c);
                (bound, (cumulative - before).max(0.0))
            })
            .collect();
        HistogramSnapshot {
            buckets,
            sum: (self.sum - earlier.sum).max(0.0),
            count: (self.count - earlier.count).max(0.0),
        }
    }

    /// Estimates quantile `q` (0..=1) like PromQL's `histogram_quantile`. `None` when the
    /// histogram holds no observation.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|&(_, c)| c)?;
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank && cumulative > lower_count {
                if bound.is_infinite() {
                    // Above the highest finite bucket: the best estimate is that bound.
                    return Some(lower_bound);
                }
                let fraction = (rank - lower_count) / (cumulative - lower_count);
                return Some(lower_bound + (bound - lower_bound) * fraction);
            }
            lower_bound = bound;
            lower_count = cumulative;
        }
        Some(lower_bound)
    }

    pub fn summary(&self) -> LagSummary {
        LagSummary {
            observations: self.count as u64,
            mean_seconds: (self.count > 0.0).then(|| self.sum / self.count),
            p50_seconds: self.quantile(0.50),
            p99_seconds: self.quantile(0.99),
        }
    }
}

/// Splits `name{labels} value [timestamp]` into its parts (labels without braces).
fn split_sample(line: &str) -> Result<(&str, &str, f64)> {
    let (series, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line[open..]
                .rfind('}')
                .map(|c| open + c)
                .context("unclosed label set")?;
            (&line[..open], &line[open + 1..close], &line[close + 1..])
        }
        None => {
            let space = line
                .find(char::is_whitespace)
                .context("sample without a value")?;
            (&line[..space], "", &line[space..])
        }
    };
    let value = rest
        .split_whitespace()
        .next()
        .context("sample without a value")?;
    Ok((series.trim(), labels, parse_float(value)?))
}

/// The value of label `key` in `a="x",le="0.5"` (label values here never hold quotes).
fn label_value<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim().trim_start_matches(',').trim();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let end = after.find('"')?;
        if name == key {
            return Some(&after[..end]);
        }
        rest = &after[end + 1..];
    }
    None
}

fn parse_float(text: &str) -> Result<f64> {
    match text {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => match text.parse::<f64>() {
            Ok(v) => Ok(v),
            Err(e) => bail!("not a number {text:?}: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"
# HELP parley_ingest_apply_lag_seconds Seconds from a webhook's commit to its application.
# TYPE parley_ingest_apply_lag_seconds histogram
parley_ingest_apply_lag_seconds_bucket{le="0.005"} 10
parley_ingest_apply_lag_seconds_bucket{le="0.01"} 30
parley_ingest_apply_lag_seconds_bucket{le="0.1"} 90
parley_ingest_apply_lag_seconds_bucket{le="+Inf"} 100
parley_ingest_apply_lag_seconds_sum 4.5
parley_ingest_apply_lag_seconds_count 100
parley_ingest_webhooks_total{channel="bench"} 12345
"#;

    #[test]
    fn parses_buckets_sum_and_count() -> Result<()> {
        let h = parse_histogram(SCRAPE, APPLY_LAG_METRIC)?;
        assert_eq!(
            h.buckets,
            vec![
                (0.005, 10.0),
                (0.01, 30.0),
                (0.1, 90.0),
                (f64::INFINITY, 100.0)
            ]
        );
        assert_eq!(h.sum, 4.5);
        assert_eq!(h.count, 100.0);
        Ok(())
    }

    #[test]
    fn sums_label_sets_other_than_le() -> Result<()> {
        let text = r#"
parley_ingest_apply_lag_seconds_bucket{channel="a",le="0.5"} 1
parley_ingest_apply_lag_seconds_bucket{channel="a",le="+Inf"} 2
parley_ingest_apply_lag_seconds_bucket{le="0.5",channel="b"} 3 1700000000000
parley_ingest_apply_lag_seconds_bucket{le="+Inf",channel="b"} 4
parley_ingest_apply_lag_seconds_count{channel="a"} 2
parley_ingest_apply_lag_seconds_count{channel="b"} 4
"#;
        let h = parse_histogram(text, APPLY_LAG_METRIC)?;
        assert_eq!(h.buckets, vec![(0.5, 4.0), (f64::INFINITY, 6.0)]);
        assert_eq!(h.count, 6.0);
        Ok(())
    }

    #[test]
    fn missing_histogram_is_empty() -> Result<()> {
        let h = parse_histogram("other_metric 1\n", APPLY_LAG_METRIC)?;
        assert_eq!(h, HistogramSnapshot::default());
        assert_eq!(h.quantile(0.5), None);
        Ok(())
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() -> Result<()> {
        let h = parse_histogram(SCRAPE, APPLY_LAG_METRIC)?;
        // rank 50 lies in (0.01, 0.1] holding ranks 30..90: 20/60 of the way.
        let p50 = h.quantile(0.5).context("p50")?;
        assert!((p50 - (0.01 + 0.09 * 20.0 / 60.0)).abs() < 1e-12, "{p50}");
        // rank 5 lies in the first bucket, interpolated from zero.
        let p05 = h.quantile(0.05).context("p05")?;
        assert!((p05 - 0.0025).abs() < 1e-12, "{p05}");
        // rank 99 lies in +Inf: the highest finite bound.
        assert_eq!(h.quantile(0.99), Some(0.1));
        Ok(())
    }

    #[test]
    fn delta_counts_only_the_run() -> Result<()> {
        let before = parse_histogram(SCRAPE, APPLY_LAG_METRIC)?;
        let after_text = SCRAPE
            .replace("{le=\"0.01\"} 30", "{le=\"0.01\"} 130")
            .replace("{le=\"0.1\"} 90", "{le=\"0.1\"} 190")
            .replace("{le=\"+Inf\"} 100", "{le=\"+Inf\"} 200")
            .replace("_sum 4.5", "_sum 5.5")
            .replace("_count 100", "_count 200");
        let after = parse_histogram(&after_text, APPLY_LAG_METRIC)?;
        let delta = after.minus(&before);
        assert_eq!(
            delta.buckets,
            vec![
                (0.005, 0.0),
                (0.01, 100.0),
                (0.1, 100.0),
                (f64::INFINITY, 100.0)
            ]
        );
        let summary = delta.summary();
        assert_eq!(summary.observations, 100);
        assert_eq!(summary.mean_seconds, Some(0.01));
        // All 100 new observations sit in (0.005, 0.01].
        let p50 = summary.p50_seconds.context("p50")?;
        assert!((p50 - 0.0075).abs() < 1e-12, "{p50}");
        let p99 = summary.p99_seconds.context("p99")?;
        assert!((p99 - 0.00995).abs() < 1e-12, "{p99}");
        Ok(())
    }

    #[test]
    fn malformed_value_is_an_error() {
        let text = "parley_ingest_apply_lag_seconds_count abc\n";
        assert!(parse_histogram(text, APPLY_LAG_METRIC).is_err());
    }
}
