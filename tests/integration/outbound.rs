//! Replies through the outbox to a fake Graph API: what is sent, how often, what the
//! provider's answers and later status callbacks do to the message.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const CUSTOMER: &str = "16315551234";

fn sends_path() -> String {
    format!("/v21.0/{PHONE_NUMBER_ID}/messages")
}

/// Bodies of every call the fake Graph API received.
async fn sends(app: &TestApp) -> Vec<Value> {
    app.meta
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == sends_path())
        .map(|r| serde_json::from_slice(&r.body).unwrap_or_default())
        .collect()
}

/// Meta's error answer for `code`.
fn graph_error(status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": message },
            "fbtrace_id": "AbCdEf123"
        }
    }))
}

/// Answers the next `times` sends with `response`, before any other mounted answer.
async fn meta_answers_first(app: &TestApp, response: ResponseTemplate, times: u64) {
    Mock::given(method("POST"))
        .and(path(sends_path()))
        .respond_with(response)
        .up_to_n_times(times)
        .with_priority(1)
        .mount(&app.meta)
        .await;
}

/// A status callback that names our reference but a wamid we never recorded.
fn status_with_callback(wamid: &str, status: &str, message_id: &str) -> String {
    let mut body: Value =
        serde_json::from_str(&status_webhook(wamid, status, None)).unwrap_or_default();
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] =
        json!(format!("parley:{message_id}"));
    body.to_string()
}

fn message_id(message: &Value) -> String {
    message["id"].as_str().unwrap_or_default().to_owned()
}

on_both_databases!(
    reply_is_sent_once_and_its_wamid_recorded,
    delivery_status_moves_forward_and_never_back,
    failed_status_outside_the_window_is_shown_as_such,
    server_error_is_retried_once_the_backoff_has_passed,
    throttled_send_is_retried_after_the_backoff,
    retry_after_from_the_provider_is_honoured,
    retry_after_is_capped_at_the_longest_backoff,
    a_500_or_504_is_an_unknown_outcome_and_never_sent_again,
    refusal_outside_the_window_fails_the_message_without_retry,
    sends_give_up_after_the_configured_attempts,
    status_for_a_send_whose_answer_was_lost_is_matched_by_its_reference,
    free_form_replies_are_refused_once_the_service_window_closes,
    a_customer_past_the_pair_rate_waits_in_order,
);

