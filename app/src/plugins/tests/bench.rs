//! Host-side overhead of one plugin call: a fresh `Store`, instantiation from
//! the `InstancePre`, a trivial export, breaker and statistics bookkeeping.
//! A timing loop, ignored by default; run it in release:
//!
//! ```sh
//! cargo test --release --lib plugins::tests::bench -- --ignored --nocapture
//! ```

use std::time::{Duration, Instant};

use super::support::*;
use crate::plugins::StaticSecrets;

const WARM_UP: usize = 1_000;
const CALLS: usize = 20_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "timing loop; run in release with --ignored --nocapture"]
async fn trivial_call_overhead_median_is_under_20_microseconds() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let manifest = dir.add("trivial", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&manifest).await.unwrap();
    let handle = registry.handle("trivial").unwrap();

    for _ in 0..WARM_UP {
        handle.health_check().await.unwrap();
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        handle.health_check().await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = percentile(&samples, 0.5);
    println!(
        "trivial plugin call, {CALLS} calls: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        median,
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        samples[samples.len() - 1],
    );
    if !cfg!(debug_assertions) {
        assert!(median < Duration::from_micros(20), "median {median:?}");
    }
}

/// One Twilio webhook through the reference transport: signature check (HMAC-SHA1
/// over URL and parameters) and parsing, in a fresh instance. Needs plugins/dist.
#[tokio::test(flavor = "current_thread")]
#[ignore = "timing loop; run in release with --ignored --nocapture"]
async fn twilio_verify_and_parse_call_time() {
    let server = wiremock::MockServer::start().await;
    let dir = PluginDir::new();
    let registry = super::reference_plugins::twilio_registry(&server, &dir).await;
    let twilio = registry.transport("twilio").unwrap();
    let request = super::reference_plugins::twilio_webhook(
        super::reference_plugins::TWILIO_TOKEN,
        &[
            ("MessageSid", "SM0001"),
            ("AccountSid", "AC123"),
            ("From", "whatsapp:+4915112345678"),
            ("To", "whatsapp:+14155238886"),
            (
                "Body",
                "Hi, my order has not arrived yet. Does it come in another color?",
            ),
            ("ProfileName", "Ana"),
            ("WaId", "4915112345678"),
            ("NumMedia", "0"),
        ],
    );
    for _ in 0..WARM_UP {
        twilio.verify_and_parse(request.clone()).await.unwrap();
    }
    let mut samples = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        twilio.verify_and_parse(request.clone()).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    println!(
        "twilio verify-and-parse, {CALLS} calls: p50 {:?}, p90 {:?}, p99 {:?}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
    );
}
