//! `spawn_app()`: the real application, as `main` builds it, on a free port, with a fresh
//! database, a manual clock and a fake Graph API standing in for Meta.

use parley::api::auth::generate_token;
use parley::clock::{Clock, ManualClock};
use parley::config::Settings;
use parley::domain::Role;
use parley::ingest::signature::sign_meta;
use parley::startup::Application;
use parley::store::Store;
use parley::store::tokens::CreateToken;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const CHANNEL: &str = "meta-main";
pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
/// 2022-11-23T20:02:58Z, the time of Meta's example payloads.
pub const START: i64 = 1_669_233_778_000_000;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test function once per database.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[actix_rt::test]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}
pub(crate) use on_both_databases;

pub struct TestApp {
    pub address: String,
    /// `/metrics`' own listener, when the test set `[http] metrics_bind`.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub meta: MockServer,
    pub admin_token: String,
    pub registry: parley::conversation::ConversationRegistry,
    pub routing: Arc<parley::routing::Routing>,
    pub plugins: Arc<parley::plugins::PluginRegistry>,
    pub connectors: parley::plugins::Connectors,
    /// Where the local blob store keeps media files.
    pub media_dir: std::path::PathBuf,
    server: actix_web::dev::ServerHandle,
    /// Where the SQLite database lives; carried over by [`TestApp::restart`].
    dir: Option<tempfile::TempDir>,
    database_url: String,
    extra_toml: String,
}

impl Drop for TestApp {
    /// Stops the server and the actor threads so that their database connections close
    /// (PostgreSQL has a connection limit shared by the whole suite).
    fn drop(&mut self) {
        self.registry.stop();
        self.routing.stop();
        drop(self.server.stop(false));
    }
}

const POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh PostgreSQL database, or `None` when PostgreSQL is unreachable outside CI. In CI
/// (`CI` set) an unreachable PostgreSQL fails the test: it never skips silently.
pub async fn postgres_database() -> Option<String> {
    use sqlx::Connection;
    let mut admin = match sqlx::PgConnection::connect(POSTGRES_ADMIN_URL).await {
        Ok(connection) => connection,
        Err(error) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable and CI is set: {error}");
            }
            eprintln!(
                "SKIPPED: PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable ({error}); set CI=1 to make this fail"
            );
            return None;
        }
    };
    let name = format!("parley_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    Some(format!("postgres://postgres@127.0.0.1:5432/{name}"))
}

/// Answers Graph API sends with a fresh wamid each time.
pub struct SendsAccepted(pub Arc<AtomicUsize>);

impl Respond for SendsAccepted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{ "input": to, "wa_id": to }],
            "messages": [{ "id": format!("wamid.OUT{n}") }]
        }))
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, "").await
}

pub async fn spawn_app_with(backend: Backend, extra_toml: &str) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}/parley.db?mode=rwc", dir.path().display()),
        Backend::Postgres => postgres_database().await?,
    };
    let clock = ManualClock::starting_at(START);
    let (admin_token, token_hash) = generate_token();
    let app = boot(dir, url, extra_toml, clock.clone(), admin_token, None).await;
    app.store
        .write(CreateToken {
            by: "cli".into(),
            name: "test admin".into(),
            role: Role::Admin,
            agent_id: None,
            token_hash,
            expires_at: None,
            now: clock.now(),
        })
        .await
        .expect("token stored")
        .expect("token created");
    Some(app)
}

impl TestApp {
    /// The database this application runs on (for the CLI's commands).
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Stops this application and starts a new one on the same database and clock, as
    /// after a crash or a deploy, with `down` passing on the clock while no application
    /// runs (a new fake Graph API stands in for Meta).
    pub async fn restart_after(mut self, down: Duration) -> TestApp {
        let dir = self.dir.take().expect("the database directory");
        let (url, extra) = (self.database_url.clone(), self.extra_toml.clone());
        let (clock, token) = (self.clock.clone(), self.admin_token.clone());
        drop(self);
        // Let the stopped threads let go of their connections.
        tokio::time::sleep(Duration::from_millis(100)).await;
        clock.advance(down);
        boot(dir, url, &extra, clock, token, None).await
    }

