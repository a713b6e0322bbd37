//! Plugins that misbehave on purpose. Each failure must come back as its own
//! `PluginError` variant, quickly, while well-behaved plugins keep working.

use std::time::{Duration, Instant};

use super::support::*;
use crate::plugins::{CustomerKey, PluginError, PluginHealth, ReportedError, StaticSecrets};

const INFINITE_LOOP: &str = "(loop $forever (br $forever)) (i32.const 2048)";
const MEMORY_BOMB: &str =
    "(loop $more (drop (memory.grow (i32.const 16))) (br $more)) (i32.const 2048)";
const TRAP: &str = "unreachable";
/// Calls `http-request` (GET, URL from the data segment, no headers, no body,
/// no timeout; result at 3072), then answers `err(not-found)`.
const CALL_EVIL_HOST: &str = "(call $http (i32.const 0) (i32.const 16) (i32.const 26) \
     (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) \
     (i32.const 0) (i32.const 0) (i32.const 3072)) \
     (i32.store8 (i32.const 2048) (i32.const 1)) \
     (i32.store8 (i32.const 2052) (i32.const 4)) (i32.const 2048)";
const HTTP_IMPORT: &str = r#"(import "parley:plugin/host@0.1.0" "http-request"
    (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))"#;
const EVIL_URL: &str = r#"(data (i32.const 16) "https://evil.example/steal")"#;

fn key() -> CustomerKey {
    CustomerKey::WaId("4915112345678".to_owned())
}

