//! Parley's intake load generator: payload generation, the timed load, verification of
//! processing, apply-lag scraping and reporting. `main.rs` is the command line over it;
//! the end-to-end test drives [`run`] directly.

pub mod http;
pub mod load;
pub mod metrics;
pub mod payload;
pub mod report;
pub mod stats;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, Subcommand};

use crate::load::LoadSettings;
use crate::metrics::{APPLY_LAG_METRIC, HistogramSnapshot, parse_histogram};
use crate::payload::{Plan, PlanSettings};
use crate::report::RunReport;
use crate::stats::LatencySummary;
use crate::verify::Expected;

/// Closed loop without `--requests`: bodies pre-generated per second of duration. Above
/// the intake rates this machine reaches; a run that uses them all up says so.
pub const CLOSED_LOOP_BODIES_PER_SECOND: f64 = 50_000.0;

#[derive(Debug, Parser)]
#[command(
    name = "parley-loadgen",
    version,
    about = "Load generator for Parley's webhook intake"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send signed WhatsApp webhooks to one intake URL and report what happened.
    Run(Box<RunArgs>),
    /// Print the baseline/Parley table from reports written with `run --json-out`.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Intake URL, e.g. http://127.0.0.1:18080/webhooks/bench (loopback, plain HTTP).
    #[arg(long)]
    pub url: String,
    /// The signing secret: the channel's app secret (cloud-api), or the Twilio auth token
    /// the transport plugin verifies with (twilio).
    #[arg(long, env = "PARLEY_LOADGEN_APP_SECRET", hide_env_values = true)]
    pub app_secret: String,
    /// Wire format: `cloud-api` (Meta's JSON, X-Hub-Signature-256) or `twilio`
    /// (form-encoded, X-Twilio-Signature) for a transport channel with the Twilio plugin.
    #[arg(long, value_enum, default_value_t = WireFormat::CloudApi)]
    pub format: WireFormat,
    /// twilio: the URL signatures are computed over, i.e. the channel's
    /// `public_base_url` followed by the webhook path. Default: `--url`.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Concurrent keep-alive HTTP/1.1 connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Requests per second (open loop). Without it: closed loop at maximum throughput.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to send: `30`, `30s`, `2m`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Upper bound on requests (open loop: defaults to rate × duration; closed loop: to
    /// 50,000 per second of duration). Bodies are generated before the clock starts.
    #[arg(long)]
    pub requests: Option<usize>,
    /// Share of requests that are inbound text messages, in %; the rest are status callbacks.
    #[arg(long, default_value_t = 30.0)]
    pub message_percent: f64,
    /// Distinct customers (wa_ids) writing in.
    #[arg(long, default_value_t = 5_000)]
    pub customers: u32,
    /// Bytes of text in each inbound message.
    #[arg(long, default_value_t = 80)]
    pub text_bytes: usize,
    /// `phone_number_id` in the payload metadata (must be one of the channel's).
    #[arg(long, default_value = "106540352242922")]
    pub phone_number_id: String,
    /// `display_phone_number` in the payload metadata.
    #[arg(long, default_value = "15550783881")]
    pub display_phone_number: String,
    /// Put in every wamid (`wamid.LG<run-id>-<n>`); letters and digits. Default: from the clock.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Seed of the customer and status choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A request unanswered after this long counts as failed.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Open loop: how long past the schedule late requests may still start.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Database to check processing in (sqlite:// or postgres://), read after the load.
    #[arg(long)]
    pub verify_db: Option<String>,
    /// Channel id in the database rows. Default: the last segment of the URL path.
    #[arg(long)]
    pub channel_id: Option<String>,
    /// How long to wait for every acknowledged webhook to be processed.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub verify_timeout: Duration,
    /// Do not check processing (for a server that only stores raw payloads).
    #[arg(long)]
    pub no_process_check: bool,
    /// Prometheus endpoint to read the apply-lag histogram from, before and after.
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// Name of this run in the report.
    #[arg(long, default_value = "intake")]
    pub label: String,
    /// Print the report as one JSON object on standard output instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json_out: Option<std::path::PathBuf>,
    /// No progress lines on standard error.
    #[arg(long)]
    pub quiet: bool,
}