    /// A second node of this application's cluster: the same PostgreSQL database, clock,
    /// admin token and fake Graph API (which then sees every node's sends), with its own
    /// `extra_toml` (its `[cluster]` section).
    pub async fn spawn_node_beside(&self, extra_toml: &str) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        boot(
            dir,
            self.database_url.clone(),
            extra_toml,
            self.clock.clone(),
            self.admin_token.clone(),
            Some(self.meta.uri()),
        )
        .await
    }
}

/// The machine's Redis, or `None` when it is unreachable outside CI. In CI (`CI` set) an
/// unreachable Redis fails the test: it never skips silently.
pub async fn redis_url() -> Option<String> {
    const URL: &str = "redis://127.0.0.1:6379";
    let reachable = async {
        let client = redis::Client::open(URL)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    };
    match tokio::time::timeout(Duration::from_secs(3), reachable).await {
        Ok(Ok(_)) => Some(URL.to_owned()),
        outcome => {
            if std::env::var_os("CI").is_some() {
                panic!("Redis at {URL} is unreachable and CI is set: {outcome:?}");
            }
            eprintln!(
                "SKIPPED: Redis at {URL} is unreachable ({outcome:?}); set CI=1 to make this fail"
            );
            None
        }
    }
}

/// Splits the body of the section `header` out of `toml`: (its body, the rest).
fn take_section(toml: &str, header: &str) -> (String, String) {
    match toml.split_once(header) {
        Some((before, after)) => {
            let end = after.find("\n[").map_or(after.len(), |i| i + 1);
            (
                after[..end].to_owned(),
                format!("{before}{}", &after[end..]),
            )
        }
        None => (String::new(), toml.to_owned()),
    }
}

async fn boot(
    dir: tempfile::TempDir,
    url: String,
    extra_toml: &str,
    clock: Arc<ManualClock>,
    admin_token: String,
    meta_base: Option<String>,
) -> TestApp {
    let meta = MockServer::start().await;
    let meta_base = meta_base.unwrap_or_else(|| meta.uri());
    // `[outbound]` and `[conversations]` sections of the test's own join the harness's.
    let (outbound_extra, extra_toml) = take_section(extra_toml, "[outbound]\n");
    let (conversations_extra, extra_toml) = take_section(&extra_toml, "[conversations]\n");
    let (http_extra, extra_toml) = take_section(&extra_toml, "[http]\n");
    let (media_extra, extra_toml) = take_section(&extra_toml, "[media]\n");
    let media_dir = dir.path().join("media");
    let toml = format!(
        r#"
[http]
bind = "127.0.0.1:0"
workers = 1
graphiql = false
{http_extra}
[database]
url = "{url}"
max_connections = 2
[conversations]
actor_threads = 2
idle_timeout_secs = 300
reopen_window_secs = 86400
{conversations_extra}
[outbound]
initial_backoff_ms = 1000
max_attempts = 4
request_timeout_ms = 2000
{outbound_extra}
[telemetry]
log_filter = "warn"
[media]
dir = "{}"
{media_extra}
{extra_toml}
[[channels]]
id = "{CHANNEL}"
kind = "whatsapp_cloud"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "test-access-token"
api_base = "{}/v21.0"
phone_number_ids = ["{PHONE_NUMBER_ID}"]
"#,
        media_dir.display(),
        meta_base
    );
    let settings = Settings::from_toml(&toml).expect("test settings");
    // Logs go to the test's captured output (shown for failing tests); RUST_LOG overrides.
    std::mem::forget(parley::telemetry::init(&settings.telemetry));
    let app = Application::build(settings, clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let store = app.store.clone();
    let registry = app.registry.clone();
    let routing = app.routing.clone();
    let plugins = app.plugins.clone();
    let connectors = app.connectors.clone();
    let server = app.server_handle();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        store,
        clock,
        meta,
        admin_token,
        registry,
        routing,
        plugins,
        connectors,
        media_dir,
        server,
        dir: Some(dir),
        database_url: url,
        extra_toml: extra_toml.to_owned(),
    }
}

