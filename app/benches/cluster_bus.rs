//! What the Redis side of a cluster costs, against the machine's Redis
//! (`REDIS_URL`, default `redis://127.0.0.1:6379`; keys under a fresh prefix):
//!
//!     cargo bench -p parley --bench cluster_bus               # pacing, fanout
//!     CALLS=50000 cargo bench -p parley --bench cluster_bus -- pacing
//!     EVENTS=20000 cargo bench -p parley --bench cluster_bus -- fanout
//!
//! 1. **pacing**: `CALLS` (20,000) pair tokens for distinct customers and as many
//!    throughput slots (a tier high enough that nobody waits), each call timed alone:
//!    the shared Redis scripts against this node's own pacers (the baseline, in the same
//!    run). Both are on every send's path.
//! 2. **fanout**: `EVENTS` (10,000) events published one at a time on node A's event bus
//!    and delivered to a subscriber of node B (two buses in this process, one Redis), as
//!    fast as they go (at most 1,024 ahead of the subscriber: the latency is then mostly
//!    that queue), then 1,000 at one per 2 ms: events per second and publish-to-delivery
//!    latency; baseline in the same run: one node's in-process delivery.
//!
//! Prints the figures; nothing is asserted (the machine may be busy).

// A benchmark: a failed setup step should stop it loudly.
#![allow(clippy::expect_used)]

use parley::clock::{SharedClock, SystemClock};
use parley::events::EventBus;
use parley::node::bus::limiter::SharedPacing;
use parley::node::bus::{self, ClusterBus};
use parley::outbound::pacing::{PairPacer, ThroughputPacer};
use parley::routing::presence::PresenceBoard;
use parley::store::Store;
use parley::store::entities::conversation_event;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A node of a cluster named `node`, with keys under `prefix`.
fn node(prefix: &str, node: &str) -> Arc<ClusterBus> {
    let settings = parley::config::Settings::from_toml(&format!(
        "[database]\nurl = \"postgres://unused/parley\"\n[cluster]\nredis_url = \"{}\"\nnode_id = \"{node}\"\nkey_prefix = \"{prefix}\"\n",
        redis_url()
    ))
    .expect("settings");
    ClusterBus::new(&settings.cluster).expect("bus")
}

