//! What outbound governance costs: the gate per message, the audit append on intake and
//! sending, and verifying a long audit chain.
//!
//!     cargo bench -p parley --bench governance              # gate, audit, verify
//!     cargo bench -p parley --bench governance -- gate
//!     ROUNDS=5 WRITES=20000 cargo bench -p parley --bench governance -- audit
//!     AUDIT_ENTRIES=10000000 cargo bench -p parley --bench governance -- verify
//!
//! 1. **gate**: the default approval boundaries evaluated for `GATE_CALLS` (200,000)
//!    messages (origins and texts mixed) against case tags the real classifier produced
//!    for sample customer messages in the six languages; each call timed alone. Baseline
//!    in the same run: a policy with no boundaries (consent and window only). Then the
//!    consent read the gate makes first (`consent_of`, SQLite, 100,000 contacts with
//!    ledger entries), timed per call: the gate reads it at a conversation's first send,
//!    then its actor keeps it until it changes.
//! 2. **audit**: throughput of the writes that carry audited events (new cases with their
//!    assignment: intake; agents' replies with their outbox row: sending), `WRITES` each,
//!    `CONCURRENCY` (64) writers, SQLite, with the auditor chaining their events as it
//!    does in the server (counted until it has caught up with the last one) and without
//!    it, in `ROUNDS` (3) alternating pairs. The median ratio is the figure.
//! 3. **verify**: `AUDIT_ENTRIES` (10,000,000) chained entries written to SQLite, then
//!    the chain verified from the first entry (what `parley audit verify` runs), then one
//!    entry in the middle edited and the verification run again to its detection.
//!
//! Prints the figures; nothing is asserted (the machine may be busy).

// A benchmark: a failed setup step should stop it loudly.
#![allow(clippy::expect_used)]

use parley::clock::{Clock, SystemClock};
use parley::conversation::lifecycle::{self, Replier, ReplyAuthority};
use parley::domain::consent::Purpose;
use parley::domain::inbound::{InboundMessage, MessageContent, MessageKind};
use parley::domain::outbound::Origin;
use parley::domain::{Actor, ConversationKey, Micros};
use parley::policy::approvals::{self as gate, ApprovalPolicy, Outbound};
use parley::policy::loader::DEFAULT_APPROVALS;
use parley::store::Store;
use parley::store::audit::AuditConversationEvents;
use parley::store::conversations::NewEvent;
use sea_orm::ConnectionTrait;
use std::sync::Arc;
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sqlite_store(dir: &std::path::Path) -> Store {
    let url = format!("sqlite://{}/parley.db?mode=rwc", dir.display());
    let settings = parley::config::Settings::from_toml(&format!(
        "[database]\nurl = \"{url}\"\nsqlite_synchronous = \"normal\"\n"
    ))
    .expect("settings");
    let store = Store::connect(&settings.database).await.expect("store");
    store.migrate().await.expect("migrate");
    store
}

const SAMPLES: &[&str] = &[
    "where is my order A-10023? it was due yesterday",
    "you charged me twice for the same order",
    "i'm going to sue you, my lawyer will contact you",
    "me cobraron dos veces el mismo pedido",
    "quero devolver o tênis, ficou pequeno",
    "paket saya belum sampai sudah seminggu",
    "mera refund kab aayega",
    "لم يصلني الطلب حتى الآن",
    "great, thanks!",
    "a journalist asked me about your data leak",
];

const REPLIES: &[&str] = &[
    "Your order ****0023 has shipped. Tracking: DHL JJD000.",
    "We refunded you $40.00 today.",
    "I am sorry about this; a supervisor will call you.",
    "Hemos emitido un reembolso de R$ 1.299,90.",
    "How would you rate your support experience?",
];

