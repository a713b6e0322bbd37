//! The 24-hour customer service window on Meta's clock, through signed webhooks and a
//! fake Graph API: a message opens the window when the customer sent it (Cloud API
//! `timestamp`), however late the webhook arrives; a 131047 refusal closes it on the case;
//! replies, the survey and the closing message all follow the same window.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

on_both_databases!(
    a_message_delivered_late_opens_the_window_when_it_was_sent,
    a_refusal_outside_the_window_closes_it_on_the_case,
    a_failed_status_outside_the_window_closes_it_too,
    the_survey_and_the_closing_message_follow_meta_s_clock,
);

const CUSTOMER: &str = "16315551234";
const HOUR: i64 = 3600;

/// Posts a text the customer sent `ago_secs` before now (by the service clock) and waits
/// until it is applied; answers its conversation.
async fn customer_wrote_ago(app: &TestApp, wamid: &str, body: &str, ago_secs: i64) -> String {
    let stamped = app.clock.now() / 1_000_000 - ago_secs;
    let response = app
        .post_webhook(&text_webhook(CUSTOMER, wamid, body, stamped))
        .await;
    assert_eq!(response.status(), 200, "webhook for {wamid} refused");
    conversation_holding(app, CUSTOMER, wamid).await
}

async fn service_window(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { serviceWindow { open openedAt closesAt } } }",
            json!({ "id": id }),
        )
        .await;
    answer["data"]["conversation"]["serviceWindow"].clone()
}

/// Seconds since the Unix epoch of an RFC 3339 field.
fn unix(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
        .unwrap_or_else(|_| panic!("not a date-time: {value}"))
        .timestamp()
}

fn now_secs(app: &TestApp) -> i64 {
    app.clock.now() / 1_000_000
}

async fn try_reply(app: &TestApp, id: &str, text: &str) -> Value {
    app.graphql(
        "mutation($c: ID!, $t: String!) { sendReply(conversationId: $c, text: $t) { id } }",
        json!({ "c": id, "t": text }),
    )
    .await
}

async fn a_message_delivered_late_opens_the_window_when_it_was_sent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;

    // Meta retried the webhook for 25 hours: the window it opened has already closed.
    let id = customer_wrote_ago(&app, "wamid.late", "my parcel never came", 25 * HOUR).await;
    let window = service_window(&app, &id).await;
    assert_eq!(window["open"], false, "{window}");
    assert_eq!(unix(&window["openedAt"]), now_secs(&app) - 25 * HOUR);
    assert_eq!(unix(&window["closesAt"]), now_secs(&app) - HOUR);
    let refused = try_reply(&app, &id, "Sorry for the wait").await;
    assert_eq!(error_code(&refused), "window_closed", "{refused}");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 0, "Meta was not called");

    // A message stamped an hour ago keeps the window open for 23 more hours, not 24.
    customer_wrote_ago(&app, "wamid.hour", "hello? anyone?", HOUR).await;
    let window = service_window(&app, &id).await;
    assert_eq!(window["open"], true, "{window}");
    assert_eq!(unix(&window["closesAt"]), now_secs(&app) + 23 * HOUR);

    // A late redelivery of an older message does not move the window back.
    customer_wrote_ago(&app, "wamid.older", "also, the box was wet", 2 * HOUR).await;
    let window = service_window(&app, &id).await;
    assert_eq!(unix(&window["closesAt"]), now_secs(&app) + 23 * HOUR);

    // The gate agrees with `serviceWindow` to the second.
    app.clock.advance(Duration::from_secs(23 * HOUR as u64 - 1));
    let ok = reply(&app, &id, "It ships today").await;
    message_reaches(&app, &id, ok["id"].as_str().unwrap(), "SENT").await;
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(service_window(&app, &id).await["open"], false);
    let refused = try_reply(&app, &id, "Too late").await;
    assert_eq!(error_code(&refused), "window_closed", "{refused}");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