/// The wire formats the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireFormat {
    CloudApi,
    Twilio,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// Names of the two columns: the reference run, then the one compared with it.
    #[arg(long, value_delimiter = ',', default_value = "baseline,parley")]
    pub labels: Vec<String>,
    /// Triples: NAME BASELINE_JSON PARLEY_JSON [NAME BASELINE_JSON PARLEY_JSON ...]
    #[arg(required = true, num_args = 3..)]
    pub entries: Vec<String>,
}

/// Parses `30`, `30s`, `1.5s`, `500ms`, `2m`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1_000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("bad duration {text:?}: {e}"))
}

fn default_run_id() -> String {
    let mut n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_else(|_| "run".to_owned())
}

async fn scrape(url: &str) -> Result<HistogramSnapshot> {
    let (status, body) = http::get(url).await?;
    ensure!(status == 200, "GET {url} answered {status}");
    let text = std::str::from_utf8(&body).context("Metrics are not UTF-8")?;
    parse_histogram(text, APPLY_LAG_METRIC)
}

/// Generates, sends, verifies and measures; the report says whether it passed.
pub async fn run(args: &RunArgs) -> Result<RunReport> {
    let target = http::Target::resolve(&args.url).await?;
    let run_id = args.run_id.clone().unwrap_or_else(default_run_id);
    let requests = match (args.rate, args.requests) {
        (Some(rate), cap) => {
            let scheduled = (rate * args.duration.as_secs_f64()).ceil().max(1.0) as usize;
            cap.map_or(scheduled, |cap| cap.min(scheduled))
        }
        (None, Some(cap)) => cap,
        (None, None) => (CLOSED_LOOP_BODIES_PER_SECOND * args.duration.as_secs_f64())
            .ceil()
            .max(1.0) as usize,
    };
    let channel_id = match &args.channel_id {
        Some(id) => id.clone(),
        None => target
            .path
            .split('?')
            .next()
            .and_then(|p| p.trim_end_matches('/').rsplit('/').next())
            .filter(|s| !s.is_empty())
            .context("Cannot tell the channel id from the URL; pass --channel-id")?
            .to_owned(),
    };

    let format = match args.format {
        WireFormat::CloudApi => payload::Format::CloudApi,
        WireFormat::Twilio => payload::Format::Twilio {
            public_url: args.public_url.clone().unwrap_or_else(|| args.url.clone()),
        },
    };
    let generation_started = std::time::Instant::now();
    let Plan {
        requests: bodies,
        records,
        messages,
        statuses,
        body_bytes,
    } = payload::generate(&PlanSettings {
        run_id: run_id.clone(),
        requests,
        message_percent: args.message_percent,
        customers: args.customers,
        text_bytes: args.text_bytes,
        phone_number_id: args.phone_number_id.clone(),
        display_phone_number: args.display_phone_number.clone(),
        app_secret: args.app_secret.clone(),
        format: format.clone(),
        seed: args.seed,
        start_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    })?;
    if !args.quiet {
        eprintln!(
            "{}: {} bodies generated and signed in {:.2}s; sending ({}, {} connections)",
            args.label,
            bodies.len(),
            generation_started.elapsed().as_secs_f64(),
            args.rate
                .map_or_else(|| "closed loop".to_owned(), |r| format!("{r:.0} req/s")),
            args.connections
        );
    }

    let lag_before = match &args.metrics_url {
        Some(url) => Some(
            scrape(url)
                .await
                .context("Failed to read metrics before the load")?,
        ),
        None => None,
    };

    let outcome = load::run(
        Arc::new(bodies),
        target,
        LoadSettings {
            connections: args.connections,
            rate: args.rate,
            duration: args.duration,
            request_timeout: args.request_timeout,
            drain: args.drain,
            progress: !args.quiet,
            signature_header: hyper::header::HeaderName::from_static(format.signature_header()),
            content_type: hyper::header::HeaderValue::from_static(format.content_type()),
        },
    )
    .await?;

    let verify = match (&args.verify_db, args.no_process_check) {
        (Some(url), false) => {
            if !args.quiet {
                eprintln!(
                    "{}: load done; waiting for {} acknowledged webhooks to be processed",
                    args.label,
                    outcome.acknowledged.len()
                );
            }
            let expected = Expected::from_records(
                outcome
                    .acknowledged
                    .iter()
                    .filter_map(|&i| records.get(i as usize)),
            );
            Some(
                verify::verify(
                    url,
                    &channel_id,
                    &Plan::wamid_prefix(&run_id),
                    &expected,
                    args.verify_timeout,
                )
                .await?,
            )
        }
        _ => None,
    };

    // Read after verification so every acknowledged message has been applied.
    let apply_lag = match (&args.metrics_url, lag_before) {
        (Some(url), Some(before)) => {
            let after = scrape(url)
                .await
                .context("Failed to read metrics after the load")?;
            Some(after.minus(&before).summary())
        }
        _ => None,
    };

    let acknowledged = outcome.acknowledged.len() as u64;
    let elapsed = outcome.elapsed.as_secs_f64();
    let planned = records.len() as u64;
    let passed = acknowledged > 0 && verify.as_ref().is_none_or(|v| v.passed());
    Ok(RunReport {
        label: args.label.clone(),
        url: args.url.clone(),
        run_id,
        mode: if args.rate.is_some() {
            "open"
        } else {
            "closed"
        }
        .to_owned(),
        connections: args.connections,
        target_rate: args.rate,
        duration_seconds: args.duration.as_secs_f64(),
        planned,
        messages_planned: messages as u64,
        statuses_planned: statuses as u64,
        mean_body_bytes: body_bytes as f64 / planned.max(1) as f64,
        sent: outcome.sent,
        acknowledged,
        failed: outcome.sent - acknowledged,
        by_status: outcome
            .by_status
            .iter()
            .map(|(status, n)| (status.to_string(), *n))
            .collect(),
        errors: outcome.errors,
        not_sent: outcome.not_sent,
        plan_exhausted: outcome.plan_exhausted,
        late_starts: outcome.late_starts,
        elapsed_seconds: elapsed,
        throughput_rps: if elapsed > 0.0 {
            acknowledged as f64 / elapsed
        } else {
            0.0
        },
        latency: LatencySummary::from_micros(outcome.latencies_us),
        verify,
        verify_skipped: args.no_process_check,
        apply_lag,
        passed,
    })
}

/// Reads the reports named in `compare` and renders the table.
pub fn compare(args: &CompareArgs) -> Result<String> {
    if !args.entries.len().is_multiple_of(3) {
        bail!("compare takes triples: NAME BASELINE_JSON PARLEY_JSON");
    }
    let read = |path: &str| -> Result<RunReport> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("Failed to read {path}"))?;
        serde_json::from_str(&text).with_context(|| format!("Failed to parse report {path}"))
    };
    let mut rows = Vec::new();
    for triple in args.entries.chunks(3) {
        rows.push(report::Comparison {
            name: triple[0].clone(),
            baseline: read(&triple[1])?,
            parley: read(&triple[2])?,
        });
    }
    let [reference, compared] = args.labels.as_slice() else {
        bail!("--labels takes two names, e.g. --labels native,twilio");
    };
    Ok(report::comparison_table(
        &rows,
        [reference.as_str(), compared.as_str()],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn run_ids_are_alphanumeric() {
        let id = default_run_id();
        assert!(!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
