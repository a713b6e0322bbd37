//! Macros through the real server: written with checked variables, applied to a case in
//! the contact's language with its actions as one change, sent once, and counted.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

const SPANISH_CUSTOMER: &str = "34600111222";
const CUSTOMER: &str = "16315559876";

const CREATE: &str = "mutation($i: MacroInput!) { createMacro(input: $i) { id name body usageCount lastUsedAt variants { language body } actions { status priority note } } }";
const APPLY: &str = "mutation($c: ID!, $m: ID!) { applyMacro(conversationId: $c, macroId: $m) { held outcome message { id text deliveryStatus } conversation { id status priority assignee { id } } } }";

on_both_databases!(
    a_macro_is_sent_in_the_contacts_language_with_its_actions_as_one_change,
    a_macro_with_an_unknown_variable_is_refused_when_written,
    a_missing_value_sends_nothing_and_changes_nothing,
    macros_are_listed_for_a_team_updated_and_deleted,
    a_macro_that_tags_the_case_has_it_routed_again,
);

async fn create_macro(app: &TestApp, input: Value) -> Value {
    let answer = app.graphql(CREATE, json!({ "i": input })).await;
    let created = answer["data"]["createMacro"].clone();
    assert!(created.is_object(), "createMacro refused: {answer}");
    created
}

/// The event log with each event's time: events written by one change share it.
async fn timed_events(app: &TestApp, id: &str) -> Vec<Value> {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { events(first: 100) { kind at: createdAt data: dataJson } } }",
            json!({ "id": id }),
        )
        .await;
    answer["data"]["conversation"]["events"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no events: {answer}"))
}

/// The case's language and priority.
async fn case(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { language priority } }",
            json!({ "id": id }),
        )
        .await;
    answer["data"]["conversation"].clone()
}

async fn macro_usage(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql("{ macros { id usageCount lastUsedAt } }", json!({}))
        .await;
    answer["data"]["macros"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["id"] == id).cloned())
        .unwrap_or_else(|| panic!("macro {id} not listed: {answer}"))
}

async fn a_macro_is_sent_in_the_contacts_language_with_its_actions_as_one_change(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let agent = create_agent(&app, "Lucía Romero", None).await;
    let created = create_macro(
        &app,
        json!({
            "name": "Refund started",
            "body": "Hi {{contact.name}}, {{agent.name}} here: your refund has started.",
            "variants": [{ "language": "es", "body": "Hola {{contact.name}}, soy {{agent.name}}: tu reembolso está en marcha." }],
            "actions": { "status": "PENDING", "priority": "HIGH", "note": "Refund promised by macro" },
        }),
    )
    .await;
    let macro_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["usageCount"], 0);
    assert_eq!(created["lastUsedAt"], Value::Null);

    let id = customer_writes(
        &app,
        SPANISH_CUSTOMER,
        "wamid.ES1",
        "Hola, quiero que me devuelvan el dinero de mi pedido, por favor",
    )
    .await;
    assert_eq!(case(&app, &id).await["language"], "es");
    let assigned = app
        .graphql(
            "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id } }",
            json!({ "c": id, "a": agent }),
        )
        .await;
    assert!(assigned["errors"].is_null(), "{assigned}");
    let token = app.token(Role::Agent, Some(agent.parse().unwrap())).await;

    let answer = app
        .graphql_as(&token, APPLY, json!({ "c": id, "m": macro_id }))
        .await;
    let applied = &answer["data"]["applyMacro"];
    assert!(applied.is_object(), "applyMacro refused: {answer}");
    assert_eq!(
        applied["message"]["text"],
        "Hola Kerry Fisher, soy Lucía Romero: tu reembolso está en marcha."
    );
    assert_eq!(applied["held"], false);
    assert_eq!(applied["conversation"]["status"], "PENDING");
    assert_eq!(applied["conversation"]["priority"], "HIGH");

    // One change: the reply, the macro, the priority, the note and the status share one
    // step of the event log, written together.
    let events = timed_events(&app, &id).await;
    let macro_event = events
        .iter()
        .find(|e| e["kind"] == "macro_applied")
        .unwrap_or_else(|| panic!("no macro_applied event: {events:?}"));
    let at = &macro_event["at"];
    for kind in ["message_out", "priority_changed", "note_added"] {
        let e = events
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event: {events:?}"));
        assert_eq!(&e["at"], at, "{kind} written apart from the macro");
    }
    assert!(
        events.iter().any(|e| e["kind"] == "status_changed"
            && e["at"] == *at
            && e["data"]["to"] == "pending"),
        "{events:?}"
    );

    let message_id = applied["message"]["id"].as_str().unwrap();
    message_reaches(&app, &id, message_id, "SENT").await;
    settle().await;
    assert_eq!(
        sends.load(Ordering::SeqCst),
        1,
        "the macro's reply is sent once"
    );
    let payloads = sent_payloads(&app).await;
    assert_eq!(
        payloads[0]["text"]["body"],
        "Hola Kerry Fisher, soy Lucía Romero: tu reembolso está en marcha."
    );

    let usage = macro_usage(&app, &macro_id).await;
    assert_eq!(usage["usageCount"], 1);
    assert!(usage["lastUsedAt"].is_string(), "{usage}");

    // An English-speaking contact gets the macro's own body.
    let other = customer_writes(
        &app,
        CUSTOMER,
        "wamid.EN1",
        "Hello, I would like a refund for my order please",
    )
    .await;
    app.graphql(
        "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id } }",
        json!({ "c": other, "a": agent }),
    )
    .await;
    let answer = app
        .graphql_as(&token, APPLY, json!({ "c": other, "m": macro_id }))
        .await;
    assert_eq!(
        answer["data"]["applyMacro"]["message"]["text"],
        "Hi Kerry Fisher, Lucía Romero here: your refund has started.",
        "{answer}"
    );
    assert_eq!(macro_usage(&app, &macro_id).await["usageCount"], 2);
}

