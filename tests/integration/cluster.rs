//! Several nodes on one PostgreSQL: real `parley` processes, real SIGKILL and SIGSTOP, a
//! fake Graph API counting every send. Nothing acknowledged may be lost, nothing stored
//! or sent twice, replies to one customer leave in order, and a node frozen past its
//! lease commits nothing afterwards. Fencing itself is also checked in-process against
//! PostgreSQL, step by step.

use crate::helpers::*;
use parley::api::auth::generate_token;
use parley::cluster::Cluster;
use parley::config::{ClusterSettings, DatabaseSettings, SqliteSynchronous};
use parley::domain::{ConversationKey, Role};
use parley::store::Store;
use parley::store::tokens::CreateToken;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const NODES: usize = 3;
/// Short leases so the tests run quickly; takeover is bounded by lease + heartbeat.
const LEASE_SECS: u64 = 3;
const HEARTBEAT_MS: u64 = 500;
const SHARDS: u32 = 64;

fn database_settings(url: &str) -> DatabaseSettings {
    DatabaseSettings {
        url: url.to_owned(),
        inbox_url: None,
        max_connections: 4,
        sqlite_synchronous: SqliteSynchronous::Full,
        migrate_on_start: true,
        group_commit_max_batch: 64,
    }
}

/// Counts sends per message text (every reply text in these tests is unique) and keeps
/// the order they reached the provider in.
#[derive(Clone, Default)]
struct Provider {
    sends: Arc<Mutex<Vec<(String, String)>>>,
}

impl Respond for Provider {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        let text = body["text"]["body"].as_str().unwrap_or_default().to_owned();
        let mut sends = self.sends.lock().unwrap();
        sends.push((to.clone(), text));
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.OUT{}", sends.len()) }]
        }))
    }
}

