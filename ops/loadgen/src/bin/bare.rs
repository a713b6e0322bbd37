//! `parley-bare`: the benchmark's yardstick, the bare physical operation an intake must do
//! before it may answer a webhook. An actix-web handler checks Meta's signature (the same
//! HMAC check Parley makes) and hands the raw body to one writer thread, which inserts it
//! with rusqlite and group-commits: SQLite in WAL mode with `synchronous=FULL`, so every
//! answer waits for an fsync. The table keeps the one thing intake may not skip, the
//! unique key that tells a redelivery. Nothing of Parley's own path is used (no sqlx, no
//! sea-orm, no batcher, no actors): Parley is measured against the machine, not against
//! itself.
//!
//! `parley-bare --bind 127.0.0.1:18082 --database /tmp/bare.db --channel bench \
//!   --app-secret bench-secret`

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use clap::Parser;
use parley::ingest::signature::verify_meta;
use sha2::{Digest, Sha256};
use std::sync::mpsc;
use tokio::sync::oneshot;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18082")]
    bind: String,
    /// The SQLite file (created when missing).
    #[arg(long)]
    database: String,
    #[arg(long, default_value = "bench")]
    channel: String,
    #[arg(long, default_value = "bench-secret")]
    app_secret: String,
    /// HTTP workers; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Most bodies in one commit.
    #[arg(long, default_value_t = 512)]
    max_batch: usize,
}

/// One body to store, and where to say it is durable.
struct Row {
    body: web::Bytes,
    sha256: String,
    received_at: i64,
    stored: oneshot::Sender<bool>,
}

struct State {
    rows: mpsc::Sender<Row>,
    channel: String,
    secret: Vec<u8>,
}

fn open(path: &str) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (
             id INTEGER PRIMARY KEY,
             channel_id TEXT NOT NULL,
             body BLOB NOT NULL,
             body_sha256 TEXT NOT NULL,
             received_at INTEGER NOT NULL
         );
         CREATE UNIQUE INDEX IF NOT EXISTS ux_inbox_body ON inbox (channel_id, body_sha256);",
    )?;
    Ok(conn)
}

/// The writer thread: waits for a body, takes every other one queued meanwhile, inserts
/// them in one transaction and answers each after the commit.
fn write_rows(
    mut conn: rusqlite::Connection,
    rows: mpsc::Receiver<Row>,
    channel: String,
    max: usize,
) {
    let mut batch = Vec::with_capacity(max);
    while let Ok(first) = rows.recv() {
        batch.push(first);
        while batch.len() < max {
            match rows.try_recv() {
                Ok(row) => batch.push(row),
                Err(_) => break,
            }
        }
        let committed = (|| -> rusqlite::Result<()> {
            let txn = conn.transaction()?;
            {
                let mut insert = txn.prepare_cached(
                    "INSERT INTO inbox (channel_id, body, body_sha256, received_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )?;
                for row in &batch {
                    insert.execute(rusqlite::params![
                        channel,
                        &row.body[..],
                        row.sha256,
                        row.received_at
                    ])?;
                }
            }
            txn.commit()
        })();
        if let Err(error) = &committed {
            eprintln!("parley-bare: commit failed: {error}");
        }
        for row in batch.drain(..) {
            let _ = row.stored.send(committed.is_ok());
        }
    }
}

async fn receive(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    if *path != state.channel {
        return HttpResponse::NotFound().finish();
    }
    let header = req
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if verify_meta(header, &state.secret, &body).is_err() {
        return HttpResponse::Unauthorized().finish();
    }
    let (stored, answer) = oneshot::channel();
    let row = Row {
        sha256: hex::encode(Sha256::digest(&body)),
        body,
        received_at: chrono::Utc::now().timestamp_micros(),
        stored,
    };
    if state.rows.send(row).is_err() {
        return HttpResponse::ServiceUnavailable().finish();
    }
    match answer.await {
        Ok(true) => HttpResponse::Ok().finish(),
        _ => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn ready() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = open(&args.database).with_context(|| format!("Failed to open {}", args.database))?;
    let (rows, queued) = mpsc::channel();
    let channel = args.channel.clone();
    let max = args.max_batch.max(1);
    std::thread::Builder::new()
        .name("bare-writer".into())
        .spawn(move || write_rows(conn, queued, channel, max))?;
    let state = web::Data::new(State {
        rows,
        channel: args.channel,
        secret: args.app_secret.into_bytes(),
    });
    let workers = match args.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    eprintln!("parley-bare: listening on {}", args.bind);
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(3 * 1024 * 1024))
            .route("/webhooks/{channel}", web::post().to(receive))
            .route("/readyz", web::get().to(ready))
    })
    .workers(workers)
    .bind(&args.bind)?
    .run()
    .await?;
    Ok(())
}
