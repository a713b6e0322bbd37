//! Two nodes of a cluster in one process: one PostgreSQL database, the machine's Redis (a
//! key prefix of their own per test) or a private `redis-server` the test kills and
//! starts again. Subscriptions, pacing, presence and invalidations across the nodes.

use crate::graphql::{Socket, next_message, open_socket, send_frame};
use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

/// The `[cluster]` section of a node called `node` on `redis_url`, with `prefix` keys.
fn cluster_toml(redis_url: &str, prefix: &str, node: &str) -> String {
    format!(
        "[cluster]\nredis_url = \"{redis_url}\"\nnode_id = \"{node}\"\nkey_prefix = \"{prefix}\"\n"
    )
}

fn unique_prefix() -> String {
    format!("parley-test-{}", hex::encode(rand::random::<[u8; 6]>()))
}

/// Two nodes on one fresh PostgreSQL database and `redis_url`; `extra` joins both
/// configurations. `None` when PostgreSQL is unreachable outside CI.
async fn two_nodes(redis_url: &str, extra: &str) -> Option<(TestApp, TestApp)> {
    let prefix = unique_prefix();
    let a = spawn_app_with(
        Backend::Postgres,
        &format!("{extra}{}", cluster_toml(redis_url, &prefix, "node-a")),
    )
    .await?;
    let b = a
        .spawn_node_beside(&format!(
            "{extra}{}",
            cluster_toml(redis_url, &prefix, "node-b")
        ))
        .await;
    Some((a, b))
}

/// A subscription to one conversation's events on `app`, as `token`.
async fn subscribe_events(
    app: &TestApp,
    token: &str,
    conversation: &str,
    after: Option<&str>,
) -> Socket {
    let mut socket = open_socket(app).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    let ack = next_message(&mut socket, Duration::from_secs(15)).await;
    assert_eq!(
        ack.as_ref().map(|m| &m["type"]),
        Some(&json!("connection_ack")),
        "{ack:?}"
    );
    send_frame(
        &mut socket,
        json!({
            "id": "1",
            "type": "subscribe",
            "payload": {
                "query": "subscription($c: ID, $a: ID) { conversationEvents(conversationId: $c, afterEventId: $a) { id kind conversationId data: dataJson } }",
                "variables": { "c": conversation, "a": after }
            }
        }),
    )
    .await;
    socket
}

/// The next event a subscription delivers, or `None` after `wait`.
async fn next_event(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let message = next_message(socket, wait).await?;
    assert_eq!(message["type"], "next", "{message}");
    Some(message["payload"]["data"]["conversationEvents"].clone())
}

async fn add_note(app: &TestApp, conversation: &str, body: &str) -> Value {
    let note = app
        .graphql(
            "mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id } }",
            json!({ "c": conversation, "b": body }),
        )
        .await;
    assert!(note["data"]["addNote"]["id"].is_string(), "{note}");
    note
}

/// Adds notes on `writer` until one reaches the subscription (which then is live);
/// returns the events seen so far.
async fn until_live(writer: &TestApp, conversation: &str, socket: &mut Socket) -> Vec<Value> {
    for attempt in 0..50 {
        add_note(writer, conversation, &format!("probe {attempt}")).await;
        if let Some(event) = next_event(socket, Duration::from_millis(400)).await {
            return vec![event];
        }
    }
    panic!("the subscription never delivered an event");
}