struct Node {
    child: Child,
    base: String,
    /// Its warnings and errors, printed when a test fails.
    log: std::path::PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- {} ({}), last lines:", self.base, self.log.display());
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

struct Cluster3 {
    nodes: Vec<Node>,
    store: Store,
    admin: String,
    client: reqwest::Client,
    provider: Provider,
    _meta: MockServer,
    _dir: tempfile::TempDir,
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`) to a node's process.
fn signal(node: &Node, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), node.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -{signal} failed");
}

async fn start_cluster() -> Option<Cluster3> {
    let url = postgres_database().await?;
    let store = Store::connect(&database_settings(&url)).await.unwrap();
    store.migrate().await.unwrap();
    let (admin, token_hash) = generate_token();
    store
        .write(CreateToken {
            by: "cli".into(),
            name: "cluster admin".into(),
            role: Role::Admin,
            agent_id: None,
            token_hash,
            expires_at: None,
            now: 0,
        })
        .await
        .unwrap()
        .unwrap();
    let meta = MockServer::start().await;
    let provider = Provider::default();
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(provider.clone())
        .mount(&meta)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let prefix = hex::encode(rand::random::<[u8; 4]>());
    let mut nodes = Vec::new();
    for n in 0..NODES {
        let port = free_port();
        let config = dir.path().join(format!("node{n}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"
[http]
bind = "127.0.0.1:{port}"
[database]
url = "{url}"
migrate_on_start = false
[cluster]
redis_url = "redis://127.0.0.1:6379"
node_id = "test-{prefix}-node{n}"
key_prefix = "test-{prefix}"
shards = {SHARDS}
lease_secs = {LEASE_SECS}
heartbeat_ms = {HEARTBEAT_MS}
[[channels]]
id = "{CHANNEL}"
kind = "whatsapp_cloud"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "token"
api_base = "{}"
phone_number_ids = ["{PHONE_NUMBER_ID}"]
"#,
                meta.uri()
            ),
        )
        .unwrap();
        let log = dir.path().join(format!("node{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["--config", config.to_str().unwrap(), "serve"])
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("parley starts");
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        wait_ready(&client, &node.base).await;
        nodes.push(node);
    }
    let cluster = Cluster3 {
        nodes,
        store,
        admin,
        client,
        provider,
        _meta: meta,
        _dir: dir,
    };
    // Balanced: every node holds a share and together they hold every shard.
    cluster
        .wait_for(
            "every shard owned by a live node, each node with a share",
            |status| {
                let owned: Vec<usize> = live_shares(status);
                owned.len() == NODES
                    && owned.iter().all(|&n| n > 0)
                    && owned.iter().sum::<usize>() == SHARDS as usize
            },
            Duration::from_secs(30),
        )
        .await;
    Some(cluster)
}

/// Shards held (unexpired) by each node that has not stopped.
fn live_shares(status: &Value) -> Vec<usize> {
    status["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter(|n| {
                    n["heartbeatAgeMs"].as_i64().unwrap_or(i64::MAX) < (LEASE_SECS * 1000) as i64
                })
                .map(|n| {
                    n["shards"]
                        .as_array()
                        .map(|s| s.iter().filter(|s| s["expired"] == false).count())
                        .unwrap_or(0)
                })
                .filter(|&n| n > 0)
                .collect()
        })
        .unwrap_or_default()
}

const STATUS: &str = "{ clusterStatus { enabled thisNode shards nodes { nodeId heartbeatAgeMs leader stopped shardsOwned shards { shard epoch expired } } } }";

impl Cluster3 {
    async fn graphql(&self, node: usize, query: &str, variables: Value) -> Option<Value> {
        let response = self
            .client
            .post(format!("{}/graphql", self.nodes[node].base))
            .bearer_auth(&self.admin)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    async fn status(&self, node: usize) -> Option<Value> {
        let answer = self.graphql(node, STATUS, json!({})).await?;
        Some(answer["data"]["clusterStatus"].clone())
    }

    async fn wait_for(
        &self,
        what: &str,
        done: impl Fn(&Value) -> bool,
        limit: Duration,
    ) -> Duration {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.status(0).await
                && done(&status)
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting until {what}: {:?}", self.status(0).await);
    }

    /// Posts a signed webhook to a node; true when it answered 200.
    async fn webhook(&self, node: usize, body: &str) -> bool {
        let signature =
            parley::ingest::signature::sign_meta(APP_SECRET.as_bytes(), body.as_bytes());
        matches!(
            self.client
                .post(format!("{}/webhooks/{CHANNEL}", self.nodes[node].base))
                .header("X-Hub-Signature-256", signature)
                .timeout(Duration::from_secs(2))
                .body(body.to_owned())
                .send()
                .await,
            Ok(response) if response.status() == 200
        )
    }

    async fn count(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let row = self
            .store
            .db()
            .query_one(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                sql,
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    async fn metric(&self, node: usize, name: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.nodes[node].base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// Webhook timestamps: now, so that the customer service window is open for replies.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

fn customer(n: usize) -> String {
    format!("1555{:07}", n)
}

/// Every acknowledged wamid is stored exactly once; nothing else is stored.
async fn assert_each_stored_once(
    cluster: &Cluster3,
    acknowledged: &HashSet<String>,
    within: Duration,
) {
    let started = Instant::now();
    loop {
        let stored = cluster
            .count("SELECT count(DISTINCT provider_message_id) FROM messages WHERE direction = 'inbound'")
            .await as usize;
        if stored >= acknowledged.len() || started.elapsed() > within {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let doubled = cluster
        .count("SELECT count(*) FROM (SELECT provider_message_id FROM messages WHERE direction = 'inbound' GROUP BY channel_id, provider_message_id HAVING count(*) > 1) d")
        .await;
    assert_eq!(doubled, 0, "inbound messages stored twice");
    use sea_orm::ConnectionTrait;
    let rows = cluster
        .store
        .db()
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT provider_message_id FROM messages WHERE direction = 'inbound'",
        ))
        .await
        .unwrap();
    let stored: HashSet<String> = rows
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    let lost: Vec<&String> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged webhooks lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// The case id of a customer's conversation, once stored.
async fn conversation_of(cluster: &Cluster3, wa_id: &str) -> Option<i64> {
    use sea_orm::ConnectionTrait;
    let row = cluster
        .store
        .db()
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT c.id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.wa_id = '{wa_id}' ORDER BY c.id DESC LIMIT 1"),
        ))
        .await
        .ok()??;
    row.try_get_by_index::<i64>(0).ok()
}

const REPLY: &str =
    "mutation($id: ID!, $text: String!) { sendReply(conversationId: $id, text: $text) { id } }";

/// Replies through `node`; `Some(true)` when accepted, `Some(false)` when refused,
/// `None` when the outcome is unknown (the node died under the request).
async fn reply(cluster: &Cluster3, node: usize, conversation: i64, text: &str) -> Option<bool> {
    let answer = cluster
        .graphql(
            node,
            REPLY,
            json!({ "id": conversation.to_string(), "text": text }),
        )
        .await?;
    if !answer["errors"].is_null() {
        eprintln!("reply refused: {}", answer["errors"]);
    }
    Some(answer["errors"].is_null())
}

/// Files each reply sent to a customer's case: accepted (must go out once), refused
/// (nothing to check) or unknown (its answer was lost: may go out at most once).
fn file_replies(
    outcomes: Vec<Option<(usize, String, Option<bool>)>>,
    accepted: &mut Vec<(String, String)>,
    unknown: &mut HashSet<String>,
) {
    for (c, text, outcome) in outcomes.into_iter().flatten() {
        match outcome {
            Some(true) => accepted.push((customer(c), text)),
            Some(false) => {}
            None => {
                unknown.insert(text);
            }
        }
    }
}

/// Once the outbox has drained (replies leave through the leader), [`assert_replies`].
async fn assert_replies_sent(
    cluster: &Cluster3,
    accepted: &[(String, String)],
    unknown: &HashSet<String>,
) {
    // Drained: nothing waiting and nothing on its way to the provider (a reply the
    // leader is sending right now is not sent yet).
    let pending = "SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending')";
    let started = Instant::now();
    while cluster.count(pending).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the outbox did not drain in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!accepted.is_empty(), "no reply was accepted");
    assert_replies(cluster, accepted, unknown);
}

/// Each text sent at most once; each accepted reply sent exactly once; per customer, in
/// the order the replies were accepted.
fn assert_replies(cluster: &Cluster3, accepted: &[(String, String)], unknown: &HashSet<String>) {
    let sends = cluster.provider.sends.lock().unwrap().clone();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for (_, text) in &sends {
        *times.entry(text.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "replies sent twice: {twice:?}");
    for (_, text) in accepted {
        assert_eq!(
            times.get(text.as_str()),
            Some(&1),
            "accepted reply {text} was not sent"
        );
    }
    let mut expected: HashMap<&str, Vec<&str>> = HashMap::new();
    for (to, text) in accepted {
        expected.entry(to).or_default().push(text);
    }
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
    for (to, text) in &sends {
        if !unknown.contains(text) {
            seen.entry(to).or_default().push(text);
        }
    }
    for (to, texts) in expected {
        assert_eq!(seen.get(to), Some(&texts), "replies to {to} out of order");
    }
}

#[actix_rt::test]
async fn killing_one_of_three_nodes_loses_doubles_and_reorders_nothing() {
    let Some(mut cluster) = start_cluster().await else {
        return;
    };
    const CUSTOMERS: usize = 24;
    const ROUNDS: usize = 12;
    let mut acknowledged = HashSet::new();
    let mut accepted: Vec<(String, String)> = Vec::new();
    let mut unknown = HashSet::new();
    let mut alive: Vec<usize> = (0..NODES).collect();
    let mut takeover = None;
    for round in 0..ROUNDS {
        let killed = round == ROUNDS / 3;
        if killed {
            signal(&cluster.nodes[1], "KILL");
            alive.retain(|&n| n != 1);
        }
        // Every customer writes; each webhook goes to the next node, as a load balancer
        // would send it, and to another one when that fails (the provider retries).
        let sends = (0..CUSTOMERS).map(|c| {
            let wamid = format!("wamid.CLUSTER.{round}.{c}");
            let body = text_webhook(
                &customer(c),
                &wamid,
                "where is my order?",
                now() + round as i64,
            );
            let cluster = &cluster;
            let alive = &alive;
            async move {
                for attempt in 0..20 {
                    let node = alive[(c + attempt) % alive.len()];
                    if cluster.webhook(node, &body).await {
                        return Some(wamid);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None
            }
        });
        // The round of the kill also measures the takeover, while the load goes on.
        let watch = async {
            if killed {
                Some(
                    cluster
                        .wait_for(
                            "the killed node's shards taken over",
                            |status| {
                                let shares = live_shares(status);
                                shares.len() == NODES - 1
                                    && shares.iter().sum::<usize>() == SHARDS as usize
                            },
                            Duration::from_secs(30),
                        )
                        .await,
                )
            } else {
                None
            }
        };
        let (acks, watched) = futures::join!(futures::future::join_all(sends), watch);
        takeover = takeover.or(watched);
        for wamid in acks {
            acknowledged.insert(wamid.expect("some node acknowledges every webhook"));
        }
        // An agent answers a few customers through any node: one reply per customer per
        // round, customers at once.
        let replies = (0..CUSTOMERS).step_by(3).map(|c| {
            let (cluster, alive) = (&cluster, &alive);
            async move {
                let conversation = conversation_of(cluster, &customer(c)).await?;
                let text = format!("reply {round} to {c}");
                let node = alive[(round + c) % alive.len()];
                Some((
                    c,
                    text.clone(),
                    reply(cluster, node, conversation, &text).await,
                ))
            }
        });
        file_replies(
            futures::future::join_all(replies).await,
            &mut accepted,
            &mut unknown,
        );
    }
    let takeover = takeover.unwrap();
    eprintln!(
        "takeover: every shard owned by a live node {:.2} s after the kill (lease {LEASE_SECS} s, heartbeat {HEARTBEAT_MS} ms)",
        takeover.as_secs_f64()
    );
    assert!(
        takeover < Duration::from_secs(LEASE_SECS + 3),
        "takeover took {takeover:?}"
    );
    assert_each_stored_once(&cluster, &acknowledged, Duration::from_secs(30)).await;
    // Replies leave through the leader.
    assert_replies_sent(&cluster, &accepted, &unknown).await;
    drop(cluster.nodes.remove(1));
}

#[actix_rt::test]
async fn the_same_webhook_delivered_to_three_nodes_at_once_is_stored_once() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    let mut acknowledged = HashSet::new();
    for n in 0..40 {
        let wamid = format!("wamid.SAME.{n}");
        let body = text_webhook(&customer(n % 7), &wamid, "hello", now() + n as i64);
        let all =
            futures::future::join_all((0..NODES).map(|node| cluster.webhook(node, &body))).await;
        assert!(
            all.iter().all(|ok| *ok),
            "every node acknowledges the webhook"
        );
        acknowledged.insert(wamid);
    }
    assert_each_stored_once(&cluster, &acknowledged, Duration::from_secs(20)).await;
    assert_eq!(
        cluster
            .count("SELECT count(*) FROM messages WHERE direction = 'inbound'")
            .await,
        40
    );
}

#[actix_rt::test]
async fn a_node_frozen_past_its_lease_commits_nothing_stale_and_sends_nothing_twice() {
    let Some(cluster) = start_cluster().await else {
        return;
    };
    const CUSTOMERS: usize = 18;
    let mut acknowledged = HashSet::new();
    let mut accepted = Vec::new();
    let mut unknown = HashSet::new();
    for round in 0..8 {
        if round == 2 {
            signal(&cluster.nodes[2], "STOP");
        }
        if round == 5 {
            // Past its lease: the others took its shards over.
            cluster
                .wait_for(
                    "the frozen node's shards taken over",
                    |status| {
                        let shares = live_shares(status);
                        shares.len() == NODES - 1 && shares.iter().sum::<usize>() == SHARDS as usize
                    },
                    Duration::from_secs(30),
                )
                .await;
            signal(&cluster.nodes[2], "CONT");
        }
        let frozen = (2..5).contains(&round);
        let sends = (0..CUSTOMERS).map(|c| {
            let wamid = format!("wamid.FROZEN.{round}.{c}");
            let body = text_webhook(&customer(c), &wamid, "hello again", now() + round as i64);
            let cluster = &cluster;
            async move {
                for attempt in 0..20 {
                    let node = (c + attempt) % NODES;
                    if frozen && node == 2 {
                        continue;
                    }
                    if cluster.webhook(node, &body).await {
                        return Some(wamid);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                None
            }
        });
        for wamid in futures::future::join_all(sends).await {
            acknowledged.insert(wamid.expect("some node acknowledges every webhook"));
        }
        let replies = (0..CUSTOMERS).step_by(2).map(|c| {
            let cluster = &cluster;
            async move {
                let conversation = conversation_of(cluster, &customer(c)).await?;
                let text = format!("frozen-test reply {round} to {c}");
                let node = if frozen { c % 2 } else { (round + c) % NODES };
                Some((
                    c,
                    text.clone(),
                    reply(cluster, node, conversation, &text).await,
                ))
            }
        });
        file_replies(
            futures::future::join_all(replies).await,
            &mut accepted,
            &mut unknown,
        );
    }
    assert_each_stored_once(&cluster, &acknowledged, Duration::from_secs(30)).await;
    assert_replies_sent(&cluster, &accepted, &unknown).await;
    let refused = cluster
        .metric(2, "parley_cluster_fenced_writes_total")
        .await;
    eprintln!("writes refused on the resumed node: {refused}");
}

/// Fencing step by step, on PostgreSQL: a write under the epoch a node held is refused
/// once another node took the shard over, and counted.
#[actix_rt::test]
async fn a_write_under_a_taken_over_lease_is_refused_and_counted() {
    let Some(url) = postgres_database().await else {
        return;
    };
    let store = Store::connect(&database_settings(&url)).await.unwrap();
    store.migrate().await.unwrap();
    let settings = |node: &str| ClusterSettings {
        redis_url: Some("redis://127.0.0.1:6379".into()),
        node_id: node.into(),
        shards: 4,
        lease_secs: 2,
        heartbeat_ms: 500,
        advertise_url: String::new(),
        key_prefix: "parley-test".into(),
    };
    let a = Cluster::new(
        &settings("a"),
        store.db().clone(),
        "http://127.0.0.1:9".into(),
    );
    let gained = a.heartbeat().await.unwrap();
    assert_eq!(
        gained.len(),
        5,
        "alone, a node takes every shard and the leader lease"
    );
    let key = ConversationKey {
        channel_id: CHANNEL.into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
        wa_id: "15550001".into(),
    };
    let stale = a.fence_for(&key);
    assert!(stale.epoch > 0);
    // Under its lease, a write commits.
    store.fenced(stale.clone()).write(Noop).await.unwrap();

    // `a` pauses past its lease; `b` takes its shards over.
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let b = Cluster::new(
        &settings("b"),
        store.db().clone(),
        "http://127.0.0.1:9".into(),
    );
    let taken = b.heartbeat().await.unwrap();
    assert!(taken.contains(&stale.shard));
    assert!(
        b.fence_for(&key).epoch > stale.epoch,
        "a takeover increments the epoch"
    );

    let before = parley::cluster::metrics().fenced_writes.get();
    let refused = store.fenced(stale.clone()).write(Noop).await.unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(parley::cluster::metrics().fenced_writes.get(), before + 1);
    // The new owner writes; `a`, resumed, learns it lost the shard at its next heartbeat.
    store.fenced(b.fence_for(&key)).write(Noop).await.unwrap();
    a.heartbeat().await.unwrap();
    assert!(!a.owns(&key));
    // A clean stop hands everything back at once.
    b.leave().await.unwrap();
    let regained = a.heartbeat().await.unwrap();
    assert!(regained.contains(&stale.shard));
    assert!(a.fence_for(&key).epoch > b.fence_for(&key).epoch.max(stale.epoch));
}

struct Noop;

impl parley::store::WriteOp for Noop {
    type Output = ();
    fn apply<'a>(
        &'a self,
        _: &'a sea_orm::DatabaseTransaction,
    ) -> futures::future::BoxFuture<'a, Result<(), sea_orm::DbErr>> {
        Box::pin(async { Ok(()) })
    }
}
