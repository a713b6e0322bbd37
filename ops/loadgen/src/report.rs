//! The run report: a human summary, one JSON object, and the baseline comparison table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::metrics::LagSummary;
use crate::stats::LatencySummary;
use crate::verify::VerifyReport;

/// Everything one run measured. Serialized as the `--json` output; `compare` reads it back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    pub label: String,
    pub url: String,
    pub run_id: String,
    /// `closed` (maximum throughput) or `open` (fixed rate).
    pub mode: String,
    pub connections: usize,
    pub target_rate: Option<f64>,
    pub duration_seconds: f64,
    /// Requests generated in advance.
    pub planned: u64,
    pub messages_planned: u64,
    pub statuses_planned: u64,
    pub mean_body_bytes: f64,
    pub sent: u64,
    /// Answered 200: durably committed by the server.
    pub acknowledged: u64,
    /// Sent but not acknowledged (any other status, or no answer).
    pub failed: u64,
    /// HTTP status → count, every answer included.
    pub by_status: BTreeMap<String, u64>,
    /// Requests that got no HTTP answer, by cause.
    pub errors: BTreeMap<String, u64>,
    /// Open loop: scheduled requests never sent because the drain time ran out.
    pub not_sent: u64,
    /// Closed loop: the plan ran out before the duration (the run was shorter).
    pub plan_exhausted: bool,
    /// Open loop: requests that left over 2 ms after they were due (connections busy).
    #[serde(default)]
    pub late_starts: u64,
    pub elapsed_seconds: f64,
    /// Acknowledged requests per second over the elapsed time.
    pub throughput_rps: f64,
    /// Latency of acknowledged requests (open loop: from when each was due).
    pub latency: LatencySummary,
    /// Present when the database was checked.
    pub verify: Option<VerifyReport>,
    /// Set when processing was deliberately not checked (`--no-process-check`).
    pub verify_skipped: bool,
    /// Apply-lag estimates from the server's histogram, when `--metrics-url` was given.
    pub apply_lag: Option<LagSummary>,
    pub passed: bool,
}

impl RunReport {
    /// Requests acknowledged *and* processed per second: the acknowledged requests over the
    /// load plus the time processing took to catch up after it. A server whose processing
    /// falls behind acknowledges fast and sustains less. Without a processing check (a
    /// baseline that only stores) it is the acknowledged rate.
    pub fn sustained_rps(&self) -> f64 {
        match &self.verify {
            Some(v) if v.passed() => {
                let seconds = self.elapsed_seconds + v.waited_seconds;
                if seconds > 0.0 {
                    self.acknowledged as f64 / seconds
                } else {
                    0.0
                }
            }
            Some(_) => 0.0,
            None => self.throughput_rps,
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        let mode = match self.target_rate {
            Some(rate) => format!("open loop at {rate:.0} req/s"),
            None => "closed loop (maximum throughput)".to_owned(),
        };
        let _ = writeln!(out, "== {} : {} ==", self.label, self.url);
        let _ = writeln!(
            out,
            "mode            {mode}, {} connections, {:.1}s planned, run id {}",
            self.connections, self.duration_seconds, self.run_id
        );
        let _ = writeln!(
            out,
            "payloads        {} planned ({} messages, {} statuses), mean body {:.0} bytes",
            self.planned, self.messages_planned, self.statuses_planned, self.mean_body_bytes
        );
        let _ = writeln!(
            out,
            "requests        sent {}, acknowledged {}, failed {}{}",
            self.sent,
            self.acknowledged,
            self.failed,
            if self.not_sent > 0 {
                format!(
                    ", NOT SENT {} (server too slow for the schedule)",
                    self.not_sent
                )
            } else {
                String::new()
            }
        );
        if self.plan_exhausted {
            let _ = writeln!(
                out,
                "                the pre-generated plan ran out before the duration; raise --requests"
            );
        }
        if self.late_starts > 0 {
            let _ = writeln!(
                out,
                "                {} requests left over 2 ms after they were due (all connections busy, or \
                 the generator short of CPU); the wait is in their latency",
                self.late_starts
            );
        }
        for (status, n) in &self.by_status {
            if status != "200" {
                let _ = writeln!(out, "  status {status:<8} {n}");
            }
        }
        for (error, n) in &self.errors {
            let _ = writeln!(out, "  error {error:<30} {n}");
        }
        let _ = writeln!(
            out,
            "throughput      {:.1} acknowledged req/s over {:.2}s; sustained (acknowledged and \
             processed) {:.1} req/s",
            self.throughput_rps,
            self.elapsed_seconds,
            self.sustained_rps()
        );
        let l = &self.latency;
        let _ = writeln!(
            out,
            "latency (ms)    p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}  mean {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms
        );
        if let Some(v) = &self.verify {
            let _ = writeln!(
                out,
                "verification    {}: messages {}/{} found ({} missing, {} duplicated, {} not inbound), \
                 statuses {}/{} found ({} missing, {} duplicated), {} rows of unacknowledged requests, \
                 after {:.1}s",
                if v.passed() { "PASSED" } else { "FAILED" },
                v.found_messages,
                v.expected_messages,
                v.missing_messages,
                v.duplicate_messages,
                v.wrong_direction_messages,
                v.found_statuses,
                v.expected_statuses,
                v.missing_statuses,
                v.duplicate_statuses,
                v.unacknowledged_rows,
                v.waited_seconds
            );
            for key in &v.sample_missing {
                let _ = writeln!(out, "  missing {key}");
            }
        } else if self.verify_skipped {
            let _ = writeln!(out, "verification    skipped (--no-process-check)");
        }
        if let Some(lag) = &self.apply_lag {
            let _ = writeln!(
                out,
                "apply lag       {} observations, p50 {}  p99 {}  mean {} (estimated from buckets)",
                lag.observations,
                ms_or_dash(lag.p50_seconds),
                ms_or_dash(lag.p99_seconds),
                ms_or_dash(lag.mean_seconds)
            );
        }
        out
    }
}

fn ms_or_dash(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.2} ms", s * 1_000.0))
}

