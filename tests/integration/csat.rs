//! Closing the loop and the satisfaction survey through the real webhook and GraphQL,
//! with the manual clock: surveys sent, answered and stored; low scores followed up
//! once; no survey after a reopen or an opt-out; silent PENDING cases resolved with a
//! closing message and marked automatic; resolved cases closed after the reopen window.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    a_resolved_case_is_surveyed_and_a_low_score_gets_one_follow_up,
    no_survey_after_a_reopen_or_an_opt_out,
    silent_pending_cases_resolve_with_a_closing_message_and_resolved_ones_close,
    the_closing_message_and_the_survey_speak_the_customers_language,
);

const DELAY: Duration = Duration::from_secs(600);

fn list_reply_webhook(wa_id: &str, wamid: &str, id: &str, title: &str, timestamp: i64) -> String {
    message_webhook(
        wa_id,
        json!({
            "from": wa_id, "id": wamid, "timestamp": timestamp.to_string(),
            "type": "interactive",
            "interactive": { "type": "list_reply", "list_reply": { "id": id, "title": title } }
        }),
    )
}

async fn case_state(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { status reopenCount autoResolved team { id } csat { via score comment surveyedAt answeredAt teamId } } }",
            json!({ "id": id }),
        )
        .await;
    answer["data"]["conversation"].clone()
}

/// A case the customer opened and an agent answered, then resolved.
async fn answered_and_resolved(app: &TestApp, wa_id: &str) -> String {
    let id = customer_writes(
        app,
        wa_id,
        &format!("wamid.{wa_id}.1"),
        "where is my order 12312312",
    )
    .await;
    reply(app, &id, "It ships today.").await;
    let resolved = set_status(app, &id, "RESOLVED").await;
    assert_eq!(
        resolved["data"]["setConversationStatus"]["status"], "RESOLVED",
        "{resolved}"
    );
    id
}