fn id_of_event(event: &Value) -> i64 {
    event["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("an event without id: {event}"))
}

/// The ids of a conversation's logged events above `above`, oldest first.
async fn logged_ids(app: &TestApp, conversation: &str, above: i64) -> Vec<i64> {
    events_of_with_ids(app, conversation)
        .await
        .iter()
        .filter_map(|(id, _)| id.parse::<i64>().ok())
        .filter(|id| *id > above)
        .collect()
}

/// Reads events until every event logged above `above` was delivered, then a little
/// longer (to catch a duplicate); checks each event came once and none is missing.
async fn collect_logged(
    app: &TestApp,
    conversation: &str,
    socket: &mut Socket,
    mut seen: Vec<Value>,
    above: i64,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let logged = logged_ids(app, conversation, above).await;
        let delivered: Vec<i64> = seen.iter().map(id_of_event).collect();
        if logged.iter().all(|id| delivered.contains(id)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "logged {logged:?}, delivered only {delivered:?}"
        );
        if let Some(event) = next_event(socket, Duration::from_millis(500)).await {
            seen.push(event);
        }
    }
    while let Some(event) = next_event(socket, Duration::from_millis(700)).await {
        seen.push(event);
    }
    let mut ids: Vec<i64> = seen.iter().map(id_of_event).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "an event came twice: {seen:?}");
    assert_eq!(
        ids,
        logged_ids(app, conversation, above).await,
        "delivered = logged"
    );
    seen
}

fn in_log_order(events: &[Value]) -> bool {
    events
        .windows(2)
        .all(|w| id_of_event(&w[0]) < id_of_event(&w[1]))
}

async fn events_reach_subscribers_on_the_other_node_once_and_in_order() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "").await else {
        return;
    };
    let conversation = customer_writes(&a, "447700900301", "wamid.CB1", "Hello").await;
    let mut socket = subscribe_events(&b, &b.admin_token, &conversation, None).await;
    let seen = until_live(&a, &conversation, &mut socket).await;
    let above = id_of_event(&seen[0]) - 1;
    for n in 0..20 {
        add_note(&a, &conversation, &format!("note {n}")).await;
    }
    let seen = collect_logged(&a, &conversation, &mut socket, seen, above).await;
    assert!(in_log_order(&seen), "in commit order: {seen:?}");
    assert!(seen.len() >= 21, "{seen:?}");
    assert!(
        seen.iter()
            .all(|e| e["conversationId"] == conversation.as_str()),
        "only the watched conversation: {seen:?}"
    );
}

async fn a_subscriber_resumes_after_the_last_event_it_saw(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let conversation = customer_writes(&app, "447700900302", "wamid.CB2", "Hello").await;
    for n in 0..3 {
        add_note(&app, &conversation, &format!("before {n}")).await;
    }
    let last_seen = first_note(&app, &conversation).await;

    // The client saw up to the first note and reconnects.
    let after = last_seen.to_string();
    let mut socket = subscribe_events(&app, &app.admin_token, &conversation, Some(&after)).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(
            next_event(&mut socket, Duration::from_secs(15))
                .await
                .expect("a logged event"),
        );
    }
    assert_eq!(
        seen.iter().map(id_of_event).collect::<Vec<_>>(),
        logged_ids(&app, &conversation, last_seen).await,
        "the two notes after the last one seen: {seen:?}"
    );
    // Then the live ones, without the logged ones again.
    add_note(&app, &conversation, "after").await;
    let seen = collect_logged(&app, &conversation, &mut socket, seen, last_seen).await;
    assert!(in_log_order(&seen), "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");

    // An id that is not an event id is refused with a typed error.
    let mut bad = open_socket(&app).await;
    send_frame(&mut bad, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", app.admin_token) } })).await;
    next_message(&mut bad, Duration::from_secs(15)).await;
    send_frame(
        &mut bad,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { conversationEvents(afterEventId: \"last\") { id } }" } }),
    )
    .await;
    let refused = next_message(&mut bad, Duration::from_secs(15))
        .await
        .expect("an answer");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "invalid_input",
        "{refused}"
    );
}

/// The id of a conversation's first `note_added` event.
async fn first_note(app: &TestApp, conversation: &str) -> i64 {
    events_of_with_ids(app, conversation)
        .await
        .iter()
        .find(|(_, e)| e["kind"] == "note_added")
        .and_then(|(id, _)| id.parse().ok())
        .expect("a note is logged")
}

