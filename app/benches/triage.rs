//! Triage latency over the development set (`tests/triage/dev.jsonl`): one message at a
//! time, the whole set, and hostile input (huge and emoji-only text); the routing policy's
//! decision and an agent choice among 200 agents.
//!
//! Before criterion's runs it measures every development message on its own (classify and
//! decide, as the conversation actor does) many times and prints the p50, p99 and max, the
//! figures the triage target is stated in:
//!     cargo bench -p parley --bench triage

use std::hint::black_box;

use criterion::{Criterion, criterion_group};
use parley::policy::{Policies, PolicySources};
use parley::routing::select::{AgentView, CaseNeeds, Presence, route};
use parley::triage::{Classifier, DEFAULT_CONFIG, TriageConfig};
use std::time::Instant;

const DEV_SET: &str = include_str!("../../tests/triage/dev.jsonl");

fn dev_texts() -> Vec<String> {
    DEV_SET
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v.get("text").and_then(|t| t.as_str()).map(str::to_owned))
        .collect()
}

fn triage(c: &mut Criterion) {
    let config = match TriageConfig::from_toml(DEFAULT_CONFIG) {
        Ok(config) => config,
        Err(e) => panic!("shipped triage config is invalid: {e}"),
    };
    let classifier = match Classifier::train(&config) {
        Ok(classifier) => classifier,
        Err(e) => panic!("shipped triage config does not train: {e}"),
    };
    let texts = dev_texts();
    let mut next = 0usize;
    c.bench_function("triage/classify_one_dev_message", |b| {
        b.iter(|| {
            next = (next + 1) % texts.len();
            black_box(classifier.classify(black_box(&texts[next])))
        })
    });
    c.bench_function("triage/classify_dev_set", |b| {
        b.iter(|| {
            for text in &texts {
                black_box(classifier.classify(black_box(text)));
            }
        })
    });
    let huge = "where is my order?? 😡 ".repeat(1000);
    c.bench_function("triage/classify_huge_message", |b| {
        b.iter(|| black_box(classifier.classify(black_box(&huge))))
    });
    c.bench_function("triage/train_from_config", |b| {
        b.iter(|| black_box(Classifier::train(black_box(&config))))
    });
}

fn engine() -> Policies {
    let texts = PolicySources::default().read();
    match texts.and_then(|texts| Policies::build(&texts, 0)) {
        Ok(engine) => engine,
        Err(e) => panic!("shipped configuration is invalid: {e}"),
    }
}

fn agents(n: i64) -> Vec<AgentView> {
    (0..n)
        .map(|id| AgentView {
            id,
            name: format!("agent {id}"),
            team: "tier1_care".into(),
            skills: if id % 3 == 0 {
                vec!["orders".into()]
            } else {
                vec!["returns".into()]
            },
            languages: vec![["en", "es", "pt", "ar", "hi", "id"][id as usize % 6].into()],
            capacity: 5,
            load: (id % 6) as u32,
            presence: if id % 10 == 0 {
                Presence::Away
            } else {
                Presence::Online
            },
            senior: id % 7 == 0,
            last_assigned_at: id * 1000,
        })
        .collect()
}

fn routing(c: &mut Criterion) {
    let engine = engine();
    let texts = dev_texts();
    let mut next = 0usize;
    c.bench_function("triage/classify_and_decide_one_dev_message", |b| {
        b.iter(|| {
            next = (next + 1) % texts.len();
            let classification = engine.classify(black_box(&texts[next]));
            black_box(engine.decide(classification, Vec::new()))
        })
    });
    let agents = agents(200);
    let needs = CaseNeeds {
        language: Some("hi".into()),
        skills: vec!["orders".into()],
        vip: false,
    };
    c.bench_function("routing/route_among_200_agents", |b| {
        b.iter(|| {
            black_box(route(
                &engine.routing,
                "tier1_care",
                &needs,
                black_box(&agents),
                0,
            ))
        })
    });
}

/// p50, p99 and max of classify + decide per development message, over many rounds.
fn percentiles() {
    let engine = engine();
    let texts = dev_texts();
    const ROUNDS: usize = 50;
    let mut samples = Vec::with_capacity(ROUNDS * texts.len());
    for _ in 0..ROUNDS {
        for text in &texts {
            let started = Instant::now();
            let classification = engine.classify(black_box(text));
            black_box(engine.decide(classification, Vec::new()));
            samples.push(started.elapsed());
        }
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "triage/classify_and_decide per message over {} samples ({} messages x {ROUNDS}): p50 {:?}  p99 {:?}  max {:?}",
        samples.len(),
        texts.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

criterion_group!(benches, triage, routing);

fn main() {
    percentiles();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
