//! Triage latency over the development set (`tests/triage/dev.jsonl`): one message at a
//! time, the whole set, and hostile input (huge and emoji-only text).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use parley::triage::{Classifier, DEFAULT_CONFIG, TriageConfig};

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

criterion_group!(benches, triage);
criterion_main!(benches);
