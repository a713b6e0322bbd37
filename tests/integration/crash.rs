//! Crash safety: the real `parley` process is killed hard (SIGKILL) in the middle of a
//! burst of webhooks, then restarted. Every webhook that was answered 200 must be stored
//! exactly once, and the provider's retries of the rest must not duplicate anything.

use crate::helpers::*;
use parley::config::DatabaseSettings;
use parley::store::Store;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEBHOOKS: usize = 3000;
const CONCURRENCY: usize = 32;

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("parley starts")
}

fn wamid(n: usize) -> String {
    format!("wamid.CRASH{n:06}")
}

async fn send(client: &reqwest::Client, url: &str, n: usize) -> bool {
    let body = text_webhook(
        &format!("1555000{:04}", n % 200),
        &wamid(n),
        "crash test",
        1_669_233_778 + n as i64,
    );
    let signature = parley::ingest::signature::sign_meta(APP_SECRET.as_bytes(), body.as_bytes());
    match client
        .post(url)
        .header("X-Hub-Signature-256", signature)
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status() == 200,
        Err(_) => false,
    }
}

#[actix_rt::test]
async fn every_acknowledged_webhook_survives_a_hard_kill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db_url = format!("sqlite://{}/parley.db?mode=rwc", dir.path().display());
    let config = binary_config(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/webhooks/{CHANNEL}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut server = start(&config);
    wait_ready(&client, &base).await;

    // A burst from many connections; the server is killed once a third is acknowledged.
    let acknowledged = Arc::new(Mutex::new(HashSet::new()));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, acknowledged, next) = (
            client.clone(),
            url.clone(),
            acknowledged.clone(),
            next.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n >= WEBHOOKS {
                    return;
                }
                if send(&client, &url, n).await {
                    acknowledged.lock().unwrap().insert(n);
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < WEBHOOKS / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < WEBHOOKS,
        "the kill came too late to test anything"
    );

    // Restart: pending webhooks are replayed from the inbox.
    let mut server = start(&config);
    wait_ready(&client, &base).await;
    let settings = DatabaseSettings {
        url: db_url,
        inbox_url: None,
        max_connections: 2,
        sqlite_synchronous: parley::config::SqliteSynchronous::Full,
        migrate_on_start: false,
        group_commit_max_batch: 16,
    };
    let store = Store::connect(&settings).await.unwrap();
    let stored = |store: Store| async move {
        use sea_orm::{ConnectionTrait, Statement};
        let rows = store
            .db()
            .query_all(Statement::from_string(
                store.db().get_database_backend(),
                "SELECT provider_message_id, COUNT(*) AS n FROM messages GROUP BY provider_message_id",
            ))
            .await
            .unwrap();
        rows.into_iter()
            .map(|row| {
                (
                    row.try_get::<String>("", "provider_message_id").unwrap(),
                    row.try_get::<i64>("", "n").unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut missing = Vec::new();
    for _ in 0..400 {
        let have: HashSet<String> = stored(store.clone())
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        missing = acknowledged
            .iter()
            .filter(|n| !have.contains(&wamid(**n)))
            .copied()
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        missing.is_empty(),
        "{} acknowledged webhooks were lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // Meta retries everything it did not see acknowledged (and some it did): still once each.
    for n in 0..WEBHOOKS {
        assert!(send(&client, &url, n).await, "redelivery {n} refused");
    }
    let mut counts = Vec::new();
    for _ in 0..400 {
        counts = stored(store.clone()).await;
        if counts.len() == WEBHOOKS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        counts.len(),
        WEBHOOKS,
        "every webhook is stored after redelivery"
    );
    assert!(
        counts.iter().all(|(_, n)| *n == 1),
        "a message was stored twice"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
