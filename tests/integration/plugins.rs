//! Plugins in the running server: the reference components from `plugins/dist/` (built
//! by `plugins/build.sh`) behind Parley's real webhook and GraphQL endpoints, with fake
//! Twilio and CRM servers, and a hostile component loaded while intake runs.

use crate::helpers::*;
use base64::Engine as _;
use hmac::Mac as _;
use parley::clock::Clock;
use parley::domain::Role;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TWILIO_CHANNEL: &str = "twilio-main";
const TWILIO_TOKEN: &str = "twilio-test-token";
const ACCOUNT_SID: &str = "AC0000000000000000000000000000c0de";
const PUBLIC_BASE: &str = "https://parley.example.com";
const BUSINESS_NUMBER: &str = "+14155238886";
const CUSTOMER: &str = "4915112345678";

/// A reference plugin's component. A missing one fails the test, never skips it.
fn dist(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: build the reference plugins with plugins/build.sh first",
        path.display()
    );
    path
}

/// Fake provider servers and plugin manifests for one test.
struct Plugins {
    twilio: MockServer,
    dir: tempfile::TempDir,
}

impl Plugins {
    async fn new() -> Self {
        let plugins = Self {
            twilio: MockServer::start().await,
            dir: tempfile::tempdir().unwrap(),
        };
        let uri = plugins.twilio.uri();
        plugins.manifest(
            "twilio",
            "transport@0.1",
            &dist("twilio"),
            &format!(
                "allowed_hosts = [\"{uri}\"]\nsecrets = [\"auth_token\"]\n[settings]\n\
                 account_sid = \"{ACCOUNT_SID}\"\napi_base = \"{uri}\"\n\
                 default_sender = \"{BUSINESS_NUMBER}\"\n"
            ),
        );
        plugins
    }

    /// Writes `<id>.toml` for `component`; `rest` adds keys and `[settings]`.
    fn manifest(&self, id: &str, world: &str, component: &Path, rest: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{id}.toml"));
        std::fs::write(
            &path,
            format!(
                "id = \"{id}\"\nversion = \"1.0.0\"\nworld = \"{world}\"\n\
                 component = {component:?}\n{rest}"
            ),
        )
        .unwrap();
        path
    }

    /// Configuration loading the Twilio plugin with its secret and channel; `keys` go
    /// into `[plugins]`, `tables` after the channel.
    fn config(&self, keys: &str, tables: &str) -> String {
        format!(
            "[plugins]\nmanifests = [{:?}]\nload_dir = {:?}\n{keys}\n[plugins.secrets.twilio]\n\
             auth_token = \"{TWILIO_TOKEN}\"\n\
             [[channels]]\nid = \"{TWILIO_CHANNEL}\"\nkind = \"transport\"\n\
             plugin = \"twilio\"\npublic_base_url = \"{PUBLIC_BASE}\"\n{tables}\n",
            self.dir.path().join("twilio.toml"),
            self.dir.path()
        )
    }
}