/// One scenario run against both servers.
pub struct Comparison {
    pub name: String,
    pub baseline: RunReport,
    pub parley: RunReport,
}

/// The table printed at the end of the bench: baseline, Parley, and their ratio.
/// `labels` name the two columns (`["baseline", "parley"]` in the intake bench).
pub fn comparison_table(rows: &[Comparison], labels: [&str; 2]) -> String {
    let mut out = String::new();
    let ratio_label = format!("{}/{}", labels[1], labels[0]);
    for row in rows {
        let (b, p) = (&row.baseline, &row.parley);
        let _ = writeln!(out, "\n## {}", row.name);
        let _ = writeln!(
            out,
            "| {:<26} | {:>12} | {:>12} | {:>15} |",
            "metric", labels[0], labels[1], ratio_label
        );
        let _ = writeln!(out, "|{:-<28}|{:->14}|{:->14}|{:->17}|", "", "", "", "");
        let mut line = |name: &str, base: f64, parley: f64, decimals: usize| {
            let ratio = if base > 0.0 {
                format!("{:.2}", parley / base)
            } else {
                "-".to_owned()
            };
            let _ = writeln!(
                out,
                "| {name:<26} | {base:>12.decimals$} | {parley:>12.decimals$} | {ratio:>15} |"
            );
        };
        line("acknowledged req/s", b.throughput_rps, p.throughput_rps, 1);
        line("sustained req/s", b.sustained_rps(), p.sustained_rps(), 1);
        line(
            "acknowledged",
            b.acknowledged as f64,
            p.acknowledged as f64,
            0,
        );
        line("failed", b.failed as f64, p.failed as f64, 0);
        line("not sent (behind)", b.not_sent as f64, p.not_sent as f64, 0);
        line(
            "late starts (open loop)",
            b.late_starts as f64,
            p.late_starts as f64,
            0,
        );
        line("latency p50 ms", b.latency.p50_ms, p.latency.p50_ms, 2);
        line("latency p90 ms", b.latency.p90_ms, p.latency.p90_ms, 2);
        line("latency p99 ms", b.latency.p99_ms, p.latency.p99_ms, 2);
        line("latency p99.9 ms", b.latency.p999_ms, p.latency.p999_ms, 2);
        line("latency max ms", b.latency.max_ms, p.latency.max_ms, 2);
        let verdict = |r: &RunReport| match (&r.verify, r.verify_skipped) {
            (Some(v), _) if v.passed() => "passed".to_owned(),
            (Some(v), _) => format!(
                "FAILED ({} missing, {} dup)",
                v.missing_messages + v.missing_statuses,
                v.duplicate_messages + v.duplicate_statuses
            ),
            (None, true) => "skipped".to_owned(),
            (None, false) => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {:<26} | {:>12} | {:>12} | {:>15} |",
            "processing verified",
            verdict(b),
            verdict(p),
            ""
        );
        if let Some(lag) = &p.apply_lag {
            for (name, value) in [
                ("apply lag p50 ms", lag.p50_seconds),
                ("apply lag p99 ms", lag.p99_seconds),
            ] {
                let _ = writeln!(
                    out,
                    "| {:<26} | {:>12} | {:>12} | {:>15} |",
                    name,
                    "-",
                    value.map_or_else(|| "-".to_owned(), |s| format!("{:.2}", s * 1_000.0)),
                    ""
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_the_ratio_of_parley_to_baseline() {
        let baseline = RunReport {
            throughput_rps: 2_000.0,
            latency: LatencySummary {
                p50_ms: 2.0,
                ..LatencySummary::default()
            },
            verify_skipped: true,
            ..RunReport::default()
        };
        let parley = RunReport {
            throughput_rps: 1_500.0,
            latency: LatencySummary {
                p50_ms: 3.0,
                ..LatencySummary::default()
            },
            ..RunReport::default()
        };
        let table = comparison_table(
            &[Comparison {
                name: "max".into(),
                baseline,
                parley,
            }],
            ["baseline", "parley"],
        );
        assert!(table.contains("acknowledged req/s"), "{table}");
        assert!(table.contains("0.75"), "{table}");
        assert!(table.contains("1.50"), "{table}");
        assert!(table.contains("skipped"), "{table}");
    }

    #[test]
    fn sustained_rate_counts_the_time_processing_took_to_catch_up() {
        let caught_up = RunReport {
            acknowledged: 15_000,
            elapsed_seconds: 10.0,
            throughput_rps: 1_500.0,
            verify: Some(VerifyReport {
                waited_seconds: 5.0,
                ..VerifyReport::default()
            }),
            ..RunReport::default()
        };
        assert_eq!(caught_up.sustained_rps(), 1_000.0);
        let lost = RunReport {
            verify: Some(VerifyReport {
                missing_messages: 1,
                ..VerifyReport::default()
            }),
            ..caught_up.clone()
        };
        assert_eq!(lost.sustained_rps(), 0.0);
        let store_only = RunReport {
            throughput_rps: 2_000.0,
            verify_skipped: true,
            ..RunReport::default()
        };
        assert_eq!(store_only.sustained_rps(), 2_000.0);
    }
}