fn prefix() -> String {
    format!("parley-bench-{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// Mean, p50 and p99 of per-call times, in microseconds.
fn summary(mut times: Vec<Duration>) -> String {
    times.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = times.iter().map(|d| us(*d)).sum::<f64>() / times.len().max(1) as f64;
    let at = |q: f64| us(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
    format!(
        "mean {mean:.1} us, p50 {:.1} us, p99 {:.1} us",
        at(0.5),
        at(0.99)
    )
}

async fn pacing_bench() {
    let calls = env("CALLS", 20_000);
    let bus = node(&prefix(), "bench");
    let shared = SharedPacing::new(bus, 1_000_000, 10, 6_000_000);
    let local_pair = PairPacer::new(10, 6_000_000);
    let local_throughput = ThroughputPacer::new(1_000_000);
    // One warm-up call connects and loads the scripts.
    let _ = shared.take_pair("n", "warm-up", 0).await;

    let mut times = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        let user = format!("1555{i:07}");
        let started = Instant::now();
        let _ = local_pair.take("106540352242922", &user, 0);
        times.push(started.elapsed());
    }
    println!(
        "pair token, this node's pacer (baseline): {}",
        summary(times)
    );
    let mut times = Vec::with_capacity(calls as usize);
    for i in 0..calls {
        let user = format!("1555{i:07}");
        let started = Instant::now();
        let _ = shared.take_pair("106540352242922", &user, 0).await;
        times.push(started.elapsed());
    }
    println!(
        "pair token, shared through Redis:         {}",
        summary(times)
    );

    let mut times = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let started = Instant::now();
        local_throughput.wait_turn("106540352242922").await;
        times.push(started.elapsed());
    }
    println!(
        "throughput slot, this node's (baseline):  {}",
        summary(times)
    );
    let mut times = Vec::with_capacity(calls as usize);
    for _ in 0..calls {
        let started = Instant::now();
        shared.wait_turn("106540352242922").await;
        times.push(started.elapsed());
    }
    println!(
        "throughput slot, shared through Redis:    {}",
        summary(times)
    );
}

fn event(id: i64) -> conversation_event::Model {
    conversation_event::Model {
        id,
        conversation_id: id % 100 + 1,
        kind: "message_in".into(),
        data: r#"{"kind":"text","text":"where is my order A-10023? it was due yesterday"}"#.into(),
        actor: "customer".into(),
        created_at: 1_669_233_778_000_000 + id,
    }
}

/// Publishes `events` one at a time on `from` (at most 1,024 ahead of the subscriber)
/// and waits until `to` delivered them all; (events per second, latency summary).
async fn deliver(
    from: &EventBus,
    to: &EventBus,
    first: i64,
    events: i64,
    pause: Duration,
) -> (f64, String) {
    let mut receiver = to.subscribe();
    let sent_at = Arc::new(std::sync::Mutex::new(Vec::with_capacity(events as usize)));
    let delivered = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let started = Instant::now();
    let collector = {
        let sent_at = sent_at.clone();
        let delivered = delivered.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events as usize);
            while (latencies.len() as i64) < events {
                match tokio::time::timeout(Duration::from_secs(30), receiver.recv()).await {
                    Ok(Ok(event)) => {
                        let at = sent_at.lock().expect("times")[(event.id - first) as usize];
                        latencies.push(Instant::now().duration_since(at));
                        delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                        panic!("the subscriber fell {n} events behind")
                    }
                    _ => panic!("events stopped arriving after {}", latencies.len()),
                }
            }
            latencies
        })
    };
    for n in 0..events {
        let id = first + n;
        sent_at.lock().expect("times").push(Instant::now());
        from.publish([event(id)]);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        // Never further ahead than the subscriber's buffer allows.
        while n + 1 - delivered.load(std::sync::atomic::Ordering::Relaxed) > 1024 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    let latencies = collector.await.expect("collector");
    let rate = events as f64 / started.elapsed().as_secs_f64();
    (rate, summary(latencies))
}

async fn fanout_bench() {
    let events = env("EVENTS", 10_000) as i64;
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = parley::config::Settings::from_toml(&format!(
        "[database]\nurl = \"sqlite://{}/parley.db?mode=rwc\"\n",
        dir.path().display()
    ))
    .expect("settings");
    let store = Store::connect(&settings.database).await.expect("store");
    store.migrate().await.expect("migrate");

    let alone = EventBus::new();
    let (rate, latency) = deliver(&alone, &alone, 1, events, Duration::ZERO).await;
    println!("one node, in process (baseline): {rate:.0} events/s, {latency}");

    let prefix = prefix();
    let (a, b) = (node(&prefix, "a"), node(&prefix, "b"));
    let (relay_a, outgoing_a) = a.start();
    tokio::spawn(bus::run_publisher(a.clone(), outgoing_a));
    let (relay_b, outgoing_b) = b.start();
    tokio::spawn(bus::run_publisher(b.clone(), outgoing_b));
    let on_a = EventBus::clustered(relay_a);
    let on_b = EventBus::clustered(relay_b.clone());
    let clock: SharedClock = Arc::new(SystemClock);
    tokio::spawn(bus::run_reader(
        b.clone(),
        bus::Sinks {
            events: on_b.clone(),
            presence: Arc::new(PresenceBoard::with_relay(relay_b)),
            invalidations: tokio::sync::broadcast::channel(16).0,
            store,
            clock,
        },
    ));
    // Let the reader find the stream's end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rate, latency) = deliver(&on_a, &on_b, 1, events, Duration::ZERO).await;
    println!("node A to node B through Redis, as fast as it goes: {rate:.0} events/s, {latency}");
    let (rate, latency) = deliver(&on_a, &on_b, events + 1, 1_000, Duration::from_millis(2)).await;
    println!("node A to node B through Redis, one event per 2 ms: {rate:.0} events/s, {latency}");
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wants = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if wants("pacing") {
        runtime.block_on(pacing_bench());
    }
    if wants("fanout") {
        runtime.block_on(fanout_bench());
    }
}