/// `X-Twilio-Signature` as Twilio computes it: HMAC-SHA1 over the public URL followed by
/// every parameter's name and value, sorted by name.
fn twilio_signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (name, value) in &sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A customer's WhatsApp message as Twilio posts it.
fn twilio_message(sid: &str, wa_id: &str, body: &str) -> Vec<(String, String)> {
    params(&[
        ("MessageSid", sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", &format!("whatsapp:+{wa_id}")),
        ("To", &format!("whatsapp:{BUSINESS_NUMBER}")),
        ("Body", body),
        ("ProfileName", "Ana"),
        ("WaId", wa_id),
        ("NumMedia", "0"),
    ])
}

/// Posts form parameters to a channel's webhook, signed with `token` over the public URL.
async fn post_signed(
    app: &TestApp,
    channel: &str,
    token: &str,
    form: &[(String, String)],
) -> reqwest::Response {
    let public_url = format!("{PUBLIC_BASE}/webhooks/{channel}");
    app.client
        .post(format!("{}/webhooks/{channel}", app.address))
        .header(
            "X-Twilio-Signature",
            twilio_signature(token, &public_url, form),
        )
        .form(form)
        .send()
        .await
        .expect("webhook request")
}

async fn post_twilio(app: &TestApp, form: &[(String, String)]) -> reqwest::Response {
    post_signed(app, TWILIO_CHANNEL, TWILIO_TOKEN, form).await
}

async fn twilio_webhooks_are_verified_stored_once_and_open_a_conversation(backend: Backend) {
    let plugins = Plugins::new().await;
    let Some(app) = spawn_app_with(backend, &plugins.config("", "")).await else {
        return;
    };
    let message = twilio_message("SM0001", CUSTOMER, "Where is my order A-10023?");

    let forged = post_signed(&app, TWILIO_CHANNEL, "not-the-token", &message).await;
    assert_eq!(forged.status(), 401);
    let answer: Value = forged.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "signature_invalid", "{answer}");
    assert_eq!(
        app.count("inbox").await,
        0,
        "nothing of a forgery is stored"
    );

    // Delivered, then redelivered as is.
    for _ in 0..2 {
        assert_eq!(post_twilio(&app, &message).await.status(), 200);
    }
    // The same message in another request (a field more): stored, but recorded once.
    let mut retried = message.clone();
    retried.push(("ApiVersion".into(), "2010-04-01".into()));
    assert_eq!(post_twilio(&app, &retried).await.status(), 200);

    let id = conversation_holding(&app, CUSTOMER, "SM0001").await;
    all_webhooks_applied(&app).await;
    assert_eq!(app.count("inbox").await, 2, "one row per distinct body");
    assert_eq!(app.count("dead_letters").await, 0);
    let conversation = conversation(&app, &id).await;
    assert_eq!(conversation["channelId"], TWILIO_CHANNEL);
    assert_eq!(conversation["phoneNumberId"], BUSINESS_NUMBER);
    assert_eq!(conversation["contact"]["name"], "Ana");
    let messages = messages_of(&app, &id).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["kind"], "text");
    assert_eq!(messages[0]["text"], "Where is my order A-10023?");
    assert_eq!(messages[0]["direction"], "INBOUND");

    // The native channel keeps working beside it.
    customer_writes(&app, "16315551234", "wamid.NATIVE", "Hello").await;
}

/// The Messages resource of the fake Twilio.
fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

/// Bodies of the sends the fake Twilio received.
async fn twilio_sends(plugins: &Plugins) -> Vec<String> {
    plugins
        .twilio
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == messages_path())
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

async fn replies_on_a_twilio_channel_go_out_through_the_plugin(backend: Backend) {
    let plugins = Plugins::new().await;
    let Some(app) = spawn_app_with(backend, &plugins.config("", "")).await else {
        return;
    };
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{TWILIO_TOKEN}"));
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(header("authorization", format!("Basic {basic}")))
        .and(body_string_contains("Body=On+its+way"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SMout1", "status": "queued"})),
        )
        .mount(&plugins.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("Body=Too+late"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "code": 63016, "status": 400,
            "message": "Failed to send freeform message because you are outside the allowed window."
        })))
        .mount(&plugins.twilio)
        .await;
    // Throttled once, then accepted.
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("Body=Busy+day"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .set_body_json(json!({"code": 20429, "message": "Too Many Requests"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&plugins.twilio)
        .await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .and(body_string_contains("Body=Busy+day"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"sid": "SMout3"})))
        .mount(&plugins.twilio)
        .await;

    let inbound = twilio_message("SM0100", CUSTOMER, "Hello?");
    assert_eq!(post_twilio(&app, &inbound).await.status(), 200);
    let id = conversation_holding(&app, CUSTOMER, "SM0100").await;

    let sent = reply(&app, &id, "On its way").await;
    let sent_id = sent["id"].as_str().unwrap();
    let message = message_reaches(&app, &id, sent_id, "SENT").await;
    assert_eq!(message["providerMessageId"], "SMout1");
    let bodies = twilio_sends(&plugins).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(
        bodies[0].contains("To=whatsapp%3A%2B4915112345678")
            && bodies[0].contains("From=whatsapp%3A%2B14155238886"),
        "{}",
        bodies[0]
    );

    // Twilio's status callback reaches the same message.
    let delivered = params(&[
        ("MessageSid", "SMout1"),
        ("MessageStatus", "delivered"),
        ("AccountSid", ACCOUNT_SID),
        ("To", &format!("whatsapp:+{CUSTOMER}")),
    ]);
    assert_eq!(post_twilio(&app, &delivered).await.status(), 200);
    message_reaches(&app, &id, sent_id, "DELIVERED").await;

    // Outside the window: failed at once, explained, never retried.
    let late = reply(&app, &id, "Too late").await;
    let late = message_reaches(&app, &id, late["id"].as_str().unwrap(), "FAILED").await;
    assert_eq!(late["error"]["reason"], "OUTSIDE_WINDOW", "{late}");
    // The provider's word closes the window on the case: the next free-form reply is
    // refused before any call, until the customer writes again.
    wait_for_kind(&app, &id, "window_closed", 1).await;
    let refused = app
        .graphql(
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"Hello?\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "window_closed", "{refused}");
    let again = twilio_message("SM0101", CUSTOMER, "Still there?");
    assert_eq!(post_twilio(&app, &again).await.status(), 200);
    conversation_holding(&app, CUSTOMER, "SM0101").await;

    // Rate limited: queued again for after Twilio's Retry-After, then sent.
    let busy = reply(&app, &id, "Busy day").await;
    let busy_id = busy["id"].as_str().unwrap();
    let (attempts, due) = eventually_some("the throttled attempt is recorded", || async {
        queued_retry(&app, busy_id).await
    })
    .await;
    assert_eq!(attempts, 1);
    use parley::clock::Clock as _;
    assert_eq!(
        due,
        app.clock.now() + 2_000_000,
        "retried after Retry-After"
    );
    app.clock.advance(Duration::from_secs(2));
    let busy = message_reaches(&app, &id, busy_id, "SENT").await;
    assert_eq!(busy["providerMessageId"], "SMout3");
    assert_eq!(twilio_sends(&plugins).await.len(), 4);
}

/// A fake CRM that knows one customer, and a crm-http manifest pointing at it.
async fn fake_crm(plugins: &Plugins) -> (MockServer, PathBuf) {
    let crm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .and(query_param("whatsapp", CUSTOMER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{ "id": 42, "full_name": "Ana Souza", "tier": "gold" }]
        })))
        .mount(&crm)
        .await;
    let manifest = plugins.manifest(
        "crm-http",
        "crm-connector@0.1",
        &dist("crm-http"),
        &format!(
            "allowed_hosts = [\"{uri}\"]\n[settings]\nbase_url = \"{uri}\"\n\
             lookup_by_wa_id = \"/customers?whatsapp={{wa_id}}\"\nresult_path = \"/data/0\"\n\
             vip_tiers = [\"gold\"]\n[settings.fields]\nname = \"full_name\"\n",
            uri = crm.uri()
        ),
    );
    (crm, manifest)
}