impl TestApp {
    pub fn webhook_url(&self) -> String {
        format!("{}/webhooks/{CHANNEL}", self.address)
    }

    /// POSTs `body` signed with the channel's app secret.
    pub async fn post_webhook(&self, body: &str) -> reqwest::Response {
        self.client
            .post(self.webhook_url())
            .header(
                "X-Hub-Signature-256",
                sign_meta(APP_SECRET.as_bytes(), body.as_bytes()),
            )
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("webhook request")
    }

    pub async fn graphql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.client
            .post(format!("{}/graphql", self.address))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("graphql request")
            .json()
            .await
            .expect("graphql answers JSON")
    }

    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        self.graphql_as(&self.admin_token, query, variables).await
    }

    /// A token of `role`, optionally acting as an agent.
    pub async fn token(&self, role: Role, agent_id: Option<i64>) -> String {
        let (token, token_hash) = generate_token();
        self.store
            .write(CreateToken {
                by: "cli".into(),
                name: format!("{role} token"),
                role,
                agent_id,
                token_hash,
                expires_at: None,
                now: self.clock.now(),
            })
            .await
            .expect("token stored")
            .expect("token created");
        token
    }

    pub async fn count(&self, table: &str) -> i64 {
        self.store.count_rows(table).await.expect("count")
    }

    /// Accepts every Graph API send with a fresh wamid; returns the call counter.
    pub async fn meta_accepts_sends(&self) -> Arc<AtomicUsize> {
        let calls = Arc::new(AtomicUsize::new(0));
        Mock::given(wiremock::matchers::method("POST"))
            .and(wiremock::matchers::path(format!(
                "/v21.0/{PHONE_NUMBER_ID}/messages"
            )))
            .respond_with(SendsAccepted(calls.clone()))
            .mount(&self.meta)
            .await;
        calls
    }

    /// The conversation of the newest message from `wa_id`.
    pub async fn conversation_id_of(&self, wa_id: &str) -> String {
        let data = self
            .graphql(
                "{ conversations(first: 50) { edges { node { id contact { waId } } } } }",
                json!({}),
            )
            .await;
        data["data"]["conversations"]["edges"]
            .as_array()
            .and_then(|edges| edges.iter().find(|e| e["node"]["contact"]["waId"] == wa_id))
            .and_then(|e| e["node"]["id"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no conversation for {wa_id}: {data}"))
    }
}

/// Polls `check` until it holds; for outcomes that happen after a webhook's answer.
/// Never used to wait for a deadline: deadlines are driven by the manual clock.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A Cloud API text message webhook (Meta's shape).
pub fn text_webhook(wa_id: &str, wamid: &str, body: &str, timestamp: i64) -> String {
    message_webhook(
        wa_id,
        json!({ "from": wa_id, "id": wamid, "timestamp": timestamp.to_string(), "type": "text", "text": { "body": body } }),
    )
}

/// A Cloud API message webhook carrying one customer message (`messages[0]`).
pub fn message_webhook(wa_id: &str, message: Value) -> String {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "16505553333", "phone_number_id": PHONE_NUMBER_ID },
                    "contacts": [{ "profile": { "name": "Kerry Fisher" }, "wa_id": wa_id }],
                    "messages": [message]
                }
            }]
        }]
    })
    .to_string()
}

/// A Cloud API status webhook for an outbound message.
pub fn status_webhook(wamid: &str, status: &str, errors: Option<Value>) -> String {
    let mut item = json!({ "id": wamid, "status": status, "timestamp": "1669233800", "recipient_id": "16315551234" });
    if let Some(errors) = errors {
        item["errors"] = errors;
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "16505553333", "phone_number_id": PHONE_NUMBER_ID },
                    "statuses": [item]
                }
            }]
        }]
    })
    .to_string()
}

