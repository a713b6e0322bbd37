//! The SLA clock and escalations through the real webhook and GraphQL, with the manual
//! clock driving time: warnings and breaches on time across business hours and pauses,
//! escalations with their packet, deadlines that survive a restart, policy reloads.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    warnings_breaches_and_escalation_fire_on_time_and_once,
    business_hours_and_pending_pause_the_clock,
    deadlines_survive_a_restart_and_fire_once,
    a_manager_request_and_an_agent_escalate_with_a_packet,
    an_sla_policy_edit_applies_to_open_cases_and_a_mistake_is_refused,
);

const SLA_FIELDS: &str = "team { name } priority sla { priority vip team businessHours timeZone paused nextAlarmAt policySha256 replayMatches escalations targets { target cycle state startedAt stoppedAt stoppedBy targetSeconds elapsedSeconds warnAt dueAt escalateAt } pauses { from to reason } alarms { target cycle kind dueAt recordedAt } }";

async fn sla_case(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            &format!("query($id: ID!) {{ conversation(id: $id) {{ {SLA_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    let case = answer["data"]["conversation"].clone();
    assert!(case.is_object(), "{answer}");
    case
}

fn target<'a>(case: &'a Value, name: &str, cycle: i64) -> &'a Value {
    case["sla"]["targets"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["target"] == name && t["cycle"] == cycle)
        })
        .unwrap_or_else(|| panic!("no {name} target: {case}"))
}

fn micros(value: &Value) -> i64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a date: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp_micros()
}

/// Moves the manual clock to `at` (never backwards).
fn advance_to(app: &TestApp, at: i64) {
    let now = app.clock.now();
    if at > now {
        app.clock.advance(Duration::from_micros((at - now) as u64));
    }
}

async fn warnings_breaches_and_escalation_fire_on_time_and_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(
        &app,
        "5511977770001",
        "wamid.S1",
        "where is my order 12345678, it has not arrived yet",
    )
    .await;
    let case = sla_case(&app, &id).await;
    assert_eq!(case["team"]["name"], "tier1_care", "{case}");
    assert_eq!(case["sla"]["businessHours"], true);
    assert_eq!(
        case["sla"]["timeZone"], "UTC",
        "tier 1 is open around the clock"
    );
    let first = target(&case, "first_response", 0).clone();
    assert_eq!(first["state"], "RUNNING");
    let started = micros(&first["startedAt"]);
    let length = first["targetSeconds"].as_i64().unwrap() * 1_000_000;
    let warn_at = micros(&first["warnAt"]);
    let due_at = micros(&first["dueAt"]);
    let escalate_at = micros(&first["escalateAt"]);
    assert_eq!(warn_at, started + length * 3 / 4);
    assert_eq!(due_at, started + length);
    assert!(escalate_at > due_at, "{first}");
    assert_eq!(micros(&case["sla"]["nextAlarmAt"]), warn_at);

    advance_to(&app, warn_at - 1_000_000);
    settle().await;
    assert_eq!(
        count_kind(&app, &id, "sla_warning").await,
        0,
        "no warning before 75 %"
    );
    advance_to(&app, warn_at);
    wait_for_kind(&app, &id, "sla_warning", 1).await;
    assert_eq!(count_kind(&app, &id, "sla_breached").await, 0);

    advance_to(&app, due_at);
    wait_for_kind(&app, &id, "sla_breached", 1).await;
    let breached = sla_case(&app, &id).await;
    assert_eq!(target(&breached, "first_response", 0)["state"], "BREACHED");
    let alarms = breached["sla"]["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2, "{breached}");
    assert_eq!(micros(&alarms[1]["dueAt"]), due_at);
    assert_eq!(
        micros(&alarms[1]["recordedAt"]),
        due_at,
        "recorded when it was due"
    );
    assert_eq!(breached["sla"]["replayMatches"], true);

    // Escalate-after with no first response: up the ladder, with the packet.
    advance_to(&app, escalate_at);
    wait_for_kind(&app, &id, "escalated", 1).await;
    let events = events_of(&app, &id).await;
    let escalated = events.iter().find(|e| e["kind"] == "escalated").unwrap();
    let data: Value = match &escalated["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        other => other.clone(),
    };
    assert_eq!(data["trigger"], "no_first_response", "{data}");
    assert_eq!(data["from_team"], "tier1_care");
    assert_eq!(data["to_team"], "management");
    assert_eq!(data["to_level"], 4);
    let packet = &data["packet"];
    assert!(
        packet["summary"]
            .as_str()
            .unwrap()
            .contains("where is my order"),
        "{packet}"
    );
    assert_eq!(packet["identifiers"]["order_ids"], json!(["12345678"]));
    assert!(packet["tags"]["intents"].is_array(), "{packet}");
    assert!(
        packet["sla"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["target"] == "first_response" && t["state"] == "breached"),
        "{packet}"
    );
    let moved = sla_case(&app, &id).await;
    assert_eq!(moved["team"]["name"], "management", "{moved}");
    assert_eq!(moved["sla"]["escalations"], json!(["no_first_response"]));

    // Much later: nothing fired twice.
    app.clock.advance(Duration::from_secs(3600));
    settle().await;
    assert_eq!(count_kind(&app, &id, "sla_warning").await, 1);
    assert_eq!(count_kind(&app, &id, "sla_breached").await, 1);
    assert_eq!(count_kind(&app, &id, "escalated").await, 1);
    assert_eq!(sla_case(&app, &id).await["sla"]["replayMatches"], true);
}

