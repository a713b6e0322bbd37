//! Corrections through the real server: `setTags` routes the case again like a triage
//! result and is kept as a labelled example that `parley triage export-corrections`
//! writes and `triage eval` reads; `setPriority` moves the priority both ways with its
//! SLA; bad corrections are refused with typed errors and write nothing.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};

const CUSTOMER: &str = "447700900555";
const TEXT: &str = "where is my parcel? it has been two weeks now";

const CASE: &str = "query($id: ID!) { conversation(id: $id) { priority intents risks review watcherTeams team { name } sla { priority targets { target targetSeconds } } events(first: 100) { kind data { __typename ... on TagsCorrectedEventData { addedRisks removedIntents intents risks reason } ... on PriorityChangedEventData { from to reason } } } } }";
const SET_TAGS: &str = "mutation($c: ID!, $ai: [String!], $ri: [String!], $ar: [String!], $rr: [String!], $why: String!) { setTags(conversationId: $c, addIntents: $ai, removeIntents: $ri, addRisks: $ar, removeRisks: $rr, reason: $why) { id risks intents team { name } } }";
const SET_PRIORITY: &str = "mutation($c: ID!, $p: Priority!, $why: String!) { setPriority(conversationId: $c, priority: $p, reason: $why) { id priority } }";

on_both_databases!(
    corrected_tags_route_the_case_again_and_export_as_labelled_examples,
    a_priority_set_by_hand_moves_both_ways_with_its_sla,
    bad_corrections_are_refused_and_write_nothing,
);

async fn case(app: &TestApp, id: &str) -> Value {
    let answer = app.graphql(CASE, json!({ "id": id })).await;
    let case = answer["data"]["conversation"].clone();
    assert!(case.is_object(), "{answer}");
    case
}