/// A conversation's events with their ids, oldest first.
async fn events_of_with_ids(app: &TestApp, conversation: &str) -> Vec<(String, Value)> {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { events(first: 100) { id kind data: dataJson } } }",
            json!({ "id": conversation }),
        )
        .await;
    answer["data"]["conversation"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events: {answer}"))
        .iter()
        .map(|e| (e["id"].as_str().unwrap_or_default().to_owned(), e.clone()))
        .collect()
}

async fn a_subscriber_on_another_node_resumes_from_its_last_event_id() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "").await else {
        return;
    };
    let conversation = customer_writes(&a, "447700900303", "wamid.CB3", "Hello").await;
    add_note(&a, &conversation, "seen").await;
    let last_seen = first_note(&a, &conversation).await;
    // Written on A while the client is away.
    add_note(&a, &conversation, "missed 1").await;
    add_note(&a, &conversation, "missed 2").await;
    let after = last_seen.to_string();
    let mut socket = subscribe_events(&b, &b.admin_token, &conversation, Some(&after)).await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(
            next_event(&mut socket, Duration::from_secs(15))
                .await
                .expect("a logged event"),
        );
    }
    add_note(&a, &conversation, "live").await;
    let seen = collect_logged(&a, &conversation, &mut socket, seen, last_seen).await;
    assert!(in_log_order(&seen), "{seen:?}");
    assert_eq!(seen.len(), 3, "two missed, one live: {seen:?}");
}

/// Records when each send reached the fake Graph API: real time, the service clock, and
/// the recipient.
struct Recorded {
    sends: Arc<Mutex<Vec<(Instant, i64, String)>>>,
    clock: Arc<parley::clock::ManualClock>,
    accepted: SendsAccepted,
}

impl Respond for Recorded {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        use parley::clock::Clock;
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let to = body["to"].as_str().unwrap_or_default().to_owned();
        self.sends
            .lock()
            .unwrap()
            .push((Instant::now(), self.clock.now(), to));
        self.accepted.respond(request)
    }
}

async fn record_sends(app: &TestApp) -> Arc<Mutex<Vec<(Instant, i64, String)>>> {
    let sends = Arc::new(Mutex::new(Vec::new()));
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path(format!(
            "/v21.0/{PHONE_NUMBER_ID}/messages"
        )))
        .respond_with(Recorded {
            sends: sends.clone(),
            clock: app.clock.clone(),
            accepted: SendsAccepted(Default::default()),
        })
        .mount(&app.meta)
        .await;
    sends
}

const RATE: usize = 4;

async fn two_nodes_together_never_exceed_the_numbers_rate() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let pacing = format!(
        "[outbound]\nmessages_per_second = {RATE}\npair_interval_ms = 0\nconcurrency = 8\n"
    );
    let Some((a, b)) = two_nodes(&redis, &pacing).await else {
        return;
    };
    let sends = record_sends(&a).await;
    let mut conversations = Vec::new();
    for n in 0..16 {
        let wa_id = format!("4477009004{n:02}");
        conversations.push(customer_writes(&a, &wa_id, &format!("wamid.R{n}"), "Hi").await);
    }
    // Half the replies through each node, as fast as they come.
    let replies = conversations.iter().enumerate().map(|(n, c)| {
        let node = if n % 2 == 0 { &a } else { &b };
        async move { reply(node, c, "On it").await }
    });
    futures::future::join_all(replies).await;
    eventually("every reply is sent", || async {
        sends.lock().unwrap().len() >= 16
    })
    .await;

    let times: Vec<Instant> = sends.lock().unwrap().iter().map(|(at, _, _)| *at).collect();
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .filter(|t| t.duration_since(*start) < Duration::from_secs(1))
            .count();
        assert!(
            within <= RATE,
            "{within} sends within one second from send {i}: {times:?}"
        );
    }
}

