//! The ticket lifecycle through the real server: a customer's messages arrive by webhook,
//! agents act through GraphQL, and the conversation moves CREATED → ASSIGNED → IN_PROGRESS
//! → PENDING → RESOLVED → CLOSED, reopening or starting over as the rules say.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::Duration;

const CUSTOMER: &str = "16315551234";
const DAY: Duration = Duration::from_secs(86_400);

fn status_of(answer: &Value) -> &str {
    answer["data"]["setConversationStatus"]["status"]
        .as_str()
        .unwrap_or_default()
}

async fn assign(app: &TestApp, conversation_id: &str, agent_id: &str) -> Value {
    app.graphql(
        "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { id status assignee { id } } }",
        json!({ "c": conversation_id, "a": agent_id }),
    )
    .await
}

on_both_databases!(
    first_message_creates_a_conversation_with_the_contacts_wa_id_and_name,
    the_same_message_delivered_twice_is_stored_once,
    assignment_reply_and_customer_answer_move_the_case_through_its_statuses,
    customer_message_within_the_reopen_window_reopens_the_resolved_conversation,
    customer_message_after_the_reopen_window_starts_a_new_conversation_and_closes_the_old,
    customer_message_after_close_starts_a_new_conversation,
    invalid_status_transitions_are_refused_and_change_nothing,
    closed_conversations_refuse_replies_notes_and_status_changes,
    notes_are_kept_internal_and_logged,
    event_log_lists_every_change_in_order,
    messages_posted_together_keep_their_order,
);

async fn first_message_creates_a_conversation_with_the_contacts_wa_id_and_name(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };

    let id = customer_writes(&app, CUSTOMER, "wamid.FIRST", "Hi, my order never arrived").await;

    let c = conversation(&app, &id).await;
    assert_eq!(c["status"], "CREATED");
    assert_eq!(c["contact"]["waId"], CUSTOMER);
    assert_eq!(c["contact"]["name"], "Kerry Fisher");
    assert_eq!(c["channelId"], CHANNEL);
    assert_eq!(c["phoneNumberId"], PHONE_NUMBER_ID);
    assert_eq!(c["reopenCount"], 0);
    assert_eq!(c["assignee"], Value::Null);
    assert_eq!(c["firstResponseAt"], Value::Null);
    let messages = c["messages"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(messages.len(), 1, "{c}");
    let message = &messages[0]["node"];
    assert_eq!(message["direction"], "INBOUND");
    assert_eq!(message["kind"], "text");
    assert_eq!(message["text"], "Hi, my order never arrived");
    assert_eq!(message["providerMessageId"], "wamid.FIRST");
    assert_eq!(message["deliveryStatus"], Value::Null);
    assert_eq!(app.count("conversations").await, 1);
    assert_eq!(app.count("contacts").await, 1);
}

async fn the_same_message_delivered_twice_is_stored_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let timestamp = START / 1_000_000;
    let original = text_webhook(CUSTOMER, "wamid.ONCE", "Where is my parcel?", timestamp);

    assert_eq!(app.post_webhook(&original).await.status(), 200);
    // Meta redelivers the identical payload...
    assert_eq!(app.post_webhook(&original).await.status(), 200);
    // ...and may also send the same message inside a differently shaped payload.
    let reshaped = text_webhook(CUSTOMER, "wamid.ONCE", "Where is my parcel?", timestamp + 5);
    assert_eq!(app.post_webhook(&reshaped).await.status(), 200);
    all_webhooks_applied(&app).await;

    assert_eq!(app.count("messages").await, 1);
    assert_eq!(app.count("conversations").await, 1);
    let id = app.conversation_id_of(CUSTOMER).await;
    let messages = messages_of(&app, &id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["providerMessageId"], "wamid.ONCE");
    assert_eq!(
        event_kinds_of(&app, &id).await,
        ["created", "message_in", "triaged"],
        "a duplicate must not log a second arrival"
    );
}