async fn a_macro_with_an_unknown_variable_is_refused_when_written(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let answer = app
        .graphql(
            CREATE,
            json!({ "i": { "name": "Bad", "body": "Hi {{contact.nickname}}" } }),
        )
        .await;
    assert_eq!(error_code(&answer), "macro_variable_unknown", "{answer}");
    let answer = app
        .graphql(
            CREATE,
            json!({ "i": { "name": "Bad variant", "body": "Hi", "variants": [{ "language": "es", "body": "Hola {{order.total}}" }] } }),
        )
        .await;
    assert_eq!(error_code(&answer), "macro_variable_unknown", "{answer}");
    assert_eq!(app.count("macros").await, 0);
}

async fn a_missing_value_sends_nothing_and_changes_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let created = create_macro(
        &app,
        json!({
            "name": "Signed",
            "body": "Thanks, {{agent.name}}",
            "actions": { "priority": "URGENT", "note": "never written" },
        }),
    )
    .await;
    let id = customer_writes(&app, CUSTOMER, "wamid.M1", "Hello, where is my parcel?").await;
    let before = events_of(&app, &id).await.len();
    // The admin token acts for no agent: {{agent.name}} has no value.
    let answer = app
        .graphql(APPLY, json!({ "c": id, "m": created["id"] }))
        .await;
    assert_eq!(error_code(&answer), "macro_value_missing", "{answer}");
    settle().await;
    assert_eq!(events_of(&app, &id).await.len(), before);
    assert_eq!(case(&app, &id).await["priority"], "MEDIUM");
    assert_eq!(app.count("notes").await, 0);
    assert_eq!(sends.load(Ordering::SeqCst), 0);
    assert_eq!(
        macro_usage(&app, created["id"].as_str().unwrap()).await["usageCount"],
        0
    );

    let answer = app.graphql(APPLY, json!({ "c": id, "m": "999" })).await;
    assert_eq!(error_code(&answer), "macro_not_found", "{answer}");
}