async fn a_resolved_case_is_surveyed_and_a_low_score_gets_one_follow_up(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let wa_id = "5511966660001";
    let id = answered_and_resolved(&app, wa_id).await;

    app.clock.advance(DELAY - Duration::from_secs(1));
    settle().await;
    assert_eq!(
        count_kind(&app, &id, "csat_sent").await,
        0,
        "not before the delay"
    );
    app.clock.advance(Duration::from_secs(1));
    wait_for_kind(&app, &id, "csat_sent", 1).await;
    let survey = eventually_some("the survey reaches Meta", || async {
        sent_payloads(&app)
            .await
            .into_iter()
            .find(|p| p["type"] == "interactive")
    })
    .await;
    assert_eq!(survey["interactive"]["type"], "list", "{survey}");
    assert_eq!(
        survey["interactive"]["body"]["text"],
        "How would you rate your support experience?"
    );
    let rows = survey["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 5, "{survey}");
    let two = rows
        .iter()
        .find(|r| r["title"].as_str().unwrap().starts_with('2'))
        .unwrap();

    // The customer picks 2: stored, not a new support request.
    let timestamp = app.clock.now() / 1_000_000;
    let answer = list_reply_webhook(
        wa_id,
        "wamid.csat.answer",
        two["id"].as_str().unwrap(),
        two["title"].as_str().unwrap(),
        timestamp,
    );
    assert_eq!(app.post_webhook(&answer).await.status(), 200);
    wait_for_kind(&app, &id, "csat_answered", 1).await;
    // Redelivered by Meta: recorded once.
    assert_eq!(app.post_webhook(&answer).await.status(), 200);
    wait_for_kind(&app, &id, "csat_follow_up_sent", 1).await;
    all_webhooks_applied(&app).await;
    let case = case_state(&app, &id).await;
    assert_eq!(case["status"], "RESOLVED", "{case}");
    assert_eq!(case["reopenCount"], 0);
    assert_eq!(case["csat"]["score"], 2);
    assert_eq!(case["csat"]["via"], "interactive");
    assert_eq!(case["csat"]["teamId"], case["team"]["id"]);
    assert_eq!(count_kind(&app, &id, "csat_answered").await, 1);

    customer_writes(
        &app,
        wa_id,
        "wamid.csat.comment",
        "it took two days to get an answer",
    )
    .await;
    wait_for_kind(&app, &id, "csat_comment", 1).await;
    let case = case_state(&app, &id).await;
    assert_eq!(case["csat"]["comment"], "it took two days to get an answer");
    assert_eq!(case["status"], "RESOLVED");
    assert_eq!(count_kind(&app, &id, "csat_follow_up_sent").await, 1);

    let summary = app
        .graphql(
            "{ csatSummary { surveyed answered responseRate averageScore satisfiedShare byScore } }",
            json!({}),
        )
        .await;
    let summary = &summary["data"]["csatSummary"];
    assert_eq!(summary["surveyed"], 1, "{summary}");
    assert_eq!(summary["answered"], 1);
    assert_eq!(summary["responseRate"], 1.0);
    assert_eq!(summary["averageScore"], 2.0);
    assert_eq!(summary["byScore"], json!([0, 1, 0, 0, 0]));

    // Much later: no second survey for the same case.
    app.clock.advance(Duration::from_secs(3600));
    settle().await;
    assert_eq!(count_kind(&app, &id, "csat_sent").await, 1);
}

async fn no_survey_after_a_reopen_or_an_opt_out(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    // The customer writes again during the delay: the case reopens, no survey.
    let wa_id = "5511966660002";
    let id = answered_and_resolved(&app, wa_id).await;
    app.clock.advance(Duration::from_secs(120));
    customer_writes(
        &app,
        wa_id,
        "wamid.again",
        "actually the tracking link is broken",
    )
    .await;
    assert_ne!(case_state(&app, &id).await["status"], "RESOLVED");
    app.clock.advance(DELAY);
    settle().await;
    assert_eq!(count_kind(&app, &id, "csat_sent").await, 0);
    assert_eq!(count_kind(&app, &id, "csat_skipped").await, 0);

    // A contact who opted out of surveys is never surveyed.
    let other = "5511966660003";
    let id = customer_writes(&app, other, "wamid.o1", "where is my order 45645645").await;
    customer_writes(&app, other, "wamid.o2", "STOP").await;
    reply(&app, &id, "It ships today.").await;
    set_status(&app, &id, "RESOLVED").await;
    app.clock.advance(DELAY);
    wait_for_kind(&app, &id, "csat_skipped", 1).await;
    let skipped = events_of(&app, &id)
        .await
        .into_iter()
        .find(|e| e["kind"] == "csat_skipped")
        .unwrap();
    assert!(
        skipped["data"].to_string().contains("opted_out"),
        "{skipped}"
    );
    assert_eq!(count_kind(&app, &id, "csat_sent").await, 0);

    // A case nobody answered (noise closed by an agent) is not surveyed either.
    let third = "5511966660004";
    let id = customer_writes(&app, third, "wamid.n1", "where is my order 78978978").await;
    set_status(&app, &id, "RESOLVED").await;
    app.clock.advance(DELAY);
    wait_for_kind(&app, &id, "csat_skipped", 1).await;
    assert_eq!(count_kind(&app, &id, "csat_sent").await, 0);
}

async fn silent_pending_cases_resolve_with_a_closing_message_and_resolved_ones_close(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let wa_id = "5511966660005";
    let id = customer_writes(&app, wa_id, "wamid.p1", "where is my order 32132132").await;
    reply(&app, &id, "Could you send the order email?").await;
    set_status(&app, &id, "PENDING").await;

    // Silence for just under the 20 hours configured by default: still waiting.
    app.clock.advance(Duration::from_secs(20 * 3600 - 60));
    settle().await;
    assert_eq!(case_state(&app, &id).await["status"], "PENDING");
    app.clock.advance(Duration::from_secs(60));
    eventually("the silent case is resolved", || async {
        case_state(&app, &id).await["status"] == "RESOLVED"
    })
    .await;
    let case = case_state(&app, &id).await;
    assert_eq!(case["autoResolved"], true, "{case}");
    let resolved = events_of(&app, &id)
        .await
        .into_iter()
        .rfind(|e| e["kind"] == "status_changed")
        .unwrap();
    let data: Value = match &resolved["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(data["auto"], true, "{data}");
    assert_eq!(data["to"], "resolved");
    assert_eq!(data["closing_message_sent"], true);
    // The closing message reached the customer (inside the 24-hour window).
    text_reaches_meta(&app, "We haven't heard back").await;
    // An auto-resolution is still surveyed (someone answered the customer).
    app.clock.advance(DELAY);
    wait_for_kind(&app, &id, "csat_sent", 1).await;

    // An agent's resolution is not automatic.
    let other = "5511966660006";
    let second = answered_and_resolved(&app, other).await;
    assert_eq!(case_state(&app, &second).await["autoResolved"], false);

    // After the reopen window (24 h in the tests) a resolved case closes for good.
    app.clock.advance(Duration::from_secs(24 * 3600));
    eventually("the resolved cases close", || async {
        case_state(&app, &id).await["status"] == "CLOSED"
            && case_state(&app, &second).await["status"] == "CLOSED"
    })
    .await;
    // A message now opens a new case.
    let third = customer_writes(&app, wa_id, "wamid.p3", "hello again, one more question").await;
    assert_ne!(third, id);
}

async fn the_closing_message_and_the_survey_speak_the_customers_language(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let wa_id = "34600990001";
    let id = customer_writes(
        &app,
        wa_id,
        "wamid.es.1",
        "hola, dónde está mi pedido? lo compré hace una semana y todavía no llega",
    )
    .await;
    let language = app
        .graphql(
            "query($id: ID!) { conversation(id: $id) { language } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        language["data"]["conversation"]["language"], "es",
        "{language}"
    );
    reply(&app, &id, "¿Nos envías el correo del pedido?").await;
    set_status(&app, &id, "PENDING").await;
    app.clock.advance(Duration::from_secs(20 * 3600));
    // The closing message and the survey, in Spanish ([texts.es] in the shipped config).
    text_reaches_meta(&app, "Como no hemos tenido noticias tuyas").await;
    app.clock.advance(DELAY);
    wait_for_kind(&app, &id, "csat_sent", 1).await;
    let survey = eventually_some("the survey reaches Meta", || async {
        sent_payloads(&app)
            .await
            .into_iter()
            .find(|p| p["type"] == "interactive")
    })
    .await;
    let interactive = &survey["interactive"];
    assert_eq!(
        interactive["body"]["text"],
        "¿Cómo valorarías la atención que recibiste?"
    );
    assert_eq!(interactive["action"]["button"], "Valorar", "{survey}");
    let rows = interactive["action"]["sections"][0]["rows"]
        .as_array()
        .unwrap();
    let one = rows.iter().find(|r| r["title"] == "1 - Muy mala").unwrap();
    // A low score gets the follow-up in Spanish too.
    let timestamp = app.clock.now() / 1_000_000;
    let answer = list_reply_webhook(
        wa_id,
        "wamid.es.csat",
        one["id"].as_str().unwrap(),
        "1 - Muy mala",
        timestamp,
    );
    assert_eq!(app.post_webhook(&answer).await.status(), 200);
    eventually_some("the Spanish follow-up reaches Meta", || async {
        sent_payloads(&app)
            .await
            .into_iter()
            .find(|p| p["text"]["body"] == "Gracias. ¿Qué podríamos haber hecho mejor?")
    })
    .await;
}

/// Waits until a text message starting with `start` has been sent to Meta.
async fn text_reaches_meta(app: &TestApp, start: &str) {
    eventually_some(
        &format!("a message starting {start:?} reaches Meta"),
        || async {
            sent_payloads(app).await.into_iter().find(|p| {
                p["text"]["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with(start))
            })
        },
    )
    .await;
}
