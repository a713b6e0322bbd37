//! The consent ledger through the real webhook and GraphQL: STOP/START keywords, consent
//! recorded by hand, redeliveries recorded once, and the audit trail of every change.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};

const CUSTOMER: &str = "5215512345678";

const CONTACT: &str = "query($w: String!) { contact(waId: $w) {
    consents { purpose granted byDefault lastChange { source detail actor } }
    consentHistory { purpose granted source detail actor }
} }";

async fn contact(app: &TestApp, wa_id: &str) -> Value {
    let answer = app.graphql(CONTACT, json!({ "w": wa_id })).await;
    answer["data"]["contact"].clone()
}

fn granted(contact: &Value, purpose: &str) -> (bool, bool) {
    let consent = contact["consents"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["purpose"] == purpose))
        .unwrap_or_else(|| panic!("no {purpose} consent: {contact}"));
    (
        consent["granted"].as_bool().unwrap(),
        consent["byDefault"].as_bool().unwrap(),
    )
}

/// Posts a text webhook and waits until the inbox has applied it.
async fn customer_sends(app: &TestApp, wa_id: &str, wamid: &str, body: &str) {
    let timestamp = app.clock.now() / 1_000_000;
    let response = app
        .post_webhook(&text_webhook(wa_id, wamid, body, timestamp))
        .await;
    assert_eq!(response.status(), 200);
    all_webhooks_applied(app).await;
}

async fn stop_and_start_keywords_update_the_ledger_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, CUSTOMER, "wamid.c1", "where is my order A-10023?").await;
    let before = contact(&app, CUSTOMER).await;
    assert_eq!(granted(&before, "SERVICE"), (true, true));
    assert_eq!(granted(&before, "MARKETING"), (false, true));
    assert_eq!(granted(&before, "SURVEYS"), (true, true));

    // "STOP!!" on the open case: marketing and surveys off, answers to the case go on.
    customer_sends(&app, CUSTOMER, "wamid.c2", "  STOP!! ").await;
    let stopped = contact(&app, CUSTOMER).await;
    assert_eq!(granted(&stopped, "SURVEYS"), (false, false), "{stopped}");
    assert_eq!(granted(&stopped, "MARKETING"), (false, false), "{stopped}");
    assert_eq!(granted(&stopped, "SERVICE"), (true, true), "{stopped}");
    let history = stopped["consentHistory"].as_array().unwrap().clone();
    assert_eq!(history.len(), 2, "{stopped}");
    assert!(
        history
            .iter()
            .all(|e| e["source"] == "keyword" && e["detail"] == "stop" && e["actor"] == "customer")
    );
    // The message stays on the case for its agent, logged as a consent change, and was
    // not triaged as a request.
    assert_eq!(messages_of(&app, &id).await.len(), 2);
    let kinds = event_kinds_of(&app, &id).await;
    assert!(kinds.contains(&"consent_changed".to_owned()), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "triaged").count(),
        1,
        "{kinds:?}"
    );

    // Meta redelivers the STOP: nothing new in the ledger.
    customer_sends(&app, CUSTOMER, "wamid.c2", "  STOP!! ").await;
    let again = contact(&app, CUSTOMER).await;
    assert_eq!(again["consentHistory"].as_array().unwrap().len(), 2);

    // "Mulai" (Indonesian START) turns them back on.
    customer_sends(&app, CUSTOMER, "wamid.c3", "Mulai").await;
    let started = contact(&app, CUSTOMER).await;
    assert_eq!(granted(&started, "SURVEYS"), (true, false), "{started}");
    assert_eq!(granted(&started, "MARKETING"), (true, false), "{started}");

    // A number that only writes "Baja" opens no case but is recorded.
    let stranger = "34600111222";
    customer_sends(&app, stranger, "wamid.c4", "Baja").await;
    assert!(conversations_of(&app, stranger).await.is_empty());
    let recorded = contact(&app, stranger).await;
    assert_eq!(granted(&recorded, "SURVEYS"), (false, false), "{recorded}");

    // A sentence with the word in it is a request, not an opt-out.
    customer_sends(&app, CUSTOMER, "wamid.c5", "stop charging me twice").await;
    let unchanged = contact(&app, CUSTOMER).await;
    assert_eq!(unchanged["consentHistory"].as_array().unwrap().len(), 4);

    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}

async fn consent_recorded_by_hand_is_kept_with_its_note_and_checked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let record = "mutation($w: String!, $p: ConsentPurpose!, $g: Boolean!, $n: String) {
        recordConsent(waId: $w, purpose: $p, granted: $g, note: $n) {
            consents { purpose granted byDefault lastChange { source detail actor } }
        } }";
    let answer = app
        .graphql(
            record,
            json!({ "w": CUSTOMER, "p": "MARKETING", "g": true, "n": "signed up at the store" }),
        )
        .await;
    let contact = &answer["data"]["recordConsent"];
    assert_eq!(granted(contact, "MARKETING"), (true, false), "{answer}");
    let marketing = contact["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "MARKETING")
        .unwrap();
    assert_eq!(marketing["lastChange"]["source"], "agent");
    assert_eq!(marketing["lastChange"]["detail"], "signed up at the store");

    // Agents may not; a malformed number is refused.
    let token = app.token(parley::domain::Role::Agent, None).await;
    let refused = app
        .graphql_as(
            &token,
            record,
            json!({ "w": CUSTOMER, "p": "SURVEYS", "g": false, "n": null }),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let bad = app
        .graphql(
            record,
            json!({ "w": "+34 not a number", "p": "SURVEYS", "g": false }),
        )
        .await;
    assert_eq!(error_code(&bad), "invalid_input", "{bad}");
    let unknown = app.graphql(CONTACT, json!({ "w": "34600999888" })).await;
    assert_eq!(unknown["data"]["contact"], Value::Null, "{unknown}");
}

async fn replies_are_refused_once_service_consent_is_withdrawn(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.s1", "my app keeps crashing").await;
    let record = "mutation($w: String!, $g: Boolean!) {
        recordConsent(waId: $w, purpose: SERVICE, granted: $g, note: \"asked by phone\") { waId } }";
    let answer = app
        .graphql(record, json!({ "w": CUSTOMER, "g": false }))
        .await;
    assert!(answer["data"]["recordConsent"].is_object(), "{answer}");
    let refused = app
        .graphql(
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"Any update?\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "consent_withdrawn", "{refused}");
    assert_eq!(
        messages_of(&app, &id).await.len(),
        1,
        "nothing stored or sent"
    );

    app.graphql(record, json!({ "w": CUSTOMER, "g": true }))
        .await;
    let sent = reply(&app, &id, "Here is the fix.").await;
    message_reaches(&app, &id, sent["id"].as_str().unwrap(), "SENT").await;
}

on_both_databases!(
    stop_and_start_keywords_update_the_ledger_once,
    consent_recorded_by_hand_is_kept_with_its_note_and_checked,
    replies_are_refused_once_service_consent_is_withdrawn,
);
