//! A stand-in intake server to try the load generator without Parley:
//!
//! ```text
//! cargo run --release -p parley-loadgen --example echo_server -- \
//!     --bind 127.0.0.1:18080 --channel bench --app-secret bench-secret \
//!     [--database-url 'sqlite:///tmp/standin.db'] [--skip-every 1000]
//! ```
//!
//! It checks signatures and answers like Parley's intake; with a database it fills
//! `messages` and `message_statuses` and exports the apply-lag histogram on `/metrics`.

#[path = "../tests/support/standin.rs"]
mod standin;

use anyhow::Result;
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18080")]
    bind: String,
    #[arg(long, default_value = "bench")]
    channel: String,
    #[arg(long, default_value = "bench-secret")]
    app_secret: String,
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long)]
    skip_every: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let (listener, addr) = standin::bind(&args.bind).await?;
    standin::start(
        listener,
        standin::StandinConfig {
            channel: args.channel,
            app_secret: args.app_secret,
            database_url: args.database_url,
            skip_every: args.skip_every,
            max_body_bytes: 3 * 1024 * 1024,
        },
    )
    .await?;
    eprintln!("stand-in intake listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
