//! The GraphQL API through the real server: authentication, roles, typed errors that write
//! nothing, keyset pagination and filters, query limits, and subscriptions over WebSocket.

use crate::helpers::*;
use futures::{SinkExt, StreamExt};
use parley::domain::Role;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const CUSTOMER: &str = "16315551234";

const PAGE: &str = r#"query($first: Int, $after: String, $filter: ConversationFilter) {
    conversations(first: $first, after: $after, filter: $filter) {
        edges { cursor node { id status lastActivityAt contact { waId } } }
        pageInfo { hasNextPage endCursor }
    }
}"#;

/// A distinct customer number for the n-th customer of a test.
fn customer(n: usize) -> String {
    format!("3361555{n:04}")
}

/// Walks every page of `conversations` with `first` per page; returns the nodes in order
/// and the size of each page.
async fn walk(app: &TestApp, first: i32, filter: Value) -> (Vec<Value>, Vec<usize>) {
    let mut nodes = Vec::new();
    let mut sizes = Vec::new();
    let mut after = Value::Null;
    for _ in 0..100 {
        let answer = app
            .graphql(
                PAGE,
                json!({ "first": first, "after": after, "filter": filter }),
            )
            .await;
        let page = &answer["data"]["conversations"];
        let edges = page["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("no page: {answer}"));
        sizes.push(edges.len());
        nodes.extend(edges.iter().map(|e| e["node"].clone()));
        if let Some(last) = edges.last() {
            assert_eq!(page["pageInfo"]["endCursor"], last["cursor"], "{answer}");
        }
        if page["pageInfo"]["hasNextPage"] != true {
            return (nodes, sizes);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    panic!("pagination never ended");
}

fn wa_ids(nodes: &[Value]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| n["contact"]["waId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn filtered(app: &TestApp, filter: Value) -> Vec<String> {
    let (nodes, _) = walk(app, 100, filter).await;
    let mut ids = wa_ids(&nodes);
    ids.sort();
    ids
}

async fn assign_as(app: &TestApp, token: &str, conversation: &str, agent: Option<&str>) -> Value {
    app.graphql_as(
        token,
        "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { status assignee { id } } }",
        json!({ "c": conversation, "a": agent }),
    )
    .await
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn open_socket(app: &TestApp) -> Socket {
    let url = format!("{}/graphql/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url
        .into_client_request()
        .unwrap_or_else(|e| panic!("websocket request: {e}"));
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .unwrap_or_else(|e| panic!("websocket connects: {e}"));
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws")
    );
    socket
}

pub(crate) async fn send_frame(socket: &mut Socket, message: Value) {
    socket
        .send(Frame::Text(message.to_string().into()))
        .await
        .unwrap_or_else(|e| panic!("websocket send: {e}"));
}

/// The next protocol message, answering pings; `None` when the server closed the socket
/// or nothing came within `wait`.
pub(crate) async fn next_message(socket: &mut Socket, wait: Duration) -> Option<Value> {
    loop {
        let frame = tokio::time::timeout(wait, socket.next())
            .await
            .ok()??
            .ok()?;
        match frame {
            Frame::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("JSON message: {e}"));
                if message["type"] == "ping" {
                    send_frame(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(message);
            }
            Frame::Close(_) => return None,
            _ => continue,
        }
    }
}

on_both_databases!(
    requests_without_a_valid_token_are_refused_with_401,
    me_describes_the_caller,
    only_admins_create_agents_and_teams,
    agents_may_assign_conversations_only_to_themselves,
    duplicate_team_name_is_refused_as_name_taken,
    agent_in_an_unknown_team_is_refused_and_not_created,
    invalid_replies_are_refused_with_typed_errors_and_write_nothing,
    pages_walk_every_conversation_newest_activity_first,
    pages_never_skip_or_repeat_conversations_with_the_same_activity_time,
    page_sizes_and_cursors_outside_the_rules_are_refused,
    unknown_conversation_reads_as_null_and_a_malformed_id_is_invalid_input,
    filters_by_status_assignee_team_and_channel_combine,
    absurd_queries_are_refused_by_the_depth_and_complexity_limits,
    free_text_over_its_length_limit_is_refused_and_nothing_is_written,
    subscription_receives_a_message_that_arrives_after_subscribing,
    subscription_with_a_bad_token_is_refused,
);

async fn requests_without_a_valid_token_are_refused_with_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The routing policy's teams exist from the start.
    let seeded = app.count("teams").await;
    let url = format!("{}/graphql", app.address);
    let query = json!({ "query": "{ me { role } }" });
    for header in [
        None,
        Some("Bearer prl_not_a_token"),
        Some("Basic YWRtaW46YWRtaW4="),
        Some("Bearer "),
    ] {
        let mut request = app.client.post(&url).json(&query);
        if let Some(value) = header {
            request = request.header("Authorization", value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("graphql request: {e}"));
        assert_eq!(response.status(), 401, "Authorization: {header:?}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("JSON error: {e}"));
        assert_eq!(error_code(&body), "unauthenticated", "{body}");
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        assert_eq!(body["data"], Value::Null);
    }
    // Nothing was run on the way: a mutation without a token creates nothing.
    let response = app
        .client
        .post(&url)
        .json(&json!({ "query": "mutation { createTeam(name: \"Intruders\") { id } }" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("graphql request: {e}"));
    assert_eq!(response.status(), 401);
    assert_eq!(app.count("teams").await, seeded);
}

async fn me_describes_the_caller(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let me = app
        .graphql("{ me { tokenId role agentId } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN", "{me}");
    assert_eq!(me["data"]["me"]["agentId"], Value::Null);
    let admin_token_id = me["data"]["me"]["tokenId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(admin_token_id.parse::<i64>().is_ok(), "{me}");

    let agent = create_agent(&app, "Dana", None).await;
    let agent_token = app.token(Role::Agent, agent.parse().ok()).await;
    let me = app
        .graphql_as(&agent_token, "{ me { tokenId role agentId } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["role"], "AGENT", "{me}");
    assert_eq!(me["data"]["me"]["agentId"], agent.as_str());
    assert_ne!(me["data"]["me"]["tokenId"], admin_token_id.as_str());

    let integration = app.token(Role::Integration, None).await;
    let me = app
        .graphql_as(&integration, "{ me { role agentId } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"],
        json!({ "role": "INTEGRATION", "agentId": null })
    );
}

async fn only_admins_create_agents_and_teams(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The routing policy's teams exist from the start.
    let seeded = app.count("teams").await;
    let team = app
        .graphql(
            "mutation { createTeam(name: \"Billing\") { id name } }",
            json!({}),
        )
        .await;
    assert_eq!(team["data"]["createTeam"]["name"], "Billing", "{team}");
    let team_id = team["data"]["createTeam"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let created = app
        .graphql(
            "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id name email role team { id name } } }",
            json!({ "i": { "name": "Eve", "email": "eve@example.com", "role": "AGENT", "teamId": team_id } }),
        )
        .await;
    let eve = &created["data"]["createAgent"];
    assert_eq!(eve["name"], "Eve", "{created}");
    assert_eq!(eve["email"], "eve@example.com");
    assert_eq!(eve["role"], "AGENT");
    assert_eq!(eve["team"], json!({ "id": team_id, "name": "Billing" }));
    let eve_id: i64 = eve["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_default();

    let agent_token = app.token(Role::Agent, Some(eve_id)).await;
    let supervisor = app.token(Role::Supervisor, None).await;
    let integration = app.token(Role::Integration, None).await;
    let create_agent = json!({ "i": { "name": "Mallory", "role": "ADMIN" } });
    let create_agent_query = "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }";
    for token in [&agent_token, &supervisor, &integration] {
        let refused = app
            .graphql_as(token, create_agent_query, create_agent.clone())
            .await;
        assert_eq!(error_code(&refused), "forbidden", "{refused}");
        assert_eq!(refused["data"], Value::Null);
        let refused = app
            .graphql_as(
                token,
                "mutation { createApiToken(name: \"more\", role: ADMIN) { token } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&refused), "forbidden", "{refused}");
    }
    for token in [&agent_token, &integration] {
        let refused = app
            .graphql_as(
                token,
                "mutation { createTeam(name: \"Shadow\") { id } }",
                json!({}),
            )
            .await;
        assert_eq!(error_code(&refused), "forbidden", "{refused}");
    }
    assert_eq!(app.count("agents").await, 1);
    assert_eq!(app.count("teams").await, seeded + 1);

    // Supervisors run teams, but do not hire.
    let team = app
        .graphql_as(
            &supervisor,
            "mutation { createTeam(name: \"Returns\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(team["data"]["createTeam"]["name"], "Returns", "{team}");
    let teams = app
        .graphql_as(&agent_token, "{ teams { name } }", json!({}))
        .await;
    let mut names: Vec<&str> = teams["data"]["teams"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    names.sort();
    assert!(
        names.contains(&"Billing") && names.contains(&"Returns"),
        "{names:?}"
    );
    assert_eq!(names.len() as i64, seeded + 2);
}

async fn agents_may_assign_conversations_only_to_themselves(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let ana = create_agent(&app, "Ana", None).await;
    let bo = create_agent(&app, "Bo", None).await;
    let ana_token = app.token(Role::Agent, ana.parse().ok()).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.A1", "Hello").await;
    let events = app.count("conversation_events").await;

    let refused = assign_as(&app, &ana_token, &id, Some(&bo)).await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let c = conversation(&app, &id).await;
    assert_eq!(
        (&c["status"], &c["assignee"]),
        (&json!("CREATED"), &Value::Null)
    );
    assert_eq!(app.count("conversation_events").await, events);

    // An integration may not assign at all.
    let integration = app.token(Role::Integration, None).await;
    let refused = assign_as(&app, &integration, &id, Some(&bo)).await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");

    let taken = assign_as(&app, &ana_token, &id, Some(&ana)).await;
    assert_eq!(
        taken["data"]["assignConversation"]["status"], "ASSIGNED",
        "{taken}"
    );
    assert_eq!(
        taken["data"]["assignConversation"]["assignee"]["id"],
        ana.as_str()
    );

    // An admin may hand it to anyone, but only to an agent that exists.
    let handed = assign_as(&app, &app.admin_token, &id, Some(&bo)).await;
    assert_eq!(
        handed["data"]["assignConversation"]["assignee"]["id"],
        bo.as_str(),
        "{handed}"
    );
    let unknown = assign_as(&app, &app.admin_token, &id, Some("987654")).await;
    assert_eq!(error_code(&unknown), "agent_not_found", "{unknown}");
    assert_eq!(conversation(&app, &id).await["assignee"]["id"], bo.as_str());

    // Ana cannot take Bo's case away by unassigning it, but Bo can let go of it.
    let refused = assign_as(&app, &ana_token, &id, None).await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    assert_eq!(conversation(&app, &id).await["assignee"]["id"], bo.as_str());
    let bo_token = app.token(Role::Agent, bo.parse().ok()).await;
    let released = assign_as(&app, &bo_token, &id, None).await;
    assert_eq!(
        released["data"]["assignConversation"]["assignee"],
        Value::Null,
        "{released}"
    );
}

async fn duplicate_team_name_is_refused_as_name_taken(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // The routing policy's teams exist from the start.
    let seeded = app.count("teams").await;
    create_team(&app, "Support").await;
    for name in ["Support", "  Support  "] {
        let again = app
            .graphql(
                "mutation($n: String!) { createTeam(name: $n) { id } }",
                json!({ "n": name }),
            )
            .await;
        assert_eq!(error_code(&again), "name_taken", "{name:?}: {again}");
        assert_eq!(again["data"], Value::Null);
    }
    let empty = app
        .graphql("mutation { createTeam(name: \"   \") { id } }", json!({}))
        .await;
    assert_eq!(error_code(&empty), "invalid_input", "{empty}");
    assert_eq!(app.count("teams").await, seeded + 1);
}

async fn agent_in_an_unknown_team_is_refused_and_not_created(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let query = "mutation($i: CreateAgentInput!) { createAgent(input: $i) { id } }";
    let unknown = app
        .graphql(
            query,
            json!({ "i": { "name": "Finn", "role": "AGENT", "teamId": "424242" } }),
        )
        .await;
    assert_eq!(error_code(&unknown), "team_not_found", "{unknown}");
    let malformed = app
        .graphql(
            query,
            json!({ "i": { "name": "Finn", "role": "AGENT", "teamId": "billing" } }),
        )
        .await;
    assert_eq!(error_code(&malformed), "invalid_input", "{malformed}");
    let bad_email = app
        .graphql(
            query,
            json!({ "i": { "name": "Finn", "role": "AGENT", "email": "finn.example.com" } }),
        )
        .await;
    assert_eq!(error_code(&bad_email), "invalid_input", "{bad_email}");
    assert_eq!(app.count("agents").await, 0);
}

async fn invalid_replies_are_refused_with_typed_errors_and_write_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.V1", "Hi").await;
    let tables = ["messages", "outbox", "conversation_events"];
    let mut before = Vec::new();
    for table in tables {
        before.push(app.count(table).await);
    }
    let query = "mutation($c: ID!, $t: String!) { sendReply(conversationId: $c, text: $t) { id } }";
    let cases = [
        (id.clone(), String::new(), "invalid_input"),
        (id.clone(), " \n\t ".to_owned(), "invalid_input"),
        (id.clone(), "a".repeat(4097), "invalid_input"),
        (
            "987654".to_owned(),
            "Hello".to_owned(),
            "conversation_not_found",
        ),
        ("not-an-id".to_owned(), "Hello".to_owned(), "invalid_input"),
        ("0".to_owned(), "Hello".to_owned(), "invalid_input"),
        ("-3".to_owned(), "Hello".to_owned(), "invalid_input"),
    ];
    for (conversation, text, code) in cases {
        let answer = app
            .graphql(query, json!({ "c": conversation, "t": text }))
            .await;
        assert_eq!(
            error_code(&answer),
            code,
            "conversation {conversation:?}, {} chars: {answer}",
            text.chars().count()
        );
        assert_eq!(answer["data"], Value::Null);
    }
    for (table, count) in tables.iter().zip(&before) {
        assert_eq!(app.count(table).await, *count, "{table} changed");
    }
    assert!(
        app.meta
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );

    // The limit counts characters, not bytes: 4096 two-byte characters are accepted.
    let longest = "é".repeat(4096);
    let accepted = app.graphql(query, json!({ "c": id, "t": longest })).await;
    assert!(
        accepted["data"]["sendReply"]["id"].is_string(),
        "{accepted}"
    );
    assert_eq!(app.count("messages").await, before[0] + 1);
    assert_eq!(app.count("outbox").await, before[1] + 1);
}

async fn pages_walk_every_conversation_newest_activity_first(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let mut conversations = Vec::new();
    for n in 0..25 {
        app.clock.advance(Duration::from_secs(1));
        let wamid = format!("wamid.P{n}");
        conversations.push(customer_writes(&app, &customer(n), &wamid, "Hello").await);
    }
    // An agent's reply is activity too: the oldest conversation moves to the top.
    app.clock.advance(Duration::from_secs(1));
    reply(&app, &conversations[0], "Thanks for waiting").await;

    let (nodes, sizes) = walk(&app, 10, Value::Null).await;

    assert_eq!(sizes, [10, 10, 5]);
    let expected: Vec<String> = std::iter::once(0)
        .chain((1..25).rev())
        .map(customer)
        .collect();
    assert_eq!(wa_ids(&nodes), expected);
    let times: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["lastActivityAt"].as_str())
        .collect();
    assert_eq!(times.len(), 25);
    assert!(
        times.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {times:?}"
    );
    let ids: HashSet<&str> = nodes.iter().filter_map(|n| n["id"].as_str()).collect();
    assert_eq!(ids.len(), 25);

    // A page of exactly the remaining rows says there is nothing after it.
    let last_page = app
        .graphql(PAGE, json!({ "first": 25, "filter": null }))
        .await;
    assert_eq!(
        last_page["data"]["conversations"]["pageInfo"]["hasNextPage"], false,
        "{last_page}"
    );
    let after_all = app
        .graphql(
            PAGE,
            json!({ "first": 10, "after": last_page["data"]["conversations"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(
        after_all["data"]["conversations"]["edges"],
        json!([]),
        "{after_all}"
    );
    assert_eq!(
        after_all["data"]["conversations"]["pageInfo"]["hasNextPage"],
        false
    );
}

async fn pages_never_skip_or_repeat_conversations_with_the_same_activity_time(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // 25 customers in one payload: every conversation starts at the same instant.
    let timestamp = START / 1_000_000;
    let messages: Vec<Value> = (0..25)
        .map(|n| {
            json!({ "from": customer(n), "id": format!("wamid.T{n}"), "timestamp": timestamp.to_string(),
                    "type": "text", "text": { "body": "Hello" } })
        })
        .collect();
    let contacts: Vec<Value> = (0..25)
        .map(|n| json!({ "profile": { "name": format!("Customer {n}") }, "wa_id": customer(n) }))
        .collect();
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "16505553333", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": contacts,
            "messages": messages
        } }] }]
    });
    assert_eq!(app.post_webhook(&body.to_string()).await.status(), 200);
    eventually("all 25 conversations exist", || async {
        app.count("conversations").await == 25
    })
    .await;

    for first in [1, 7, 10, 24] {
        let (nodes, sizes) = walk(&app, first, Value::Null).await;
        let ids: Vec<i64> = nodes
            .iter()
            .filter_map(|n| n["id"].as_str().and_then(|id| id.parse().ok()))
            .collect();
        assert_eq!(ids.len(), 25, "first {first}: {sizes:?}");
        let mut expected = ids.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        expected.dedup();
        assert_eq!(
            ids, expected,
            "first {first}: ties must be ordered by id, each once"
        );
        assert_eq!(sizes.iter().sum::<usize>(), 25);
    }
}

async fn page_sizes_and_cursors_outside_the_rules_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    customer_writes(&app, CUSTOMER, "wamid.L1", "Hi").await;
    for first in [0, -1, 101] {
        let answer = app.graphql(PAGE, json!({ "first": first })).await;
        assert_eq!(
            error_code(&answer),
            "invalid_input",
            "first {first}: {answer}"
        );
        assert_eq!(answer["data"], Value::Null);
    }
    // Far above the maximum, the complexity limit refuses the query before it runs.
    let answer = app.graphql(PAGE, json!({ "first": 10_000 })).await;
    assert!(answer["data"].is_null(), "{answer}");
    assert!(answer["errors"][0]["message"].is_string(), "{answer}");
    let answer = app.graphql(PAGE, json!({ "first": 100 })).await;
    assert_eq!(
        answer["data"]["conversations"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{answer}"
    );
    for after in ["garbage", "bTo1", ""] {
        let answer = app
            .graphql(PAGE, json!({ "first": 10, "after": after }))
            .await;
        assert_eq!(
            error_code(&answer),
            "invalid_input",
            "after {after:?}: {answer}"
        );
    }
}

async fn filters_by_status_assignee_team_and_channel_combine(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let billing = create_team(&app, "Billing").await;
    let ana = create_agent(&app, "Ana", Some(&billing)).await;
    let bo = create_agent(&app, "Bo", None).await;
    let a = customer_writes(&app, &customer(1), "wamid.F1", "Invoice wrong").await;
    let b = customer_writes(&app, &customer(2), "wamid.F2", "Where is my parcel").await;
    customer_writes(&app, &customer(3), "wamid.F3", "Hello?").await;
    let d = customer_writes(&app, &customer(4), "wamid.F4", "Thanks!").await;
    let given = app
        .graphql(
            "mutation($c: ID!, $a: ID, $t: ID) { assignConversation(conversationId: $c, agentId: $a, teamId: $t) { team { id } } }",
            json!({ "c": a, "a": ana, "t": billing }),
        )
        .await;
    assert_eq!(
        given["data"]["assignConversation"]["team"]["id"],
        billing.as_str(),
        "{given}"
    );
    assert_eq!(
        assign_as(&app, &app.admin_token, &b, Some(&bo)).await["data"]["assignConversation"]["status"],
        "ASSIGNED"
    );
    assert_eq!(
        set_status(&app, &d, "RESOLVED").await["data"]["setConversationStatus"]["status"],
        "RESOLVED"
    );
    let [c1, c2, c3, c4] = [1, 2, 3, 4].map(customer);
    const NONE: [&str; 0] = [];

    assert_eq!(
        filtered(&app, json!({ "status": ["CREATED"] })).await,
        [c3.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "status": ["ASSIGNED"] })).await,
        [c1.as_str(), c2.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "status": ["CREATED", "RESOLVED"] })).await,
        [c3.as_str(), c4.as_str()]
    );
    assert_eq!(filtered(&app, json!({ "status": ["CLOSED"] })).await, NONE);
    assert_eq!(
        filtered(&app, json!({ "assigneeId": ana })).await,
        [c1.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "assigneeId": bo })).await,
        [c2.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "teamId": billing })).await,
        [c1.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "assigneeId": bo, "status": ["ASSIGNED"] })).await,
        [c2.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "assigneeId": bo, "status": ["RESOLVED"] })).await,
        NONE
    );
    assert_eq!(
        filtered(&app, json!({ "teamId": billing, "assigneeId": bo })).await,
        NONE
    );
    assert_eq!(
        filtered(&app, json!({ "channelId": CHANNEL })).await,
        [c1.as_str(), c2.as_str(), c3.as_str(), c4.as_str()]
    );
    assert_eq!(
        filtered(&app, json!({ "channelId": "meta-other" })).await,
        NONE
    );
    assert_eq!(
        filtered(
            &app,
            json!({ "channelId": CHANNEL, "status": ["ASSIGNED"], "teamId": billing })
        )
        .await,
        [c1.as_str()]
    );
    let malformed = app
        .graphql(PAGE, json!({ "filter": { "assigneeId": "ana" } }))
        .await;
    assert_eq!(error_code(&malformed), "invalid_input", "{malformed}");
}