async fn two_nodes_together_keep_the_pair_interval() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let pacing = "[outbound]\nmessages_per_second = 0\npair_burst = 1\npair_interval_ms = 6000\n";
    let Some((a, b)) = two_nodes(&redis, pacing).await else {
        return;
    };
    let sends = record_sends(&a).await;
    let conversation = customer_writes(&a, "447700900305", "wamid.P1", "Hi").await;
    // Replies through both nodes at once.
    reply(&a, &conversation, "one").await;
    reply(&b, &conversation, "two").await;
    reply(&a, &conversation, "three").await;
    for _ in 0..40 {
        if sends.lock().unwrap().len() >= 3 {
            break;
        }
        settle().await;
        a.clock.advance(Duration::from_secs(1));
    }
    let at: Vec<i64> = sends.lock().unwrap().iter().map(|(_, at, _)| *at).collect();
    assert_eq!(at.len(), 3, "every reply is sent: {at:?}");
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= 6_000_000,
            "two sends to one customer {} ms apart: {at:?}",
            (pair[1] - pair[0]) / 1000
        );
    }
}

async fn presence_on_one_node_blocks_a_colliding_reply_on_the_other() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "").await else {
        return;
    };
    a.meta_accepts_sends().await;
    let ana = create_agent(&a, "Ana", None).await;
    let bo = create_agent(&a, "Bo", None).await;
    let ana_token = a.token(Role::Agent, ana.parse().ok()).await;
    let bo_token = a.token(Role::Agent, bo.parse().ok()).await;
    let conversation = customer_writes(&a, "447700900306", "wamid.PR1", "Hi").await;
    let typing = a
        .graphql_as(
            &ana_token,
            "mutation($c: ID!) { setPresence(conversationId: $c, state: TYPING) { state } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(
        typing["data"]["setPresence"][0]["state"], "TYPING",
        "{typing}"
    );
    // Node B sees Ana typing...
    eventually("node B sees Ana typing", || async {
        let present = b
            .graphql(
                "query($c: ID!) { presence(conversationId: $c) { agentName state } }",
                json!({ "c": conversation }),
            )
            .await;
        present["data"]["presence"][0]["agentName"] == "Ana"
    })
    .await;
    // ...and refuses Bo's reply through it.
    let collision = b
        .graphql_as(
            &bo_token,
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"on it\") { id } }",
            json!({ "c": conversation }),
        )
        .await;
    assert_eq!(error_code(&collision), "collision", "{collision}");
    // Ana leaves: B lets Bo reply.
    a.graphql_as(
        &ana_token,
        "mutation($c: ID!) { setPresence(conversationId: $c) { state } }",
        json!({ "c": conversation }),
    )
    .await;
    eventually("node B sees Ana gone", || async {
        let present = b
            .graphql(
                "query($c: ID!) { presence(conversationId: $c) { agentName } }",
                json!({ "c": conversation }),
            )
            .await;
        present["data"]["presence"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })
    .await;
    let replied = b
        .graphql_as(
            &bo_token,
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"on it\") { id } }",
            json!({ "c": conversation }),
        )
        .await;
    assert!(replied["data"]["sendReply"]["id"].is_string(), "{replied}");
}

async fn a_block_and_a_reload_made_through_one_node_take_effect_on_the_other() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "").await else {
        return;
    };
    const BLOCKED: &str = "447700900307";
    let blocked = a
        .graphql(
            "mutation($w: String!) { blockContact(waId: $w, reason: \"abuse\") { waId } }",
            json!({ "w": BLOCKED }),
        )
        .await;
    assert!(blocked["errors"].is_null(), "{blocked}");
    eventually("node B blocks the contact too", || async {
        b.routing.noise.is_blocked(BLOCKED)
    })
    .await;

    a.clock.advance(Duration::from_secs(60));
    let reloaded = a
        .graphql("mutation { reloadRouting { loadedAt } }", json!({}))
        .await;
    assert!(reloaded["errors"].is_null(), "{reloaded}");
    let on_a = a.routing.engine.current().loaded_at;
    eventually("node B reads the policies again", || async {
        b.routing.engine.current().loaded_at == on_a
    })
    .await;
}