const PLUGINS_QUERY: &str = "{ plugins { id version world contractVersion health breaker \
     calls errors rejected latencyP50Ms latencyP95Ms latencyP99Ms lastError { code message } } }";

fn plugin<'a>(answer: &'a Value, id: &str) -> &'a Value {
    answer["data"]["plugins"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("no plugin {id}: {answer}"))
}

async fn load_plugin(app: &TestApp, token: &str, manifest: &Path) -> Value {
    app.graphql_as(
        token,
        "mutation($p: String!) { loadPlugin(manifestPath: $p) { healthy \
         healthError { code } plugin { id world version } } }",
        json!({ "p": manifest.display().to_string() }),
    )
    .await
}

async fn remove_plugin(app: &TestApp, token: &str, id: &str) -> Value {
    app.graphql_as(
        token,
        "mutation($id: String!) { removePlugin(id: $id) }",
        json!({ "id": id }),
    )
    .await
}

#[actix_rt::test]
async fn admins_see_load_and_remove_plugins_and_the_crm_connector_follows() {
    let plugins = Plugins::new().await;
    let (_crm, crm_manifest) = fake_crm(&plugins).await;
    let config = plugins.config("crm = \"crm-http\"", "");
    let app = spawn_app_with(Backend::Sqlite, &config).await.unwrap();
    let error = app.connectors.lookup_customer(CUSTOMER).await.unwrap_err();
    assert_eq!(error.code(), "plugin_not_loaded");
    assert_eq!(
        error.fallback_reason(),
        "CRM unavailable: plugin crm-http is not loaded"
    );

    // Non-admins may neither look nor touch.
    for role in [Role::Supervisor, Role::Agent, Role::Integration] {
        let token = app.token(role, None).await;
        let answers = [
            app.graphql_as(&token, PLUGINS_QUERY, json!({})).await,
            load_plugin(&app, &token, &crm_manifest).await,
            remove_plugin(&app, &token, "twilio").await,
        ];
        for answer in answers {
            assert_eq!(error_code(&answer), "forbidden", "{role}: {answer}");
        }
    }
    assert!(app.plugins.status("crm-http").is_err());

    let admin = app.admin_token.clone();
    let loaded = load_plugin(&app, &admin, &crm_manifest).await;
    assert_eq!(
        loaded["data"]["loadPlugin"]["plugin"]["world"], "CRM_CONNECTOR",
        "{loaded}"
    );
    assert_eq!(loaded["data"]["loadPlugin"]["healthy"], true, "{loaded}");
    let profile = app.connectors.lookup_customer(CUSTOMER).await.unwrap();
    assert_eq!(profile.name.as_deref(), Some("Ana Souza"));
    assert!(profile.vip);

    let listed = app.graphql(PLUGINS_QUERY, json!({})).await;
    let crm = plugin(&listed, "crm-http");
    assert_eq!(crm["world"], "CRM_CONNECTOR");
    assert_eq!(crm["contractVersion"], "0.1");
    assert_eq!(crm["health"], "HEALTHY");
    assert_eq!(crm["breaker"], "CLOSED");
    assert_eq!(
        (crm["calls"].as_i64(), crm["errors"].as_i64()),
        (Some(2), Some(0))
    );
    assert!(crm["latencyP50Ms"].as_f64().is_some() && crm["latencyP99Ms"].as_f64().is_some());
    assert_eq!(plugin(&listed, "twilio")["world"], "TRANSPORT");

    // Bad manifests: typed errors, listed until they load.
    let missing = plugins.dir.path().join("nowhere.toml");
    let answer = load_plugin(&app, &admin, &missing).await;
    assert_eq!(error_code(&answer), "plugin_manifest_invalid", "{answer}");
    let wrong_world = plugins.manifest("misfit", "crm-connector@0.1", &dist("twilio"), "");
    let answer = load_plugin(&app, &admin, &wrong_world).await;
    assert_eq!(error_code(&answer), "plugin_wrong_world", "{answer}");
    let garbage = plugins.dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm this is not a component").unwrap();
    let corrupt = plugins.manifest("corrupt", "crm-connector@0.1", &garbage, "");
    let answer = load_plugin(&app, &admin, &corrupt).await;
    assert_eq!(error_code(&answer), "plugin_component_corrupt", "{answer}");
    let failures = app
        .graphql(
            "{ pluginLoadFailures { manifestPath pluginId code message } }",
            json!({}),
        )
        .await;
    let mut codes: Vec<&str> = failures["data"]["pluginLoadFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("{failures}"))
        .iter()
        .filter_map(|f| f["code"].as_str())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [
            "plugin_component_corrupt",
            "plugin_manifest_invalid",
            "plugin_wrong_world"
        ]
    );

    let removed = remove_plugin(&app, &admin, "crm-http").await;
    assert_eq!(removed["data"]["removePlugin"], true, "{removed}");
    let again = remove_plugin(&app, &admin, "crm-http").await;
    assert_eq!(error_code(&again), "plugin_not_loaded", "{again}");
    let error = app.connectors.lookup_customer(CUSTOMER).await.unwrap_err();
    assert_eq!(error.code(), "plugin_not_loaded");

    // Both changes are in the tamper-evident audit log, after the tokens' creation.
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
    let actions = audit_actions(&app).await;
    assert_eq!(
        actions[actions.len() - 2..],
        ["plugin.loaded", "plugin.removed"],
        "{actions:?}"
    );
    assert_eq!(actions.iter().filter(|a| *a == "token.created").count(), 4);
}

