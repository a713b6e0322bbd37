//! Reports at scale: a generated history written straight into the database, the
//! projection rebuilt from it, and the report queries timed against the rollups, with a
//! bare baseline (the same count straight from the event log) in the same run.
//!
//!     CONVERSATIONS=100000 cargo bench -p parley --bench reports
//!     DATABASE_URL=postgres://postgres@127.0.0.1:5432/parley_reports_bench \
//!         CONVERSATIONS=100000 cargo bench -p parley --bench reports
//!
//! 1. **generate**: `CONVERSATIONS` (100,000) cases over one year, 15 events each on
//!    average (created, messages both ways, triage, assignment to one of 200 agents in 10
//!    teams, resolution, some reopenings, escalations and surveys), inserted in bulk
//!    (SQLite in a temporary directory unless `DATABASE_URL` names a database, which must
//!    exist and is emptied first).
//! 2. **rebuild**: `parley reports rebuild`'s work (the projection emptied and the whole
//!    log folded), timed.
//! 3. **queries**: each report query `ROUNDS` (30) times over the whole year: summary,
//!    summary for one team, daily time series, the breakdown by agent (200 rows), the
//!    heatmap; p50 / p95 / max. Baseline: conversations created in the year counted
//!    straight from the event log (`SELECT COUNT(*) ... WHERE kind = 'created'`).
//!
//! Prints the figures; nothing is asserted (the machine may be busy).

#![allow(clippy::expect_used)]

