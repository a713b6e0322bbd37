//! `parley demo`, run as a person would: it prints one URL, simulated customers open
//! cases (the spam wave opens none), replies are delivered by the fake Graph API, the
//! assistant's draft waits for approval, the inbox page is served, and Ctrl-C stops it.

use crate::helpers::free_port;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn graphql(client: &reqwest::Client, base: &str, token: &str, query: &str) -> Value {
    client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("graphql request")
        .json()
        .await
        .expect("graphql answers JSON")
}

#[actix_rt::test]
async fn the_demo_opens_cases_serves_the_inbox_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["demo", "--data-dir"])
        .arg(dir.path())
        .args(["--bind", &format!("127.0.0.1:{port}"), "--pace-ms", "150"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("parley demo starts");
    let stdout = demo.stdout.take().unwrap();
    let mut stderr_pipe = demo.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr_pipe, &mut text).ok();
        text
    });
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = printed
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints its URL within a minute");
        if line.starts_with("http://") {
            break line;
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let token = url
        .strip_prefix(&format!("{base}/inbox#token="))
        .unwrap_or_else(|| panic!("one URL to the inbox with its token, got {url}"))
        .to_owned();

    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/inbox")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("app.js"));

    // Customers write, in several languages; the spam wave is recorded, not ticketed.
    let started = Instant::now();
    let (cases, held) = loop {
        let answer = graphql(
            &client,
            &base,
            &token,
            "{ conversations(first: 50) { edges { node { contact { waId } language } } }
               heldMessages { id conversationId } }",
        )
        .await;
        let cases = answer["data"]["conversations"]["edges"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let held = answer["data"]["heldMessages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if cases.len() >= 8 && !held.is_empty() {
            break (cases, held);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "too few cases after a minute: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let languages: std::collections::BTreeSet<&str> = cases
        .iter()
        .filter_map(|c| c["node"]["language"].as_str())
        .collect();
    for language in ["en", "es", "ar", "pt"] {
        assert!(languages.contains(language), "{languages:?}");
    }
    assert!(
        !cases.iter().any(|c| c["node"]["contact"]["waId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("234800")),
        "the spam wave opened cases: {cases:?}"
    );

    // The photo of a broken item is fetched from the fake Graph API like a customer's file
    // from Meta, and loads as a PNG through its signed URL.
    let photo = loop {
        let answer = graphql(
            &client,
            &base,
            &token,
            "{ conversations(first: 50) { edges { node { contact { waId }
               messages(first: 20) { edges { node { kind text
                 media { kind mimeType size caption fetchState failureReason url } } } } } } } }",
        )
        .await;
        let media = answer["data"]["conversations"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["node"]["contact"]["waId"] == "919800000003")
            .flat_map(|c| c["node"]["messages"]["edges"].as_array().cloned())
            .flatten()
            .map(|m| m["node"]["media"].clone())
            .find(|m| m["kind"] == "IMAGE");
        if let Some(media) = media.filter(|m| m["fetchState"] != "PENDING") {
            break media;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the photo was never fetched: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(photo["fetchState"], "STORED", "{photo}");
    assert_eq!(photo["mimeType"], "image/png", "{photo}");
    assert!(
        photo["caption"]
            .as_str()
            .is_some_and(|c| c.contains("broken")),
        "{photo}"
    );
    let url = photo["url"].as_str().expect("a stored photo has a URL");
    let download = client.get(format!("{base}{url}")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    let bytes = download.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(photo["size"], bytes.len(), "{photo}");

    // A reply goes through the fake Graph API and comes back delivered.
    let case = held[0]["conversationId"].as_str().unwrap();
    let sent = graphql(
        &client,
        &base,
        &token,
        &format!(
            "mutation {{ sendReply(conversationId: \"{case}\", text: \"Lo revisamos ahora mismo.\") {{ id }} }}"
        ),
    )
    .await;
    let message = sent["data"]["sendReply"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("reply refused: {sent}"))
        .to_owned();
    loop {
        let answer = graphql(
            &client,
            &base,
            &token,
            &format!("{{ conversation(id: \"{case}\") {{ messages(first: 50) {{ edges {{ node {{ id deliveryStatus }} }} }} }} }}"),
        )
        .await;
        let delivered = answer["data"]["conversation"]["messages"]["edges"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["node"]["id"] == message.as_str()
                    && matches!(
                        e["node"]["deliveryStatus"].as_str(),
                        Some("DELIVERED" | "READ")
                    )
            });
        if delivered {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the reply was never delivered: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Ctrl-C stops it cleanly, and soon.
    let interrupted = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            demo.kill().ok();
            panic!("the demo did not stop within 30 s of Ctrl-C");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("parley demo: stopped."), "{stderr}");
}