/// A transport component whose every export spins forever.
fn stalling_transport() -> Vec<u8> {
    let wat = include_str!("../fixtures/plugins/stalling-transport.wat");
    let mut resolve = wit_parser::Resolve::default();
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/wit");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("transport")).unwrap();
    let mut module = wat::parse_str(wat).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

#[actix_rt::test]
async fn a_hanging_plugin_loaded_at_run_time_costs_its_own_channel_and_nothing_else() {
    const TIMEOUT_MS: u64 = 200;
    let plugins = Plugins::new().await;
    let config = plugins.config(
        "",
        &format!(
            "[[channels]]\nid = \"stalling\"\nkind = \"transport\"\nplugin = \"stall\"\n\
             public_base_url = \"{PUBLIC_BASE}\"\n"
        ),
    );
    let app = spawn_app_with(Backend::Sqlite, &config).await.unwrap();
    let component = plugins.dir.path().join("stall.wasm");
    std::fs::write(&component, stalling_transport()).unwrap();
    let manifest = plugins.manifest(
        "stall",
        "transport@0.1",
        &component,
        &format!("timeout_ms = {TIMEOUT_MS}\n"),
    );
    let loaded = load_plugin(&app, &app.admin_token, &manifest).await;
    assert_eq!(loaded["data"]["loadPlugin"]["healthy"], false, "{loaded}");
    assert_eq!(
        loaded["data"]["loadPlugin"]["healthError"]["code"], "plugin_timeout",
        "{loaded}"
    );

    // Webhooks for the hanging channel and for the good ones, all at once.
    const EACH: usize = 12;
    let stalled = (0..EACH).map(|n| {
        let app = &app;
        async move {
            let form = twilio_message(&format!("SMstall{n}"), CUSTOMER, "stuck?");
            post_signed(app, "stalling", TWILIO_TOKEN, &form).await
        }
    });
    let good = (0..EACH).map(|n| {
        let app = &app;
        async move {
            let started = Instant::now();
            let status = if n % 2 == 0 {
                let form =
                    twilio_message(&format!("SMgood{n}"), &format!("49151000000{n:02}"), "hi");
                post_twilio(app, &form).await.status()
            } else {
                let body = text_webhook(
                    &format!("16315550{n:03}"),
                    &format!("wamid.GOOD{n}"),
                    "hi",
                    1_669_233_778,
                );
                app.post_webhook(&body).await.status()
            };
            (status, started.elapsed())
        }
    });
    let started = Instant::now();
    let (stalled, good) = futures::join!(
        futures::future::join_all(stalled),
        futures::future::join_all(good)
    );
    for response in stalled {
        assert_eq!(response.status(), 503);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    }
    for (status, _) in &good {
        assert_eq!(*status, 200);
    }
    // Had the hanging calls held the intake, the good webhooks would have waited for
    // them one after another.
    let slowest = good.iter().map(|(_, took)| *took).max().unwrap_or_default();
    let serialized = Duration::from_millis(TIMEOUT_MS * EACH as u64);
    assert!(
        slowest < serialized,
        "a good webhook took {slowest:?}; all hanging calls together take {serialized:?} (all done in {:?})",
        started.elapsed()
    );

    // By now the breaker has seen enough timeouts: the next call fails fast.
    let form = twilio_message("SMstall-late", CUSTOMER, "stuck?");
    let started = Instant::now();
    let response = post_signed(&app, "stalling", TWILIO_TOKEN, &form).await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(TIMEOUT_MS),
        "an open breaker answers at once, not after the timeout ({:?})",
        started.elapsed()
    );

    all_webhooks_applied(&app).await;
    for n in 0..EACH {
        let wa_id = if n % 2 == 0 {
            format!("49151000000{n:02}")
        } else {
            format!("16315550{n:03}")
        };
        assert_eq!(conversations_of(&app, &wa_id).await.len(), 1, "{wa_id}");
    }
    let listed = app.graphql(PLUGINS_QUERY, json!({})).await;
    let stall = plugin(&listed, "stall");
    assert_eq!(stall["lastError"]["code"], "plugin_timeout", "{stall}");
    // The inbound breaker opened (a webhook was refused at once); the one that guards
    // sends and `health` only saw the failures, never opened by them.
    assert_eq!(stall["health"], "DEGRADED", "{stall}");
    assert_eq!(stall["breaker"], "CLOSED", "{stall}");
    assert!(
        stall["rejected"].as_i64().unwrap_or_default() > 0,
        "{stall}"
    );
    assert_eq!(plugin(&listed, "twilio")["health"], "HEALTHY");
}

