//! A stand-in for Parley's intake, to exercise the load generator without the real server.
//!
//! Same HTTP contract for `POST /webhooks/{channel_id}` (401 bad signature, 404 unknown
//! channel, 413 over the limit, 200 once accepted), `GET /readyz` and `GET /metrics`. It
//! does not commit anything durably. With a database it applies each accepted payload
//! asynchronously into `messages` / `message_statuses` and observes the apply lag in the
//! `parley_ingest_apply_lag_seconds` histogram; `skip_every` leaves every n-th record out,
//! to show that verification notices.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const LAG_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const APPLY_BATCH: usize = 512;

#[derive(Debug, Clone)]
pub struct StandinConfig {
    pub channel: String,
    pub app_secret: String,
    /// SQLite URL to apply payloads into; none: accept and forget.
    pub database_url: Option<String>,
    /// Leave every n-th message or status out of the database.
    pub skip_every: Option<u64>,
    pub max_body_bytes: usize,
}

#[derive(Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub unauthorized: AtomicU64,
    pub applied: AtomicU64,
}

struct LagHistogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

struct State {
    config: StandinConfig,
    counters: Arc<Counters>,
    lag: Mutex<LagHistogram>,
    to_apply: mpsc::UnboundedSender<(Instant, Bytes)>,
}

/// Serves on `listener` until the runtime ends; returns the shared counters.
pub async fn start(listener: TcpListener, config: StandinConfig) -> Result<Arc<Counters>> {
    let pool = match &config.database_url {
        Some(url) => Some(open_database(url).await?),
        None => None,
    };
    let (to_apply, applier_inbox) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters::default());
    let state = Arc::new(State {
        config,
        counters: Arc::clone(&counters),
        lag: Mutex::new(LagHistogram {
            counts: vec![0; LAG_BOUNDS.len()],
            sum: 0.0,
            count: 0,
        }),
        to_apply,
    });
    tokio::spawn(apply_loop(Arc::clone(&state), pool, applier_inbox));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(Arc::clone(&state), request));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(counters)
}

pub async fn bind(addr: &str) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await.context("Failed to bind")?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

async fn open_database(url: &str) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(url)?.create_if_missing(true);
    let pool = SqlitePool::connect_with(options).await?;
    sqlx::query("PRAGMA journal_mode=WAL")
        .execute(&pool)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, channel_id TEXT NOT NULL, \
         provider_message_id TEXT NOT NULL, direction TEXT NOT NULL, body TEXT, \
         UNIQUE (channel_id, provider_message_id))",
    )
    .execute(&pool)
    .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS message_statuses (id INTEGER PRIMARY KEY, channel_id TEXT NOT NULL, \
         provider_message_id TEXT NOT NULL, status TEXT NOT NULL, \
         UNIQUE (channel_id, provider_message_id, status))",
    )
    .execute(&pool)
    .await?;
    Ok(pool)
}

fn respond(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> std::result::Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path().to_owned();
    let response = match (request.method(), path.as_str()) {
        (&Method::GET, "/readyz") => respond(StatusCode::OK, "ready"),
        (&Method::GET, "/metrics") => Response::new(Full::new(Bytes::from(render_metrics(&state)))),
        (&Method::POST, p) if p.starts_with("/webhooks/") => webhook(&state, request).await,
        _ => respond(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

async fn webhook(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let channel = request.uri().path().trim_start_matches("/webhooks/");
    if channel != state.config.channel {
        return respond(StatusCode::NOT_FOUND, "unknown channel");
    }
    let signature = request
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok());
    let body = match Limited::new(request.into_body(), state.config.max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return respond(StatusCode::PAYLOAD_TOO_LARGE, "too large"),
    };
    let valid = signature.is_some_and(|sig| {
        Hmac::<Sha256>::new_from_slice(state.config.app_secret.as_bytes())
            .map(|mut mac| {
                mac.update(&body);
                mac.verify_slice(&sig).is_ok()
            })
            .unwrap_or(false)
    });
    if !valid {
        state.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        return respond(StatusCode::UNAUTHORIZED, "signature_invalid");
    }
    state.counters.accepted.fetch_add(1, Ordering::Relaxed);
    let _ = state.to_apply.send((Instant::now(), body));
    respond(StatusCode::OK, "")
}

async fn apply_loop(
    state: Arc<State>,
    pool: Option<SqlitePool>,
    mut inbox: mpsc::UnboundedReceiver<(Instant, Bytes)>,
) {
    let mut seen = 0u64;
    let mut batch = Vec::with_capacity(APPLY_BATCH);
    while inbox.recv_many(&mut batch, APPLY_BATCH).await > 0 {
        if let Some(pool) = &pool
            && let Err(error) = apply_batch(&state, pool, &batch, &mut seen).await
        {
            eprintln!("stand-in: failed to apply a batch: {error:#}");
        }
        let mut lag = state.lag.lock().unwrap_or_else(|p| p.into_inner());
        for (received, _) in &batch {
            let seconds = received.elapsed().as_secs_f64();
            for (i, bound) in LAG_BOUNDS.iter().enumerate() {
                if seconds <= *bound {
                    lag.counts[i] += 1;
                }
            }
            lag.sum += seconds;
            lag.count += 1;
        }
        drop(lag);
        state
            .counters
            .applied
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}

async fn apply_batch(
    state: &State,
    pool: &SqlitePool,
    batch: &[(Instant, Bytes)],
    seen: &mut u64,
) -> Result<()> {
    let channel = state.config.channel.as_str();
    let mut tx = pool.begin().await?;
    for (_, body) in batch {
        let payload: serde_json::Value = serde_json::from_slice(body)?;
        let value = &payload["entry"][0]["changes"][0]["value"];
        let mut skip = || {
            *seen += 1;
            state
                .config
                .skip_every
                .is_some_and(|n| seen.is_multiple_of(n))
        };
        for message in value["messages"].as_array().into_iter().flatten() {
            if skip() {
                continue;
            }
            sqlx::query(
                "INSERT OR IGNORE INTO messages (channel_id, provider_message_id, direction, body) \
                 VALUES (?1, ?2, 'inbound', ?3)",
            )
            .bind(channel)
            .bind(message["id"].as_str().unwrap_or_default())
            .bind(message["text"]["body"].as_str().unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        }
        for status in value["statuses"].as_array().into_iter().flatten() {
            if skip() {
                continue;
            }
            sqlx::query(
                "INSERT OR IGNORE INTO message_statuses (channel_id, provider_message_id, status) \
                 VALUES (?1, ?2, ?3)",
            )
            .bind(channel)
            .bind(status["id"].as_str().unwrap_or_default())
            .bind(status["status"].as_str().unwrap_or_default())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn render_metrics(state: &State) -> String {
    let lag = state.lag.lock().unwrap_or_else(|p| p.into_inner());
    let name = "parley_ingest_apply_lag_seconds";
    let mut out = format!(
        "# HELP {name} Seconds from a webhook's commit to its application.\n# TYPE {name} histogram\n"
    );
    for (bound, count) in LAG_BOUNDS.iter().zip(&lag.counts) {
        out.push_str(&format!("{name}_bucket{{le=\"{bound}\"}} {count}\n"));
    }
    out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {}\n", lag.count));
    out.push_str(&format!(
        "{name}_sum {}\n{name}_count {}\n",
        lag.sum, lag.count
    ));
    out.push_str(&format!(
        "parley_ingest_webhooks_accepted_total {}\n",
        state.counters.accepted.load(Ordering::Relaxed)
    ));
    out
}
