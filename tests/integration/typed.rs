//! The typed API a frontend generates types from: message contents by kind, event
//! details by kind, triage with its decision, urgency as an enum; and the complexity
//! limit letting an inbox screen through while refusing abuse.

use crate::helpers::*;
use parley::clock::Clock;
use serde_json::{Value, json};

on_both_databases!(
    message_contents_and_event_details_are_typed_by_kind,
    an_inbox_screen_passes_the_complexity_limit_and_abuse_does_not,
    fields_that_cost_work_are_priced_and_bounded,
);

const CONVERSATION: &str = r#"
query($id: ID!) { conversation(id: $id) {
  urgency urgencyLabel
  triage { intents { label confidence } language { label } urgencyLevel
           decision { owner review matchedRules { name matchedOn contributed } } }
  messages(first: 20) { edges { node {
    kind direction text deliveryStatus
    content {
      __typename
      ... on TextContent { body }
      ... on MediaContent { mediaId mimeType caption }
      ... on LocationContent { latitude longitude name }
    }
    contentJson
  } } }
  events(first: 50) { kind dataJson data {
    __typename
    ... on CreatedEventData { channelId }
    ... on MessageInEventData { messageKind providerMessageId }
    ... on MessageOutEventData { messageKind messageId }
    ... on MessageStatusEventData { messageId status }
    ... on TriagedEventData { triage { intents { label confidence } decision { owner } } }
    ... on StatusChangedEventData { from to automatic }
    ... on OtherEventData { kind }
  } }
} }"#;

async fn message_contents_and_event_details_are_typed_by_kind(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    const WA: &str = "5511988887777";
    let id = customer_writes(&app, WA, "wamid.T1", "I was charged twice for my order").await;
    let photo = message_webhook(
        WA,
        json!({ "from": WA, "id": "wamid.T2", "timestamp": (app.clock.now() / 1_000_000).to_string(),
                "type": "image", "image": { "id": "media-77", "mime_type": "image/jpeg",
                "sha256": "abc", "caption": "it arrived broken" } }),
    );
    assert_eq!(app.post_webhook(&photo).await.status(), 200);
    let place = message_webhook(
        WA,
        json!({ "from": WA, "id": "wamid.T3", "timestamp": (app.clock.now() / 1_000_000).to_string(),
                "type": "location", "location": { "latitude": 52.52, "longitude": 13.4, "name": "Depot" } }),
    );
    assert_eq!(app.post_webhook(&place).await.status(), 200);
    conversation_holding(&app, WA, "wamid.T3").await;
    let sent = reply(&app, &id, "Sorry! Refunding the second charge.").await;
    let sent_id = sent["id"].as_str().unwrap().to_owned();
    message_reaches(&app, &id, &sent_id, "SENT").await;
    app.post_webhook(&status_webhook("wamid.OUT1", "delivered", None))
        .await;
    message_reaches(&app, &id, &sent_id, "DELIVERED").await;

    let answer = app.graphql(CONVERSATION, json!({ "id": id })).await;
    assert!(answer["errors"].is_null(), "{answer}");
    let case = &answer["data"]["conversation"];
    // Urgency is an enum; its taxonomy name stays readable.
    let label = case["urgencyLabel"].as_str().unwrap_or_default();
    assert_eq!(case["urgency"], label.to_uppercase(), "{case}");
    // The case's triage is its latest message's (a location: no intent).
    let triage = &case["triage"];
    assert_eq!(triage["language"]["label"], "en", "{triage}");
    assert!(triage["decision"]["owner"].is_string(), "{triage}");
    assert!(triage["decision"]["matchedRules"].is_array(), "{triage}");

    let messages: Vec<&Value> = case["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let by_kind = |kind: &str, direction: &str| {
        messages
            .iter()
            .find(|m| m["kind"] == kind && m["direction"] == direction)
            .unwrap_or_else(|| panic!("no {direction} {kind} in {messages:?}"))
    };
    let text = by_kind("text", "INBOUND");
    assert_eq!(text["content"]["__typename"], "TextContent");
    assert_eq!(text["content"]["body"], "I was charged twice for my order");
    let image = by_kind("image", "INBOUND");
    assert_eq!(
        image["content"],
        json!({ "__typename": "MediaContent", "mediaId": "media-77", "mimeType": "image/jpeg", "caption": "it arrived broken" })
    );
    // The raw JSON stays as an escape hatch.
    assert_eq!(image["contentJson"]["type"], "media");
    let location = by_kind("location", "INBOUND");
    assert_eq!(location["content"]["__typename"], "LocationContent");
    assert_eq!(location["content"]["name"], "Depot");
    let out = by_kind("text", "OUTBOUND");
    assert_eq!(
        out["content"]["body"],
        "Sorry! Refunding the second charge."
    );
    assert_eq!(out["deliveryStatus"], "DELIVERED");

    let events = case["events"].as_array().unwrap();
    let typed = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .map(|e| &e["data"])
            .unwrap_or_else(|| panic!("no {kind} event in {events:?}"))
    };
    assert_eq!(typed("created")["__typename"], "CreatedEventData");
    assert_eq!(typed("message_in")["messageKind"], "text");
    assert_eq!(typed("message_in")["providerMessageId"], "wamid.T1");
    assert_eq!(typed("message_out")["messageId"], sent_id.as_str());
    // The first message's triage: a billing complaint, with its confidence.
    let triaged = typed("triaged");
    assert_eq!(triaged["__typename"], "TriagedEventData");
    assert!(
        triaged["triage"]["decision"]["owner"].is_string(),
        "{triaged}"
    );
    let billing = triaged["triage"]["intents"]
        .as_array()
        .and_then(|i| i.iter().find(|t| t["label"] == "billing_complaint"))
        .unwrap_or_else(|| panic!("no billing complaint in {triaged}"));
    assert!(billing["confidence"].as_f64() > Some(0.0), "{billing}");
    let delivered = events
        .iter()
        .find(|e| e["kind"] == "message_status" && e["data"]["status"] == "DELIVERED")
        .unwrap_or_else(|| panic!("no delivered status in {events:?}"));
    assert_eq!(delivered["data"]["messageId"], sent_id.as_str());
    assert_eq!(delivered["dataJson"]["status"], "delivered");
    let changed = typed("status_changed");
    assert_eq!(changed["__typename"], "StatusChangedEventData");
    assert_eq!(changed["automatic"], false);
}

