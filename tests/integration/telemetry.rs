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