fn kinds(case: &Value) -> Vec<String> {
    case["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs `parley triage export-corrections` on `app`'s database.
fn export_corrections(app: &TestApp) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("parley.toml");
    std::fs::write(
        &config,
        format!("[database]\nurl = \"{}\"\n", app.database_url()),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "triage",
            "export-corrections",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("parley runs");
    assert!(
        output.status.success(),
        "export-corrections failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn corrected_tags_route_the_case_again_and_export_as_labelled_examples(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, CUSTOMER, "wamid.CORR1", TEXT).await;
    let before = case(&app, &id).await;
    let triaged_before = kinds(&before).iter().filter(|k| *k == "triaged").count();
    // Whatever triage made of it, the agent knows more: the parcel is lost and the
    // customer said on the phone they are taking it to a lawyer.
    let removed: Vec<Value> = before["intents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| *i != "delivery_problem")
        .cloned()
        .collect();
    let answer = app
        .graphql(
            SET_TAGS,
            json!({ "c": id, "ai": ["delivery_problem"], "ri": removed, "ar": ["legal_threat"],
                    "why": "lost parcel; the customer is seeing a lawyer" }),
        )
        .await;
    let corrected = &answer["data"]["setTags"];
    assert!(corrected.is_object(), "setTags refused: {answer}");
    assert_eq!(
        corrected["intents"],
        json!(["delivery_problem"]),
        "{answer}"
    );
    assert!(
        corrected["risks"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_threat")),
        "{answer}"
    );

    // Routed again as a triage result would be: the legal rule's owner, watchers,
    // review and priority, and a new `triaged` event beside the correction.
    let after = case(&app, &id).await;
    assert_ne!(before["team"]["name"], "management", "{before}");
    assert_eq!(after["team"]["name"], "management", "{after}");
    assert_eq!(after["review"], "HUMAN", "{after}");
    assert!(
        after["watcherTeams"]
            .as_array()
            .unwrap()
            .contains(&json!("comms_pr")),
        "{after}"
    );
    assert_eq!(after["priority"], "URGENT", "{after}");
    let kinds_after = kinds(&after);
    assert_eq!(
        kinds_after.iter().filter(|k| *k == "triaged").count(),
        triaged_before + 1,
        "{kinds_after:?}"
    );
    let event = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "tags_corrected")
        .unwrap_or_else(|| panic!("no tags_corrected event: {kinds_after:?}"))
        .clone();
    assert_eq!(event["data"]["__typename"], "TagsCorrectedEventData");
    assert_eq!(event["data"]["addedRisks"], json!(["legal_threat"]));
    assert_eq!(
        event["data"]["reason"],
        "lost parcel; the customer is seeing a lawyer"
    );

    // Search sees the corrected tags.
    let found = app
        .graphql(
            "query { searchConversations(query: \"parcel weeks\", filter: { risks: [\"legal_threat\"] }) { edges { node { conversation { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        found["data"]["searchConversations"]["edges"][0]["node"]["conversation"]["id"], id,
        "{found}"
    );

    // The correction is a labelled example of the customer's message, in the lines
    // `triage eval` reads.
    let exported = export_corrections(&app);
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{exported}");
    assert_eq!(lines[0]["text"], TEXT);
    assert_eq!(lines[0]["intents"], json!(["delivery_problem"]));
    assert!(
        lines[0]["risk"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_threat"))
    );
    let classifier = parley::triage::Classifier::train(
        &parley::triage::TriageConfig::from_toml(parley::triage::DEFAULT_CONFIG).unwrap(),
    )
    .unwrap();
    let report = parley::triage::eval(&classifier, std::io::Cursor::new(exported)).unwrap();
    let report = serde_json::to_value(&report).unwrap();
    assert_eq!(report["lines"], 1, "{report}");

    // Erasing the contact takes the example (the customer's words) and the correction's
    // reason with it.
    let erased = app
        .graphql(
            "mutation($w: String!) { eraseContact(waId: $w, reason: \"asked to be forgotten\") { contactId } }",
            json!({ "w": CUSTOMER }),
        )
        .await;
    assert!(erased["errors"].is_null(), "{erased}");
    assert_eq!(export_corrections(&app), "");
    let after = case(&app, &id).await;
    assert!(!after.to_string().contains("lawyer"), "{after}");
}

async fn a_priority_set_by_hand_moves_both_ways_with_its_sla(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, "447700900556", "wamid.CORR2", "where is my parcel?").await;
    let targets = |case: &Value| case["sla"]["targets"].clone();
    let start = case(&app, &id).await;
    for (to, why) in [
        ("URGENT", "the parcel holds medicine"),
        ("LOW", "found: delivered to a neighbour"),
    ] {
        let answer = app
            .graphql(SET_PRIORITY, json!({ "c": id, "p": to, "why": why }))
            .await;
        assert_eq!(answer["data"]["setPriority"]["priority"], to, "{answer}");
    }
    let end = case(&app, &id).await;
    assert_eq!(end["sla"]["priority"], "low", "{end}");
    assert_ne!(
        targets(&start),
        targets(&end),
        "the SLA targets follow the priority"
    );
    let changes: Vec<&Value> = end["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "priority_changed")
        .collect();
    assert_eq!(changes.len(), 2, "{end}");
    assert_eq!(changes[0]["data"]["to"], "URGENT");
    assert_eq!(changes[1]["data"]["from"], "URGENT");
    assert_eq!(changes[1]["data"]["to"], "LOW");
    assert_eq!(
        changes[1]["data"]["reason"],
        "found: delivered to a neighbour"
    );

    // Erasure keeps the changes (the SLA replays them) without the reasons given.
    let erased = app
        .graphql(
            "mutation($w: String!) { eraseContact(waId: $w, reason: \"asked to be forgotten\") { contactId } }",
            json!({ "w": "447700900556" }),
        )
        .await;
    assert!(erased["errors"].is_null(), "{erased}");
    let after = case(&app, &id).await;
    assert_eq!(
        after["events"]
            .to_string()
            .matches("priority_changed")
            .count(),
        2,
        "{after}"
    );
    assert!(!after.to_string().contains("neighbour"), "{after}");
    assert!(!after.to_string().contains("medicine"), "{after}");
}

async fn bad_corrections_are_refused_and_write_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, "447700900557", "wamid.CORR3", "my order never came").await;
    let before = kinds(&case(&app, &id).await);
    let refused = [
        json!({ "c": id, "ar": ["fraud_signall"], "why": "typo" }),
        json!({ "c": id, "ar": ["fraud_signal"], "why": "   " }),
        json!({ "c": id, "why": "nothing named" }),
        json!({ "c": id, "ar": ["fraud_signal"], "rr": ["fraud_signal"], "why": "both" }),
    ];
    for variables in refused {
        let answer = app.graphql(SET_TAGS, variables.clone()).await;
        assert_eq!(
            error_code(&answer),
            "invalid_input",
            "{variables}: {answer}"
        );
    }
    let long = "x".repeat(1001);
    let answer = app
        .graphql(SET_PRIORITY, json!({ "c": id, "p": "HIGH", "why": long }))
        .await;
    assert_eq!(error_code(&answer), "invalid_input", "{answer}");
    // An agent may not correct a case assigned to someone else.
    let ana = create_agent(&app, "Ana", None).await;
    let bo = create_agent(&app, "Bo", None).await;
    let assigned = app
        .graphql(
            "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id } }",
            json!({ "c": id, "a": ana }),
        )
        .await;
    assert!(assigned["errors"].is_null(), "{assigned}");
    let before = kinds(&case(&app, &id).await).len().max(before.len());
    let bo_token = app.token(Role::Agent, bo.parse().ok()).await;
    let answer = app
        .graphql_as(
            &bo_token,
            SET_PRIORITY,
            json!({ "c": id, "p": "URGENT", "why": "mine now" }),
        )
        .await;
    assert!(answer["errors"].is_array(), "{answer}");
    assert_eq!(
        kinds(&case(&app, &id).await).len(),
        before,
        "nothing written"
    );
}
