//! `parley demo`: Parley on an embedded SQLite database with a simulated WhatsApp
//! business number, so that a newcomer sees a working inbox without a Meta account.
//!
//! Inside the one process: the real server ([`crate::startup::Application`]), a fake
//! Graph API that accepts sends, answers with signed delivery and read status webhooks
//! and serves the customers' photos for Parley to fetch ([`graph`], [`photo`]), and
//! simulated customers writing in several languages at a pace a
//! person can follow ([`customers`]). Demo teams come from the shipped routing rules;
//! demo agents and tokens are created through the GraphQL API like anyone's would be.
//! Ctrl-C stops it; the data stays in the data directory for the next run.

pub mod customers;
pub mod graph;
pub mod photo;

use crate::api::auth::generate_token;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::Role;
use crate::startup::Application;
use crate::store::Store;
use crate::store::tokens::CreateToken;
use anyhow::Context as _;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The simulated channel's id and secrets (known only to this process and its fakes).
pub const CHANNEL: &str = "demo";
pub const APP_SECRET: &str = "demo-app-secret";
pub const ACCESS_TOKEN: &str = "demo-access-token";
pub const PHONE_NUMBER_ID: &str = "100000000000001";

pub struct DemoOptions {
    /// Where the SQLite databases live (created when missing).
    pub data_dir: PathBuf,
    /// Where Parley listens.
    pub bind: String,
    /// Time between two customer messages.
    pub pace: Duration,
}

/// The demo's agents: name, policy team, languages, role.
const AGENTS: &[(&str, &str, &[&str], &str)] = &[
    ("Sam Rivera", "tier1_care", &["en", "es"], "SUPERVISOR"),
    ("Ana Souza", "tier1_care", &["en", "pt", "es"], "AGENT"),
    (
        "Rahul Mehta",
        "tier1_care",
        &["en", "hi", "ar", "id"],
        "AGENT",
    ),
    ("Fatima Zahra", "finance", &["en", "es", "ar"], "AGENT"),
    ("Grace Lee", "trust_safety", &["en", "es", "pt"], "AGENT"),
    ("Diego Alvarez", "comms_pr", &["en", "es"], "AGENT"),
];

/// The settings of a demo run: the shipped defaults, a SQLite database and the media
/// files in `data_dir`, and one WhatsApp channel pointed at the fake Graph API.
pub fn settings(options: &DemoOptions, api_base: &str) -> anyhow::Result<Settings> {
    let db = options.data_dir.join("parley.db");
    let media = options.data_dir.join("media");
    let toml = format!(
        r#"
[http]
bind = {bind:?}
graphiql = true

[database]
url = {url:?}

[media]
dir = {media:?}

[[channels]]
id = {CHANNEL:?}
kind = "whatsapp_cloud"
app_secret = {APP_SECRET:?}
verify_token = "demo-verify-token"
access_token = {ACCESS_TOKEN:?}
api_base = {api_base:?}
phone_number_ids = [{PHONE_NUMBER_ID:?}]
"#,
        bind = options.bind,
        url = format!("sqlite://{}?mode=rwc", db.display()),
    );
    Ok(Settings::from_toml(&toml)?)
}

/// Runs the demo until Ctrl-C (or until the returned server handle is stopped).
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "Failed to create the demo's data directory {}",
            options.data_dir.display()
        )
    })?;
    let (meta, meta_server) = graph::FakeGraphApi::start(options.pace.mul_f32(0.4))?;
    let meta_handle = meta_server.handle();
    tokio::spawn(meta_server);
    let settings = settings(&options, &meta.api_base())?;
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let webhook_url = format!("{base}/webhooks/{CHANNEL}");
    meta.deliver_to(webhook_url.clone());
    let store = app.store.clone();
    // The server serves once its future runs.
    let serving = actix_rt::spawn(app.run_until_stopped());

    let seeded = seed(&store, &base).await?;
    println!("Parley demo: a simulated WhatsApp number with customers writing in.");
    println!(
        "Signed in as {} (supervisor). Stop with Ctrl-C; the data stays in {}.",
        AGENTS[0].0,
        options.data_dir.display()
    );
    println!("Open this URL:");
    println!("{base}/inbox#token={}", seeded.supervisor_token);

    let http = reqwest::Client::new();
    let assistant = Assistant {
        http: http.clone(),
        graphql: format!("{base}/graphql"),
        token: seeded.assistant_token,
    };
    let simulation = tokio::spawn(async move {
        customers::run(http, webhook_url, options.pace, move |line| {
            if line.wa_id == customers::DOUBLE_CHARGE {
                let assistant = assistant.clone();
                tokio::spawn(async move { assistant.draft_refund_reply().await });
            }
        })
        .await;
    });
    let served = serving.await;
    simulation.abort();
    meta_handle.stop(true).await;
    eprintln!("parley demo: stopped.");
    Ok(served??)
}