/// A fake order system: `A-10023` (an order of `CUSTOMER`) is in transit, `X-40404`
/// unknown, and the customer `LATEST_ORDER_CUSTOMER` has one recent order; anyone else
/// has none.
async fn fake_orders(plugins: &Plugins) -> (MockServer, PathBuf) {
    let shop = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orders/A-10023"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": {
            "number": "A-10023", "fulfillment_status": "in_transit",
            "shipping": {"carrier": "DHL", "tracking_number": "JJD000", "estimated_delivery": "2025-06-02"}
        }})))
        .mount(&shop)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders/X-40404"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&shop)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("customer_whatsapp", LATEST_ORDER_CUSTOMER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [
            {"number": "B-77881", "fulfillment_status": "awaiting_pickup"}
        ]})))
        .mount(&shop)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("customer_whatsapp", CUSTOMER))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [
            {"number": "A-10023", "fulfillment_status": "in_transit"}
        ]})))
        .mount(&shop)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": []})))
        .mount(&shop)
        .await;
    let manifest = plugins.manifest(
        "orders-http",
        "order-connector@0.1",
        &dist("orders-http"),
        &format!(
            "allowed_hosts = [\"{uri}\"]\n[settings]\nbase_url = \"{uri}\"\n\
             order_path = \"/orders/{{order_id}}\"\n\
             recent_path = \"/orders?customer_whatsapp={{wa_id}}&limit={{limit}}\"\n\
             order_result_path = \"/order\"\nlist_result_path = \"/orders\"\n\
             [settings.fields]\nid = \"number\"\nstatus = \"fulfillment_status\"\n\
             eta = \"shipping.estimated_delivery\"\ncarrier = \"shipping.carrier\"\n\
             tracking_number = \"shipping.tracking_number\"\n\
             [settings.status_map]\nin_transit = \"shipped\"\nawaiting_pickup = \"processing\"\n",
            uri = shop.uri()
        ),
    );
    (shop, manifest)
}