use parley::clock::SystemClock;
use parley::config::Settings;
use parley::reports::Projection;
use parley::reports::figures::{Figures, Interval, Scope};
use parley::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOUR: i64 = 3_600_000_000;
/// 2026-01-01T00:00:00Z.
const YEAR_START: i64 = 1_767_225_600_000_000;
const YEAR: i64 = 365 * 24 * HOUR;
const AGENTS: i64 = 200;
const TEAMS: i64 = 10;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An event to insert: (kind, data, actor, at).
type GeneratedEvent = (&'static str, String, String, i64);

/// One case's events.
fn case_events(rng: &mut StdRng, created: i64) -> Vec<GeneratedEvent> {
    let agent = rng.gen_range(1..=AGENTS);
    let team = (agent - 1) % TEAMS + 1;
    let channel = ["meta-main", "meta-es", "twilio"][rng.gen_range(0..3)];
    let intent = [
        "order_status",
        "refund",
        "billing",
        "delivery",
        "account",
        "complaint",
        "product",
        "other",
    ][rng.gen_range(0..8)];
    let language = ["en", "es", "pt", "hi", "tr"][rng.gen_range(0..5)];
    let priority = ["low", "medium", "high", "urgent"][rng.gen_range(0..4)];
    let mut at = created;
    let mut out = vec![
        (
            "created",
            format!(r#"{{"channel_id":"{channel}"}}"#),
            "customer".to_string(),
            at,
        ),
        (
            "message_in",
            r#"{"kind":"text"}"#.to_string(),
            "customer".to_string(),
            at,
        ),
        (
            "triaged",
            format!(
                r#"{{"intents":[{{"label":"{intent}","confidence":0.9}}],"language":{{"label":"{language}","confidence":0.9}},"decision":{{"priority":"{priority}"}}}}"#
            ),
            "router".to_string(),
            at,
        ),
        (
            "assigned",
            format!(r#"{{"agent_id":{agent},"team_id":{team}}}"#),
            "router".to_string(),
            at,
        ),
    ];
    let exchanges = rng.gen_range(1..=4);
    for i in 0..exchanges {
        at += rng.gen_range(30..3_600) * 1_000_000;
        out.push((
            "message_out",
            r#"{"kind":"text"}"#.into(),
            format!("agent:{agent}"),
            at,
        ));
        if i + 1 < exchanges {
            at += rng.gen_range(30..1_800) * 1_000_000;
            out.push((
                "message_in",
                r#"{"kind":"text"}"#.into(),
                "customer".into(),
                at,
            ));
        }
    }
    if rng.gen_range(0..20) == 0 {
        out.push((
            "escalated",
            r#"{"trigger":"manual"}"#.into(),
            format!("agent:{agent}"),
            at,
        ));
    }
    at += rng.gen_range(60..7_200) * 1_000_000;
    out.push((
        "status_changed",
        r#"{"from":"in_progress","to":"resolved"}"#.into(),
        format!("agent:{agent}"),
        at,
    ));
    out.push(("csat_sent", "{}".into(), "system".into(), at));
    if rng.gen_range(0..2) == 0 {
        at += rng.gen_range(60..3_600) * 1_000_000;
        out.push((
            "csat_answered",
            format!(r#"{{"score":{}}}"#, rng.gen_range(1..=5)),
            "customer".into(),
            at,
        ));
    }
    if rng.gen_range(0..10) == 0 {
        at += rng.gen_range(60..3_600) * 1_000_000;
        out.push((
            "reopened",
            r#"{"from":"resolved","to":"assigned"}"#.into(),
            "customer".into(),
            at,
        ));
        at += rng.gen_range(60..3_600) * 1_000_000;
        out.push((
            "message_out",
            r#"{"kind":"text"}"#.into(),
            format!("agent:{agent}"),
            at,
        ));
        out.push((
            "status_changed",
            r#"{"from":"in_progress","to":"resolved"}"#.into(),
            format!("agent:{agent}"),
            at,
        ));
    }
    out
}

fn marks(backend: DbBackend, next: &mut usize, n: usize) -> String {
    let m: Vec<String> = (0..n)
        .map(|_| {
            *next += 1;
            if backend == DbBackend::Postgres {
                format!("${next}")
            } else {
                "?".into()
            }
        })
        .collect();
    format!("({})", m.join(","))
}

async fn generate(store: &Store, conversations: u64) -> u64 {
    let db = store.db();
    let backend = db.get_database_backend();
    for table in [
        "report_rollups",
        "report_cases",
        "report_checkpoints",
        "conversation_events",
        "conversations",
        "contacts",
    ] {
        db.execute(Statement::from_string(
            backend,
            format!("DELETE FROM {table}"),
        ))
        .await
        .expect("emptied");
    }
    let mut rng = StdRng::seed_from_u64(17);
    let mut events = 0u64;
    let spacing = YEAR / conversations as i64;
    const CHUNK: u64 = 2_000;
    let mut first = 1u64;
    while first <= conversations {
        let last = (first + CHUNK - 1).min(conversations);
        let txn = db.begin().await.expect("begin");
        let mut next = 0;
        let mut rows = Vec::new();
        let mut values: Vec<sea_orm::Value> = Vec::new();
        for id in first..=last {
            rows.push(marks(backend, &mut next, 4));
            values.extend([
                (id as i64).into(),
                format!("wa{id}").into(),
                YEAR_START.into(),
                YEAR_START.into(),
            ]);
        }
        txn.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO contacts (id, wa_id, created_at, updated_at) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await
        .expect("contacts");
        let (mut next, mut rows, mut values) = (0, Vec::new(), Vec::<sea_orm::Value>::new());
        let mut case_rows = Vec::new();
        for id in first..=last {
            let created = YEAR_START + (id as i64 - 1) * spacing + rng.gen_range(0..spacing.max(1));
            rows.push(marks(backend, &mut next, 9));
            values.extend([
                (id as i64).into(),
                (id as i64).into(),
                "meta-main".into(),
                "1".into(),
                "resolved".into(),
                "medium".into(),
                created.into(),
                created.into(),
                created.into(),
            ]);
            case_rows.push((id as i64, case_events(&mut rng, created)));
        }
        txn.execute(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO conversations (id, contact_id, channel_id, phone_number_id, status, priority, created_at, updated_at, last_activity_at) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await
        .expect("conversations");
        let all: Vec<(i64, GeneratedEvent)> = case_rows
            .into_iter()
            .flat_map(|(id, evs)| evs.into_iter().map(move |e| (id, e)))
            .collect();
        for chunk in all.chunks(5_000) {
            let (mut next, mut rows, mut values) = (0, Vec::new(), Vec::<sea_orm::Value>::new());
            for (id, (kind, data, actor, at)) in chunk {
                rows.push(marks(backend, &mut next, 5));
                values.extend([
                    (*id).into(),
                    (*kind).into(),
                    data.clone().into(),
                    actor.clone().into(),
                    (*at).into(),
                ]);
            }
            txn.execute(Statement::from_sql_and_values(
                backend,
                format!(
                    "INSERT INTO conversation_events (conversation_id, kind, data, actor, created_at) VALUES {}",
                    rows.join(",")
                ),
                values,
            ))
            .await
            .expect("events");
            events += chunk.len() as u64;
        }
        txn.commit().await.expect("commit");
        first = last + 1;
    }
    if backend == DbBackend::Postgres {
        db.execute(Statement::from_string(backend, "ANALYZE".to_string()))
            .await
            .expect("analyze");
    }
    events
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn timed<F, Fut, T>(name: &str, rounds: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(f().await);
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} |",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95)),
        ms(*times.last().expect("rounds"))
    );
}

#[actix_rt::main]
async fn main() {
    let conversations = env_or("CONVERSATIONS", 100_000);
    let rounds = env_or("ROUNDS", 30);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}/parley.db?mode=rwc", dir.path().display()));
    let mut settings = Settings::from_toml("").expect("settings");
    settings.database.url = url.clone();
    settings.database.sqlite_synchronous = parley::config::SqliteSynchronous::Normal;
    let store = Store::connect(&settings.database).await.expect("database");
    store.migrate().await.expect("migrated");
    println!("database: {}", url.split('?').next().unwrap_or_default());

    let started = Instant::now();
    let events = generate(&store, conversations).await;
    println!(
        "generate: {conversations} conversations, {events} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let projection = Projection::new(store.clone(), Arc::new(SystemClock), &settings.reports)
        .expect("projection");
    let started = Instant::now();
    let folded = projection.rebuild().await.expect("rebuilt");
    let took = started.elapsed().as_secs_f64();
    println!(
        "rebuild: {folded} events in {took:.1} s ({:.0} events/s)",
        folded as f64 / took
    );

    let kpis = parley::reports::load_kpis(&settings.reports).expect("kpis");
    let figures = Figures::new(store.clone(), projection.calendar().clone(), kpis);
    let year = Scope::everything(YEAR_START, YEAR_START + YEAR);
    let team = Scope {
        dim: "team",
        values: vec!["3".into()],
        ..year.clone()
    };
    let summary = figures.summary(&year).await.expect("summary");
    println!(
        "check: {} created, {} resolved, first response median {:?} s",
        summary.created,
        summary.resolutions,
        summary.first_response.median.map(|m| m / 1_000_000)
    );
    println!(
        "\n| query over the year ({rounds} rounds) | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|"
    );
    let backend = store.db().get_database_backend();
    timed("baseline: COUNT(*) of created events", rounds, || async {
        store
            .db()
            .query_one(Statement::from_string(
                backend,
                format!(
                    "SELECT COUNT(*) AS n FROM conversation_events WHERE kind = 'created' AND created_at >= {YEAR_START} AND created_at < {}",
                    YEAR_START + YEAR
                ),
            ))
            .await
            .expect("count")
    })
    .await;
    timed("summary", rounds, || figures.summary(&year)).await;
    timed("summary, one team", rounds, || figures.summary(&team)).await;
    timed("time series, daily", rounds, || {
        figures.series(
            &year,
            parley::reports::fold::metric::FIRST_RESPONSE,
            Interval::Day,
        )
    })
    .await;
    timed("breakdown by agent (200)", rounds, || {
        figures.breakdown(&year, "agent", 500, None)
    })
    .await;
    timed("heatmap", rounds, || figures.heatmap(&year)).await;
}