fn gate_bench() {
    let config =
        parley::triage::TriageConfig::from_toml(parley::triage::DEFAULT_CONFIG).expect("taxonomy");
    let classifier = parley::triage::Classifier::train(&config).expect("classifier");
    let known = parley::policy::known_tags(&config);
    let policy = ApprovalPolicy::from_toml(DEFAULT_APPROVALS, &known).expect("boundaries");
    let none = ApprovalPolicy::from_toml("", &known).expect("no boundaries");
    // The case gist as stored: what the classifier said, plus routing's fields.
    let gists: Vec<String> = SAMPLES
        .iter()
        .map(|text| {
            let c = classifier.classify(text);
            serde_json::json!({
                "intents": c.intents, "urgency": c.urgency, "risks": c.risks,
                "language": c.language, "tones": c.tones, "low_confidence": c.low_confidence,
                "context": [], "owner": "general", "review": "automation",
                "rules": ["default"], "needs": { "skills": [], "language": c.language.label },
            })
            .to_string()
        })
        .collect();
    let origins = [
        Origin::Agent,
        Origin::Automation,
        Origin::AiDraft,
        Origin::Integration,
        Origin::Survey,
    ];
    let calls = env("GATE_CALLS", 200_000) as usize;
    let now: Micros = 1_700_000_000_000_000;
    let run = |policy: &ApprovalPolicy| {
        let mut times = Vec::with_capacity(calls);
        let mut held = 0usize;
        for i in 0..calls {
            let message = Outbound {
                origin: origins[i % origins.len()],
                purpose: Purpose::Service,
                template_category: None,
                text: REPLIES[i % REPLIES.len()],
            };
            let case = gate::Context {
                triage: Some(&gists[(i / origins.len()) % gists.len()]),
                vip: i % 7 == 0,
                consent: true,
                window_closes_at: Some(now + 23 * 3_600_000_000),
                now,
            };
            let started = Instant::now();
            let verdict = std::hint::black_box(policy.evaluate(&message, &case));
            times.push(started.elapsed().as_nanos() as u64);
            held += usize::from(matches!(verdict, gate::Verdict::Hold(_)));
        }
        times.sort_unstable();
        (times, held)
    };
    // Warm up, then measure each twice, alternating.
    let _ = run(&policy);
    let (base_a, _) = run(&none);
    let (full_a, held) = run(&policy);
    let (base_b, _) = run(&none);
    let (full_b, _) = run(&policy);
    for (name, times) in [
        ("no boundaries (baseline)", &base_a),
        ("default boundaries", &full_a),
        ("no boundaries (baseline, again)", &base_b),
        ("default boundaries (again)", &full_b),
    ] {
        println!(
            "gate: {name:32} median {:>6.2} µs  p99 {:>6.2} µs  max {:>8.1} µs  ({calls} calls)",
            percentile(times, 0.5) as f64 / 1000.0,
            percentile(times, 0.99) as f64 / 1000.0,
            *times.last().unwrap_or(&0) as f64 / 1000.0,
        );
    }
    println!(
        "gate: {held} of {calls} messages held by the default boundaries ({:.0} %)",
        held as f64 * 100.0 / calls as f64
    );
}

async fn consent_read_bench() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(dir.path()).await;
    let db = store.db();
    let contacts = env("CONSENT_CONTACTS", 100_000);
    seed_contacts(&store, contacts, "1999").await;
    // Two ledger entries per contact: an opt-out then, for half, an opt-in.
    db.execute_unprepared(
        "INSERT INTO consent_events (contact_id, purpose, granted, source, actor, at) \
         SELECT id, 'surveys', false, 'keyword', 'customer', 1 FROM contacts",
    )
    .await
    .expect("ledger");
    db.execute_unprepared(
        "INSERT INTO consent_events (contact_id, purpose, granted, source, actor, at) \
         SELECT id, 'surveys', true, 'keyword', 'customer', 2 FROM contacts WHERE id % 2 = 0",
    )
    .await
    .expect("ledger");
    let reads = 20_000u64;
    let mut times = Vec::with_capacity(reads as usize);
    let mut granted = 0;
    for i in 0..reads {
        let id = (i * 7919) % contacts + 1;
        let started = Instant::now();
        // What the gate reads at a conversation's first send (then kept by its actor).
        let consent = store.consent_of(id as i64).await.expect("read");
        granted += usize::from(
            consent
                .iter()
                .any(|c| c.purpose == Purpose::Surveys && c.granted),
        );
        times.push(started.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    println!(
        "gate: consent read (SQLite, {contacts} contacts)  median {:>6.2} µs  p99 {:>6.2} µs  ({reads} reads, {granted} granted)",
        percentile(&times, 0.5) as f64 / 1000.0,
        percentile(&times, 0.99) as f64 / 1000.0,
    );
}

/// Seeds `n` contacts whose WhatsApp ids are `prefix` and eight digits.
async fn seed_contacts(store: &Store, n: u64, prefix: &str) {
    store
        .db()
        .execute_unprepared(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
             INSERT INTO contacts (wa_id, created_at, updated_at, vip) \
             SELECT '{prefix}' || printf('%08d', i), 0, 0, false FROM n"
        ))
        .await
        .expect("contacts");
}

