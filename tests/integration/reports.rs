//! Reports through the real server: a handful of figures computed by hand from a short
//! scripted day, read back through GraphQL, identical after a rebuild from the event log,
//! and scoped to the caller.

use crate::helpers::{
    Backend, create_agent, customer_writes, error_code, eventually_some, on_both_databases, reply,
    set_status, spawn_app,
};
use parley::config::Settings;
use parley::domain::Role;
use parley::reports::Projection;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(figures_match_a_hand_computed_day);

const REPORT: &str = r#"query($f: ReportFilter!) { report(filter: $f) {
    asOfEventId
    summary { conversationsCreated resolutions reopened reopenRate oneTouchRate automationRate
              firstResponseTime { count averageSeconds medianSeconds }
              replyTime { count averageSeconds }
              resolutionTime { count averageSeconds p90Seconds } }
    previousSummary { conversationsCreated }
    timeSeries(metric: CONVERSATIONS_CREATED, interval: HOUR) { start count }
    heatmap { weekday hour conversations }
    distribution(metric: REPLY_TIME) { fromSeconds toSeconds count }
} }"#;

fn day() -> Value {
    // START is 2022-11-23T20:02:58Z, a Wednesday.
    json!({ "f": { "from": "2022-11-23T00:00:00Z", "to": "2022-11-24T00:00:00Z" } })
}

async fn report_when(
    app: &crate::helpers::TestApp,
    token: &str,
    created: i64,
    resolutions: i64,
) -> Value {
    eventually_some("the report has folded the day", || async {
        let answer = app.graphql_as(token, REPORT, day()).await;
        let summary = &answer["data"]["report"]["summary"];
        (summary["conversationsCreated"] == created && summary["resolutions"] == resolutions)
            .then(|| answer["data"]["report"].clone())
    })
    .await
}

async fn figures_match_a_hand_computed_day(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Kerry writes at 20:02:58; an answer 2 minutes later; Kerry again 3 minutes after
    // that, answered in 1 minute; resolved at 20:12:58. Sam writes then, unanswered.
    let kerry = customer_writes(&app, "16315551234", "wamid.R1", "Where is my order?").await;
    app.clock.advance(Duration::from_secs(120));
    reply(&app, &kerry, "Let me check.").await;
    app.clock.advance(Duration::from_secs(180));
    customer_writes(&app, "16315551234", "wamid.R2", "Any news?").await;
    app.clock.advance(Duration::from_secs(60));
    reply(&app, &kerry, "It ships today.").await;
    app.clock.advance(Duration::from_secs(240));
    let answer = set_status(&app, &kerry, "RESOLVED").await;
    assert_eq!(
        answer["data"]["setConversationStatus"]["status"], "RESOLVED",
        "{answer}"
    );
    customer_writes(&app, "16315559999", "wamid.R3", "Hello?").await;

    let report = report_when(&app, &app.admin_token, 2, 1).await;
    let s = &report["summary"];
    assert_eq!(s["reopened"], 0);
    assert_eq!(s["reopenRate"], 0.0);
    // Two replies by a person before the resolution: not one-touch, not automated.
    assert_eq!(s["oneTouchRate"], 0.0);
    assert_eq!(s["automationRate"], 0.0);
    assert_eq!(s["firstResponseTime"]["count"], 1);
    assert_eq!(s["firstResponseTime"]["averageSeconds"], 120.0);
    // 120 s lies in the bucket [90.5 s, 128 s): its geometric middle.
    let median = s["firstResponseTime"]["medianSeconds"].as_f64().unwrap();
    assert!((90.5..128.0).contains(&median), "{median}");
    assert_eq!(s["replyTime"]["count"], 2);
    assert_eq!(s["replyTime"]["averageSeconds"], 90.0);
    assert_eq!(s["resolutionTime"]["count"], 1);
    assert_eq!(s["resolutionTime"]["averageSeconds"], 600.0);
    assert_eq!(report["previousSummary"]["conversationsCreated"], 0);
    assert_eq!(
        report["timeSeries"],
        json!([{ "start": "2022-11-23T20:00:00+00:00", "count": 2 }])
    );
    let busy: Vec<&Value> = report["heatmap"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["conversations"] != 0)
        .collect();
    assert_eq!(
        busy,
        vec![&json!({ "weekday": 2, "hour": 20, "conversations": 2 })]
    );
    assert_eq!(report["heatmap"].as_array().unwrap().len(), 168);
    // The waits of 120 s and 60 s, one in each bucket.
    let buckets = report["distribution"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{buckets:?}");
    assert!(buckets.iter().all(|b| b["count"] == 1));

    // A rebuild from the event log gives the same figures.
    let settings = Settings::from_toml("").unwrap();
    let projection =
        Projection::new(app.store.clone(), app.clock.clone(), &settings.reports).unwrap();
    let folded = projection.rebuild().await.unwrap();
    assert!(folded >= 10, "{folded}");
    let rebuilt = report_when(&app, &app.admin_token, 2, 1).await;
    assert_eq!(rebuilt["summary"], report["summary"]);
    assert_eq!(rebuilt["distribution"], report["distribution"]);

    // An agent reads their own figures only: none of the day's cases were theirs.
    let ana = create_agent(&app, "Ana", None).await;
    let agent = app.token(Role::Agent, Some(ana.parse().unwrap())).await;
    let own = app.graphql_as(&agent, REPORT, day()).await;
    assert_eq!(
        own["data"]["report"]["summary"]["conversationsCreated"], 0,
        "{own}"
    );
    let others = app
        .graphql_as(
            &agent,
            "query($f: ReportFilter!) { report(filter: $f) { summary { resolutions } } }",
            json!({ "f": { "from": "2022-11-23T00:00:00Z", "to": "2022-11-24T00:00:00Z", "teamIds": ["1"] } }),
        )
        .await;
    assert_eq!(error_code(&others), "forbidden", "{others}");
    let two = app
        .graphql(
            "query($f: ReportFilter!) { report(filter: $f) { summary { resolutions } } }",
            json!({ "f": { "from": "2022-11-23T00:00:00Z", "to": "2022-11-24T00:00:00Z", "teamIds": ["1"], "priorities": ["high"] } }),
        )
        .await;
    assert_eq!(error_code(&two), "invalid_input", "{two}");
}