/// Three quick replies to one customer with a burst of two: two go at once, the third
/// waits for the pair interval (on the service clock), and order holds; another customer
/// is not held up.
async fn a_customer_past_the_pair_rate_waits_in_order(backend: Backend) {
    let config = "[outbound]\npair_burst = 2\npair_interval_ms = 6000\n";
    let Some(app) = spawn_app_with(backend, config).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.pace1", "my parcel never arrived").await;
    for text in ["First.", "Second.", "Third."] {
        reply(&app, &id, text).await;
    }
    let other = customer_writes(&app, "16315550000", "wamid.pace2", "my app crashes").await;
    reply(&app, &other, "For the other customer.").await;
    eventually(
        "the burst and the other customer's reply went out",
        || async { calls.load(Ordering::SeqCst) == 3 },
    )
    .await;
    settle().await;
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "the third waits for the pair rate"
    );
    let queued = app
        .store
        .due_sends(app.clock.now() + 6_000_000, 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].next_attempt_at, app.clock.now() + 6_000_000);

    app.clock.advance(Duration::from_secs(6));
    eventually("the third reply leaves after the interval", || async {
        calls.load(Ordering::SeqCst) == 4
    })
    .await;
    let to_customer: Vec<String> = sends(&app)
        .await
        .iter()
        .filter(|s| s["to"] == CUSTOMER)
        .map(|s| s["text"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(to_customer, ["First.", "Second.", "Third."]);
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

async fn free_form_replies_are_refused_once_the_service_window_closes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hello?").await;
    let window = service_window(&app, &id).await;
    assert_eq!(window["open"], true, "{window}");
    let opened =
        chrono::DateTime::parse_from_rfc3339(window["openedAt"].as_str().unwrap()).unwrap();
    let closes =
        chrono::DateTime::parse_from_rfc3339(window["closesAt"].as_str().unwrap()).unwrap();
    assert_eq!(closes - opened, chrono::Duration::hours(24));

    // One second before it closes a reply goes out; at the closing instant it is refused
    // before Meta is called, with a typed error that says a template is needed.
    app.clock.advance(Duration::from_secs(86_399));
    let ok = message_id(&reply(&app, &id, "Still within the window").await);
    message_reaches(&app, &id, &ok, "SENT").await;
    app.clock.advance(Duration::from_secs(1));
    let refused = app
        .graphql(
            "mutation($id: ID!) { sendReply(conversationId: $id, text: \"Too late\") { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "window_closed", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("template"), "{message}");
    assert_eq!(service_window(&app, &id).await["open"], false);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        messages_of(&app, &id).await.len(),
        2,
        "nothing stored for the refusal"
    );

    // The customer writes again: the window reopens.
    customer_writes(&app, CUSTOMER, "wamid.IN2", "Hello again").await;
    assert_eq!(service_window(&app, &id).await["open"], true);
    let again = message_id(&reply(&app, &id, "Welcome back").await);
    message_reaches(&app, &id, &again, "SENT").await;
}

async fn reply_is_sent_once_and_its_wamid_recorded(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Is my order on its way?").await;

    let queued = reply(&app, &id, "Yes, it ships today.").await;
    assert_eq!(queued["direction"], "OUTBOUND");
    assert_eq!(queued["text"], "Yes, it ships today.");
    let first = message_id(&queued);
    let sent = message_reaches(&app, &id, &first, "SENT").await;
    assert_eq!(sent["providerMessageId"], "wamid.OUT1");
    assert_eq!(sent["error"], Value::Null);

    // A second reply is a barrier: the worker handles sends in order, so a repeat of the
    // first would have happened before this one is recorded.
    let second = message_id(&reply(&app, &id, "Anything else?").await);
    let sent = message_reaches(&app, &id, &second, "SENT").await;
    assert_eq!(sent["providerMessageId"], "wamid.OUT2");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "each reply is sent exactly once"
    );

    let requests = app.meta.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    let request = &requests[0];
    assert_eq!(request.url.path(), sends_path());
    assert_eq!(
        request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer test-access-token")
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], CUSTOMER);
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "Yes, it ships today.");
    assert_eq!(body["biz_opaque_callback_data"], format!("parley:{first}"));
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap_or_default();
    assert_eq!(body["biz_opaque_callback_data"], format!("parley:{second}"));

    let outbound = messages_of(&app, &id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "OUTBOUND")
        .count();
    assert_eq!(outbound, 2);
    let sent_events = events_of(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "message_status" && e["data"]["status"] == "sent")
        .count();
    assert_eq!(sent_events, 2);
}

async fn delivery_status_moves_forward_and_never_back(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hello?").await;
    let message = message_id(&reply(&app, &id, "Hi! How can I help?").await);
    message_reaches(&app, &id, &message, "SENT").await;

    app.post_webhook(&status_webhook("wamid.OUT1", "delivered", None))
        .await;
    message_reaches(&app, &id, &message, "DELIVERED").await;
    app.post_webhook(&status_webhook("wamid.OUT1", "read", None))
        .await;
    message_reaches(&app, &id, &message, "READ").await;

    // Callbacks arrive out of order: a late `sent`, and a `failed` after delivery.
    let late = app
        .post_webhook(&status_webhook("wamid.OUT1", "sent", None))
        .await;
    assert_eq!(late.status(), 200);
    let errors = json!([{ "code": 131026, "title": "Message undeliverable" }]);
    app.post_webhook(&status_webhook("wamid.OUT1", "failed", Some(errors)))
        .await;
    eventually("all four callbacks are recorded", || async {
        app.count("message_statuses").await == 4
    })
    .await;
    all_webhooks_applied(&app).await;

    let current = messages_of(&app, &id)
        .await
        .into_iter()
        .find(|m| m["id"] == message.as_str())
        .unwrap_or_default();
    assert_eq!(current["deliveryStatus"], "READ");
    assert_eq!(current["error"], Value::Null);
    let progress: Vec<Value> = events_of(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "message_status")
        .map(|e| e["data"]["status"].clone())
        .collect();
    assert_eq!(progress, [json!("sent"), json!("delivered"), json!("read")]);
}

