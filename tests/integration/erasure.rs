//! Erasing a contact through GraphQL: their words, notes, profile, raw payloads and
//! number are gone, the case skeleton and the audit chain stay, and writing again starts
//! afresh.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};

const CUSTOMER: &str = "4917612345678";

const ERASE: &str = "mutation($w: String!, $r: String!) { eraseContact(waId: $w, reason: $r) {
    contactId conversations messages notes payloads cancelledSends } }";

async fn erasure_removes_personal_data_and_leaves_the_audit_chain_verifiable(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(
        &app,
        CUSTOMER,
        "wamid.e1",
        "I am Ana, ana@example.com, card 4111 1111 1111 1111, where is my refund?",
    )
    .await;
    let sent = reply(&app, &id, "Thanks Ana, we are checking your refund.").await;
    message_reaches(&app, &id, sent["id"].as_str().unwrap(), "SENT").await;
    let noted = app
        .graphql(
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"Ana called, angry\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert!(noted["data"]["addNote"].is_object(), "{noted}");
    // A draft held for approval, quoting the customer.
    let held = app
        .graphql(
            "mutation($c: ID!) { sendReply(conversationId: $c, aiDraft: true, text: \"Ana, card 4111 refunded\") { deliveryStatus } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(
        held["data"]["sendReply"]["deliveryStatus"], "HELD",
        "{held}"
    );
    let (payloads, _) = app.store.payloads_mentioning(CUSTOMER).await.unwrap();
    assert!(!payloads.is_empty(), "the raw webhook holds the number");

    // Only admins, only known numbers, only with a reason.
    let supervisor = app.token(Role::Supervisor, None).await;
    let refused = app
        .graphql_as(
            &supervisor,
            ERASE,
            json!({ "w": CUSTOMER, "r": "GDPR request" }),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let unknown = app
        .graphql(ERASE, json!({ "w": "4900000000000", "r": "GDPR request" }))
        .await;
    assert_eq!(error_code(&unknown), "invalid_input", "{unknown}");
    let no_reason = app
        .graphql(ERASE, json!({ "w": CUSTOMER, "r": "  " }))
        .await;
    assert_eq!(error_code(&no_reason), "invalid_input", "{no_reason}");

    let answer = app
        .graphql(ERASE, json!({ "w": CUSTOMER, "r": "GDPR request #42" }))
        .await;
    let report = &answer["data"]["eraseContact"];
    assert_eq!(report["conversations"], 1, "{answer}");
    assert_eq!(report["messages"], 3, "{answer}");
    assert_eq!(report["notes"], 1, "{answer}");
    assert!(report["payloads"].as_u64().unwrap() >= 1, "{answer}");

    // The case is still there, without a word of what was said.
    let case = conversation(&app, &id).await;
    assert_eq!(case["status"], "IN_PROGRESS", "{case}");
    let wa_id = case["contact"]["waId"].as_str().unwrap();
    assert!(wa_id.starts_with("erased:"), "{case}");
    assert_eq!(case["contact"]["name"], Value::Null);
    let texts: Vec<&Value> = case["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"]["text"])
        .collect();
    assert_eq!(texts, [&Value::Null, &Value::Null, &Value::Null], "{case}");
    // The held draft will never be sent, and its text is gone too.
    let queue = app
        .graphql(
            "query($c: ID) { heldMessages(conversationId: $c, status: REJECTED) { originalText decisionNote } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(
        queue["data"]["heldMessages"],
        json!([{ "originalText": null, "decisionNote": "the contact's data was erased" }]),
        "{queue}"
    );
    let dump = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { triage: triageJson events(first: 50) { data: dataJson } } }",
            json!({ "id": id }),
        )
        .await
        .to_string();
    for secret in ["ana@example.com", "4111", "refund?", "angry"] {
        assert!(!dump.contains(secret), "{secret} left in {dump}");
    }
    let gone = app
        .graphql(
            "query($w: String!) { contact(waId: $w) { waId } }",
            json!({ "w": CUSTOMER }),
        )
        .await;
    assert_eq!(gone["data"]["contact"], Value::Null, "{gone}");
    assert_eq!(
        app.store.payloads_mentioning(CUSTOMER).await.unwrap(),
        (vec![], vec![])
    );

    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);

    // Writing again starts a new contact and a new case.
    let again = customer_writes(&app, CUSTOMER, "wamid.e2", "hello again").await;
    assert_ne!(again, id);
    assert_eq!(conversations_of(&app, CUSTOMER).await.len(), 1);
}

on_both_databases!(erasure_removes_personal_data_and_leaves_the_audit_chain_verifiable);

on_both_databases!(personal_data_is_removed_when_its_retention_has_passed);

/// Retention through the real server and its clock: raw payloads go after their days,
/// message texts of closed cases after theirs; the case and the audit chain stay.
async fn personal_data_is_removed_when_its_retention_has_passed(backend: Backend) {
    let config = "[retention]\nwebhook_payloads_days = 10\ndead_letters_days = 10\n\
                  message_text_days = 20\nheld_messages_days = 20\nsweep_interval_secs = 3600\n";
    let Some(app) = spawn_app_with(backend, config).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(
        &app,
        CUSTOMER,
        "wamid.r1",
        "my card 4111 1111 1111 1111 was charged twice",
    )
    .await;
    let sent = reply(&app, &id, "We are on it.").await;
    message_reaches(&app, &id, sent["id"].as_str().unwrap(), "SENT").await;
    let resolved = set_status(&app, &id, "RESOLVED").await;
    assert_eq!(
        resolved["data"]["setConversationStatus"]["status"],
        "RESOLVED"
    );
    // Past the reopen window the case closes.
    app.clock.advance(std::time::Duration::from_secs(25 * 3600));
    eventually("the case closes", || async {
        conversation(&app, &id).await["status"] == "CLOSED"
    })
    .await;
    assert!(app.count("inbox").await > 0);

    app.clock
        .advance(std::time::Duration::from_secs(10 * 86_400));
    eventually("processed payloads are removed after 10 days", || async {
        app.count("inbox").await == 0
    })
    .await;
    let texts = |case: Value| -> Vec<Value> {
        case["messages"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["text"].clone())
            .collect()
    };
    assert!(
        texts(conversation(&app, &id).await)
            .iter()
            .all(|t| !t.is_null()),
        "message texts are kept for 20 days"
    );

    app.clock
        .advance(std::time::Duration::from_secs(11 * 86_400));
    eventually("message texts are removed after 20 days", || async {
        texts(conversation(&app, &id).await)
            .iter()
            .all(Value::is_null)
    })
    .await;
    assert_eq!(conversation(&app, &id).await["status"], "CLOSED");
    assert!(
        audit_actions(&app)
            .await
            .contains(&"retention.swept".to_owned())
    );
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}