async fn assert_good_plugin_still_serves(registry: &crate::plugins::PluginRegistry) {
    let outcome = registry.crm("good").unwrap().lookup_customer(key()).await;
    assert!(
        matches!(
            outcome,
            Err(PluginError::Reported {
                error: ReportedError::NotFound,
                ..
            })
        ),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_is_stopped_at_its_deadline_while_others_are_served() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let spin = dir.add(
        "spin",
        "crm-connector@0.1",
        &crm_plugin_doing("", INFINITE_LOOP, ""),
        "timeout_ms = 200",
    );
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&spin).await.unwrap();
    registry.load(&good).await.unwrap();

    let crm = registry.crm("spin").unwrap();
    let started = Instant::now();
    let looping = tokio::spawn(async move { crm.lookup_customer(key()).await });
    // While the loop runs, the good plugin answers promptly.
    for _ in 0..5 {
        let t = Instant::now();
        assert_good_plugin_still_serves(&registry).await;
        assert!(
            t.elapsed() < Duration::from_millis(150),
            "{:?}",
            t.elapsed()
        );
    }
    let outcome = looping.await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            outcome,
            Err(PluginError::Timeout {
                timeout_ms: 200,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(600),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn memory_bomb_is_stopped_at_its_limit() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let bomb = dir.add(
        "bomb",
        "crm-connector@0.1",
        &crm_plugin_doing("", MEMORY_BOMB, ""),
        "memory_limit_mb = 8",
    );
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&bomb).await.unwrap();
    registry.load(&good).await.unwrap();

    let outcome = registry.crm("bomb").unwrap().lookup_customer(key()).await;
    assert!(
        matches!(outcome, Err(PluginError::OutOfMemory { limit_mb: 8, .. })),
        "{outcome:?}"
    );
    assert_eq!(outcome.unwrap_err().code(), "plugin_out_of_memory");
    assert_good_plugin_still_serves(&registry).await;
}

#[tokio::test]
async fn trap_becomes_a_typed_error_and_the_next_call_gets_a_fresh_instance() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let crash = dir.add(
        "crash",
        "crm-connector@0.1",
        &crm_plugin_doing("", TRAP, ""),
        "",
    );
    registry.load(&crash).await.unwrap();
    let crm = registry.crm("crash").unwrap();
    for _ in 0..2 {
        let outcome = crm.lookup_customer(key()).await;
        match outcome {
            Err(PluginError::Trap { reason, .. }) => {
                assert!(reason.contains("unreachable"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn call_to_a_host_that_is_not_allowed_is_refused() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let snoop = dir.add(
        "snoop",
        "crm-connector@0.1",
        &crm_plugin_doing(HTTP_IMPORT, CALL_EVIL_HOST, EVIL_URL),
        "allowed_hosts = [\"https://crm.example.com\"]",
    );
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&snoop).await.unwrap();
    registry.load(&good).await.unwrap();

    let outcome = registry.crm("snoop").unwrap().lookup_customer(key()).await;
    match outcome {
        Err(PluginError::HostNotAllowed { origin, .. }) => {
            assert_eq!(origin, "https://evil.example:443")
        }
        other => panic!("{other:?}"),
    }
    assert_good_plugin_still_serves(&registry).await;
}

#[tokio::test]
async fn component_for_another_world_is_refused_at_load() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let manifest = dir.add("confused", "transport@0.1", &well_behaved_crm(), "");
    let outcome = registry.load(&manifest).await;
    match outcome {
        Err(PluginError::WrongWorld { world, .. }) => assert_eq!(world, "transport@0.1"),
        other => panic!("{other:?}"),
    }
    assert!(registry.ids().is_empty());
}

#[tokio::test]
async fn corrupt_files_are_refused_at_load() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let garbage = dir.add(
        "garbage",
        "crm-connector@0.1",
        b"\0asm\x0d\0\x01\0garbage",
        "",
    );
    let core_module = dir.add(
        "core",
        "crm-connector@0.1",
        &wat::parse_str("(module)").unwrap(),
        "",
    );
    for manifest in [garbage, core_module] {
        let outcome = registry.load(&manifest).await;
        assert!(
            matches!(outcome, Err(PluginError::CorruptComponent { .. })),
            "{outcome:?}"
        );
    }
    let missing = dir.manifest(
        "missing",
        "crm-connector@0.1",
        &dir.dir.path().join("nope.wasm"),
        "",
    );
    let outcome = registry.load(&missing).await;
    assert!(
        matches!(outcome, Err(PluginError::ComponentUnreadable { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn unsupported_contract_version_is_refused() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let manifest = dir.add("future", "crm-connector@7.0", &well_behaved_crm(), "");
    let outcome = registry.load(&manifest).await;
    assert!(
        matches!(outcome, Err(PluginError::UnsupportedWorld { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn repeated_failures_open_the_breaker_and_calls_fail_fast() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let crash = dir.add(
        "crash",
        "crm-connector@0.1",
        &crm_plugin_doing("", TRAP, ""),
        "",
    );
    registry.load(&crash).await.unwrap();
    let crm = registry.crm("crash").unwrap();
    for _ in 0..3 {
        assert!(matches!(
            crm.lookup_customer(key()).await,
            Err(PluginError::Trap { .. })
        ));
    }
    let outcome = crm.lookup_customer(key()).await;
    assert!(
        matches!(outcome, Err(PluginError::CircuitOpen { .. })),
        "{outcome:?}"
    );
    let status = registry.status("crash").unwrap();
    assert_eq!(status.health, PluginHealth::Unavailable);
    assert_eq!(
        (
            status.stats.calls,
            status.stats.errors,
            status.stats.rejected
        ),
        (3, 3, 1)
    );
    assert_eq!(status.stats.last_error.map(|e| e.code), Some("plugin_trap"));

    // Replacing the plugin resets the breaker; counters stay.
    let fixed = dir.add("crash", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&fixed).await.unwrap();
    let outcome = registry.crm("crash").unwrap().lookup_customer(key()).await;
    assert!(matches!(
        outcome,
        Err(PluginError::Reported {
            error: ReportedError::NotFound,
            ..
        })
    ));
    let status = registry.status("crash").unwrap();
    assert_eq!(status.health, PluginHealth::Healthy);
    assert_eq!(status.stats.calls, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_or_removing_a_plugin_does_not_drop_calls_in_flight() {
    // Busy-waits 300 ms (by the host clock), then answers `ok`.
    const SLOW_OK: &str = "(local $until i64) \
        (local.set $until (i64.add (call $now) (i64.const 300))) \
        (loop $wait (br_if $wait (i64.lt_u (call $now) (local.get $until)))) \
        (i32.store8 (i32.const 2048) (i32.const 0)) (i32.const 2048)";
    const NOW_IMPORT: &str =
        r#"(import "parley:plugin/host@0.1.0" "now-ms" (func $now (result i64)))"#;
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let slow = component_from_wat(
        &crm_module(NOW_IMPORT, SLOW_OK, RETURN_NOT_FOUND, ""),
        "crm-connector",
    );
    let manifest = dir.add("swap", "crm-connector@0.1", &slow, "");
    registry.load(&manifest).await.unwrap();

    let handle = registry.crm("swap").unwrap().handle().clone();
    let in_flight = tokio::spawn(async move { handle.health_check().await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let trap = dir.add(
        "swap",
        "crm-connector@0.1",
        &crm_plugin_doing("", TRAP, ""),
        "",
    );
    registry.load(&trap).await.unwrap();
    assert!(registry.remove("swap"));
    assert!(
        in_flight.await.unwrap().is_ok(),
        "the call finished on the version it started with"
    );
    assert!(matches!(
        registry.crm("swap"),
        Err(PluginError::NotLoaded { .. })
    ));
}

#[tokio::test]
async fn asking_for_the_wrong_kind_of_plugin_is_an_error() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&good).await.unwrap();
    assert!(matches!(
        registry.transport("good"),
        Err(PluginError::KindMismatch { .. })
    ));
    assert!(matches!(
        registry.orders("nobody"),
        Err(PluginError::NotLoaded { .. })
    ));
}

#[tokio::test]
async fn check_reports_a_passing_plugin_and_a_failing_smoke_call() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let secrets: std::sync::Arc<dyn crate::plugins::SecretSource> =
        std::sync::Arc::new(StaticSecrets::new());
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    let report = crate::plugins::check(registry.runtime(), &secrets, &good)
        .await
        .unwrap();
    assert!(report.passed(), "{report:?}");

    let crash = dir.add(
        "crash",
        "crm-connector@0.1",
        &crm_plugin_doing("", TRAP, ""),
        "secrets = [\"token\"]",
    );
    let report = crate::plugins::check(registry.runtime(), &secrets, &crash)
        .await
        .unwrap();
    assert!(!report.passed());
    assert!(matches!(report.smoke, Err(PluginError::Trap { .. })));
    assert_eq!(report.missing_secrets, vec!["token".to_owned()]);

    let wrong = dir.add("wrong", "order-connector@0.1", &well_behaved_crm(), "");
    assert!(matches!(
        crate::plugins::check(registry.runtime(), &secrets, &wrong).await,
        Err(PluginError::WrongWorld { .. })
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_does_not_hold_the_only_executor_thread() {
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let spin = dir.add(
        "spin",
        "crm-connector@0.1",
        &crm_plugin_doing("", INFINITE_LOOP, ""),
        "timeout_ms = 400",
    );
    let good = dir.add("good", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&spin).await.unwrap();
    registry.load(&good).await.unwrap();

    let crm = registry.crm("spin").unwrap();
    let looping = tokio::spawn(async move { crm.lookup_customer(key()).await });
    tokio::task::yield_now().await;
    let started = Instant::now();
    assert_good_plugin_still_serves(&registry).await;
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    let finished_early = looping.is_finished();
    let outcome = looping.await.unwrap();
    assert!(
        !finished_early,
        "the loop is still running: {outcome:?} after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(outcome, Err(PluginError::Timeout { .. })),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_end_that_never_answers_costs_the_call_its_deadline_and_no_more() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    // GET the URL (result at 3072), then answer err(not-found).
    let call = format!(
        "(call $http (i32.const 0) (i32.const 16) (i32.const {}) (i32.const 0) (i32.const 0) \
         (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 3072)) \
         {RETURN_NOT_FOUND}",
        url.len()
    );
    let data = format!(r#"(data (i32.const 16) "{url}")"#);
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let manifest = dir.add(
        "waiting",
        "crm-connector@0.1",
        &crm_plugin_doing(HTTP_IMPORT, &call, &data),
        &format!("timeout_ms = 300\nallowed_hosts = [\"http://127.0.0.1:{port}\"]"),
    );
    registry.load(&manifest).await.unwrap();

    let started = Instant::now();
    let outcome = registry
        .crm("waiting")
        .unwrap()
        .lookup_customer(key())
        .await;
    let took = started.elapsed();
    held.abort();
    assert!(
        matches!(
            outcome,
            Err(PluginError::Timeout {
                timeout_ms: 300,
                ..
            })
        ),
        "the plugin's own answer does not hide the timeout: {outcome:?}"
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(800),
        "{took:?}"
    );
}

/// A transport whose `verify-and-parse` traps on whatever it is given (as a plugin that
/// parses before it verifies might on junk) and whose `send` answers `ok("SM1")`.
fn transport_trapping_on_inbound() -> Vec<u8> {
    let module = r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "parley:plugin/health@0.1.0#check") (result i32)
    (i32.store8 (i32.const 2048) (i32.const 0)) (i32.const 2048))
  (func (export "parley:plugin/messaging@0.1.0#verify-and-parse")
    (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
    unreachable)
  (func (export "parley:plugin/messaging@0.1.0#send") (param i32) (result i32)
    (i32.store8 (i32.const 2048) (i32.const 0))
    (i32.store (i32.const 2052) (i32.const 16))
    (i32.store (i32.const 2056) (i32.const 3))
    (i32.const 2048))
  (data (i32.const 16) "SM1")
)"#;
    component_from_wat(module, "transport")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_webhooks_that_crash_verification_do_not_open_the_send_breaker() {
    use crate::plugins::{InboundHttpRequest, OutboundContent, OutboundMessage};
    let dir = PluginDir::new();
    let registry = registry(StaticSecrets::new());
    let manifest = dir.add("bsp", "transport@0.1", &transport_trapping_on_inbound(), "");
    registry.load(&manifest).await.unwrap();
    let transport = registry.transport("bsp").unwrap();
    // More unsigned junk than the breaker tolerates (3 failures in tests): the inbound
    // breaker opens and answers at once...
    for n in 0..10 {
        let junk = InboundHttpRequest {
            method: "POST".into(),
            url: "https://parley.example/webhooks/bsp".into(),
            headers: vec![],
            body: b"\xff\x00 not a webhook".to_vec(),
        };
        let outcome = transport.verify_and_parse(junk).await;
        if n < 3 {
            assert!(
                matches!(outcome, Err(PluginError::Trap { .. })),
                "{outcome:?}"
            );
        } else {
            assert!(
                matches!(outcome, Err(PluginError::CircuitOpen { .. })),
                "{outcome:?}"
            );
        }
    }
    // ... while the breaker guarding sends stays closed.
    let status = registry.status("bsp").unwrap();
    assert_eq!(status.health, PluginHealth::Healthy);
    assert_eq!((status.stats.calls, status.stats.rejected), (3, 7));

    // Replies still go out.
    let sent = transport
        .send(OutboundMessage {
            to_wa_id: "4915112345678".into(),
            sender: None,
            content: OutboundContent::Text("Your order ships today".into()),
            reply_to: None,
            idempotency_key: None,
        })
        .await;
    assert_eq!(sent.unwrap(), "SM1");
}