async fn failed_status_outside_the_window_is_shown_as_such(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "Following up on your case").await);
    message_reaches(&app, &id, &message, "SENT").await;

    let errors = json!([{
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." }
    }]);
    app.post_webhook(&status_webhook("wamid.OUT1", "failed", Some(errors)))
        .await;
    let failed = message_reaches(&app, &id, &message, "FAILED").await;

    assert_eq!(failed["error"]["code"], "131047");
    assert_eq!(failed["error"]["reason"], "OUTSIDE_WINDOW");
    let title = failed["error"]["title"].as_str().unwrap_or_default();
    assert!(title.contains("Re-engagement message"), "{title}");
    let logged = events_of(&app, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "message_status" && e["data"]["status"] == "failed")
        .unwrap_or_default();
    assert_eq!(logged["data"]["error"]["code"], "131047");
}

async fn server_error_is_retried_once_the_backoff_has_passed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    meta_answers_first(&app, ResponseTemplate::new(503).set_body_string("oops"), 1).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "We are looking into it.").await);

    let (attempts, due) = eventually_some("the failed attempt is recorded", || async {
        queued_retry(&app, &message).await
    })
    .await;
    assert_eq!(attempts, 1);
    assert_eq!(
        due,
        app.clock.now() + 1_000_000,
        "first retry after initial_backoff_ms"
    );

    // Just short of the backoff nothing is sent; the worker waits on the clock, not on us.
    app.clock.advance(Duration::from_millis(999));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sends(&app).await.len(),
        1,
        "retried before the backoff passed"
    );
    assert_eq!(
        messages_of(&app, &id)
            .await
            .last()
            .map(|m| m["deliveryStatus"].clone()),
        Some(json!("PENDING"))
    );

    app.clock.advance(Duration::from_millis(1));
    let sent = message_reaches(&app, &id, &message, "SENT").await;
    assert_eq!(sent["providerMessageId"], "wamid.OUT1");
    let bodies = sends(&app).await;
    assert_eq!(
        bodies.len(),
        2,
        "one failed attempt and one successful send"
    );
    assert_eq!(bodies[0], bodies[1], "the retry sends the same message");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let outbound = messages_of(&app, &id)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "OUTBOUND")
        .count();
    assert_eq!(outbound, 1);
}

async fn throttled_send_is_retried_after_the_backoff(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    meta_answers_first(&app, graph_error(400, 130429, "Rate limit hit"), 1).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "One moment please.").await);

    eventually_some("the throttled attempt is recorded", || async {
        queued_retry(&app, &message).await
    })
    .await;
    app.clock.advance(Duration::from_secs(1));
    message_reaches(&app, &id, &message, "SENT").await;
    assert_eq!(sends(&app).await.len(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

async fn refusal_outside_the_window_fails_the_message_without_retry(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    let refusal = "(#131047) Re-engagement message";
    meta_answers_first(&app, graph_error(400, 131047, refusal), 1).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "Are you still interested?").await);

    let failed = message_reaches(&app, &id, &message, "FAILED").await;
    assert_eq!(failed["error"]["code"], "131047");
    assert_eq!(failed["error"]["reason"], "OUTSIDE_WINDOW");
    assert_eq!(failed["providerMessageId"], Value::Null);
    assert!(
        failed["error"]["title"]
            .as_str()
            .unwrap_or_default()
            .contains("Re-engagement message"),
        "{failed}"
    );

    // Long after any backoff, a later reply goes out and the refused one does not: the
    // worker takes the oldest due send first, so a retry would have come before it.
    app.clock.advance(Duration::from_secs(86_400));
    customer_writes(&app, CUSTOMER, "wamid.IN2", "Any news?").await;
    let later = message_id(&reply(&app, &id, "A later reply").await);
    message_reaches(&app, &id, &later, "SENT").await;
    let bodies = sends(&app).await;
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(
        bodies[1]["biz_opaque_callback_data"],
        format!("parley:{later}")
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let still = messages_of(&app, &id)
        .await
        .into_iter()
        .find(|m| m["id"] == message.as_str())
        .unwrap_or_default();
    assert_eq!(still["deliveryStatus"], "FAILED");
    assert_eq!(queued_retry(&app, &message).await, None);
}

async fn sends_give_up_after_the_configured_attempts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    meta_answers_first(&app, ResponseTemplate::new(503), 100).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "Hello from support").await);

    // max_attempts = 4: waits of 1 s, 2 s and 4 s between them.
    for (attempts, wait) in [(1, 1), (2, 2), (3, 4)] {
        let (recorded, due) = eventually_some("the attempt is recorded", || async {
            queued_retry(&app, &message)
                .await
                .filter(|(n, _)| *n == attempts)
        })
        .await;
        assert_eq!(
            due,
            app.clock.now() + wait * 1_000_000,
            "backoff after attempt {recorded}"
        );
        app.clock.advance(Duration::from_secs(wait as u64));
    }
    let failed = message_reaches(&app, &id, &message, "FAILED").await;
    assert_eq!(failed["error"]["code"], "retries_exhausted");
    assert_eq!(sends(&app).await.len(), 4);
    app.clock.advance(Duration::from_secs(3_600));
    assert_eq!(queued_retry(&app, &message).await, None);
}