/// 2022-11-24 08:00 UTC: Thursday 09:00 in Madrid, when finance opens after the night
/// the test starts in (Wednesday 21:02 Madrid).
const THURSDAY_OPENING: i64 = 1_669_276_800_000_000;

async fn business_hours_and_pending_pause_the_clock(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let wa_id = "5511977770002";
    let id = customer_writes(
        &app,
        wa_id,
        "wamid.F1",
        "you charged my card twice for the same order",
    )
    .await;
    let case = sla_case(&app, &id).await;
    assert_eq!(case["team"]["name"], "finance", "{case}");
    assert_eq!(case["sla"]["timeZone"], "Europe/Madrid");
    let first = target(&case, "first_response", 0).clone();
    let length = first["targetSeconds"].as_i64().unwrap() * 1_000_000;
    assert!(
        length <= 4 * 3_600_000_000,
        "fits in Thursday morning: {first}"
    );
    // The night does not count: the clock starts when finance opens.
    assert_eq!(
        micros(&first["dueAt"]),
        THURSDAY_OPENING + length,
        "{first}"
    );
    assert_eq!(first["elapsedSeconds"], 0);

    // An agent answers; the case waits on the customer: the clock pauses.
    reply(&app, &id, "Sorry about that, can you send the receipt?").await;
    let answered = sla_case(&app, &id).await;
    assert_eq!(target(&answered, "first_response", 0)["state"], "MET");
    let stopped_by = target(&answered, "first_response", 0)["stoppedBy"].clone();
    assert!(
        stopped_by.as_str().is_some_and(|b| b.starts_with("token:")),
        "the replier is recorded: {stopped_by}"
    );
    let pending = set_status(&app, &id, "PENDING").await;
    assert_eq!(
        pending["data"]["setConversationStatus"]["status"], "PENDING",
        "{pending}"
    );
    let paused = sla_case(&app, &id).await;
    assert_eq!(paused["sla"]["paused"], true, "{paused}");
    assert!(paused["sla"]["nextAlarmAt"].is_null(), "{paused}");
    assert_eq!(target(&paused, "resolution", 0)["state"], "PAUSED");

    // 19 hours of silence, 6 of them in finance's business hours (more than the 4-hour
    // resolution target): nothing breaches while the customer owes the answer. (At 20
    // hours the case clock would close the loop.)
    app.clock.advance(Duration::from_secs(19 * 3600));
    settle().await;
    assert_eq!(count_kind(&app, &id, "sla_breached").await, 0);
    let still = sla_case(&app, &id).await;
    assert_eq!(target(&still, "resolution", 0)["elapsedSeconds"], 0);
    assert_eq!(still["sla"]["paused"], true);

    // The customer answers: the clock resumes and a next-response target starts.
    customer_writes(
        &app,
        wa_id,
        "wamid.F2",
        "here is the receipt number 99887766",
    )
    .await;
    let resumed = sla_case(&app, &id).await;
    assert_eq!(resumed["sla"]["paused"], false, "{resumed}");
    assert_eq!(target(&resumed, "next_response", 0)["state"], "RUNNING");
    let pauses = resumed["sla"]["pauses"].as_array().unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0]["reason"], "pending");
    assert!(pauses[0]["to"].is_string(), "{resumed}");
    assert_eq!(resumed["sla"]["replayMatches"], true);
}

