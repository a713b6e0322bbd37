//! `parley-baseline`: the benchmark's yardstick. A bare actix-web handler that does only
//! what Parley's intake must do before it may answer: check the signature and store the
//! payload durably through the same batched, group-committed insert (SQLite, fsync). No parsing, no
//! actors, no processing. Parley's full intake is compared against it in the same run.
//!
//! `parley-baseline --bind 127.0.0.1:18081 --database-url sqlite:///tmp/b.db?mode=rwc \
//!   --channel bench --app-secret bench-secret`

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use clap::Parser;
use parley::config::{DatabaseSettings, SqliteSynchronous};
use parley::ingest::WEBHOOKS_PER_BATCH;
use parley::ingest::signature::verify_meta;
use parley::store::Store;
use parley::store::batcher::Batcher;
use parley::store::inbox::{InsertInbox, NewInboxRow};
use sha2::{Digest, Sha256};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18081")]
    bind: String,
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "bench")]
    channel: String,
    #[arg(long, default_value = "bench-secret")]
    app_secret: String,
    /// HTTP workers; 0 means one per core (as Parley).
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

struct State {
    inbox: Batcher<InsertInbox>,
    channel: String,
    secret: Vec<u8>,
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
    let row = NewInboxRow {
        channel_id: state.channel.clone(),
        body_sha256: hex::encode(Sha256::digest(&body)),
        body,
        received_at: chrono::Utc::now().timestamp_micros(),
    };
    match state.inbox.submit(row).await {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

async fn ready() -> HttpResponse {
    HttpResponse::Ok().finish()
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = DatabaseSettings {
        url: args.database_url.clone(),
        // The same inbox as Parley's: with SQLite a file of its own beside this one,
        // written by its own writer thread.
        inbox_url: None,
        max_connections: 4,
        sqlite_synchronous: SqliteSynchronous::Full,
        migrate_on_start: true,
        group_commit_max_batch: 512,
    };
    let store = Store::connect(&settings).await?;
    store.migrate().await?;
    let inbox = Batcher::start(store.inbox_writer(), WEBHOOKS_PER_BATCH);
    let state = web::Data::new(State {
        inbox,
        channel: args.channel,
        secret: args.app_secret.into_bytes(),
    });
    let workers = match args.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
    };
    eprintln!("parley-baseline: listening on {}", args.bind);
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