async fn assignment_reply_and_customer_answer_move_the_case_through_its_statuses(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let agent = create_agent(&app, "Ana", None).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.S1", "My card was charged twice").await;

    let assigned = assign(&app, &id, &agent).await;
    assert_eq!(
        assigned["data"]["assignConversation"]["status"], "ASSIGNED",
        "{assigned}"
    );
    assert_eq!(
        assigned["data"]["assignConversation"]["assignee"]["id"],
        agent.as_str()
    );

    reply(&app, &id, "Sorry about that, let me check.").await;
    let c = conversation(&app, &id).await;
    assert_eq!(c["status"], "IN_PROGRESS");
    assert!(
        c["firstResponseAt"].is_string(),
        "first response not recorded: {c}"
    );

    let pending = set_status(&app, &id, "PENDING").await;
    assert_eq!(status_of(&pending), "PENDING", "{pending}");

    app.clock.advance(Duration::from_secs(600));
    let same = customer_writes(&app, CUSTOMER, "wamid.S2", "Here is the receipt").await;
    assert_eq!(same, id, "an answer while pending continues the same case");
    let c = conversation(&app, &id).await;
    assert_eq!(c["status"], "IN_PROGRESS");
    assert_eq!(c["reopenCount"], 0);
    assert_eq!(app.count("conversations").await, 1);
}

async fn customer_message_within_the_reopen_window_reopens_the_resolved_conversation(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, CUSTOMER, "wamid.R1", "How do I reset my password?").await;
    let resolved = set_status(&app, &id, "RESOLVED").await;
    assert_eq!(status_of(&resolved), "RESOLVED", "{resolved}");
    assert!(conversation(&app, &id).await["resolvedAt"].is_string());

    app.clock.advance(Duration::from_secs(3_600));
    let again = customer_writes(&app, CUSTOMER, "wamid.R2", "It still does not work").await;

    assert_eq!(again, id, "within the window the same conversation reopens");
    let c = conversation(&app, &id).await;
    assert_eq!(c["reopenCount"], 1);
    assert_eq!(
        c["status"], "CREATED",
        "nobody owns it, so it is back to new"
    );
    assert_eq!(c["resolvedAt"], Value::Null);
    assert_eq!(app.count("conversations").await, 1);
    let events = events_of(&app, &id).await;
    let reopened: Vec<&Value> = events.iter().filter(|e| e["kind"] == "reopened").collect();
    assert_eq!(reopened.len(), 1, "{events:?}");
    assert_eq!(reopened[0]["actor"], "customer");
    assert_eq!(reopened[0]["data"]["reopen_count"], 1);
    assert_eq!(reopened[0]["data"]["from"], "resolved");
}

async fn customer_message_after_the_reopen_window_starts_a_new_conversation_and_closes_the_old(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let old = customer_writes(&app, CUSTOMER, "wamid.W1", "Do you ship to Canada?").await;
    assert_eq!(
        status_of(&set_status(&app, &old, "RESOLVED").await),
        "RESOLVED"
    );

    app.clock.advance(DAY + Duration::from_secs(1));
    let new = customer_writes(&app, CUSTOMER, "wamid.W2", "Another question").await;

    assert_ne!(new, old, "after the window a new case starts");
    let old_c = conversation(&app, &old).await;
    assert_eq!(old_c["status"], "CLOSED");
    assert_eq!(old_c["reopenCount"], 0);
    let new_c = conversation(&app, &new).await;
    assert_eq!(new_c["status"], "CREATED");
    assert_eq!(new_c["reopenCount"], 0);
    assert_eq!(new_c["contact"]["waId"], CUSTOMER);
    let new_messages = messages_of(&app, &new).await;
    assert_eq!(new_messages.len(), 1);
    assert_eq!(new_messages[0]["providerMessageId"], "wamid.W2");
    assert_eq!(messages_of(&app, &old).await.len(), 1);
    let closing = events_of(&app, &old).await.pop().unwrap_or_default();
    assert_eq!(closing["kind"], "status_changed");
    assert_eq!(closing["data"]["to"], "closed");
    assert_eq!(closing["actor"], "system");
    assert_eq!(app.count("conversations").await, 2);
    assert_eq!(app.count("contacts").await, 1);
}

async fn customer_message_after_close_starts_a_new_conversation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let old = customer_writes(&app, CUSTOMER, "wamid.C1", "Thanks, all good").await;
    assert_eq!(
        status_of(&set_status(&app, &old, "RESOLVED").await),
        "RESOLVED"
    );
    assert_eq!(status_of(&set_status(&app, &old, "CLOSED").await), "CLOSED");

    // Well within the reopen window: a closed case still never reopens.
    app.clock.advance(Duration::from_secs(60));
    let new = customer_writes(&app, CUSTOMER, "wamid.C2", "One more thing").await;

    assert_ne!(new, old);
    assert_eq!(conversation(&app, &old).await["status"], "CLOSED");
    let new_c = conversation(&app, &new).await;
    assert_eq!(new_c["status"], "CREATED");
    assert_eq!(new_c["reopenCount"], 0);
    assert_eq!(
        event_kinds_of(&app, &new).await,
        ["created", "message_in", "triaged"]
    );
}