async fn deadlines_survive_a_restart_and_fire_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(
        &app,
        "5511977770003",
        "wamid.R1",
        "where is my order 44556677",
    )
    .await;
    let case = sla_case(&app, &id).await;
    let first = target(&case, "first_response", 0).clone();
    let warn_at = micros(&first["warnAt"]);
    let due_at = micros(&first["dueAt"]);

    // Parley is down while the warning and the breach come due.
    let app = app
        .restart_after(Duration::from_micros((due_at - START) as u64 + 1))
        .await;
    wait_for_kind(&app, &id, "sla_breached", 1).await;
    wait_for_kind(&app, &id, "sla_warning", 1).await;
    let case = sla_case(&app, &id).await;
    let alarms = case["sla"]["alarms"].as_array().unwrap();
    assert_eq!(micros(&alarms[0]["dueAt"]), warn_at, "{case}");
    assert_eq!(micros(&alarms[1]["dueAt"]), due_at);
    // Recorded when Parley came back.
    assert_eq!(micros(&alarms[1]["recordedAt"]), due_at + 1);

    // Another restart: what was recorded does not fire again.
    let app = app.restart_after(Duration::from_secs(1)).await;
    let escalate_at =
        micros(&target(&sla_case(&app, &id).await, "first_response", 0)["escalateAt"]);
    advance_to(&app, escalate_at);
    wait_for_kind(&app, &id, "escalated", 1).await;
    settle().await;
    assert_eq!(count_kind(&app, &id, "sla_warning").await, 1);
    assert_eq!(count_kind(&app, &id, "sla_breached").await, 1);
    assert_eq!(count_kind(&app, &id, "sla_escalation_due").await, 1);
}

