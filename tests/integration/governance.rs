//! The outbound gate and the approval queue through the real webhook, GraphQL and outbox,
//! with a fake Graph API and the manual clock: what is held and for whom, approvals (as
//! written or edited) that send exactly once, rejections that never send, the gate on
//! every sending path, and the audit trail an auditor reads.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;

on_both_databases!(
    ai_drafts_on_a_dispute_wait_for_a_supervisor_and_a_persons_reply_does_not,
    two_supervisors_approving_at_once_send_the_message_once,
    surveys_and_closing_messages_pass_the_same_gate,
);

const DISPUTE: &str = "you charged me twice for the same order";
const THREAT: &str = "i'm going to sue you, my lawyer will contact you";

const SEND: &str = "mutation($c: ID!, $t: String!, $ai: Boolean!) {
    sendReply(conversationId: $c, text: $t, aiDraft: $ai) { id deliveryStatus text } }";
const HELD: &str = "query($c: ID, $s: HeldStatus!) { heldMessages(conversationId: $c, status: $s) {
    id conversationId messageId origin purpose approver boundaries reasons status
    originalText editedText decidedBy decisionNote decidedAt heldAt } }";
const APPROVE: &str = "mutation($id: ID!, $t: String) { approveMessage(id: $id, text: $t) {
    id status originalText editedText decidedBy } }";
const REJECT: &str = "mutation($id: ID!, $r: String!) { rejectMessage(id: $id, reason: $r) {
    id status decisionNote } }";

async fn send(app: &TestApp, token: &str, id: &str, text: &str, ai: bool) -> Value {
    app.graphql_as(token, SEND, json!({ "c": id, "t": text, "ai": ai }))
        .await
}

async fn held(app: &TestApp, id: &str, status: &str) -> Vec<Value> {
    let answer = app.graphql(HELD, json!({ "c": id, "s": status })).await;
    answer["data"]["heldMessages"]
        .as_array()
        .unwrap_or_else(|| panic!("heldMessages failed: {answer}"))
        .clone()
}

/// The text bodies Meta received, oldest first.
async fn sent_texts(app: &TestApp) -> Vec<String> {
    sent_payloads(app)
        .await
        .iter()
        .filter_map(|p| p["text"]["body"].as_str().map(str::to_owned))
        .collect()
}