/// A private Redis on `port` that the test stops and starts again.
struct PrivateRedis {
    port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    fn start(port: u16) -> Option<Self> {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--bind",
                "127.0.0.1",
            ])
            .stdout(std::process::Stdio::null())
            .spawn();
        match child {
            Ok(child) => Some(Self { port, child }),
            Err(error) => {
                if std::env::var_os("CI").is_some() {
                    panic!("redis-server cannot be started and CI is set: {error}");
                }
                eprintln!("SKIPPED: redis-server cannot be started ({error})");
                None
            }
        }
    }

    async fn wait_ready(&self) {
        let url = self.url();
        eventually("the private Redis answers", || async {
            let Ok(client) = redis::Client::open(url.as_str()) else {
                return false;
            };
            let Ok(mut connection) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .is_ok()
        })
        .await;
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn while_redis_is_away_replies_go_out_and_subscribers_catch_up_when_it_returns() {
    // The machine's Redis must be there in CI, like every Redis test.
    if redis_url().await.is_none() {
        return;
    }
    let Some(mut redis) = PrivateRedis::start(free_port()) else {
        return;
    };
    redis.wait_ready().await;
    let Some((a, b)) = two_nodes(&redis.url(), "").await else {
        return;
    };
    let sends = record_sends(&a).await;
    let conversation = customer_writes(&a, "447700900308", "wamid.O1", "Hello").await;
    let mut socket = subscribe_events(&b, &b.admin_token, &conversation, None).await;
    let seen = until_live(&a, &conversation, &mut socket).await;
    let above = id_of_event(&seen[0]) - 1;

    redis.kill();
    // Written while Redis is away: stored, sent, and not lost for node B's subscriber.
    add_note(&a, &conversation, "outage 1").await;
    let replied = reply(&a, &conversation, "We are on it").await;
    message_reaches(&a, &conversation, replied["id"].as_str().unwrap(), "SENT").await;
    add_note(&a, &conversation, "outage 2").await;
    assert_eq!(
        sends.lock().unwrap().len(),
        1,
        "the reply went out without Redis"
    );
    assert!(metric(&a, "parley_cluster_redis_fallbacks_total").await >= 1.0);
    // Node B's subscribers still get every event meanwhile, from the database, whichever
    // node committed it, in the order of the log.
    add_note(&b, &conversation, "outage on b").await;
    let seen = collect_logged(&a, &conversation, &mut socket, seen, above).await;
    assert!(
        in_log_order(&seen),
        "in log order during the outage: {seen:?}"
    );

    let port = redis.port;
    drop(redis);
    let redis = PrivateRedis::start(port).expect("redis-server starts again");
    redis.wait_ready().await;
    add_note(&a, &conversation, "after").await;
    // Every logged event reaches B's subscriber once, in the order of the log.
    let seen = collect_logged(&a, &conversation, &mut socket, seen, above).await;
    assert!(in_log_order(&seen), "{seen:?}");
    assert!(
        seen.iter()
            .any(|e| e["kind"] == "message_out" || e["kind"] == "message_status"),
        "the reply's events are delivered too: {seen:?}"
    );
    assert_eq!(sends.lock().unwrap().len(), 1, "nothing was sent twice");
}

#[actix_rt::test]
async fn events_reach_subscribers_on_another_node_once_and_in_order() {
    events_reach_subscribers_on_the_other_node_once_and_in_order().await
}

#[actix_rt::test]
async fn a_subscriber_on_another_node_resumes_after_its_last_event_id() {
    a_subscriber_on_another_node_resumes_from_its_last_event_id().await
}

#[actix_rt::test]
async fn pacing_across_two_nodes_never_exceeds_the_numbers_rate() {
    two_nodes_together_never_exceed_the_numbers_rate().await
}

#[actix_rt::test]
async fn pacing_across_two_nodes_keeps_the_pair_interval() {
    two_nodes_together_keep_the_pair_interval().await
}

#[actix_rt::test]
async fn typing_seen_on_one_node_blocks_a_reply_through_the_other() {
    presence_on_one_node_blocks_a_colliding_reply_on_the_other().await
}

#[actix_rt::test]
async fn a_block_and_a_reload_take_effect_on_every_node() {
    a_block_and_a_reload_made_through_one_node_take_effect_on_the_other().await
}

#[actix_rt::test]
async fn redis_going_away_loses_nothing_and_subscriptions_catch_up() {
    while_redis_is_away_replies_go_out_and_subscribers_catch_up_when_it_returns().await
}

on_both_databases!(a_subscriber_resumes_after_the_last_event_it_saw);

async fn a_node_whose_redis_is_unreachable_starts_and_sends_with_its_share() {
    // The machine's Redis must be there in CI, like every Redis test.
    if redis_url().await.is_none() {
        return;
    }
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let pacing = "[outbound]\nmessages_per_second = 10\npair_burst = 1\npair_interval_ms = 6000\n";
    let Some(app) = spawn_app_with(
        Backend::Postgres,
        &format!(
            "{pacing}{}",
            cluster_toml(&closed, &unique_prefix(), "alone")
        ),
    )
    .await
    else {
        return;
    };
    let sends = record_sends(&app).await;
    let conversation = customer_writes(&app, "447700900309", "wamid.U1", "Hello").await;
    let first = reply(&app, &conversation, "one").await;
    message_reaches(&app, &conversation, first["id"].as_str().unwrap(), "SENT").await;
    // The pair interval still holds without Redis (this node's share of it).
    let second = reply(&app, &conversation, "two").await;
    settle().await;
    assert_eq!(
        sends.lock().unwrap().len(),
        1,
        "the second reply waits its turn"
    );
    for _ in 0..20 {
        if sends.lock().unwrap().len() >= 2 {
            break;
        }
        app.clock.advance(Duration::from_secs(1));
        settle().await;
    }
    message_reaches(&app, &conversation, second["id"].as_str().unwrap(), "SENT").await;
    let at: Vec<i64> = sends.lock().unwrap().iter().map(|(_, at, _)| *at).collect();
    assert!(at[1] - at[0] >= 6_000_000, "{at:?}");
    // (Metrics are per process, shared by the tests running beside this one.)
    assert!(metric(&app, "parley_cluster_redis_fallbacks_total").await >= 2.0);
}

#[actix_rt::test]
async fn a_node_starts_and_sends_while_its_redis_is_unreachable() {
    a_node_whose_redis_is_unreachable_starts_and_sends_with_its_share().await
}

async fn presence_set_on_one_node_reaches_a_presence_subscriber_on_the_other() {
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "").await else {
        return;
    };
    let ana = create_agent(&a, "Ana", None).await;
    let ana_token = a.token(Role::Agent, ana.parse().ok()).await;
    let conversation = customer_writes(&a, "447700900310", "wamid.PS1", "Hi").await;
    let mut socket = open_socket(&b).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", b.admin_token) } }),
    )
    .await;
    next_message(&mut socket, Duration::from_secs(15)).await;
    send_frame(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription($c: ID!) { conversationPresence(conversationId: $c) { present { agentName state } } }",
            "variables": { "c": conversation } } }),
    )
    .await;
    // The protocol does not confirm a subscription: report until a change comes through.
    let mut update = None;
    for _ in 0..30 {
        a.graphql_as(
            &ana_token,
            "mutation($c: ID!) { setPresence(conversationId: $c, state: VIEWING) { state } }",
            json!({ "c": conversation }),
        )
        .await;
        if let Some(message) = next_message(&mut socket, Duration::from_millis(400)).await {
            update = Some(message);
            break;
        }
    }
    let update = update.expect("a presence change set on node A reaches node B's subscriber");
    assert_eq!(update["type"], "next", "{update}");
    let present = &update["payload"]["data"]["conversationPresence"]["present"];
    assert_eq!(present[0]["agentName"], "Ana", "{update}");
    assert_eq!(present[0]["state"], "VIEWING", "{update}");
}