/// Seeds `n` open cases (one contact each) on the bench channel; returns their keys.
async fn seed_cases(store: &Store, n: u64, now: Micros) -> Vec<ConversationKey> {
    seed_contacts(store, n, "1888").await;
    let db = store.db();
    db.execute_unprepared(&format!(
        "INSERT INTO conversations (contact_id, channel_id, phone_number_id, status, priority, \
         reopen_count, created_at, updated_at, last_activity_at, last_customer_message_at) \
         SELECT id, 'bench', '106540352242922', 'in_progress', 'medium', 0, {now}, {now}, {now}, {now} \
         FROM contacts WHERE wa_id LIKE '1888%'"
    ))
    .await
    .expect("conversations");
    (1..=n)
        .map(|i| ConversationKey {
            channel_id: "bench".into(),
            phone_number_id: "106540352242922".into(),
            wa_id: format!("1888{i:08}"),
        })
        .collect()
}

/// Writes `writes` changes from `concurrency` writers; answers writes per second. With
/// `audited`, the auditor chains their events meanwhile, and the clock stops only once it
/// has chained `audited` entries in all.
async fn drive<F>(
    store: &Store,
    writes: usize,
    concurrency: usize,
    audited: Option<i64>,
    make: F,
) -> f64
where
    F: Fn(usize) -> parley::store::conversations::ConversationChange + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (store, make, next) = (store.clone(), make.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= writes {
                        break;
                    }
                    store.write(make(i)).await.expect("write");
                }
            })
        })
        .collect();
    let auditor = audited.map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            loop {
                let chained = store
                    .write(AuditConversationEvents { limit: 500 })
                    .await
                    .expect("audit");
                // As the server's auditor does.
                if chained < 500 {
                    tokio::time::sleep(parley::store::audit::AUDIT_PAUSE).await;
                }
            }
        })
    });
    for task in tasks {
        task.await.expect("writer");
    }
    if let (Some(total), Some(auditor)) = (audited, auditor) {
        while store.count_rows("audit_log").await.expect("count") < total {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        auditor.abort();
    }
    writes as f64 / started.elapsed().as_secs_f64()
}

async fn audit_bench() {
    let writes = env("WRITES", 20_000) as usize;
    let concurrency = env("CONCURRENCY", 64) as usize;
    let rounds = env("ROUNDS", 3);
    let mut ratios = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        {
            // Which goes first alternates.
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            let mut figures = [[0.0; 2]; 2];
            for audited in order {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = sqlite_store(dir.path()).await;
                let now = SystemClock.now();
                // Sending: an agent's reply on an open case (message, outbox row, event).
                let keys = seed_cases(&store, 2000, now).await;
                let mut states = Vec::with_capacity(keys.len());
                for key in &keys {
                    states.push(store.load_actor_state(key).await.expect("state"));
                }
                let cases = Arc::new((keys, states));
                let sends = drive(
                    &store,
                    writes,
                    concurrency,
                    audited.then_some(writes as i64),
                    move |i| {
                        let (keys, states) = &*cases;
                        let n = i % keys.len();
                        let id = states[n].live.as_ref().map_or(0, |c| c.id);
                        lifecycle::plan_reply(
                            &states[n],
                            &keys[n],
                            id,
                            "Your order ships today.",
                            Replier {
                                actor: &Actor::Agent { id: 1 },
                                agent_id: Some(1),
                                authority: ReplyAuthority::Supervisor,
                            },
                            now,
                        )
                        .expect("reply")
                    },
                )
                .await;
                // Intake: a new customer's first message opens a case, assigned at once.
                let intake = drive(
                    &store,
                    writes,
                    concurrency,
                    audited.then_some(2 * writes as i64),
                    move |i| {
                        let key = ConversationKey {
                            channel_id: "bench".into(),
                            phone_number_id: "106540352242922".into(),
                            wa_id: format!("1777{i:08}"),
                        };
                        let message = InboundMessage {
                            phone_number_id: key.phone_number_id.clone(),
                            wa_id: key.wa_id.clone(),
                            profile_name: None,
                            provider_message_id: format!("wamid.bench.{i}"),
                            sent_at: chrono::Utc::now(),
                            kind: MessageKind::Text,
                            text: Some("where is my order?".into()),
                            content: MessageContent::Text {
                                body: "where is my order?".into(),
                            },
                            context: None,
                            errors: Vec::new(),
                        };
                        let state = parley::store::conversations::ActorState::default();
                        let (_, mut change) = lifecycle::plan_customer_message(
                            &state,
                            &key,
                            &message,
                            now,
                            now,
                            86_400_000_000,
                        );
                        change.events.push(NewEvent {
                            kind: "assigned",
                            data: serde_json::json!({ "agent_id": 1, "team_id": 1 }),
                            actor: "system".into(),
                        });
                        change
                    },
                )
                .await;
                let mut entries = store.count_rows("audit_log").await.expect("count");
                if !audited {
                    // The chaining alone, nothing else running: its cost per entry.
                    let started = Instant::now();
                    let mut batches = 0;
                    while store
                        .write(AuditConversationEvents { limit: 500 })
                        .await
                        .expect("audit")
                        > 0
                    {
                        batches += 1;
                    }
                    let took = started.elapsed();
                    let chained = store.count_rows("audit_log").await.expect("count");
                    println!(
                        "audit: chaining {chained} entries alone took {:.2} s ({:.1} µs each, {batches} batches)",
                        took.as_secs_f64(),
                        took.as_secs_f64() * 1e6 / chained.max(1) as f64
                    );
                    entries = 0;
                }
                println!(
                    "audit: round {round} audit {:3}  intake {intake:>7.0} writes/s  sending {sends:>7.0} writes/s  ({entries} audit entries)",
                    if audited { "on" } else { "off" }
                );
                figures[usize::from(audited)] = [intake, sends];
            }
            for (kind, ratio) in ratios.iter_mut().enumerate() {
                ratio.push(figures[1][kind] / figures[0][kind]);
            }
        }
    }
    for (name, mut ratio) in ["intake", "sending"].into_iter().zip(ratios) {
        ratio.sort_by(f64::total_cmp);
        println!(
            "audit: {name} with the audit append / without: {} (median {:.2})",
            ratio
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            ratio[ratio.len() / 2]
        );
    }
}

