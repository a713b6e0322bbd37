//! The SLA clock at scale: memory per pending deadline, how late deadlines fire while
//! the clock is being rescheduled under load, and how long a restart with every deadline
//! in the store takes to fire again.
//!
//!     cargo bench -p parley --bench sla_deadlines
//!     DEADLINES=200000 SPREAD_SECS=20 cargo bench -p parley --bench sla_deadlines
//!
//! 1. Memory: `DEADLINES` deadlines (1,000,000 by default) are scheduled on the real
//!    [`SlaClock`] actor; the growth of resident memory (after the list handed over is
//!    built, so only the clock's own state counts) divided by their number.
//! 2. Lateness: they come due over `SPREAD_SECS` seconds of wall-clock time while
//!    `LOAD_PER_SEC` reschedules per second (the load intake puts on the clock) keep
//!    arriving; each fired deadline's lateness (receipt minus due) is recorded. The
//!    baseline in the same run is the lateness with no rescheduling load.
//! 3. Restart: a SQLite store with `DEADLINES` open cases, all overdue; the time from
//!    opening the store to the first deadline firing (read every deadline, schedule
//!    them, fire), as at start-up.
//!
//! Prints the figures; nothing is asserted (the machine may be busy).

// A benchmark: a failed setup step should stop it loudly.
#![allow(clippy::expect_used)]

use actix::prelude::*;
use parley::clock::{Clock, SharedClock, SystemClock};
use parley::sla::deadlines::{DeadlinesDue, PendingDeadlines, Schedule, ScheduleMany, SlaClock};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Resident memory of this process, in bytes (Linux).
fn resident_bytes() -> i64 {
    let pages: i64 = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse().ok()))
        .unwrap_or(0);
    pages * 4096
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records the lateness of every fired deadline, in microseconds.
struct Sink {
    clock: SharedClock,
    lateness: Arc<Mutex<Vec<i64>>>,
}

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<DeadlinesDue> for Sink {
    type Result = ();
    fn handle(&mut self, msg: DeadlinesDue, _: &mut Self::Context) {
        let now = self.clock.now();
        let mut lateness = self.lateness.lock().unwrap_or_else(|p| p.into_inner());
        lateness.extend(msg.0.iter().map(|(_, due)| now - due));
    }
}

fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// Schedules `n` deadlines spread over `spread` from `start`, with `load` reschedules a
/// second of ids outside that set until they have all fired; returns lateness (µs).
async fn lateness_run(n: u64, spread: Duration, load: u64, measure_memory: bool) -> Vec<i64> {
    let clock: SharedClock = Arc::new(SystemClock);
    let lateness = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    let sink = Sink {
        clock: clock.clone(),
        lateness: lateness.clone(),
    }
    .start();
    let arbiter = Arbiter::new();
    let sla_clock = {
        let clock = clock.clone();
        let recipient = sink.clone().recipient();
        SlaClock::start_in_arbiter(&arbiter.handle(), move |_| SlaClock::new(clock, recipient))
    };
    let start = clock.now() + 3_000_000;
    let step = spread.as_micros() as i64 / n as i64;
    let deadlines: Vec<(i64, i64)> = (0..n as i64).map(|i| (i + 1, start + i * step)).collect();
    let before = resident_bytes();
    // The list handed over is freed once scheduled; what stays is the clock's own state.
    sla_clock.do_send(ScheduleMany(deadlines));
    let pending = sla_clock.send(PendingDeadlines).await.unwrap_or(0);
    if measure_memory {
        let held = resident_bytes() - before;
        println!(
            "memory: {pending} pending deadlines hold {:.1} MiB of resident memory, {:.1} bytes each (target < 200)",
            held as f64 / 1_048_576.0,
            held as f64 / pending as f64
        );
    }
    // The load: reschedules of other cases (as intake moves their next alarms), far in
    // the future so they never fire during the run.
    let loader = {
        let sla_clock = sla_clock.clone();
        let clock = clock.clone();
        tokio::spawn(async move {
            if load == 0 {
                return 0u64;
            }
            let batch = (load / 100).max(1);
            let mut sent = 0u64;
            let mut id = 10_000_000_000i64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                for _ in 0..batch {
                    id += 1;
                    sla_clock.do_send(Schedule {
                        conversation_id: 10_000_000_000 + (id % 200_000),
                        due: Some(clock.now() + 3_600_000_000 + id % 1_000_000),
                    });
                }
                sent += batch;
                if sent > load * 120 {
                    return sent;
                }
            }
        })
    };
    let deadline = Instant::now() + spread + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fired = lateness.lock().map(|l| l.len()).unwrap_or(0) as u64;
        if fired >= n || Instant::now() > deadline {
            break;
        }
    }
    loader.abort();
    arbiter.stop();
    let mut out = lateness.lock().map(|l| l.clone()).unwrap_or_default();
    out.sort_unstable();
    out
}