async fn absurd_queries_are_refused_by_the_depth_and_complexity_limits(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    customer_writes(&app, CUSTOMER, "wamid.Q1", "Hi").await;
    let reasonable = app
        .graphql(
            "{ conversations(first: 5) { edges { node { messages(first: 5) { edges { node { id text } } } } } } }",
            json!({}),
        )
        .await;
    assert!(reasonable["errors"].is_null(), "{reasonable}");

    let too_complex = app
        .graphql(
            "{ conversations(first: 100) { edges { node { id status messages(first: 100) { edges { node { id text kind direction } } } } } } }",
            json!({}),
        )
        .await;
    let message = too_complex["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.to_lowercase().contains("complex"), "{too_complex}");
    assert!(too_complex["data"].is_null(), "{too_complex}");
    assert_eq!(error_code(&too_complex), "invalid_query", "{too_complex}");

    // Introspection nests as deep as anyone asks; the limit is 12 levels.
    let nested = |levels: usize| {
        format!(
            "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
            "ofType { ".repeat(levels),
            "} ".repeat(levels)
        )
    };
    let shallow = app.graphql(&nested(6), json!({})).await;
    assert!(shallow["errors"].is_null(), "{shallow}");
    let too_deep = app.graphql(&nested(10), json!({})).await;
    let message = too_deep["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.to_lowercase().contains("nested"), "{too_deep}");
    assert!(too_deep["data"].is_null(), "{too_deep}");
}

async fn subscription_receives_a_message_that_arrives_after_subscribing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    const OTHER: &str = "447700900123";
    let watched = customer_writes(&app, CUSTOMER, "wamid.W1", "Hi").await;
    customer_writes(&app, OTHER, "wamid.O1", "Hello").await;
    let agent = create_agent(&app, "Gus", None).await;
    let token = app.token(Role::Agent, agent.parse().ok()).await;

    let mut socket = open_socket(&app).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    let ack = next_message(&mut socket, Duration::from_secs(15)).await;
    assert_eq!(
        ack.as_ref().map(|m| &m["type"]),
        Some(&json!("connection_ack")),
        "{ack:?}"
    );
    send_frame(
        &mut socket,
        json!({
            "id": "1",
            "type": "subscribe",
            "payload": {
                "query": "subscription($c: ID) { conversationEvents(conversationId: $c) { kind actor conversationId data: dataJson } }",
                "variables": { "c": watched }
            }
        }),
    )
    .await;

    // The protocol does not confirm a subscription: add notes until one comes back, and
    // the subscription is known to be live.
    let mut live = false;
    for attempt in 0..50 {
        let note = app
            .graphql_as(
                &token,
                "mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id } }",
                json!({ "c": watched, "b": format!("probe {attempt}") }),
            )
            .await;
        assert!(note["data"]["addNote"]["id"].is_string(), "{note}");
        if let Some(event) = next_message(&mut socket, Duration::from_millis(300)).await {
            assert_eq!(event["type"], "next", "{event}");
            assert_eq!(event["id"], "1");
            assert_eq!(
                event["payload"]["data"]["conversationEvents"]["kind"], "note_added",
                "{event}"
            );
            live = true;
            break;
        }
    }
    assert!(live, "the subscription never delivered an event");

    // Another customer's message is not this subscription's business...
    customer_writes(&app, OTHER, "wamid.O2", "Still there?").await;
    // ...this customer's message is.
    let posted = app
        .post_webhook(&text_webhook(
            CUSTOMER,
            "wamid.W2",
            "My order is late",
            START / 1_000_000,
        ))
        .await;
    assert_eq!(posted.status(), 200);
    let event = loop {
        let message = next_message(&mut socket, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("no event before the timeout"));
        assert_eq!(message["type"], "next", "{message}");
        let event = message["payload"]["data"]["conversationEvents"].clone();
        assert_eq!(
            event["conversationId"],
            watched.as_str(),
            "an event of another conversation: {event}"
        );
        if event["kind"] == "note_added" {
            continue; // a late probe
        }
        break event;
    };
    assert_eq!(event["kind"], "message_in", "{event}");
    assert_eq!(event["actor"], "customer");
    assert_eq!(event["data"]["provider_message_id"], "wamid.W2");
    assert_eq!(event["data"]["kind"], "text");

    send_frame(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    let _ = socket.close(None).await;
}

async fn subscription_with_a_bad_token_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut socket = open_socket(&app).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer prl_not_a_token" } }),
    )
    .await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => return,
                Some(Ok(Frame::Text(text))) => {
                    panic!("a bad token must not be acknowledged: {}", text.as_str())
                }
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the socket stayed open after a bad connection_init"
    );
}