async fn a_refusal_outside_the_window_closes_it_on_the_case(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    Mock::given(method("POST"))
        .and(path(format!("/v21.0/{PHONE_NUMBER_ID}/messages")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {
                "message": "(#131047) Re-engagement message",
                "type": "OAuthException",
                "code": 131047,
                "error_data": { "messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
                "fbtrace_id": "AbCdEf123"
            }
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&app.meta)
        .await;

    let id = customer_wrote_ago(&app, "wamid.IN1", "is my refund coming?", 0).await;
    let refused_at = now_secs(&app);
    let first = reply(&app, &id, "Let me check").await;
    let failed = message_reaches(&app, &id, first["id"].as_str().unwrap(), "FAILED").await;
    assert_eq!(failed["error"]["code"], "131047", "{failed}");
    wait_for_kind(&app, &id, "window_closed", 1).await;

    // Meta's word stands: closed now, although our own reckoning said 24 hours.
    let window = service_window(&app, &id).await;
    assert_eq!(window["open"], false, "{window}");
    assert_eq!(unix(&window["closesAt"]), refused_at);
    let again = try_reply(&app, &id, "Hello?").await;
    assert_eq!(error_code(&again), "window_closed", "{again}");
    settle().await;
    assert_eq!(
        app.meta.received_requests().await.unwrap_or_default().len(),
        1,
        "no second call to Meta"
    );

    // The customer writes again: a new window opens and replies go out.
    app.clock.advance(Duration::from_secs(60));
    customer_wrote_ago(&app, "wamid.IN2", "still waiting", 0).await;
    assert_eq!(service_window(&app, &id).await["open"], true);
    let later = reply(&app, &id, "Refund issued").await;
    message_reaches(&app, &id, later["id"].as_str().unwrap(), "SENT").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// Meta often accepts the send and reports the refusal later, in a `failed` status.
async fn a_failed_status_outside_the_window_closes_it_too(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;
    let id = customer_wrote_ago(&app, "wamid.IN1", "any news on my claim?", 0).await;
    let first = reply(&app, &id, "Following up on your claim").await;
    message_reaches(&app, &id, first["id"].as_str().unwrap(), "SENT").await;
    assert_eq!(service_window(&app, &id).await["open"], true);

    let errors = json!([{
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." }
    }]);
    let status =
        status_webhook("wamid.OUT1", "failed", Some(errors)).replace("16315551234", CUSTOMER);
    assert_eq!(app.post_webhook(&status).await.status(), 200);
    wait_for_kind(&app, &id, "window_closed", 1).await;
    let window = service_window(&app, &id).await;
    assert_eq!(window["open"], false, "{window}");
    let again = try_reply(&app, &id, "Hello?").await;
    assert_eq!(error_code(&again), "window_closed", "{again}");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no second call to Meta");
}

async fn case_csat_and_status(app: &TestApp, id: &str) -> Value {
    app.graphql(
        "query($id: ID!) { conversation(id: $id) { status csat { via } } }",
        json!({ "id": id }),
    )
    .await["data"]["conversation"]
        .clone()
}

async fn the_survey_and_the_closing_message_follow_meta_s_clock(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;

    // Sent 23 h 55 min ago, delivered now: by the survey (10 minutes after resolving)
    // the window has closed, and without a survey template the survey is skipped.
    let id = customer_wrote_ago(
        &app,
        "wamid.s1",
        "where is my order 12312312",
        23 * HOUR + 3300,
    )
    .await;
    reply(&app, &id, "It ships today.").await;
    set_status(&app, &id, "RESOLVED").await;
    app.clock.advance(Duration::from_secs(600));
    wait_for_kind(&app, &id, "csat_skipped", 1).await;
    let skipped = events_of(&app, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "csat_skipped")
        .unwrap_or_default();
    let data: Value = match &skipped["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
        other => other.clone(),
    };
    assert_eq!(data["reason"], "window_closed", "{skipped}");
    assert_eq!(count_kind(&app, &id, "csat_sent").await, 0);
    assert_eq!(case_csat_and_status(&app, &id).await["csat"], Value::Null);

    // Sent 5 hours ago: the silent PENDING case resolves after 20 hours of silence,
    // when Meta's window closed an hour earlier; the closing message is not sent.
    let other = "5511966660009";
    let stamped = now_secs(&app) - 5 * HOUR;
    app.post_webhook(&text_webhook(
        other,
        "wamid.p1",
        "where is my order 32132132",
        stamped,
    ))
    .await;
    let pending = conversation_holding(&app, other, "wamid.p1").await;
    let asked = reply(&app, &pending, "Could you send the order email?").await;
    message_reaches(&app, &pending, asked["id"].as_str().unwrap(), "SENT").await;
    set_status(&app, &pending, "PENDING").await;
    let sent_before = sent_payloads(&app).await.len();
    app.clock.advance(Duration::from_secs(20 * HOUR as u64));
    eventually("the silent case is resolved", || async {
        case_csat_and_status(&app, &pending).await["status"] == "RESOLVED"
    })
    .await;
    let resolved = events_of(&app, &pending)
        .await
        .into_iter()
        .rfind(|e| e["kind"] == "status_changed")
        .unwrap_or_default();
    let data: Value = match &resolved["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap_or_default(),
        other => other.clone(),
    };
    assert_eq!(data["closing_message_sent"], false, "{data}");
    settle().await;
    assert_eq!(sent_payloads(&app).await.len(), sent_before);
}