#[actix_rt::test]
async fn a_presence_subscriber_on_one_node_sees_changes_made_on_the_other() {
    presence_set_on_one_node_reaches_a_presence_subscriber_on_the_other().await
}

/// A dead letter re-driven through the node that does not own its case: the owner's actor
/// applies it (a customer message is otherwise applied only on its owner, from the inbox).
#[actix_rt::test]
async fn a_dead_letter_redriven_through_another_node_is_applied_by_the_owner() {
    use parley::clock::Clock;
    use sea_orm::ConnectionTrait;
    let Some(redis) = redis_url().await else {
        return;
    };
    let Some((a, b)) = two_nodes(&redis, "[conversations]\nmax_apply_attempts = 2\n").await else {
        return;
    };
    let customer = "447700900777";
    // The node that does not own the customer's shard.
    let key = parley::domain::ConversationKey {
        channel_id: CHANNEL.into(),
        phone_number_id: PHONE_NUMBER_ID.into(),
        wa_id: customer.into(),
    };
    // Once the two nodes have shared the shards out (node B joined after node A took
    // them all, so for a few heartbeats some are between owners).
    let owner = eventually_some("the shards are shared between both nodes", || async {
        let status = a
            .graphql(
                "{ clusterStatus { shards nodes { nodeId shards { shard expired } } } }",
                json!({}),
            )
            .await;
        let status = &status["data"]["clusterStatus"];
        let shards = status["shards"].as_u64()? as u32;
        let held = |node: &Value| -> Vec<i64> {
            node["shards"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter(|s| s["expired"] == false)
                        .filter_map(|s| s["shard"].as_i64())
                        .collect()
                })
                .unwrap_or_default()
        };
        let nodes = status["nodes"].as_array()?;
        let balanced = nodes.len() == 2
            && nodes.iter().all(|n| !held(n).is_empty())
            && nodes.iter().map(|n| held(n).len()).sum::<usize>() == shards as usize;
        if !balanced {
            return None;
        }
        let shard = i64::from(parley::cluster::shard_of(&key, shards));
        nodes
            .iter()
            .find(|n| held(n).contains(&shard))
            .map(|n| n["nodeId"].as_str().unwrap_or_default().to_owned())
    })
    .await;
    let db = a.store.db();
    for sql in [
        "CREATE OR REPLACE FUNCTION redrive_fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER redrive_fault BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION redrive_fault()",
    ] {
        db.execute_unprepared(sql).await.expect("fault installed");
    }
    let stamped = a.clock.now() / 1_000_000;
    let body = text_webhook(customer, "wamid.DLR1", "my parcel is lost", stamped);
    assert_eq!(a.post_webhook(&body).await.status(), 200);
    eventually("the message is a dead letter", || async {
        a.count("dead_letters").await == 1
    })
    .await;
    db.execute_unprepared("DROP TRIGGER redrive_fault ON messages")
        .await
        .expect("fault removed");

    let other = if owner == "node-a" { &b } else { &a };

    let letters = other
        .graphql("{ deadLetters { id source } }", json!({}))
        .await;
    let id = letters["data"]["deadLetters"][0]["id"].clone();
    let answer = other
        .graphql(
            "mutation($id: ID!) { redriveDeadLetter(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        answer["data"]["redriveDeadLetter"],
        "message",
        "re-driven through {} while {owner} owns the case: {answer}",
        if owner == "node-a" {
            "node-b"
        } else {
            "node-a"
        }
    );
    conversation_holding(other, customer, "wamid.DLR1").await;
    assert_eq!(a.count("dead_letters").await, 0);
}