const LATEST_ORDER_CUSTOMER: &str = "5511987654321";

/// Configuration naming the CRM and order connectors, loaded from `manifests`.
fn connector_config(manifests: &[&Path]) -> String {
    format!("[plugins]\nmanifests = {manifests:?}\ncrm = \"crm-http\"\norders = \"orders-http\"\n")
}

const CASE_QUERY: &str = r#"query($id: ID!) { conversation(id: $id) {
    status priority review team { name }
    contact { vip vipMarked crmFetchedAt crmProfile { name tier vip } }
    messages(first: 20) { edges { node { direction text } } }
} }"#;

async fn case(app: &TestApp, id: &str) -> Value {
    let answer = app.graphql(CASE_QUERY, json!({ "id": id })).await;
    let case = answer["data"]["conversation"].clone();
    assert!(case.is_object(), "{answer}");
    case
}

fn outbound_texts(case: &Value) -> Vec<String> {
    case["messages"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["node"]["direction"] == "OUTBOUND")
        .filter_map(|e| e["node"]["text"].as_str().map(str::to_owned))
        .collect()
}

fn event<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:?}"))
}

async fn a_new_case_is_enriched_from_the_crm_and_the_vip_is_routed_as_one(backend: Backend) {
    let plugins = Plugins::new().await;
    let (crm, crm_manifest) = fake_crm(&plugins).await;
    let Some(app) = spawn_app_with(backend, &connector_config(&[&crm_manifest])).await else {
        return;
    };
    let id = customer_writes(
        &app,
        CUSTOMER,
        "wamid.vip1",
        "hello, I need help with my account",
    )
    .await;
    let first = case(&app, &id).await;
    assert_eq!(first["contact"]["vip"], true, "{first}");
    assert_eq!(first["contact"]["vipMarked"], false, "{first}");
    assert_eq!(
        first["contact"]["crmProfile"]["name"], "Ana Souza",
        "{first}"
    );
    assert_eq!(first["contact"]["crmProfile"]["tier"], "gold", "{first}");
    assert!(first["contact"]["crmFetchedAt"].is_string(), "{first}");
    // The "vip customer" rule saw the CRM's answer when the case was triaged.
    assert_eq!(first["priority"], "HIGH", "{first}");
    let events = events_of(&app, &id).await;
    let enriched = event(&events, "contact_enriched");
    assert_eq!(enriched["data"]["vip"], true, "{enriched}");
    assert_eq!(enriched["actor"], "automation");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    let at = |k: &str| kinds.iter().position(|x| *x == k);
    assert!(at("contact_enriched") < at("triaged"), "{kinds:?}");

    // A second message on the same case does not ask again.
    customer_writes(&app, CUSTOMER, "wamid.vip2", "are you there?").await;
    let asked = crm.received_requests().await.unwrap_or_default().len();
    assert_eq!(asked, 1, "the CRM is asked once per new case");

    // Spam from a new number is set aside without asking the CRM.
    let timestamp = app.clock.now() / 1_000_000;
    let spam = "CONGRATULATIONS!!! You won a FREE iPhone 15. Click here to claim now: \
                bit.ly/xyz123 expires today";
    let response = app
        .post_webhook(&text_webhook(
            "4915199999999",
            "wamid.spam1",
            spam,
            timestamp,
        ))
        .await;
    assert_eq!(response.status(), 200);
    all_webhooks_applied(&app).await;
    assert!(conversations_of(&app, "4915199999999").await.is_empty());
    let asked = crm.received_requests().await.unwrap_or_default().len();
    assert_eq!(asked, 1, "spam costs no CRM call");
}