async fn a_manager_request_and_an_agent_escalate_with_a_packet(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let wa_id = "5511977770004";
    let id = customer_writes(
        &app,
        wa_id,
        "wamid.M1",
        "I want to speak to a manager right now",
    )
    .await;
    wait_for_kind(&app, &id, "escalated", 1).await;
    let case = sla_case(&app, &id).await;
    assert_eq!(case["team"]["name"], "management", "{case}");
    assert_eq!(case["sla"]["escalations"], json!(["manager_request"]));
    // Asking again does not bounce the case further.
    customer_writes(
        &app,
        wa_id,
        "wamid.M2",
        "manager please, I am still waiting",
    )
    .await;
    settle().await;
    assert_eq!(count_kind(&app, &id, "escalated").await, 1);

    let other = customer_writes(
        &app,
        "5511977770005",
        "wamid.M3",
        "where is my order 77889900",
    )
    .await;
    let escalate = "mutation($c: ID!, $r: String!, $t: String) { escalateConversation(conversationId: $c, reason: $r, toTeam: $t) { id team { name } watcherTeams } }";
    let to_finance = app
        .graphql(
            escalate,
            json!({"c": other, "r": "customer disputes a charge", "t": "finance"}),
        )
        .await;
    assert_eq!(
        to_finance["data"]["escalateConversation"]["team"]["name"], "finance",
        "{to_finance}"
    );
    let up = app
        .graphql(escalate, json!({"c": other, "r": "refund above my limit"}))
        .await;
    assert_eq!(
        up["data"]["escalateConversation"]["team"]["name"], "management",
        "{up}"
    );
    let top = app
        .graphql(escalate, json!({"c": other, "r": "still not enough"}))
        .await;
    assert_eq!(error_code(&top), "invalid_input", "{top}");
    let unknown = app
        .graphql(escalate, json!({"c": other, "r": "x", "t": "financ"}))
        .await;
    assert_eq!(error_code(&unknown), "team_not_found", "{unknown}");
    let empty = app.graphql(escalate, json!({"c": other, "r": "  "})).await;
    assert_eq!(error_code(&empty), "invalid_input", "{empty}");

    let mix = app
        .graphql(
            "{ escalationMix { toTeam level trigger count } }",
            json!({}),
        )
        .await;
    let mix = mix["data"]["escalationMix"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let count = |team: &str, trigger: &str| {
        mix.iter()
            .find(|m| m["toTeam"] == team && m["trigger"] == trigger)
            .map_or(0, |m| m["count"].as_i64().unwrap_or(0))
    };
    assert_eq!(count("management", "manager_request"), 1, "{mix:?}");
    assert_eq!(count("finance", "agent"), 1, "{mix:?}");
    assert_eq!(count("management", "agent"), 1, "{mix:?}");

    let events = events_of(&app, &other).await;
    let escalations: Vec<Value> = events
        .iter()
        .filter(|e| e["kind"] == "escalated")
        .map(|e| match &e["data"] {
            Value::String(s) => serde_json::from_str(s).unwrap(),
            other => other.clone(),
        })
        .collect();
    assert_eq!(escalations.len(), 2);
    assert_eq!(escalations[0]["reason"], "customer disputes a charge");
    assert_eq!(escalations[1]["from_team"], "finance");
    assert_eq!(escalations[1]["from_level"], 2);
    // The second receiver sees that the case was escalated before.
    let tried = escalations[1]["packet"]["tried"].as_array().unwrap();
    assert!(tried.iter().any(|t| t["what"] == "escalated"), "{tried:?}");
    assert_eq!(
        escalations[1]["packet"]["identifiers"]["order_ids"],
        json!(["77889900"])
    );
}

async fn an_sla_policy_edit_applies_to_open_cases_and_a_mistake_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sla.toml");
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/sla.toml"))
            .unwrap();
    std::fs::write(&path, &shipped).unwrap();
    let extra = format!("[routing]\nsla_file = \"{}\"\n", path.display());
    let Some(app) = spawn_app_with(backend, &extra).await else {
        return;
    };
    let id = customer_writes(
        &app,
        "5511977770006",
        "wamid.P1",
        "where is my order 11223344",
    )
    .await;
    let before = sla_case(&app, &id).await;
    let priority = before["sla"]["priority"].as_str().unwrap().to_owned();
    let first = target(&before, "first_response", 0).clone();
    let started = micros(&first["startedAt"]);
    let sha = before["sla"]["policySha256"].clone();

    let reload = "mutation { reloadRouting { rulesSha256 } }";
    let section = format!("[targets.{priority}]\nfirst_response = \"");
    assert!(shipped.contains(&section), "{priority}");
    let broken = shipped.replacen(&section, &format!("{section}0m\"\n#"), 1);
    std::fs::write(&path, &broken).unwrap();
    let refused = app.graphql(reload, json!({})).await;
    assert_eq!(error_code(&refused), "invalid_config", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("longer than zero") && message.contains("line "),
        "{message}"
    );
    assert_eq!(sla_case(&app, &id).await["sla"]["policySha256"], sha);

    // A tighter first response (10 minutes) applies to the open case from now on.
    let tighter = shipped.replacen(&section, &format!("{section}10m\"\n#"), 1);
    std::fs::write(&path, &tighter).unwrap();
    let applied = app.graphql(reload, json!({})).await;
    assert!(applied["data"]["reloadRouting"].is_object(), "{applied}");
    let after = sla_case(&app, &id).await;
    assert_ne!(after["sla"]["policySha256"], sha);
    let first = target(&after, "first_response", 0);
    assert_eq!(first["targetSeconds"], 600, "{after}");
    assert_eq!(micros(&first["dueAt"]), started + 600_000_000);
    advance_to(&app, started + 600_000_000);
    wait_for_kind(&app, &id, "sla_breached", 1).await;
}