async fn invalid_status_transitions_are_refused_and_change_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let id = customer_writes(&app, CUSTOMER, "wamid.T1", "Hello").await;
    let events_before = app.count("conversation_events").await;

    let refused = set_status(&app, &id, "CREATED").await;
    assert_eq!(
        error_code(&refused),
        "invalid_status_transition",
        "{refused}"
    );
    assert_eq!(refused["data"], Value::Null);
    let moved = set_status(&app, &id, "IN_PROGRESS").await;
    assert_eq!(status_of(&moved), "IN_PROGRESS", "{moved}");
    for to in ["CREATED", "IN_PROGRESS"] {
        let refused = set_status(&app, &id, to).await;
        assert_eq!(
            error_code(&refused),
            "invalid_status_transition",
            "IN_PROGRESS -> {to}: {refused}"
        );
    }

    assert_eq!(conversation(&app, &id).await["status"], "IN_PROGRESS");
    assert_eq!(
        app.count("conversation_events").await,
        events_before + 1,
        "only the one valid move is logged"
    );
}

async fn closed_conversations_refuse_replies_notes_and_status_changes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let calls = app.meta_accepts_sends().await;
    let id = customer_writes(&app, CUSTOMER, "wamid.X1", "Bye").await;
    assert_eq!(status_of(&set_status(&app, &id, "CLOSED").await), "CLOSED");
    let messages = app.count("messages").await;
    let outbox = app.count("outbox").await;
    let notes = app.count("notes").await;
    let events = app.count("conversation_events").await;

    let refused = app
        .graphql(
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"Are you still there?\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "conversation_closed", "{refused}");
    let refused = app
        .graphql(
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"late note\") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "conversation_closed", "{refused}");
    let refused = set_status(&app, &id, "IN_PROGRESS").await;
    assert_eq!(error_code(&refused), "conversation_closed", "{refused}");

    assert_eq!(app.count("messages").await, messages);
    assert_eq!(app.count("outbox").await, outbox);
    assert_eq!(app.count("notes").await, notes);
    assert_eq!(app.count("conversation_events").await, events);
    assert_eq!(conversation(&app, &id).await["status"], "CLOSED");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

async fn notes_are_kept_internal_and_logged(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let agent = create_agent(&app, "Bo", None).await;
    let agent_token = app.token(Role::Agent, agent.parse().ok()).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.N1", "I want a refund").await;

    let first = app
        .graphql_as(
            &agent_token,
            "mutation($c: ID!, $b: String!) { addNote(conversationId: $c, body: $b) { id body author } }",
            json!({ "c": id, "b": "Customer is a VIP, refund without asking." }),
        )
        .await;
    assert_eq!(
        first["data"]["addNote"]["body"], "Customer is a VIP, refund without asking.",
        "{first}"
    );
    assert_eq!(first["data"]["addNote"]["author"], format!("agent:{agent}"));
    let second = app
        .graphql(
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"Approved.\") { id author } }",
            json!({ "c": id }),
        )
        .await;
    let me = app.graphql("{ me { tokenId } }", json!({})).await;
    let admin_token_id = me["data"]["me"]["tokenId"].as_str().unwrap_or_default();
    assert_eq!(
        second["data"]["addNote"]["author"],
        format!("token:{admin_token_id}")
    );
    let empty = app
        .graphql(
            "mutation($c: ID!) { addNote(conversationId: $c, body: \"  \") { id } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(error_code(&empty), "invalid_input");

    let notes = app
        .graphql(
            "query($c: ID!) { conversation(id: $c) { notes { body author } } }",
            json!({ "c": id }),
        )
        .await;
    assert_eq!(
        notes["data"]["conversation"]["notes"],
        json!([
            { "body": "Customer is a VIP, refund without asking.", "author": format!("agent:{agent}") },
            { "body": "Approved.", "author": format!("token:{admin_token_id}") },
        ])
    );
    let logged: Vec<Value> = events_of(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "note_added")
        .map(|e| e["actor"].clone())
        .collect();
    assert_eq!(
        logged,
        [
            json!(format!("agent:{agent}")),
            json!(format!("token:{admin_token_id}"))
        ]
    );
    // A note is never sent to the customer and is not a message.
    assert_eq!(app.count("outbox").await, 0);
    assert_eq!(messages_of(&app, &id).await.len(), 1);
    assert!(
        app.meta
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
}

async fn event_log_lists_every_change_in_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.meta_accepts_sends().await;
    let agent = create_agent(&app, "Cy", None).await;
    let agent_token = app.token(Role::Agent, agent.parse().ok()).await;
    let id = customer_writes(&app, CUSTOMER, "wamid.E1", "Is the shop open on Sunday?").await;

    let assigned = app
        .graphql_as(
            &agent_token,
            "mutation($c: ID!, $a: ID) { assignConversation(conversationId: $c, agentId: $a) { status } }",
            json!({ "c": id, "a": agent }),
        )
        .await;
    assert_eq!(
        assigned["data"]["assignConversation"]["status"], "ASSIGNED",
        "{assigned}"
    );
    let sent = app
        .graphql_as(
            &agent_token,
            "mutation($c: ID!) { sendReply(conversationId: $c, text: \"Yes, 10 to 4.\") { id } }",
            json!({ "c": id }),
        )
        .await;
    let message_id = sent["data"]["sendReply"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    message_reaches(&app, &id, &message_id, "SENT").await;

    let events = events_of(&app, &id).await;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let by_agent = format!("agent:{agent}");
    let expected: Vec<(String, String)> = [
        ("created", "customer"),
        ("message_in", "customer"),
        ("triaged", "router"),
        ("assigned", by_agent.as_str()),
        ("status_changed", by_agent.as_str()),
        ("status_changed", by_agent.as_str()),
        ("message_out", by_agent.as_str()),
        ("message_status", "system"),
    ]
    .iter()
    .map(|(k, a)| ((*k).to_owned(), (*a).to_owned()))
    .collect();
    assert_eq!(summary, expected, "{events:?}");
    assert_eq!(events[1]["data"]["provider_message_id"], "wamid.E1");
    assert_eq!(events[2]["data"]["decision"]["owner"], "tier1_care");
    assert_eq!(
        events[3]["data"]["agent_id"],
        agent.parse::<i64>().unwrap_or_default()
    );
    assert_eq!(
        (&events[4]["data"]["from"], &events[4]["data"]["to"]),
        (&json!("created"), &json!("assigned"))
    );
    assert_eq!(
        (&events[5]["data"]["from"], &events[5]["data"]["to"]),
        (&json!("assigned"), &json!("in_progress"))
    );
    assert_eq!(events[7]["data"]["status"], "sent");
}

async fn messages_posted_together_keep_their_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    const OTHER: &str = "447700900123";
    let timestamp = START / 1_000_000;
    // Two customers typing fast, interleaved in one payload as Meta batches them.
    let mut messages = Vec::new();
    for n in 1..=12 {
        for wa_id in [CUSTOMER, OTHER] {
            messages.push(json!({
                "from": wa_id, "id": format!("wamid.{wa_id}.{n}"), "timestamp": timestamp.to_string(),
                "type": "text", "text": { "body": format!("part {n}") }
            }));
        }
    }
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "16505553333", "phone_number_id": PHONE_NUMBER_ID },
            "contacts": [
                { "profile": { "name": "Kerry Fisher" }, "wa_id": CUSTOMER },
                { "profile": { "name": "Sam Jones" }, "wa_id": OTHER }
            ],
            "messages": messages
        } }] }]
    })
    .to_string();
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    all_webhooks_applied(&app).await;

    let expected: Vec<String> = (1..=12).map(|n| format!("part {n}")).collect();
    for wa_id in [CUSTOMER, OTHER] {
        let id = app.conversation_id_of(wa_id).await;
        let texts: Vec<String> = messages_of(&app, &id)
            .await
            .iter()
            .map(|m| m["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(texts, expected, "messages of {wa_id} out of order");
    }
    let other = conversation(&app, &app.conversation_id_of(OTHER).await).await;
    assert_eq!(other["contact"]["name"], "Sam Jones");
    assert_eq!(app.count("messages").await, 24);
}
