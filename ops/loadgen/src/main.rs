//! `parley-loadgen`: how fast Parley's WhatsApp intake acknowledges webhooks, and whether
//! every acknowledged webhook is then processed exactly once.
//!
//! It measures, against `POST /webhooks/{channel_id}`:
//! * acknowledged throughput: 200 answers per second (a 200 means the payload is durably
//!   committed), closed loop (each connection sends as soon as it is answered) or open loop
//!   at a fixed rate (`--rate`);
//! * latency p50/p90/p99/p99.9/max of acknowledged requests; in open loop measured from when
//!   each request was due, so queueing in front of a slow server shows;
//! * failures by HTTP status and by connection error;
//! * with `--verify-db`, that each acknowledged message is in `messages` and each
//!   acknowledged status in `message_statuses`, once (exit code 3 otherwise);
//! * with `--metrics-url`, the apply lag (commit to conversation actor) estimated from the
//!   `parley_ingest_apply_lag_seconds` histogram's buckets during the run.
//!
//! Bodies (30 % inbound text messages from 5,000 customers, 70 % sent/delivered/read
//! callbacks, unique wamids per run) are generated and signed before the clock starts.
//!
//! ```text
//! parley-loadgen run --url http://127.0.0.1:18080/webhooks/bench --app-secret bench-secret \
//!     --connections 32 --duration 20s                       # maximum throughput
//! parley-loadgen run --url ... --app-secret ... --rate 3300 --duration 20s \
//!     --verify-db 'sqlite:///tmp/bench/parley.db' --metrics-url http://127.0.0.1:18080/metrics
//! parley-loadgen compare "max throughput" baseline.json parley.json
//! ```
//!
//! `ops/bench/intake.sh` runs the whole comparison with the baseline server. Exit codes:
//! 0 passed, 1 error, 2 nothing acknowledged, 3 verification failed.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use parley_loadgen::{Cli, Command, compare, run};

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("parley-loadgen: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Compare(args) => {
            print!("{}", compare(&args)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("Failed to start the Tokio runtime")?;
            let report = runtime.block_on(run(&args))?;
            let json = serde_json::to_string(&report).context("Failed to serialize the report")?;
            if let Some(path) = &args.json_out {
                std::fs::write(path, format!("{json}\n"))
                    .with_context(|| format!("Failed to write {}", path.display()))?;
            }
            if args.json {
                println!("{json}");
            } else {
                print!("{}", report.human());
            }
            Ok(if report.acknowledged == 0 {
                eprintln!("parley-loadgen: no request was acknowledged");
                ExitCode::from(2)
            } else if !report.passed {
                eprintln!("parley-loadgen: verification failed");
                ExitCode::from(3)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