async fn a_crm_that_is_down_stops_automation_and_leaves_the_case_with_a_human(backend: Backend) {
    let plugins = Plugins::new().await;
    let crm = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&crm)
        .await;
    let crm_manifest = plugins.manifest(
        "crm-http",
        "crm-connector@0.1",
        &dist("crm-http"),
        &format!(
            "allowed_hosts = [\"{uri}\"]\n[settings]\nbase_url = \"{uri}\"\n\
             lookup_by_wa_id = \"/customers?whatsapp={{wa_id}}\"\n",
            uri = crm.uri()
        ),
    );
    let (shop, orders_manifest) = fake_orders(&plugins).await;
    let config = connector_config(&[&crm_manifest, &orders_manifest]);
    let Some(app) = spawn_app_with(backend, &config).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.down1", "Where is my order A-10023?").await;
    let events = events_of(&app, &id).await;
    let failed = event(&events, "enrichment_failed");
    assert_eq!(failed["data"]["connector"], "CRM", "{failed}");
    assert_eq!(failed["data"]["automation_stopped"], true, "{failed}");
    let reason = failed["data"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("CRM unavailable"), "{reason}");
    let stuck = case(&app, &id).await;
    assert_eq!(stuck["review"], "HUMAN", "{stuck}");
    assert_eq!(stuck["contact"]["crmProfile"], Value::Null, "{stuck}");
    // Intake and triage went on; the order system was never asked, nothing was sent.
    assert!(
        event_kinds_of(&app, &id)
            .await
            .contains(&"triaged".to_owned())
    );
    all_webhooks_applied(&app).await;
    assert!(
        shop.received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert!(outbound_texts(&stuck).is_empty(), "{stuck}");
    assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 0);
}

