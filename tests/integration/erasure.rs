//! Erasing a contact through GraphQL: their words, notes, profile, raw payloads and
//! number are gone, the case skeleton and the audit chain stay, and writing again starts
//! afresh.

use crate::helpers::*;
use parley::clock::Clock;
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

on_both_databases!(
    erasure_removes_personal_data_and_leaves_the_audit_chain_verifiable,
    erasure_reaches_packets_surveys_consent_sends_in_doubt_and_scam_samples,
);

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
    // The provider payload of the reply repeated its text: it goes with it.
    let payloads = column(&app, "SELECT payload AS v FROM outbox").await;
    assert_eq!(payloads, ["{}"], "{payloads:?}");
    assert!(
        audit_actions(&app)
            .await
            .contains(&"retention.swept".to_owned())
    );
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}

/// Rows of `sql` (one text column, `v`), for looking where the API does not show.
async fn column(app: &TestApp, sql: &str) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.store.db();
    db.query_all(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            row.try_get::<Option<String>>("", "v")
                .unwrap()
                .unwrap_or_default()
        })
        .collect()
}

/// Everything that quoted the customer beyond their messages: the escalation packet (in
/// the event log and, chained, the audit log), the survey comment, a send whose outcome
/// is in doubt, the note given with a consent change, the sample of a scam wave they
/// started.
async fn erasure_reaches_packets_surveys_consent_sends_in_doubt_and_scam_samples(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let wave = "Hello dear customer your parcel is held at customs please pay the release fee at www.parcel-fee.example/pay";
    let id = customer_writes(&app, CUSTOMER, "wamid.x1", &format!("{wave} 0")).await;
    let now = app.clock.now() / 1_000_000;
    for (n, wa) in ["4917600000001", "4917600000002", "4917600000003"]
        .iter()
        .enumerate()
    {
        let text = format!("{wave} {}", n + 1);
        let body = text_webhook(wa, &format!("wamid.w{n}"), &text, now);
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
    all_webhooks_applied(&app).await;
    let clusters = app.graphql("{ noiseClusters { sample } }", json!({})).await;
    assert!(clusters.to_string().contains("parcel-fee"), "{clusters}");

    customer_writes(
        &app,
        CUSTOMER,
        "wamid.x2",
        "I am Ana, ana@example.com, where is my order 12312312?",
    )
    .await;
    let escalated = app
        .graphql(
            "mutation($c: ID!, $r: String!) { escalateConversation(conversationId: $c, reason: $r) { id } }",
            json!({ "c": id, "r": "Ana threatens to sue" }),
        )
        .await;
    assert!(
        escalated["data"]["escalateConversation"].is_object(),
        "{escalated}"
    );
    wait_for_kind(&app, &id, "escalated", 1).await;
    let consent = app
        .graphql(
            "mutation($w: String!) { recordConsent(waId: $w, purpose: MARKETING, granted: false, note: \"Ana asked by phone\") { waId } }",
            json!({ "w": CUSTOMER }),
        )
        .await;
    assert!(consent["data"]["recordConsent"].is_object(), "{consent}");

    // Surveyed after resolving; a low score and a comment.
    let sent = reply(&app, &id, "Ana, it ships today.").await;
    message_reaches(&app, &id, sent["id"].as_str().unwrap(), "SENT").await;
    set_status(&app, &id, "RESOLVED").await;
    app.clock.advance(std::time::Duration::from_secs(600));
    let survey = eventually_some("the survey reaches Meta", || async {
        sent_payloads(&app)
            .await
            .into_iter()
            .find(|p| p["type"] == "interactive")
    })
    .await;
    let two = survey["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with('2'))
        .unwrap()
        .clone();
    let answer = message_webhook(
        CUSTOMER,
        json!({
            "from": CUSTOMER, "id": "wamid.x3", "timestamp": (app.clock.now() / 1_000_000).to_string(),
            "type": "interactive",
            "interactive": { "type": "list_reply", "list_reply": { "id": two["id"], "title": two["title"] } }
        }),
    );
    assert_eq!(app.post_webhook(&answer).await.status(), 200);
    wait_for_kind(&app, &id, "csat_follow_up_sent", 1).await;
    customer_writes(&app, CUSTOMER, "wamid.x4", "Ana waited two days").await;
    wait_for_kind(&app, &id, "csat_comment", 1).await;

    // A send under way when the server stopped: at the next start it is in doubt (never
    // resent), and its row stays.
    use sea_orm::ConnectionTrait;
    app.store
        .db()
        .execute_unprepared(&format!(
            "UPDATE outbox SET state = 'sending' WHERE message_id = {}",
            sent["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    let app = app.restart_after(std::time::Duration::from_secs(1)).await;
    eventually("the interrupted send is in doubt", || async {
        column(
            &app,
            "SELECT state AS v FROM outbox WHERE state = 'in_doubt'",
        )
        .await
        .len()
            == 1
    })
    .await;
    all_webhooks_applied(&app).await;

    let answer = app
        .graphql(ERASE, json!({ "w": CUSTOMER, "r": "GDPR request #43" }))
        .await;
    assert!(answer["data"]["eraseContact"].is_object(), "{answer}");

    let secrets = [
        "Ana",
        "ana@example.com",
        "Kerry",
        "parcel-fee",
        CUSTOMER,
        "ships today",
    ];
    let dump = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { csat { comment } events(first: 100) { dataJson } } noiseClusters { sample } }",
            json!({ "id": id }),
        )
        .await
        .to_string();
    assert!(!dump.contains("errors"), "{dump}");
    let mut stored = Vec::new();
    for sql in [
        "SELECT data AS v FROM conversation_events",
        "SELECT data AS v FROM audit_log",
        "SELECT comment AS v FROM csat_responses",
        "SELECT detail AS v FROM consent_events",
        "SELECT payload AS v FROM outbox",
        "SELECT recipient AS v FROM outbox",
        "SELECT sample AS v FROM noise_clusters",
    ] {
        stored.extend(column(&app, sql).await);
    }
    for secret in secrets {
        assert!(!dump.contains(secret), "{secret} left in {dump}");
        for value in &stored {
            assert!(!value.contains(secret), "{secret} left in {value}");
        }
    }
    // The consent itself still binds, the escalation and the survey still count.
    assert_eq!(
        column(&app, "SELECT purpose AS v FROM consent_events").await,
        ["marketing"]
    );
    assert!(
        audit_actions(&app)
            .await
            .contains(&"conversation.escalated".to_owned())
    );
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}