fn report(label: &str, n: u64, sorted: &[i64]) {
    let late_100ms = sorted.iter().filter(|l| **l > 100_000).count();
    println!(
        "{label}: {} of {n} fired; lateness p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; {} later than 100 ms ({:.4} %)",
        sorted.len(),
        percentile(sorted, 0.50),
        percentile(sorted, 0.99),
        percentile(sorted, 0.999),
        sorted.last().copied().unwrap_or(0) as f64 / 1000.0,
        late_100ms,
        100.0 * late_100ms as f64 / sorted.len().max(1) as f64,
    );
}

async fn restart_run(n: u64) {
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/parley.db?mode=rwc", dir.path().display());
    let settings = parley::config::Settings::from_toml(&format!(
        "[database]\nurl = \"{url}\"\nsqlite_synchronous = \"normal\"\n"
    ))
    .expect("settings");
    let store = parley::store::Store::connect(&settings.database)
        .await
        .expect("store");
    store.migrate().await.expect("migrate");
    let now = SystemClock.now();
    let db = store.db();
    let filled = Instant::now();
    // One contact per case (a contact has one live case per number).
    db.execute_unprepared(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         INSERT INTO contacts (wa_id, created_at, updated_at, vip) \
         SELECT '1999' || printf('%08d', i), 0, 0, false FROM n"
    ))
    .await
    .expect("contacts");
    db.execute_unprepared(&format!(
        "INSERT INTO conversations (contact_id, channel_id, phone_number_id, status, priority, \
         reopen_count, created_at, updated_at, last_activity_at, sla_due_at) \
         SELECT id, 'bench', '106540352242922', 'assigned', 'medium', 0, {now}, {now}, {now}, \
         {now} - 1000000 - id FROM contacts"
    ))
    .await
    .expect("conversations");
    println!(
        "restart: {n} open cases with an overdue deadline written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );
    drop(store);

    // As at start-up: open the store, read every deadline, schedule, fire.
    let started = Instant::now();
    let store = parley::store::Store::connect(&settings.database)
        .await
        .expect("store");
    let deadlines = store.sla_deadlines().await.expect("deadlines");
    let read = started.elapsed();
    let clock: SharedClock = Arc::new(SystemClock);
    let lateness = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink {
        clock: clock.clone(),
        lateness: lateness.clone(),
    }
    .start();
    let count = deadlines.len();
    let sla_clock = SlaClock::new(clock, sink.recipient()).start();
    sla_clock.do_send(ScheduleMany(deadlines));
    loop {
        if lateness.lock().map(|l| !l.is_empty()).unwrap_or(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "restart: {count} deadlines read in {:.2} s; firing again {:.2} s after the store opened (target < 10 s)",
        read.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let n = env("DEADLINES", 1_000_000);
    let spread = Duration::from_secs(env("SPREAD_SECS", 30));
    let load = env("LOAD_PER_SEC", 50_000);
    let system = actix::System::new();
    system.block_on(async move {
        let baseline = lateness_run(n, spread, 0, true).await;
        report("no load (baseline)", n, &baseline);
        let loaded = lateness_run(n, spread, load, false).await;
        report(&format!("{load} reschedules/s"), n, &loaded);
        restart_run(n).await;
    });
}