/// What an inbox shows on one screen: 25 cases with their last 20 messages.
const INBOX_SCREEN: &str = r#"
query($after: String) {
  conversations(first: 25, after: $after) {
    edges { cursor node {
      id status priority urgency review language reopenCount lastActivityAt createdAt
      watcherTeams
      contact { waId name vip }
      assignee { id name }
      team { id name }
      serviceWindow { open closesAt }
      triage { intents { label confidence } risks { label confidence } }
      messages(first: 20) {
        edges { node {
          id direction kind text deliveryStatus createdAt authorAgentId
          error { code title reason }
          content { __typename ... on MediaContent { mediaId mimeType caption } }
        } }
        pageInfo { hasNextPage endCursor }
      }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"#;

async fn an_inbox_screen_passes_the_complexity_limit_and_abuse_does_not(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    customer_writes(&app, "5511977776666", "wamid.C1", "Hello").await;
    let screen = app.graphql(INBOX_SCREEN, json!({})).await;
    assert!(screen["errors"].is_null(), "{screen}");
    assert_eq!(
        screen["data"]["conversations"]["edges"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // A hundred cases with a hundred messages each, and their events: refused before
    // anything runs.
    let abuse = app
        .graphql(
            "{ conversations(first: 100) { edges { node { id messages(first: 100) { edges { node { id text kind direction content { __typename } } } }
               events(first: 100) { kind dataJson } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&abuse), "invalid_query", "{abuse}");
    assert!(abuse["data"].is_null(), "{abuse}");
    let message = abuse["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.to_lowercase().contains("complex"), "{abuse}");
}

/// Fields cheap to ask and expensive to answer are priced by the work they do, lists of
/// them are paged, ranges are bounded, and no page size overflows the arithmetic.
async fn fields_that_cost_work_are_priced_and_bounded(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let conversation = customer_writes(&app, "5511977776666", "wamid.P1", "Hello").await;
    let refused = |answer: &serde_json::Value| {
        assert_eq!(error_code(answer), "invalid_query", "{answer}");
        assert!(answer["data"].is_null(), "{answer}");
    };
    // Each case's SLA view and notes are work of their own: a page of them is refused.
    refused(
        &app.graphql(
            "{ conversations(first: 100) { edges { node { id sla { priority } notes(first: 100) { body }
               contact { consentHistory(first: 100) { purpose } } } } } }",
            json!({}),
        )
        .await,
    );
    // Page sizes near i32::MAX at every level: refused, never wrapped round to a small cost.
    let huge = i32::MAX;
    refused(
        &app.graphql(
            &format!(
                "{{ conversations(first: {huge}) {{ edges {{ node {{ messages(first: {huge}) {{ edges {{ node {{ id }} }} }}
                   events(first: {huge}) {{ kind }} notes(first: {huge}) {{ body }} }} }} }}
                   heldMessages(first: {huge}) {{ id }} auditLog(first: {huge}) {{ entries {{ id }} }} suppressions(first: {huge}) {{ id }} }}"
            ),
            json!({}),
        )
        .await,
    );
    // Explaining triage classifies text: a batch of aliases costs as much.
    let explain = (0..500)
        .map(|i| format!("e{i}: explainTriage(text: \"where is my order\") {{ language }}"))
        .collect::<Vec<_>>()
        .join(" ");
    refused(&app.graphql(&format!("{{ {explain} }}"), json!({})).await);

    // The escalation mix reads the event log: at most 92 days back.
    let since_1970 = app
        .graphql(
            "{ escalationMix(since: \"1970-01-01T00:00:00Z\") { count } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&since_1970), "invalid_input", "{since_1970}");
    let recent = app.graphql("{ escalationMix { count } }", json!({})).await;
    assert!(recent["errors"].is_null(), "{recent}");

    // Ordinary use passes, and notes page.
    for body in ["first", "second", "third"] {
        let added = app
            .graphql(
                "mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id } }",
                json!({ "c": conversation, "b": body }),
            )
            .await;
        assert!(added["errors"].is_null(), "{added}");
    }
    let page = |after: Option<String>| {
        let app = &app;
        let conversation = conversation.clone();
        async move {
            let answer = app
                .graphql(
                    "query($c: ID!, $a: ID) { conversation(id: $c) { sla { priority } notes(first: 2, after: $a) { id body } } }",
                    json!({ "c": conversation, "a": after }),
                )
                .await;
            assert!(answer["errors"].is_null(), "{answer}");
            answer["data"]["conversation"]["notes"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let first = page(None).await;
    let bodies: Vec<_> = first.iter().map(|n| n["body"].clone()).collect();
    assert_eq!(bodies, [json!("first"), json!("second")]);
    let rest = page(first[1]["id"].as_str().map(str::to_owned)).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["body"], "third");
}
