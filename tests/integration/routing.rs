//! Triage, routing and the noise filter through the real webhook and GraphQL.

use crate::helpers::*;
use parley::clock::Clock;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

on_both_databases!(
    a_billing_complaint_goes_to_finance_and_a_repeat_raises_urgency,
    a_thread_that_turns_into_a_legal_threat_changes_owner_at_that_message,
    a_queued_case_is_assigned_as_soon_as_capacity_frees,
    a_closed_team_queues_until_it_opens,
    explain_triage_shows_tags_rules_owner_and_candidates,
    blocked_contacts_spam_and_scam_waves_are_recorded_not_ticketed,
    thanks_after_resolution_closes_the_loop,
    replies_respect_ownership_and_collisions,
    a_rule_file_with_a_typo_is_refused_and_the_old_rules_stay,
    a_business_corpus_teaches_triage_on_reload_and_a_bad_line_is_refused,
);

const TRIAGE_FIELDS: &str =
    "id status priority urgency review language watcherTeams team { name } assignee { id }
     triage { intents { label confidence } urgency { label confidence } context rules
       decision { owner urgencyLevel matchedRules { name matchedOn contributed } } }";

async fn case(app: &TestApp, id: &str) -> Value {
    let answer = app
        .graphql(
            &format!("query($id: ID!) {{ conversation(id: $id) {{ {TRIAGE_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    answer["data"]["conversation"].clone()
}

fn intents(case: &Value) -> Vec<String> {
    case["triage"]["intents"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["label"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates an agent of the policy team `team` with a routing profile; returns its id.
async fn routed_agent(app: &TestApp, name: &str, team: &str, extra: Value) -> String {
    let teams = app.graphql("{ teams { id name } }", json!({})).await;
    let team_id = teams["data"]["teams"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == team))
        .and_then(|t| t["id"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no team {team}: {teams}"));
    let mut input = json!({ "name": name, "role": "AGENT", "teamId": team_id, "status": "ONLINE" });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    let answer = app
        .graphql(
            "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }",
            json!({ "i": input }),
        )
        .await;
    answer["data"]["createAgent"]["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("createAgent: {answer}"))
}

async fn assignee_of(app: &TestApp, id: &str) -> Option<String> {
    case(app, id).await["assignee"]["id"]
        .as_str()
        .map(str::to_owned)
}

async fn a_billing_complaint_goes_to_finance_and_a_repeat_raises_urgency(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(
        &app,
        "5511999990001",
        "wamid.B1",
        "you charged my card twice for the same order",
    )
    .await;
    let first = case(&app, &id).await;
    assert_eq!(first["team"]["name"], "finance", "{first}");
    assert_eq!(first["review"], "HUMAN", "{first}");
    assert!(
        intents(&first).contains(&"billing_complaint".to_owned()),
        "{first}"
    );
    let first_urgency = first["urgency"].as_str().unwrap_or_default().to_owned();

    app.clock.advance(Duration::from_secs(3600));
    customer_writes(
        &app,
        "5511999990001",
        "wamid.B2",
        "your app charged me twice and nobody replied",
    )
    .await;
    let second = case(&app, &id).await;
    assert_eq!(second["team"]["name"], "finance", "{second}");
    assert_eq!(second["review"], "HUMAN");
    let context: Vec<&str> = second["triage"]["context"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(context.contains(&"repeat_contact"), "{second}");
    let levels = ["LOW", "NORMAL", "PRIORITY", "IMMEDIATE"];
    let rank = |u: &str| levels.iter().position(|l| *l == u).unwrap_or(0);
    assert!(
        rank(second["urgency"].as_str().unwrap_or_default()) > rank(&first_urgency),
        "urgency not raised: {first_urgency} -> {}",
        second["urgency"]
    );
    let rules: Vec<String> = second["triage"]["rules"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(rules.iter().any(|r| r == "repeat contact"), "{rules:?}");
    // The typed decision names what each matched rule matched on.
    let decision = &second["triage"]["decision"];
    assert_eq!(decision["owner"], "finance", "{decision}");
    assert_eq!(decision["urgencyLevel"], second["urgency"], "{decision}");
    let repeat = decision["matchedRules"]
        .as_array()
        .and_then(|m| m.iter().find(|r| r["name"] == "repeat contact"))
        .unwrap_or_else(|| panic!("no repeat contact rule in {decision}"));
    assert!(
        repeat["matchedOn"].to_string().contains("repeat_contact"),
        "{repeat}"
    );
    assert!(
        second["triage"]["intents"][0]["confidence"].as_f64() > Some(0.0),
        "{second}"
    );
    // Every message's decision is in the event log.
    let triaged = event_kinds_of(&app, &id)
        .await
        .into_iter()
        .filter(|k| k == "triaged")
        .count();
    assert_eq!(triaged, 2);
}

async fn a_thread_that_turns_into_a_legal_threat_changes_owner_at_that_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let wa = "5511999990002";
    let id = customer_writes(
        &app,
        wa,
        "wamid.L1",
        "hi, where is my order 48213? it was supposed to arrive yesterday",
    )
    .await;
    let before = case(&app, &id).await;
    assert_eq!(before["team"]["name"], "tier1_care", "{before}");
    assert!(
        intents(&before).contains(&"order_tracking".to_owned()),
        "{before}"
    );

    customer_writes(
        &app,
        wa,
        "wamid.L2",
        "this is ridiculous, my lawyer will take you to court and I will file a chargeback",
    )
    .await;
    let after = case(&app, &id).await;
    assert_eq!(after["team"]["name"], "management", "{after}");
    assert_eq!(after["review"], "HUMAN");
    assert_eq!(after["priority"], "URGENT", "{after}");
    let watchers: Vec<&str> = after["watcherTeams"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(watchers.contains(&"comms_pr"), "{after}");
    let events = events_of(&app, &id).await;
    let change = events
        .iter()
        .find(|e| e["kind"] == "owner_changed")
        .unwrap_or_else(|| panic!("no owner_changed: {events:?}"));
    assert_eq!(change["data"]["team"], "management");

    // A milder message later does not hand the case back on its own.
    customer_writes(&app, wa, "wamid.L3", "ok where is the order though").await;
    let later = case(&app, &id).await;
    assert_eq!(later["team"]["name"], "management", "{later}");
    assert_eq!(later["priority"], "URGENT");
}

async fn a_queued_case_is_assigned_as_soon_as_capacity_frees(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let agent = routed_agent(
        &app,
        "Ana",
        "tier1_care",
        json!({ "capacity": 1, "languages": ["en"] }),
    )
    .await;
    let first = customer_writes(&app, "5511999990003", "wamid.Q1", "where is my order 7781").await;
    eventually("the first case is assigned to Ana", || async {
        assignee_of(&app, &first).await.as_deref() == Some(agent.as_str())
    })
    .await;
    let events = events_of(&app, &first).await;
    let assigned = events
        .iter()
        .find(|e| e["kind"] == "assigned")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(assigned["actor"], "system");
    assert!(
        assigned["data"]["routing"]["candidates"].is_array(),
        "{assigned}"
    );

    let second = customer_writes(&app, "5511999990004", "wamid.Q2", "where is my order 9921").await;
    eventually("the second case waits in tier1_care's queue", || async {
        let queues = app
            .graphql("{ routingQueues { team waiting reason } }", json!({}))
            .await;
        queues["data"]["routingQueues"].as_array().is_some_and(|q| {
            q.iter()
                .any(|q| q["team"] == "tier1_care" && q["waiting"] == 1)
        })
    })
    .await;
    assert_eq!(assignee_of(&app, &second).await, None);

    // Ana resolves her case: the queued one is hers at once, no poll.
    let resolved = set_status(&app, &first, "RESOLVED").await;
    assert_eq!(
        resolved["data"]["setConversationStatus"]["status"], "RESOLVED",
        "{resolved}"
    );
    eventually("the queued case is assigned to Ana", || async {
        assignee_of(&app, &second).await.as_deref() == Some(agent.as_str())
    })
    .await;

    // An agent going offline takes no new cases; coming online does.
    let offline = app
        .graphql(
            "mutation($a: ID!) { setAgentStatus(agentId: $a, status: OFFLINE) { status } }",
            json!({ "a": agent }),
        )
        .await;
    assert_eq!(
        offline["data"]["setAgentStatus"]["status"], "OFFLINE",
        "{offline}"
    );
    set_status(&app, &second, "RESOLVED").await;
    let third = customer_writes(&app, "5511999990005", "wamid.Q3", "where is my order 1212").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(assignee_of(&app, &third).await, None);
    app.graphql(
        "mutation($a: ID!) { setAgentStatus(agentId: $a, status: ONLINE) { status } }",
        json!({ "a": agent }),
    )
    .await;
    eventually("the case is assigned once Ana is online", || async {
        assignee_of(&app, &third).await.as_deref() == Some(agent.as_str())
    })
    .await;
}

async fn a_closed_team_queues_until_it_opens(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The clock starts on a Wednesday at 21:02 in Madrid: finance is closed.
    let agent = routed_agent(
        &app,
        "Bea",
        "finance",
        json!({ "skills": ["billing", "refunds"], "languages": ["en"] }),
    )
    .await;
    let id = customer_writes(
        &app,
        "5511999990006",
        "wamid.F1",
        "you charged my card twice, I want my money back",
    )
    .await;
    assert_eq!(case(&app, &id).await["team"]["name"], "finance");
    let queues = eventually_some("finance queues the case", || async {
        let q = app
            .graphql("{ routingQueues { team waiting reason } }", json!({}))
            .await;
        q["data"]["routingQueues"]
            .as_array()
            .and_then(|q| q.iter().find(|q| q["team"] == "finance").cloned())
    })
    .await;
    assert!(
        queues["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("closed"),
        "{queues}"
    );
    assert_eq!(assignee_of(&app, &id).await, None);
    // Next morning, 09:05 in Madrid (08:05 UTC): finance has been open five minutes,
    // within the case's first-response target (a later jump would escalate it first).
    app.clock.advance(Duration::from_secs(12 * 3600 + 3 * 60));
    eventually("the case is assigned when finance opens", || async {
        assignee_of(&app, &id).await.as_deref() == Some(agent.as_str())
    })
    .await;
}

async fn explain_triage_shows_tags_rules_owner_and_candidates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let agent = routed_agent(
        &app,
        "Caio",
        "finance",
        json!({ "skills": ["refunds"], "languages": ["pt"] }),
    )
    .await;
    let answer = app
        .graphql(
            r#"query($t: String!) { explainTriage(text: $t) {
                intents { label confidence } urgency { label } risks { label } language { label }
                lowConfidence matchedRules { name line contributed } owner watchers priority
                review reasons noise { spam acknowledgement }
                routing { team action reason steps candidates { agentId eligible reasons } } } }"#,
            json!({ "t": "mera refund kab aayega?? 3 hafte ho gaye" }),
        )
        .await;
    let e = &answer["data"]["explainTriage"];
    assert!(e.is_object(), "{answer}");
    let labels: Vec<&str> = e["intents"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["label"].as_str()).collect())
        .unwrap_or_default();
    assert!(labels.contains(&"refund_request"), "{e}");
    assert_eq!(e["language"]["label"], "hi");
    assert_eq!(e["owner"], "finance");
    assert!(
        e["matchedRules"].as_array().is_some_and(|r| r
            .iter()
            .any(|r| r["name"] == "refunds to finance" && r["line"].as_i64() > Some(0))),
        "{e}"
    );
    let routing = &e["routing"];
    assert_eq!(routing["team"], "finance");
    let candidate = routing["candidates"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["agentId"] == agent.as_str()))
        .unwrap_or_else(|| panic!("Caio not considered: {routing}"));
    assert!(
        !candidate["reasons"].as_array().is_none_or(Vec::is_empty),
        "{candidate}"
    );
    // Bad input triages without failing.
    for text in [
        "",
        "😀😀😀",
        &"ا".repeat(9000),
        "\u{0}\u{1}\u{7f}binary\u{fffd}",
    ] {
        let answer = app
            .graphql(
                "query($t: String!) { explainTriage(text: $t) { owner language { label } } }",
                json!({ "t": text }),
            )
            .await;
        assert!(
            answer["data"]["explainTriage"]["owner"].is_string(),
            "{answer}"
        );
    }
    // Explaining stores nothing.
    assert_eq!(app.count("conversations").await, 0);
}

async fn blocked_contacts_spam_and_scam_waves_are_recorded_not_ticketed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let supervisor = app.token(Role::Supervisor, None).await;
    let blocked = app
        .graphql_as(
            &supervisor,
            r#"mutation { blockContact(waId: "5511999990010", reason: "harassment") { waId blocked } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        blocked["data"]["blockContact"]["blocked"], true,
        "{blocked}"
    );
    let agent = app.token(Role::Agent, None).await;
    let refused = app
        .graphql_as(
            &agent,
            r#"mutation { blockContact(waId: "5511999990011") { waId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden");
    let bad = app
        .graphql_as(
            &supervisor,
            r#"mutation { blockContact(waId: "+55 11") { waId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&bad), "invalid_input");

    let now = app.clock.now() / 1_000_000;
    let post = |wa: &str, wamid: &str, text: &str| text_webhook(wa, wamid, text, now);
    assert_eq!(
        app.post_webhook(&post("5511999990010", "wamid.N1", "hello again"))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_webhook(&post(
            "5511999990012",
            "wamid.N2",
            "CONGRATULATIONS you won a prize!!! claim now at bit.ly/win-now, offer expires today"
        ))
        .await
        .status(),
        200
    );
    let wave = "Hello dear customer your parcel is held at customs please pay the release fee at";
    for (n, wa) in [
        "5511999990020",
        "5511999990021",
        "5511999990022",
        "5511999990023",
    ]
    .iter()
    .enumerate()
    {
        let text = format!("{wave} www.parcel-fee{n}.example/pay {n}");
        assert_eq!(
            app.post_webhook(&post(wa, &format!("wamid.W{n}"), &text))
                .await
                .status(),
            200
        );
    }
    let stats = eventually_some("the noise is recorded", || async {
        let s = app
            .graphql_as(
                &supervisor,
                "{ noiseStats { inbound suppressed noiseFilteredPercent byReason { reason count } } }",
                json!({}),
            )
            .await;
        let n = &s["data"]["noiseStats"];
        (n["suppressed"].as_i64() >= Some(4)).then(|| n.clone())
    })
    .await;
    let count = |reason: &str| {
        stats["byReason"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["reason"] == reason))
            .and_then(|r| r["count"].as_i64())
            .unwrap_or(0)
    };
    assert_eq!(count("blocked_contact"), 1, "{stats}");
    assert_eq!(count("spam"), 1, "{stats}");
    // The first numbers of a wave open cases; from the third on they join the cluster.
    assert_eq!(count("duplicate_cluster"), 2, "{stats}");
    assert!(stats["noiseFilteredPercent"].as_f64() > Some(0.0));
    eventually("the wave's first two cases exist", || async {
        app.count("conversations").await == 2
    })
    .await;
    let clusters = app
        .graphql_as(
            &supervisor,
            "{ noiseClusters { contacts messages sample } }",
            json!({}),
        )
        .await;
    let cluster = &clusters["data"]["noiseClusters"][0];
    assert_eq!(cluster["contacts"], 4, "{clusters}");
    assert!(
        cluster["sample"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Hello dear customer")
    );
    let suppressions = app
        .graphql_as(
            &supervisor,
            r#"{ suppressions(reason: "blocked_contact") { waId excerpt } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        suppressions["data"]["suppressions"][0]["excerpt"], "hello again",
        "{suppressions}"
    );
    // A redelivered blocked message is recorded once.
    app.post_webhook(&post("5511999990010", "wamid.N1", "hello again"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.count("suppressions").await, 4);
}

async fn thanks_after_resolution_closes_the_loop(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let wa = "5511999990030";
    let id = customer_writes(&app, wa, "wamid.T1", "where is my order 5512").await;
    set_status(&app, &id, "RESOLVED").await;
    let again = customer_writes(&app, wa, "wamid.T2", "thanks!! 🙏").await;
    assert_eq!(again, id, "the thanks stays on the same case");
    let c = conversation(&app, &id).await;
    assert_eq!(c["status"], "CLOSED", "{c}");
    assert_eq!(c["reopenCount"], 0);
    assert_eq!(app.count("suppressions").await, 1);
}

async fn replies_respect_ownership_and_collisions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let ana = create_agent(&app, "Ana", None).await;
    let bo = create_agent(&app, "Bo", None).await;
    let ana_token = app.token(Role::Agent, ana.parse().ok()).await;
    let bo_token = app.token(Role::Agent, bo.parse().ok()).await;
    let supervisor = app.token(Role::Supervisor, None).await;
    let id = customer_writes(&app, "5511999990040", "wamid.C1", "where is my order 4411").await;
    let send = |token: String, force: bool| {
        let app = &app;
        let id = id.clone();
        async move {
            app.graphql_as(
                &token,
                "mutation($c: ID!, $f: Boolean!) { sendReply(conversationId: $c, text: \"on it\", force: $f) { id } }",
                json!({ "c": id, "f": force }),
            )
            .await
        }
    };
    let typing = app
        .graphql_as(
            &ana_token,
            "mutation($c: ID!) { setPresence(conversationId: $c, state: TYPING) { agentName state } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(
        typing["data"]["setPresence"][0]["state"], "TYPING",
        "{typing}"
    );
    let collision = send(bo_token.clone(), false).await;
    assert_eq!(error_code(&collision), "collision", "{collision}");
    let forced_by_agent = send(bo_token.clone(), true).await;
    assert_eq!(error_code(&forced_by_agent), "forbidden");
    let forced = send(supervisor.clone(), true).await;
    assert!(forced["data"]["sendReply"]["id"].is_string(), "{forced}");

    // Assigned to Ana: Bo may not reply until it is transferred; Ana may.
    app.graphql_as(
        &ana_token,
        "mutation($c: ID!, $a: ID!) { assignConversation(conversationId: $c, agentId: $a) { id } }",
        json!({ "c": id, "a": ana }),
    )
    .await;
    app.graphql_as(
        &ana_token,
        "mutation($c: ID!) { setPresence(conversationId: $c) { agentName } }",
        json!({ "c": id }),
    )
    .await;
    let not_assignee = send(bo_token.clone(), false).await;
    assert_eq!(error_code(&not_assignee), "not_assignee", "{not_assignee}");
    let own = send(ana_token, false).await;
    assert!(own["data"]["sendReply"]["id"].is_string(), "{own}");
    let present = app
        .graphql(
            "query($c: ID!) { presence(conversationId: $c) { agentName } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(present["data"]["presence"], json!([]), "{present}");
}

async fn a_rule_file_with_a_typo_is_refused_and_the_old_rules_stay(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("routing.toml");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/routing.toml"
    ))
    .unwrap();
    std::fs::write(&rules, &shipped).unwrap();
    let extra = format!("[routing]\nrules_file = \"{}\"\n", rules.display());
    let Some(app) = spawn_app_with(backend, &extra).await else {
        return;
    };
    let reload = "mutation { reloadRouting { rulesSha256 rules { name } } }";
    let before = app.graphql(reload, json!({})).await;
    let sha = before["data"]["reloadRouting"]["rulesSha256"].clone();
    assert!(sha.is_string(), "{before}");

    let broken = shipped.replacen(
        "intents = [\"billing_complaint\"]",
        "intents = [\"biling_complaint\"]",
        1,
    );
    assert_ne!(broken, shipped);
    let line = broken
        .lines()
        .position(|l| l.contains("biling_complaint"))
        .map(|n| n + 1)
        .unwrap();
    std::fs::write(&rules, &broken).unwrap();
    let refused = app.graphql(reload, json!({})).await;
    assert_eq!(error_code(&refused), "invalid_config", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("line {line}")), "{message}");
    assert!(message.contains("biling_complaint"), "{message}");
    let policy = app
        .graphql("{ routingPolicy { rulesSha256 } }", json!({}))
        .await;
    assert_eq!(policy["data"]["routingPolicy"]["rulesSha256"], sha);

    let supervisor = app.token(Role::Supervisor, None).await;
    let forbidden = app.graphql_as(&supervisor, reload, json!({})).await;
    assert_eq!(error_code(&forbidden), "forbidden");

    // A valid change applies without a restart.
    let renamed = shipped.replacen(
        "name = \"billing complaint to finance\"",
        "name = \"billing to finance\"",
        1,
    );
    std::fs::write(&rules, &renamed).unwrap();
    let applied = app.graphql(reload, json!({})).await;
    let names: Vec<&str> = applied["data"]["reloadRouting"]["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"billing to finance"), "{applied}");
    // Every attempt is audited.
    let routing: Vec<String> = audit_actions(&app)
        .await
        .into_iter()
        .filter(|a| a.starts_with("routing."))
        .collect();
    assert_eq!(routing.len(), 3, "{routing:?}");
}

async fn a_business_corpus_teaches_triage_on_reload_and_a_bad_line_is_refused(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("ours.jsonl");
    std::fs::write(&corpus, "").unwrap();
    let extra = format!(
        "[routing]\ntriage_corpus = [{:?}]\n",
        corpus.display().to_string()
    );
    let Some(app) = spawn_app_with(backend, &extra).await else {
        return;
    };
    // "Zorblax" is this business's word for its tax invoice; nothing shipped knows it.
    let message = "zorblax for 7731 pls";
    let tagged = |id: String| {
        let app = &app;
        async move {
            eventually_some("triaged", || async {
                let c = case(app, &id).await;
                c["triage"]["intents"].is_array().then(|| intents(&c))
            })
            .await
        }
    };
    let before = customer_writes(&app, "5215500000001", "wamid.corpus.1", message).await;
    assert!(
        !tagged(before).await.contains(&"invoice_request".to_owned()),
        "known before the corpus was added"
    );

    let lines: Vec<String> = [
        "send me the zorblax",
        "need a zorblax for my last order",
        "where is the zorblax of order 5521",
        "zorblax please, company name on it",
        "can i get the zorblax by email",
        "my accountant needs the zorblax",
        "zorblax missing from the box",
        "the zorblax has the wrong tax number",
        "mándame el zorblax",
        "preciso do zorblax do pedido",
        "zorblax chahiye order ka",
        "minta zorblax nya kak",
    ]
    .iter()
    .map(|text| {
        json!({ "text": text, "intents": ["invoice_request"], "risk": [], "language": "en" })
            .to_string()
    })
    .collect();
    std::fs::write(&corpus, lines.join("\n")).unwrap();
    let reload = "mutation { reloadRouting { triageSha256 } }";
    let applied = app.graphql(reload, json!({})).await;
    let sha = applied["data"]["reloadRouting"]["triageSha256"].clone();
    assert!(sha.is_string(), "{applied}");
    let after = customer_writes(&app, "5215500000002", "wamid.corpus.2", message).await;
    assert!(
        tagged(after).await.contains(&"invoice_request".to_owned()),
        "the corpus added on reload was not learned"
    );

    // A misspelt label is refused with its file and line; the classifier in force stays.
    let mut broken = lines.clone();
    broken.push(
        json!({ "text": "zorblax again", "intents": ["invoce_request"], "language": "en" })
            .to_string(),
    );
    std::fs::write(&corpus, broken.join("\n")).unwrap();
    let refused = app.graphql(reload, json!({})).await;
    assert_eq!(error_code(&refused), "invalid_config", "{refused}");
    let text = refused["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(text.contains("ours.jsonl line 13"), "{text}");
    assert!(text.contains("invoce_request"), "{text}");
    let policy = app
        .graphql("{ routingPolicy { triageSha256 } }", json!({}))
        .await;
    assert_eq!(policy["data"]["routingPolicy"]["triageSha256"], sha);
}