async fn ai_drafts_on_a_dispute_wait_for_a_supervisor_and_a_persons_reply_does_not(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let id = customer_writes(&app, "5215550001111", "wamid.g1", DISPUTE).await;
    let admin = app.admin_token.clone();

    // A person's own reply is not held.
    let own = send(&app, &admin, &id, "Let me look at your statement.", false).await;
    let own_id = own["data"]["sendReply"]["id"].as_str().unwrap().to_owned();
    message_reaches(&app, &id, &own_id, "SENT").await;

    // An AI draft sent as is waits: stored HELD, in the queue with why and for whom.
    let draft = send(&app, &admin, &id, "We refunded you $40.", true).await;
    assert_eq!(
        draft["data"]["sendReply"]["deliveryStatus"], "HELD",
        "{draft}"
    );
    let queue = held(&app, &id, "PENDING").await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    let item = &queue[0];
    assert_eq!(item["origin"], "ai_draft");
    assert_eq!(item["purpose"], "service");
    assert_eq!(item["approver"], "SUPERVISOR");
    assert!(
        item["boundaries"]
            .as_array()
            .unwrap()
            .contains(&json!("billing_dispute")),
        "{item}"
    );
    assert_eq!(item["originalText"], "We refunded you $40.");
    assert_eq!(
        count_kind(&app, &id, "message_out").await,
        1,
        "held is not sent"
    );
    assert_eq!(count_kind(&app, &id, "message_held").await, 1);

    // An agent may not decide what waits for a supervisor; an auditor may not either.
    let agent_id = create_agent(&app, "Ana", None).await;
    let agent = app
        .token(Role::Agent, Some(agent_id.parse().unwrap()))
        .await;
    let refused = app
        .graphql_as(&agent, APPROVE, json!({ "id": item["id"], "t": null }))
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let auditor = app.token(Role::Auditor, None).await;
    let refused = app
        .graphql_as(&auditor, APPROVE, json!({ "id": item["id"], "t": null }))
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");

    // A supervisor edits and approves: the edit goes out, the original is kept.
    let supervisor = app.token(Role::Supervisor, None).await;
    let approved = app
        .graphql_as(
            &supervisor,
            APPROVE,
            json!({ "id": item["id"], "t": "We are checking the double charge and will refund it today." }),
        )
        .await;
    let approved = &approved["data"]["approveMessage"];
    assert_eq!(approved["status"], "APPROVED", "{approved}");
    assert_eq!(approved["originalText"], "We refunded you $40.");
    assert_eq!(
        approved["editedText"],
        "We are checking the double charge and will refund it today."
    );
    let draft_id = draft["data"]["sendReply"]["id"].as_str().unwrap();
    let sent = message_reaches(&app, &id, draft_id, "SENT").await;
    assert_eq!(
        sent["text"],
        "We are checking the double charge and will refund it today."
    );
    assert_eq!(
        sent_texts(&app).await,
        [
            "Let me look at your statement.",
            "We are checking the double charge and will refund it today."
        ]
    );

    // Deciding it again changes nothing and sends nothing.
    let again = app
        .graphql_as(&supervisor, APPROVE, json!({ "id": item["id"], "t": null }))
        .await;
    assert_eq!(error_code(&again), "already_decided", "{again}");
    let again = app
        .graphql_as(
            &supervisor,
            REJECT,
            json!({ "id": item["id"], "r": "too late" }),
        )
        .await;
    assert_eq!(error_code(&again), "already_decided", "{again}");

    // An integration's own message is held too; rejected, it is never sent.
    let integration = app.token(Role::Integration, None).await;
    let bot = send(&app, &integration, &id, "Refund issued: $40.00", false).await;
    assert_eq!(bot["data"]["sendReply"]["deliveryStatus"], "HELD", "{bot}");
    let pending = held(&app, &id, "PENDING").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["origin"], "integration");
    let empty = app
        .graphql_as(
            &supervisor,
            REJECT,
            json!({ "id": pending[0]["id"], "r": "  " }),
        )
        .await;
    assert_eq!(error_code(&empty), "invalid_input", "{empty}");
    let rejected = app
        .graphql_as(
            &supervisor,
            REJECT,
            json!({ "id": pending[0]["id"], "r": "the refund is not confirmed" }),
        )
        .await;
    assert_eq!(
        rejected["data"]["rejectMessage"]["status"], "REJECTED",
        "{rejected}"
    );
    let bot_id = bot["data"]["sendReply"]["id"].as_str().unwrap();
    message_reaches(&app, &id, bot_id, "REJECTED").await;
    settle().await;
    assert_eq!(
        sends.load(Ordering::SeqCst),
        2,
        "the rejected message never left"
    );
    assert!(held(&app, &id, "PENDING").await.is_empty());
    assert_eq!(held(&app, &id, "REJECTED").await.len(), 1);

    // An unknown id is not found; a malformed one is invalid input.
    let unknown = app
        .graphql_as(&supervisor, APPROVE, json!({ "id": "999999", "t": null }))
        .await;
    assert_eq!(error_code(&unknown), "held_message_not_found", "{unknown}");

    // The auditor reads every step, filtered (entries are chained moments after the
    // events); agents may not read the trail.
    let actions = eventually_some("the decisions are in the audit trail", || {
        let (app, auditor, id) = (&app, &auditor, &id);
        async move {
            let trail = app
                .graphql_as(
                    auditor,
                    "query($f: AuditFilter) { auditLog(filter: $f, first: 50) { entries { actor action subject data } nextBefore } }",
                    json!({ "f": { "subject": format!("conversation:{id}") } }),
                )
                .await;
            let actions: Vec<String> = trail["data"]["auditLog"]["entries"]
                .as_array()
                .unwrap_or_else(|| panic!("{trail}"))
                .iter()
                .rev()
                .map(|e| e["action"].as_str().unwrap().to_owned())
                .collect();
            actions
                .contains(&"conversation.message_rejected".to_owned())
                .then_some(actions)
        }
    })
    .await;
    for expected in [
        "conversation.message_out",
        "conversation.message_held",
        "conversation.message_approved",
        "conversation.message_rejected",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} in {actions:?}"
        );
    }
    let approvals = app
        .graphql_as(
            &auditor,
            "{ auditLog(filter: { action: \"conversation.message_approved\" }) { entries { actor data } } }",
            json!({}),
        )
        .await;
    let entries = approvals["data"]["auditLog"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{approvals}");
    let data: Value = serde_json::from_str(entries[0]["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["edited"], true);
    assert_eq!(
        data.get("original_text"),
        None,
        "what people wrote stays out of the audit log"
    );
    let forbidden = app
        .graphql_as(&agent, "{ auditLog { entries { id } } }", json!({}))
        .await;
    assert_eq!(error_code(&forbidden), "forbidden", "{forbidden}");
    let chain = app.store.verify_audit_chain().await.unwrap();
    assert_eq!(chain.first_broken, None);
}

async fn two_supervisors_approving_at_once_send_the_message_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;
    let id = customer_writes(&app, "5215550002222", "wamid.h1", THREAT).await;
    let draft = send(
        &app,
        &app.admin_token,
        &id,
        "Sorry about that, here is a voucher",
        true,
    )
    .await;
    assert_eq!(
        draft["data"]["sendReply"]["deliveryStatus"], "HELD",
        "{draft}"
    );
    let item = held(&app, &id, "PENDING").await.remove(0);
    assert!(
        item["boundaries"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_or_chargeback_threat")),
        "{item}"
    );
    let (first, second) = (
        app.token(Role::Supervisor, None).await,
        app.token(Role::Supervisor, None).await,
    );
    let (a, b) = futures::join!(
        app.graphql_as(&first, APPROVE, json!({ "id": item["id"], "t": null })),
        app.graphql_as(
            &second,
            APPROVE,
            json!({ "id": item["id"], "t": "edited by the second" })
        ),
    );
    let outcomes: Vec<&str> = [&a, &b]
        .iter()
        .map(|answer| {
            if answer["data"]["approveMessage"].is_object() {
                "approved"
            } else {
                error_code(answer)
            }
        })
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort();
    assert_eq!(sorted, ["already_decided", "approved"], "{a} {b}");
    let message_id = draft["data"]["sendReply"]["id"].as_str().unwrap();
    message_reaches(&app, &id, message_id, "SENT").await;
    settle().await;
    assert_eq!(sends.load(Ordering::SeqCst), 1, "sent exactly once");
    assert_eq!(count_kind(&app, &id, "message_approved").await, 1);
}

async fn surveys_and_closing_messages_pass_the_same_gate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let sends = app.meta_accepts_sends().await;

    // A threat of legal action: the survey after resolution waits for a person.
    let id = customer_writes(&app, "5215550003333", "wamid.s1", THREAT).await;
    reply(&app, &id, "I am sorry, a manager will call you today.").await;
    let resolved = set_status(&app, &id, "RESOLVED").await;
    assert_eq!(
        resolved["data"]["setConversationStatus"]["status"],
        "RESOLVED"
    );
    app.clock.advance(Duration::from_secs(600));
    wait_for_kind(&app, &id, "message_held", 1).await;
    let survey = held(&app, &id, "PENDING").await.remove(0);
    assert_eq!(survey["origin"], "survey");
    assert_eq!(survey["purpose"], "surveys");

    // A silent PENDING dispute: the closing message is held, the case still resolves.
    let other = customer_writes(&app, "5215550004444", "wamid.s2", DISPUTE).await;
    reply(&app, &other, "Could you send us the card statement?").await;
    let pending = set_status(&app, &other, "PENDING").await;
    assert_eq!(
        pending["data"]["setConversationStatus"]["status"],
        "PENDING"
    );
    // A routine case whose customer withdrew consent to service messages by phone: it
    // resolves on its own too, its closing message blocked, never sent.
    let quiet = customer_writes(
        &app,
        "5215550005555",
        "wamid.s3",
        "where is my order 12312312",
    )
    .await;
    reply(&app, &quiet, "It ships today.").await;
    set_status(&app, &quiet, "PENDING").await;
    let withdrawn = app
        .graphql(
            "mutation { recordConsent(waId: \"5215550005555\", purpose: SERVICE, granted: false, note: \"asked by phone\") { waId } }",
            json!({}),
        )
        .await;
    assert!(
        withdrawn["data"]["recordConsent"].is_object(),
        "{withdrawn}"
    );
    app.clock.advance(Duration::from_secs(20 * 3600));
    wait_for_kind(&app, &other, "message_held", 1).await;
    wait_for_kind(&app, &quiet, "message_blocked", 1).await;
    assert_eq!(conversation(&app, &quiet).await["status"], "RESOLVED");
    let blocked = events_of(&app, &quiet)
        .await
        .into_iter()
        .find(|e| e["kind"] == "message_blocked")
        .unwrap();
    assert_eq!(blocked["data"]["reason"], "no_consent", "{blocked}");
    let closing = held(&app, &other, "PENDING").await.remove(0);
    assert_eq!(closing["origin"], "closing");
    assert_eq!(
        conversation(&app, &other).await["status"],
        "RESOLVED",
        "the case resolved all the same"
    );
    settle().await;
    assert_eq!(
        sends.load(Ordering::SeqCst),
        3,
        "only the three agents' replies went out"
    );
    let resolution = events_of(&app, &other)
        .await
        .into_iter()
        .find(|e| e["kind"] == "status_changed" && e["data"]["auto"] == true)
        .unwrap();
    assert_eq!(
        resolution["data"]["closing_message_sent"], false,
        "{resolution}"
    );
    assert_eq!(
        resolution["data"]["closing_message_held"], true,
        "{resolution}"
    );

    // The first case closes after its reopen window: its undecided survey leaves the
    // queue, rejected, never sent.
    app.clock.advance(Duration::from_secs(5 * 3600));
    eventually("the first case closes", || async {
        conversation(&app, &id).await["status"] == "CLOSED"
    })
    .await;
    let expired = held(&app, &id, "REJECTED").await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(
        expired[0]["decisionNote"],
        "the case closed before anyone decided"
    );
    assert!(held(&app, &id, "PENDING").await.is_empty());
}
