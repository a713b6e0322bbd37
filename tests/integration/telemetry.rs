//! Traces leave the process: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans of one
//! webhook (intake, processing, the conversation actor) reach an OTLP/HTTP collector.

use crate::helpers::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[actix_rt::test]
async fn a_webhooks_spans_are_exported_over_otlp() {
    let collector = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/traces"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&collector)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = binary_config(dir.path(), port);
    let mut server = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "info")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.uri())
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&client, &base).await;
    let body = text_webhook("16315551234", "wamid.TRACE1", "hello", 1_669_233_778);
    let response = client
        .post(format!("{base}/webhooks/{CHANNEL}"))
        .header(
            "X-Hub-Signature-256",
            parley::ingest::signature::sign_meta(APP_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The exported protobuf carries span names as plain bytes.
    let wanted = ["intake.webhook", "intake.process", "conversation.apply"];
    let mut seen = Vec::new();
    for _ in 0..200 {
        let requests = collector.received_requests().await.unwrap_or_default();
        seen = wanted
            .iter()
            .filter(|name| {
                requests
                    .iter()
                    .any(|r| r.body.windows(name.len()).any(|w| w == name.as_bytes()))
            })
            .copied()
            .collect();
        if seen.len() == wanted.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(seen, wanted, "spans exported to the collector");
}

crate::helpers::on_both_databases!(metrics_are_served_on_their_own_listener_when_asked);

/// `/metrics` is on the main listener by default; with `[http] metrics_bind` it moves to a
/// listener of its own and the internet-facing one answers 404.
async fn metrics_are_served_on_their_own_listener_when_asked(backend: crate::helpers::Backend) {
    use crate::helpers::*;
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    customer_writes(&app, "16315551234", "wamid.M1", "hello").await;
    let client = app.client.clone();
    let scrape = |base: String| {
        let client = client.clone();
        async move {
            let response = client.get(format!("{base}/metrics")).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, text) = scrape(app.address.clone()).await;
    assert_eq!(status, 200);
    assert!(text.contains("parley_webhooks_total"), "{text}");
    assert!(app.metrics_address.is_none());
    drop(app);

    let Some(app) = spawn_app_with(backend, "[http]\nmetrics_bind = \"127.0.0.1:0\"\n").await
    else {
        return;
    };
    customer_writes(&app, "16315551234", "wamid.M2", "hello").await;
    let (status, _) = scrape(app.address.clone()).await;
    assert_eq!(status, 404, "not on the internet-facing listener");
    let apart = app.metrics_address.clone().expect("a metrics listener");
    let (status, text) = scrape(apart.clone()).await;
    assert_eq!(status, 200);
    assert!(text.contains("parley_webhooks_total"), "{text}");
    // Only metrics there.
    let graphql = client.get(format!("{apart}/graphql")).send().await.unwrap();
    assert_eq!(graphql.status().as_u16(), 404);
}