async fn verify_bench() {
    use parley::store::audit::{GENESIS, entry_hash};
    let n = env("AUDIT_ENTRIES", 10_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = sqlite_store(dir.path()).await;
    let written = Instant::now();
    let mut prev = GENESIS.to_owned();
    let batch = 2_000u64;
    let mut id = 0u64;
    let db = store.db();
    while id < n {
        let mut sql = String::with_capacity(batch as usize * 400);
        sql.push_str(
            "INSERT INTO audit_log (id, at, actor, action, subject, data, prev_hash, hash) VALUES ",
        );
        let end = (id + batch).min(n);
        for i in id..end {
            let at = 1_700_000_000_000_000 + i as i64 * 1000;
            let actor = format!("agent:{}", i % 50);
            let action = if i % 3 == 0 {
                "conversation.message_out"
            } else {
                "conversation.assigned"
            };
            let subject = format!("conversation:{}", i / 4);
            let data = format!("{{\"kind\":\"text\",\"message_id\":{i}}}");
            let hash = entry_hash(&prev, at, &actor, action, Some(&subject), &data);
            if i > id {
                sql.push(',');
            }
            sql.push_str(&format!(
                "({}, {at}, '{actor}', '{action}', '{subject}', '{data}', '{prev}', '{hash}')",
                i + 1
            ));
            prev = hash;
        }
        db.execute_unprepared(&format!("BEGIN; {sql}; COMMIT;"))
            .await
            .expect("insert");
        id = end;
    }
    println!(
        "verify: {n} chained entries written in {:.1} s",
        written.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let report = store.verify_audit_chain().await.expect("verify");
    let took = started.elapsed();
    println!(
        "verify: {} entries checked in {:.1} s ({:.0} entries/s), intact: {}",
        report.entries,
        took.as_secs_f64(),
        report.entries as f64 / took.as_secs_f64(),
        report.first_broken.is_none()
    );
    let middle = n / 2;
    db.execute_unprepared(&format!(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else' WHERE id = {middle}"
    ))
    .await
    .expect("tamper");
    let started = Instant::now();
    let report = store.verify_audit_chain().await.expect("verify");
    println!(
        "verify: edited entry {middle} detected as {:?} after {:.1} s",
        report.first_broken.map(|b| (b.id, b.reason)),
        started.elapsed().as_secs_f64()
    );
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
    if wants("gate") {
        gate_bench();
        runtime.block_on(consent_read_bench());
    }
    if wants("audit") {
        runtime.block_on(audit_bench());
    }
    if wants("verify") {
        runtime.block_on(verify_bench());
    }
}