/// A free loopback port for a server started as a separate process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a configuration for running the `parley` binary itself on `port`, with its
/// SQLite database in `dir`; returns the file's path.
pub fn binary_config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let config = dir.join("parley.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[http]
bind = "127.0.0.1:{port}"
[database]
url = "sqlite://{}/parley.db?mode=rwc"
[[channels]]
id = "{CHANNEL}"
kind = "whatsapp_cloud"
app_secret = "{APP_SECRET}"
verify_token = "{VERIFY_TOKEN}"
access_token = "unused"
api_base = "http://127.0.0.1:9"
phone_number_ids = ["{PHONE_NUMBER_ID}"]
"#,
            dir.display()
        ),
    )
    .unwrap();
    config
}

/// Waits until a server started as a process answers `/readyz`.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("parley did not become ready");
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../tests/fixtures/cloud_api/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

// Conversations as an inbox client sees them, for the lifecycle, GraphQL and outbound tests.

/// The `extensions.code` of a GraphQL answer's first error, or "" when it has none.
pub fn error_code(answer: &Value) -> &str {
    answer["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// The conversations of one customer, newest activity first, with the fields the tests read.
pub async fn conversations_of(app: &TestApp, wa_id: &str) -> Vec<Value> {
    let answer = app
        .graphql(
            "{ conversations(first: 100) { edges { node { id status reopenCount contact { waId name } } } } }",
            json!({}),
        )
        .await;
    let edges = answer["data"]["conversations"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("no conversation list: {answer}"));
    edges
        .iter()
        .map(|e| e["node"].clone())
        .filter(|n| n["contact"]["waId"] == wa_id)
        .collect()
}

/// One conversation with its messages (oldest first), as GraphQL shows it.
pub async fn conversation(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            r#"query($id: ID!) { conversation(id: $id) {
                id status reopenCount channelId phoneNumberId firstResponseAt resolvedAt
                contact { waId name } assignee { id name } team { id name }
                messages(first: 50) { edges { node {
                    id direction kind text providerMessageId deliveryStatus authorAgentId
                    error { code title reason }
                } } }
            } }"#,
            json!({ "id": id }),
        )
        .await;
    let node = answer["data"]["conversation"].clone();
    assert!(node.is_object(), "conversation {id} not found: {answer}");
    node
}

/// The messages of a conversation, oldest first.
pub async fn messages_of(app: &TestApp, conversation_id: &str) -> Vec<Value> {
    let node = conversation(app, conversation_id).await;
    node["messages"]["edges"]
        .as_array()
        .map(|e| e.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default()
}

/// The event log of a conversation, oldest first: `{ kind actor data }` each.
pub async fn events_of(app: &TestApp, conversation_id: &str) -> Vec<Value> {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { events(first: 100) { kind actor data: dataJson } } }",
            json!({ "id": conversation_id }),
        )
        .await;
    answer["data"]["conversation"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no events for conversation {conversation_id}: {answer}"))
}

