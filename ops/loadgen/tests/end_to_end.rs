//! The generator against the stand-in intake: signing, rate control, reporting and
//! verification, end to end over real sockets and a real SQLite database.

#[path = "support/standin.rs"]
mod standin;

use std::sync::atomic::Ordering;

use anyhow::{Context, Result, bail};
use clap::Parser;
use parley_loadgen::report::RunReport;
use parley_loadgen::{Cli, Command, RunArgs};

const SECRET: &str = "bench-secret";

struct Intake {
    base: String,
    database_url: String,
    counters: std::sync::Arc<standin::Counters>,
    _dir: tempfile::TempDir,
}

async fn spawn_intake(skip_every: Option<u64>) -> Result<Intake> {
    let dir = tempfile::tempdir()?;
    let database_url = format!("sqlite://{}/standin.db", dir.path().display());
    let (listener, addr) = standin::bind("127.0.0.1:0").await?;
    let counters = standin::start(
        listener,
        standin::StandinConfig {
            channel: "bench".into(),
            app_secret: SECRET.into(),
            database_url: Some(format!("{database_url}?mode=rwc")),
            skip_every,
            max_body_bytes: 3 * 1024 * 1024,
        },
    )
    .await?;
    Ok(Intake {
        base: format!("http://{addr}"),
        database_url,
        counters,
        _dir: dir,
    })
}