async fn macros_are_listed_for_a_team_updated_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let billing = create_team(&app, "Billing").await;
    let shipping = create_team(&app, "Shipping").await;
    create_macro(&app, json!({ "name": "Everyone", "body": "Hi" })).await;
    let billing_macro = create_macro(
        &app,
        json!({ "name": "Billing only", "body": "Invoice", "teamId": billing }),
    )
    .await;
    create_macro(
        &app,
        json!({ "name": "Shipping only", "body": "Parcel", "teamId": shipping }),
    )
    .await;

    let names = |answer: Value| -> Vec<String> {
        answer["data"]["macros"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = app
        .graphql(
            "query($t: ID) { macros(teamId: $t) { name } }",
            json!({ "t": billing }),
        )
        .await;
    assert_eq!(names(listed), ["Billing only", "Everyone"]);

    let updated = app
        .graphql(
            "mutation($id: ID!, $i: MacroInput!) { updateMacro(id: $id, input: $i) { name body } }",
            json!({ "id": billing_macro["id"], "i": { "name": "Billing", "body": "Your invoice, {{contact.name}}", "teamId": billing } }),
        )
        .await;
    assert_eq!(
        updated["data"]["updateMacro"]["body"], "Your invoice, {{contact.name}}",
        "{updated}"
    );

    let deleted = app
        .graphql(
            "mutation($id: ID!) { deleteMacro(id: $id) }",
            json!({ "id": billing_macro["id"] }),
        )
        .await;
    assert_eq!(deleted["data"]["deleteMacro"], true, "{deleted}");
    let again = app
        .graphql(
            "mutation($id: ID!) { deleteMacro(id: $id) }",
            json!({ "id": billing_macro["id"] }),
        )
        .await;
    assert_eq!(error_code(&again), "macro_not_found", "{again}");
    let listed = app
        .graphql(
            "query($t: ID) { macros(teamId: $t) { name } }",
            json!({ "t": billing }),
        )
        .await;
    assert_eq!(names(listed), ["Everyone"]);
    let actions = audit_actions(&app).await;
    for action in ["macro.created", "macro.updated", "macro.deleted"] {
        assert!(actions.iter().any(|a| a == action), "{actions:?}");
    }
}

async fn a_macro_that_tags_the_case_has_it_routed_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    // Tags the taxonomy does not have are refused when the macro is written.
    let answer = app
        .graphql(
            CREATE,
            json!({ "i": { "name": "Typo", "body": "Noted.", "actions": { "addRisks": ["legal_treat"] } } }),
        )
        .await;
    assert_eq!(error_code(&answer), "invalid_input", "{answer}");
    let created = create_macro(
        &app,
        json!({
            "name": "Legal hand-over",
            "body": "Thank you, {{contact.name}}. A colleague from our legal team will contact you.",
            "actions": { "addRisks": ["legal_threat"], "note": "handed to legal by macro" },
        }),
    )
    .await;
    let macro_id = created["id"].as_str().unwrap().to_owned();
    let listed = macro_usage(&app, &macro_id).await;
    assert_eq!(listed["id"], macro_id);

    let id = customer_writes(&app, CUSTOMER, "wamid.TAG1", "where is my parcel?").await;
    let answer = app.graphql(APPLY, json!({ "c": id, "m": macro_id })).await;
    assert!(
        answer["data"]["applyMacro"].is_object(),
        "applyMacro refused: {answer}"
    );
    let case = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { risks priority review team { name } macros: events(first: 50) { kind } } }",
            json!({ "id": id }),
        )
        .await;
    let case = &case["data"]["conversation"];
    assert!(
        case["risks"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_threat")),
        "{case}"
    );
    // The legal rule decides: management owns it, a person reviews, urgent.
    assert_eq!(case["team"]["name"], "management", "{case}");
    assert_eq!(case["review"], "HUMAN", "{case}");
    assert_eq!(case["priority"], "URGENT", "{case}");
    let kinds: Vec<&str> = case["macros"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "macro_applied",
        "tags_corrected",
        "note_added",
        "message_out",
    ] {
        assert!(kinds.contains(&kind), "no {kind}: {kinds:?}");
    }
}