/// The kinds in a conversation's event log, oldest first.
pub async fn event_kinds_of(app: &TestApp, conversation_id: &str) -> Vec<String> {
    events_of(app, conversation_id)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls `check` until it gives a value; for outcomes that happen after an answer.
pub async fn eventually_some<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(15) {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Posts a customer's text message, waits until it is applied and returns the id of the
/// conversation that holds it.
pub async fn customer_writes(app: &TestApp, wa_id: &str, wamid: &str, body: &str) -> String {
    let timestamp = app.clock.now() / 1_000_000;
    let response = app
        .post_webhook(&text_webhook(wa_id, wamid, body, timestamp))
        .await;
    assert_eq!(response.status(), 200, "webhook for {wamid} refused");
    conversation_holding(app, wa_id, wamid).await
}

/// Waits until the message `provider_message_id` from `wa_id` is applied; answers the id
/// of the conversation that holds it.
pub async fn conversation_holding(app: &TestApp, wa_id: &str, provider_message_id: &str) -> String {
    eventually_some(
        &format!("{provider_message_id} is applied"),
        || async move {
            for c in conversations_of(app, wa_id).await {
                let id = c["id"].as_str().unwrap_or_default().to_owned();
                if messages_of(app, &id)
                    .await
                    .iter()
                    .any(|m| m["providerMessageId"] == provider_message_id)
                {
                    return Some(id);
                }
            }
            None
        },
    )
    .await
}

/// Waits until every stored webhook has been applied (or set aside).
pub async fn all_webhooks_applied(app: &TestApp) {
    eventually("every stored webhook is applied", || async {
        app.store
            .pending_inbox(0, 10)
            .await
            .map(|rows| rows.is_empty())
            .unwrap_or(false)
    })
    .await;
}

/// Sends an agent's reply as admin and returns the stored message.
pub async fn reply(app: &TestApp, conversation_id: &str, text: &str) -> Value {
    let answer = app
        .graphql(
            "mutation($c: ID!, $t: String!) { sendReply(conversationId: $c, text: $t) { id deliveryStatus direction text } }",
            json!({ "c": conversation_id, "t": text }),
        )
        .await;
    let message = answer["data"]["sendReply"].clone();
    assert!(message.is_object(), "reply refused: {answer}");
    message
}

/// Moves a conversation to `status` as admin; returns the GraphQL answer.
pub async fn set_status(app: &TestApp, conversation_id: &str, status: &str) -> Value {
    app.graphql(
        "mutation($c: ID!, $s: ConversationStatus!) { setConversationStatus(conversationId: $c, status: $s) { id status reopenCount } }",
        json!({ "c": conversation_id, "s": status }),
    )
    .await
}

/// Creates an agent as admin and returns its id.
pub async fn create_agent(app: &TestApp, name: &str, team_id: Option<&str>) -> String {
    let answer = app
        .graphql(
            "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }",
            json!({ "i": { "name": name, "role": "AGENT", "teamId": team_id } }),
        )
        .await;
    answer["data"]["createAgent"]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("createAgent failed: {answer}"))
}

/// Creates a team as admin and returns its id.
pub async fn create_team(app: &TestApp, name: &str) -> String {
    let answer = app
        .graphql(
            "mutation($n: String!) { createTeam(name: $n) { id } }",
            json!({ "n": name }),
        )
        .await;
    answer["data"]["createTeam"]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("createTeam failed: {answer}"))
}

/// Waits until a message of `conversation_id` has reached `status`; returns it.
pub async fn message_reaches(
    app: &TestApp,
    conversation_id: &str,
    message_id: &str,
    status: &str,
) -> Value {
    eventually_some(
        &format!("message {message_id} is {status}"),
        || async move {
            messages_of(app, conversation_id)
                .await
                .into_iter()
                .find(|m| m["id"] == message_id && m["deliveryStatus"] == status)
        },
    )
    .await
}

/// The outbox row of a message that waits for another attempt: (attempts, due at).
pub async fn queued_retry(app: &TestApp, message_id: &str) -> Option<(i32, i64)> {
    let far = app.clock.now() + 3_600_000_000;
    app.store
        .due_sends(far, 100)
        .await
        .ok()?
        .into_iter()
        .find(|job| job.message_id.to_string() == message_id && job.attempts > 0)
        .map(|job| (job.attempts, job.next_attempt_at))
}

/// The bodies of the sends the fake Graph API received, oldest first.
pub async fn sent_payloads(app: &TestApp) -> Vec<Value> {
    app.meta
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/messages"))
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

/// The actions in the audit log, oldest first.
pub async fn audit_actions(app: &TestApp) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.store.db();
    db.query_all(Statement::from_string(
        db.get_database_backend(),
        "SELECT action FROM audit_log ORDER BY id",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get::<String>("", "action").unwrap())
    .collect()
}

/// How many events of `kind` a conversation's log holds.
pub async fn count_kind(app: &TestApp, conversation_id: &str, kind: &str) -> usize {
    event_kinds_of(app, conversation_id)
        .await
        .iter()
        .filter(|k| *k == kind)
        .count()
}

/// Waits until a conversation's log holds at least `count` events of `kind`.
pub async fn wait_for_kind(app: &TestApp, conversation_id: &str, kind: &str, count: usize) {
    eventually(&format!("{count} {kind} event(s)"), || async {
        count_kind(app, conversation_id, kind).await >= count
    })
    .await;
}

/// Gives the actors a moment to do something they should not (used after moving the
/// manual clock short of a deadline: nothing may fire).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}
