//! Notifications through the real server: an agent mentioned in a note (`@Name`) is
//! told through the `notifications` subscription, and so is a member of a watcher team
//! when a watched case is escalated; nobody else is.

use crate::graphql::{Socket, next_message, open_socket, send_frame};
use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(mentions_and_watched_cases_reach_the_agents_they_concern);

const SUBSCRIBE: &str = "subscription($a: ID) { notifications(afterEventId: $a) { kind conversationId event { id kind } } }";

/// Subscribes to `token`'s agent's notifications after event `after` (what happens after
/// it reaches the subscriber even if the subscription starts late).
async fn notifications_of(app: &TestApp, token: &str, after: &str) -> Socket {
    let mut socket = open_socket(app).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    let ack = next_message(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(
        ack.as_ref().map(|m| m["type"].clone()),
        Some(json!("connection_ack")),
        "{ack:?}"
    );
    send_frame(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIBE, "variables": { "a": after } } }),
    )
    .await;
    socket
}

/// The notifications that came within `wait`.
async fn received(socket: &mut Socket, wait: Duration) -> Vec<Value> {
    let mut all = Vec::new();
    while let Some(message) = next_message(socket, wait).await {
        assert_eq!(message["type"], "next", "{message}");
        all.push(message["payload"]["data"]["notifications"].clone());
    }
    all
}

async fn add_note(app: &TestApp, conversation: &str, body: &str) -> Value {
    let answer = app
        .graphql(
            "mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id } }",
            json!({ "c": conversation, "b": body }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    answer
}

async fn mentions_and_watched_cases_reach_the_agents_they_concern(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let teams = app.graphql("{ teams { id name } }", json!({})).await;
    let finance = teams["data"]["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "finance")
        .unwrap_or_else(|| panic!("no finance team: {teams}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bo = create_agent(&app, "Bo Lindqvist", Some(&finance)).await;
    let ana = create_agent(&app, "Ana", None).await;
    let bo_token = app.token(Role::Agent, bo.parse().ok()).await;
    let ana_token = app.token(Role::Agent, ana.parse().ok()).await;

    // A fraud report: trust and safety own it, finance watches it.
    let watched = customer_writes(
        &app,
        "447700900601",
        "wamid.N1",
        "I see a card payment to your shop that I never made, someone used my card",
    )
    .await;
    let case = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { watcherTeams } }",
            json!({ "id": watched }),
        )
        .await;
    assert!(
        case["data"]["conversation"]["watcherTeams"]
            .as_array()
            .unwrap()
            .contains(&json!("finance")),
        "{case}"
    );
    let other = customer_writes(&app, "447700900602", "wamid.N2", "where is my parcel?").await;

    let last = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { events(first: 50) { id } } }",
            json!({ "id": other }),
        )
        .await;
    let last = last["data"]["conversation"]["events"]
        .as_array()
        .and_then(|e| e.last())
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no events: {last}"));
    let mut bo_socket = notifications_of(&app, &bo_token, &last).await;
    let mut ana_socket = notifications_of(&app, &ana_token, &last).await;
    let note = add_note(
        &app,
        &other,
        "@bo lindqvist can you check the refund? @Ana too",
    )
    .await;
    add_note(&app, &other, "no mention here, bo lindqvist").await;
    let escalated = app
        .graphql(
            "mutation($c: ID!, $r: String!) { escalateConversation(conversationId: $c, reason: $r) { id } }",
            json!({ "c": watched, "r": "the customer disputes a second charge" }),
        )
        .await;
    assert!(escalated["errors"].is_null(), "{escalated}");

    let to_bo = received(&mut bo_socket, Duration::from_secs(3)).await;
    let kinds: Vec<(&str, &str)> = to_bo
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["conversationId"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("MENTIONED", other.as_str())),
        "Bo is told of the mention: {to_bo:?}"
    );
    assert!(
        kinds.contains(&("WATCHED_ESCALATED", watched.as_str())),
        "finance watches the fraud case: {to_bo:?}"
    );
    assert_eq!(
        kinds.iter().filter(|(k, _)| *k == "MENTIONED").count(),
        1,
        "one mention, not the note without @: {to_bo:?}"
    );

    // Ana is mentioned too, but watches nothing.
    let to_ana = received(&mut ana_socket, Duration::from_secs(1)).await;
    let kinds: Vec<&str> = to_ana.iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["MENTIONED"], "{to_ana:?}");

    // The note's event names whom it mentions.
    let events = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { events(first: 50) { kind data { ... on NoteAddedEventData { mentionedAgentIds } } } } }",
            json!({ "id": other }),
        )
        .await;
    let mentioned: Vec<Value> = events["data"]["conversation"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "note_added")
        .map(|e| e["data"]["mentionedAgentIds"].clone())
        .collect();
    assert_eq!(mentioned[0], json!([bo, ana]), "{note} {events}");
    assert_eq!(mentioned[1], json!([]));
}