async fn unknown_conversation_reads_as_null_and_a_malformed_id_is_invalid_input(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, CUSTOMER, "wamid.U1", "Hi").await;
    let query = "query($id: ID!) { conversation(id: $id) { id contact { waId } } }";
    let found = app.graphql(query, json!({ "id": id })).await;
    assert_eq!(
        found["data"]["conversation"]["contact"]["waId"], CUSTOMER,
        "{found}"
    );
    let missing = app.graphql(query, json!({ "id": "987654" })).await;
    assert!(missing["errors"].is_null(), "{missing}");
    assert_eq!(missing["data"]["conversation"], Value::Null);
    for bad in ["abc", "0", "1.5", ""] {
        let answer = app.graphql(query, json!({ "id": bad })).await;
        assert_eq!(error_code(&answer), "invalid_input", "id {bad:?}: {answer}");
    }
    let unknown_assign = app
        .graphql(
            "mutation { assignConversation(conversationId: \"987654\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        error_code(&unknown_assign),
        "conversation_not_found",
        "{unknown_assign}"
    );
}

/// Notes (4,096 characters), reasons (1,000) and names (200) have limits: a longer value is
/// refused as `invalid_input` before anything runs; one at the limit is taken.
async fn free_text_over_its_length_limit_is_refused_and_nothing_is_written(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let conversation = customer_writes(&app, "16315551234", "wamid.LEN1", "hello").await;
    let notes = app.count("notes").await;
    let teams = app.count("teams").await;
    let refused = [
        (
            "mutation($c: ID!, $t: String!) { addNote(conversationId: $c, body: $t) { id } }",
            4097,
        ),
        (
            "mutation($c: ID!, $t: String!) { escalateConversation(conversationId: $c, reason: $t) { id } }",
            1001,
        ),
        (
            "mutation($t: String!) { blockContact(waId: \"16315551234\", reason: $t) { waId } }",
            1001,
        ),
        ("mutation($t: String!) { createTeam(name: $t) { id } }", 201),
        (
            "mutation($t: String!) { createAgent(input: { name: $t, role: AGENT }) { id } }",
            201,
        ),
    ];
    for (query, length) in refused {
        let text = "é".repeat(length);
        let answer = app
            .graphql(query, json!({ "c": conversation, "t": text }))
            .await;
        assert_eq!(error_code(&answer), "invalid_input", "{query}: {answer}");
        assert!(answer["data"].is_null(), "{answer}");
    }
    assert_eq!(app.count("notes").await, notes);
    assert_eq!(app.count("teams").await, teams);
    let blocked = app
        .graphql("{ contact(waId: \"16315551234\") { blocked } }", json!({}))
        .await;
    assert_eq!(blocked["data"]["contact"]["blocked"], false, "{blocked}");

    // At the limit: taken.
    let answer = app
        .graphql(
            "mutation($c: ID!, $t: String!) { addNote(conversationId: $c, body: $t) { id } }",
            json!({ "c": conversation, "t": "é".repeat(4096) }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
    let answer = app
        .graphql(
            "mutation($t: String!) { createTeam(name: $t) { id } }",
            json!({ "t": "t".repeat(200) }),
        )
        .await;
    assert!(answer["errors"].is_null(), "{answer}");
}