async fn status_for_a_send_whose_answer_was_lost_is_matched_by_its_reference(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Meta accepts the call but its answer carries no message id.
    meta_answers_first(
        &app,
        ResponseTemplate::new(200).set_body_json(json!({ "messaging_product": "whatsapp" })),
        1,
    )
    .await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "Your refund is on its way.").await);
    let unknown = message_reaches(&app, &id, &message, "FAILED").await;
    assert_eq!(unknown["error"]["reason"], "OUTCOME_UNKNOWN");
    assert_eq!(unknown["providerMessageId"], Value::Null);

    app.post_webhook(&status_with_callback("wamid.LOST1", "delivered", &message))
        .await;
    let delivered = message_reaches(&app, &id, &message, "DELIVERED").await;
    assert_eq!(delivered["providerMessageId"], "wamid.LOST1");
    assert_eq!(delivered["error"], Value::Null);

    // From now on the wamid alone finds it.
    app.post_webhook(&status_webhook("wamid.LOST1", "read", None))
        .await;
    message_reaches(&app, &id, &message, "READ").await;
    assert_eq!(
        sends(&app).await.len(),
        1,
        "an unknown outcome is never resent"
    );
}

async fn retry_after_from_the_provider_is_honoured(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    let throttled = graph_error(429, 130429, "Rate limit hit").insert_header("Retry-After", "30");
    meta_answers_first(&app, throttled, 1).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "One moment please.").await);

    let (_, due) = eventually_some("the throttled attempt is recorded", || async {
        queued_retry(&app, &message).await
    })
    .await;
    assert_eq!(
        due,
        app.clock.now() + 30_000_000,
        "the provider asked for 30 s"
    );
    app.clock.advance(Duration::from_secs(30));
    message_reaches(&app, &id, &message, "SENT").await;
    assert_eq!(sends(&app).await.len(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A provider asking for a pause longer than `max_backoff_ms` waits that long, no more.
async fn retry_after_is_capped_at_the_longest_backoff(backend: Backend) {
    let Some(app) = spawn_app_with(backend, "[outbound]\nmax_backoff_ms = 60000\n").await else {
        return;
    };
    let accepted = app.meta_accepts_sends().await;
    let throttled =
        graph_error(429, 130429, "Rate limit hit").insert_header("Retry-After", "86400");
    meta_answers_first(&app, throttled, 1).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    let message = message_id(&reply(&app, &id, "One moment please.").await);

    let (_, due) = eventually_some("the throttled attempt is recorded", || async {
        queued_retry(&app, &message).await
    })
    .await;
    assert_eq!(due, app.clock.now() + 60_000_000, "capped at 60 s");
    app.clock.advance(Duration::from_secs(60));
    message_reaches(&app, &id, &message, "SENT").await;
    assert_eq!(sends(&app).await.len(), 2);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A 500 or a 504 may come after Meta accepted the message: it is marked unknown and
/// never sent again, however long one waits.
async fn a_500_or_504_is_an_unknown_outcome_and_never_sent_again(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.IN1", "Hi").await;
    for (n, status) in [500_u16, 504].into_iter().enumerate() {
        let answer = graph_error(status, 1, "An unknown error occurred");
        meta_answers_first(&app, answer, 1).await;
        let message = message_id(&reply(&app, &id, &format!("Reply {n}")).await);
        let failed = message_reaches(&app, &id, &message, "FAILED").await;
        assert_eq!(failed["error"]["code"], "outcome_unknown", "{failed}");
        assert_eq!(queued_retry(&app, &message).await, None);
    }
    app.clock.advance(Duration::from_secs(3600));
    settle().await;
    assert_eq!(sends(&app).await.len(), 2, "each sent once, never again");
}