fn run_args(extra: &[&str]) -> Result<RunArgs> {
    let mut argv = vec!["parley-loadgen", "run", "--quiet"];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv)?.command {
        Command::Run(args) => Ok(*args),
        Command::Compare(_) => bail!("expected run"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_run_is_acknowledged_and_fully_processed() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    let metrics = format!("{}/metrics", intake.base);
    let args = run_args(&[
        "--url",
        &url,
        "--app-secret",
        SECRET,
        "--connections",
        "8",
        "--duration",
        "5s",
        "--requests",
        "3000",
        "--verify-db",
        &intake.database_url,
        "--verify-timeout",
        "30s",
        "--metrics-url",
        &metrics,
        "--customers",
        "100",
    ])?;
    let report = parley_loadgen::run(&args).await?;

    assert_eq!(report.sent, 3000, "{}", report.human());
    assert_eq!(report.acknowledged, 3000);
    assert_eq!(report.failed, 0);
    assert!(report.plan_exhausted, "3000 requests go well within 5s");
    assert_eq!(intake.counters.accepted.load(Ordering::Relaxed), 3000);
    assert_eq!(report.latency.count, 3000);
    assert!(report.latency.p50_ms <= report.latency.p99_ms);
    assert!(report.latency.p99_ms <= report.latency.max_ms);
    assert!(report.throughput_rps > 0.0);

    let verify = report.verify.as_ref().context("verification ran")?;
    assert!(verify.passed(), "{}", report.human());
    assert_eq!(verify.expected_messages + verify.expected_statuses, 3000);
    assert_eq!(verify.found_messages, verify.expected_messages);
    assert!(verify.expected_messages > 700 && verify.expected_messages < 1100);
    assert!(report.passed);

    let lag = report.apply_lag.as_ref().context("apply lag read")?;
    assert_eq!(lag.observations, 3000);
    assert!(lag.p50_seconds.is_some() && lag.p99_seconds.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_holds_the_requested_rate() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    let args = run_args(&[
        "--url",
        &url,
        "--app-secret",
        SECRET,
        "--connections",
        "4",
        "--rate",
        "500",
        "--duration",
        "2s",
    ])?;
    let report = parley_loadgen::run(&args).await?;

    assert_eq!(report.planned, 1000);
    assert_eq!(report.acknowledged, 1000, "{}", report.human());
    assert_eq!(report.not_sent, 0);
    // Against an idle stand-in few requests wait for a connection; on a busy shared test
    // machine some do, so only a schedule that clearly fell apart fails.
    assert!(report.late_starts < 200, "{}", report.human());
    assert!(
        report.elapsed_seconds > 1.95 && report.elapsed_seconds < 3.0,
        "a 2 s schedule took {}",
        report.elapsed_seconds
    );
    assert!(
        report.throughput_rps > 330.0 && report.throughput_rps < 540.0,
        "throughput {}",
        report.throughput_rps
    );
    // Against an idle stand-in nothing queues: no request should wait for a connection.
    assert!(report.latency.p50_ms < 20.0, "{}", report.human());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_latency_includes_queueing_behind_busy_connections() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    // One connection cannot carry 200,000 req/s: later requests leave late, and their
    // latency must count from when they were due, growing towards the end of the run.
    let args = run_args(&[
        "--url",
        &url,
        "--app-secret",
        SECRET,
        "--connections",
        "1",
        "--rate",
        "200000",
        "--duration",
        "100ms",
    ])?;
    let report = parley_loadgen::run(&args).await?;
    // Every planned request is either acknowledged or reported as not sent (a busy machine
    // may not drain the whole schedule before the generator's deadline); none fails.
    assert_eq!(report.failed, 0, "{}", report.human());
    assert_eq!(
        report.acknowledged + report.not_sent,
        20_000,
        "{}",
        report.human()
    );
    assert!(report.acknowledged > 0, "{}", report.human());
    assert!(
        report.latency.max_ms > 100.0,
        "queueing hidden: {}",
        report.human()
    );
    assert!(report.late_starts > 10_000, "{}", report.human());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_refused_and_counted_by_status() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    let args = run_args(&[
        "--url",
        &url,
        "--app-secret",
        "not-the-secret",
        "--connections",
        "2",
        "--requests",
        "200",
        "--duration",
        "5s",
    ])?;
    let report = parley_loadgen::run(&args).await?;
    assert_eq!(report.acknowledged, 0);
    assert_eq!(report.failed, 200);
    assert_eq!(report.by_status.get("401"), Some(&200));
    assert!(!report.passed);
    assert_eq!(intake.counters.unauthorized.load(Ordering::Relaxed), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channel_is_counted_as_404() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/nope", intake.base);
    let args = run_args(&[
        "--url",
        &url,
        "--app-secret",
        SECRET,
        "--requests",
        "50",
        "--duration",
        "5s",
    ])?;
    let report = parley_loadgen::run(&args).await?;
    assert_eq!(report.by_status.get("404"), Some(&50));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_is_reported_as_connection_errors() -> Result<()> {
    let (listener, addr) = standin::bind("127.0.0.1:0").await?;
    drop(listener);
    let url = format!("http://{addr}/webhooks/bench");
    let args = run_args(&["--url", &url, "--app-secret", SECRET, "--requests", "10"])?;
    // Connections are opened before the clock starts; a server that is not there fails fast.
    let error = match parley_loadgen::run(&args).await {
        Ok(report) => bail!("expected an error, got {}", report.human()),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("Failed to open the load connections"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reports_json_and_exits_3_when_processing_lost_records() -> Result<()> {
    let intake = spawn_intake(Some(97)).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
        .args([
            "run",
            "--quiet",
            "--json",
            "--url",
            &url,
            "--connections",
            "4",
            "--requests",
            "2000",
            "--duration",
            "5s",
            "--verify-db",
            &intake.database_url,
            "--verify-timeout",
            "3s",
            "--run-id",
            "lost1",
        ])
        .env("PARLEY_LOADGEN_APP_SECRET", SECRET)
        .output()
        .await?;
    let stdout = String::from_utf8(output.stdout)?;
    let report: RunReport =
        serde_json::from_str(stdout.trim()).with_context(|| format!("stdout was {stdout:?}"))?;
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert_eq!(report.acknowledged, 2000);
    let verify = report.verify.context("verification ran")?;
    let missing = verify.missing_messages + verify.missing_statuses;
    // Every 97th record of 2000 is left out by the stand-in.
    assert_eq!(missing, 2000 / 97, "{verify:?}");
    assert!(
        verify
            .sample_missing
            .iter()
            .all(|k| k.contains("wamid.LGlost1-"))
    );
    assert!(!report.passed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_0_and_compare_prints_the_table() -> Result<()> {
    let intake = spawn_intake(None).await?;
    let url = format!("{}/webhooks/bench", intake.base);
    let dir = tempfile::tempdir()?;
    let baseline = dir.path().join("baseline.json");
    let parley = dir.path().join("parley.json");
    for (path, extra) in [
        (&baseline, "--no-process-check"),
        (&parley, "--label=parley"),
    ] {
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
            .args([
                "run",
                "--quiet",
                "--url",
                &url,
                "--app-secret",
                SECRET,
                "--requests",
                "500",
            ])
            .args([
                "--duration",
                "5s",
                "--verify-db",
                &intake.database_url,
                extra,
            ])
            .arg("--json-out")
            .arg(path)
            .stdout(std::process::Stdio::null())
            .status()
            .await?;
        assert_eq!(status.code(), Some(0));
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley-loadgen"))
        .arg("compare")
        .arg("max throughput")
        .arg(&baseline)
        .arg(&parley)
        .output()
        .await?;
    let table = String::from_utf8(output.stdout)?;
    assert!(output.status.success());
    assert!(table.contains("## max throughput"), "{table}");
    assert!(
        table.contains("skipped") && table.contains("passed"),
        "{table}"
    );
    Ok(())
}