async fn an_order_question_is_answered_from_the_order_system_or_handed_to_a_human(
    backend: Backend,
) {
    let plugins = Plugins::new().await;
    let (shop, orders_manifest) = fake_orders(&plugins).await;
    let config =
        format!("[plugins]\nmanifests = [{orders_manifest:?}]\norders = \"orders-http\"\n");
    let Some(app) = spawn_app_with(backend, &config).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;

    // An order id in the message: the answer names status, ETA and tracking, with the
    // order id masked, and the case waits on the customer.
    let id = customer_writes(
        &app,
        CUSTOMER,
        "wamid.ord1",
        "where tf is my order A-10023??",
    )
    .await;
    let answered = eventually_some("the order question is answered", || {
        let (app, id) = (&app, &id);
        async move {
            let case = case(app, id).await;
            (!outbound_texts(&case).is_empty()).then_some(case)
        }
    })
    .await;
    assert_eq!(
        outbound_texts(&answered),
        [
            "Your order ****0023 has shipped. Estimated delivery: 2025-06-02. \
          Tracking: DHL JJD000. Reply here if you need anything else."
        ]
    );
    assert_eq!(answered["status"], "PENDING", "{answered}");
    let events = events_of(&app, &id).await;
    let replied = event(&events, "automation_replied");
    assert_eq!(replied["data"]["order"], "****0023", "{replied}");
    assert_eq!(replied["data"]["status"], "shipped", "{replied}");
    assert_eq!(replied["actor"], "automation");
    eventually("the answer went out through the Graph API", || async {
        sends.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;

    // No id, but a known customer: their latest order answers.
    let id = customer_writes(
        &app,
        LATEST_ORDER_CUSTOMER,
        "wamid.ord2",
        "where is my order?",
    )
    .await;
    let answered = eventually_some("the latest order answers", || {
        let (app, id) = (&app, &id);
        async move {
            let case = case(app, id).await;
            outbound_texts(&case).into_iter().next()
        }
    })
    .await;
    assert!(
        answered.starts_with("Your order ****7881 is being prepared"),
        "{answered}"
    );

    // Someone else's order: the order system is never asked about it, nothing is sent,
    // a human takes over with what was tried.
    let stranger = "447700900123";
    let id = customer_writes(&app, stranger, "wamid.ord3", "where is my order A-10023").await;
    let failed = eventually_some("the automation gives the case to a human", || {
        let (app, id) = (&app, &id);
        async move {
            let events = events_of(app, id).await;
            events
                .into_iter()
                .find(|e| e["kind"] == "automation_failed")
        }
    })
    .await;
    assert_eq!(
        failed["data"]["tried"],
        json!(["order ****0023: not among the customer's orders"]),
        "{failed}"
    );
    let handed = case(&app, &id).await;
    assert_eq!(handed["review"], "HUMAN", "{handed}");
    assert!(outbound_texts(&handed).is_empty(), "{handed}");
    assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 2);
    let asked_by_id = shop
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/orders/A-10023")
        .count();
    assert_eq!(
        asked_by_id, 1,
        "only the owner's question looked the order up"
    );
}

on_both_databases!(
    twilio_webhooks_are_verified_stored_once_and_open_a_conversation,
    replies_on_a_twilio_channel_go_out_through_the_plugin,
    a_new_case_is_enriched_from_the_crm_and_the_vip_is_routed_as_one,
    a_crm_that_is_down_stops_automation_and_leaves_the_case_with_a_human,
    an_order_question_is_answered_from_the_order_system_or_handed_to_a_human,
    an_automated_answer_across_a_boundary_waits_for_approval,
);

/// The approval gate on the automation path: with a boundary over order answers, the
/// order system's answer is held for an agent; approved, it goes out once.
async fn an_automated_answer_across_a_boundary_waits_for_approval(backend: Backend) {
    let plugins = Plugins::new().await;
    let (_shop, orders_manifest) = fake_orders(&plugins).await;
    let approvals = plugins.dir.path().join("approvals.toml");
    std::fs::write(
        &approvals,
        "[[boundary]]\nname = \"order_answers\"\nwhy = \"Order answers are checked during the pilot.\"\nintents = [\"order_tracking\"]\norigins = [\"automation\"]\napprover = \"agent\"\n",
    )
    .unwrap();
    let config = format!(
        "[plugins]\nmanifests = [{orders_manifest:?}]\norders = \"orders-http\"\n[routing]\napprovals_file = {approvals:?}\n"
    );
    let Some(app) = spawn_app_with(backend, &config).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.gate1", "where is my order A-10023?").await;
    wait_for_kind(&app, &id, "message_held", 1).await;
    let queue = app
        .graphql(
            "query($c: ID) { heldMessages(conversationId: $c) { id origin approver boundaries reasons originalText } }",
            json!({ "c": id }),
        )
        .await;
    let item = queue["data"]["heldMessages"][0].clone();
    assert_eq!(item["origin"], "automation", "{queue}");
    assert_eq!(item["approver"], "AGENT");
    assert_eq!(item["boundaries"], json!(["order_answers"]));
    assert_eq!(
        item["reasons"],
        json!(["Order answers are checked during the pilot."])
    );
    assert!(
        item["originalText"]
            .as_str()
            .unwrap()
            .starts_with("Your order ****0023 has shipped"),
        "{item}"
    );
    settle().await;
    assert_eq!(
        sends.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "held, not sent"
    );

    let agent = app.token(parley::domain::Role::Agent, None).await;
    let approved = app
        .graphql_as(
            &agent,
            "mutation($id: ID!) { approveMessage(id: $id) { status decidedBy } }",
            json!({ "id": item["id"] }),
        )
        .await;
    assert_eq!(
        approved["data"]["approveMessage"]["status"], "APPROVED",
        "{approved}"
    );
    eventually("the approved answer went out", || async {
        sends.load(std::sync::atomic::Ordering::SeqCst) == 1
    })
    .await;
}

/// Runs `parley plugin check MANIFEST` with `env`; answers the exit code and the report.
fn plugin_check(manifest: &Path, env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["plugin", "check"])
        .arg(manifest)
        .envs(env.iter().copied())
        .output()
        .expect("parley runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

#[test]
fn plugin_check_passes_a_fit_plugin_and_explains_an_unfit_one() {
    let shipped = dist("crm-http").with_extension("toml");
    let token = [("PARLEY_PLUGINS__SECRETS__CRM_HTTP__API_TOKEN", "t0ken")];
    let (code, report) = plugin_check(&shipped, &token);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["passed"], true);
    assert_eq!(report["world"], "crm-connector@0.1");
    assert_eq!(report["smoke_call"]["ok"], true);

    let (code, report) = plugin_check(&shipped, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["missing_secrets"], json!(["api_token"]));

    let dir = tempfile::tempdir().unwrap();
    let misfit = dir.path().join("plugin.toml");
    std::fs::write(
        &misfit,
        format!(
            "id = \"misfit\"\nversion = \"1\"\nworld = \"order-connector@0.1\"\ncomponent = {:?}\n",
            dist("crm-http")
        ),
    )
    .unwrap();
    let (code, report) = plugin_check(&misfit, &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["error"]["code"], "plugin_wrong_world", "{report}");
}