struct Seeded {
    supervisor_token: String,
    assistant_token: String,
}

async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let answer: Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    if let Some(errors) = answer.get("errors") {
        anyhow::bail!("GraphQL refused {query}: {errors}");
    }
    Ok(answer["data"].clone())
}

async fn token(
    store: &Store,
    name: &str,
    role: Role,
    agent_id: Option<i64>,
) -> anyhow::Result<String> {
    let (token, token_hash) = generate_token();
    store
        .write(CreateToken {
            by: "demo".into(),
            name: name.into(),
            role,
            agent_id,
            token_hash,
            expires_at: None,
            now: SystemClock.now(),
        })
        .await??;
    Ok(token)
}

/// Creates the demo agents (once per data directory) and this run's tokens.
async fn seed(store: &Store, base: &str) -> anyhow::Result<Seeded> {
    let http = reqwest::Client::new();
    let url = format!("{base}/graphql");
    let admin = token(store, "demo setup", Role::Admin, None).await?;
    let directory = graphql(
        &http,
        &url,
        &admin,
        "{ teams { id name } agents { id name } }",
        json!({}),
    )
    .await?;
    let find = |list: &str, name: &str| {
        directory[list]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["name"] == name))
            .and_then(|i| i["id"].as_str())
            .map(str::to_owned)
    };
    let mut supervisor_id = None;
    for (name, team, languages, role) in AGENTS {
        let id = match find("agents", name) {
            Some(id) => id,
            None => {
                let team_id = find("teams", team)
                    .with_context(|| format!("the routing rules have no team {team}"))?;
                let created = graphql(
                    &http,
                    &url,
                    &admin,
                    "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }",
                    json!({ "i": { "name": name, "role": role, "teamId": team_id,
                                   "languages": languages, "capacity": 8, "status": "ONLINE" } }),
                )
                .await?;
                created["createAgent"]["id"]
                    .as_str()
                    .context("createAgent answered no id")?
                    .to_owned()
            }
        };
        supervisor_id.get_or_insert(id);
    }
    let supervisor_id: i64 = supervisor_id
        .context("no demo agent")?
        .parse()
        .context("agent ids are numbers")?;
    Ok(Seeded {
        supervisor_token: token(store, "demo inbox", Role::Supervisor, Some(supervisor_id)).await?,
        assistant_token: token(store, "demo assistant", Role::Integration, None).await?,
    })
}

/// A stand-in for a model that drafts answers: its drafts go through the approval
/// boundaries like automation's, so the billing dispute's draft waits for a supervisor.
#[derive(Clone)]
struct Assistant {
    http: reqwest::Client,
    graphql: String,
    token: String,
}

impl Assistant {
    async fn draft_refund_reply(&self) {
        // The message is applied shortly after its webhook was taken in.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let Ok(data) = graphql(
                &self.http,
                &self.graphql,
                &self.token,
                "query($f: ConversationFilter) { conversations(first: 50, filter: $f) { edges { node { id contact { waId } } } } }",
                json!({ "f": { "status": ["CREATED", "ASSIGNED", "IN_PROGRESS"] } }),
            )
            .await
            else {
                continue;
            };
            let case = data["conversations"]["edges"]
                .as_array()
                .and_then(|e| {
                    e.iter()
                        .find(|e| e["node"]["contact"]["waId"] == customers::DOUBLE_CHARGE)
                })
                .and_then(|e| e["node"]["id"].as_str())
                .map(str::to_owned);
            let Some(case) = case else { continue };
            let drafted = graphql(
                &self.http,
                &self.graphql,
                &self.token,
                "mutation($c: ID!, $t: String!) { sendReply(conversationId: $c, text: $t, aiDraft: true) { id } }",
                json!({ "c": case, "t": "Hola Lucía, vemos el cobro duplicado. Te devolvemos el segundo cargo hoy; lo verás en tu tarjeta en 3 a 5 días hábiles." }),
            )
            .await;
            if let Err(error) = drafted {
                tracing::warn!(error = %error, "The demo assistant's draft was refused.");
            }
            return;
        }
    }
}

/// A Cloud API webhook from the simulated number: `value` (its `messages` and `contacts`,
/// or its `statuses`) in Meta's envelope.
fn webhook(mut value: Value) -> Value {
    value["messaging_product"] = json!("whatsapp");
    value["metadata"] =
        json!({ "display_phone_number": "15550001111", "phone_number_id": PHONE_NUMBER_ID });
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "100000000000000",
            "changes": [{ "field": "messages", "value": value }]
        }]
    })
}
