//! Webhook intake through the real HTTP server: handshake, signatures, limits, parsing of
//! every message type, exactly-once storage, dead letters.

use crate::helpers::*;
use parley::domain::Role;
use serde_json::json;

async fn subscription_handshake_echoes_the_challenge_only_for_the_right_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let url = |mode: &str, token: &str| {
        format!(
            "{}?hub.mode={mode}&hub.verify_token={token}&hub.challenge=1158201444",
            app.webhook_url()
        )
    };
    let ok = app
        .client
        .get(url("subscribe", VERIFY_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    let wrong = app
        .client
        .get(url("subscribe", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let wrong_mode = app
        .client
        .get(url("unsubscribe", VERIFY_TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_mode.status(), 403);
    let unknown = app
        .client
        .get(format!(
            "{}/webhooks/elsewhere?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

async fn unsigned_or_wrongly_signed_webhooks_are_refused_and_nothing_is_stored(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = fixture("text");
    let unsigned = app
        .client
        .post(app.webhook_url())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let answer: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "signature_invalid");
    for header in [
        "sha256=00",
        "sha1=abcdef",
        "sha256=nothex",
        &parley::ingest::signature::sign_meta(b"other", body.as_bytes()),
    ] {
        let response = app
            .client
            .post(app.webhook_url())
            .header("X-Hub-Signature-256", header)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "header {header}");
    }
    assert_eq!(app.count("inbox").await, 0);
    assert_eq!(app.count("messages").await, 0);
}

async fn oversized_bodies_and_unknown_channels_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let huge = "x".repeat(3 * 1024 * 1024 + 1);
    let response = app
        .client
        .post(app.webhook_url())
        .header(
            "X-Hub-Signature-256",
            parley::ingest::signature::sign_meta(APP_SECRET.as_bytes(), huge.as_bytes()),
        )
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body = fixture("text");
    let unknown = app
        .client
        .post(format!("{}/webhooks/not-a-channel", app.address))
        .header(
            "X-Hub-Signature-256",
            parley::ingest::signature::sign_meta(APP_SECRET.as_bytes(), body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.count("inbox").await, 0);
}

async fn metas_text_example_is_stored_once_however_often_it_is_delivered(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = fixture("text");
    for _ in 0..3 {
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
    // The same message in a different envelope (Meta may batch differently on retry).
    let rewrapped = body.replace("\"entry\"", "\"extra\": 1, \"entry\"");
    assert_eq!(app.post_webhook(&rewrapped).await.status(), 200);
    eventually("the message is applied", || async {
        app.count("messages").await == 1
    })
    .await;
    let data = app
        .graphql(
            "{ conversations(first: 5) { edges { node { contact { waId name } messages { edges { node { direction kind text providerMessageId } } } } } } }",
            json!({}),
        )
        .await;
    let edges = data["data"]["conversations"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "{data}");
    let node = &edges[0]["node"];
    assert_eq!(node["contact"]["waId"], "16315551234");
    let messages = node["messages"]["edges"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["node"]["text"], "this is a text message");
    assert_eq!(messages[0]["node"]["direction"], "INBOUND");
    assert_eq!(
        messages[0]["node"]["providerMessageId"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    // Exact redeliveries are recognised before processing: one inbox row for them.
    assert_eq!(app.count("inbox").await, 2);
    eventually("no webhook is left pending", || async {
        app.store.pending_inbox(0, 10).await.unwrap().is_empty()
    })
    .await;
}

async fn every_message_type_is_stored_with_its_text(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let cases = [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive_button_reply",
        "interactive_list_reply",
        "button",
        "reaction",
        "reaction_removed",
        "reply_with_context",
        "forwarded",
        "unsupported",
    ];
    let mut expected = Vec::new();
    for name in cases {
        let body = fixture(name);
        assert_eq!(app.post_webhook(&body).await.status(), 200, "{name}");
        let parsed = parley::ingest::cloud_api::parse_webhook(body.as_bytes()).unwrap();
        for message in parsed.messages {
            expected.push((
                message.provider_message_id,
                message.kind.as_str().to_owned(),
                message.text,
            ));
        }
    }
    expected.sort();
    expected.dedup_by(|a, b| a.0 == b.0);
    eventually("all messages are applied", || async {
        app.count("messages").await == expected.len() as i64
    })
    .await;
    let data = app
        .graphql(
            "{ conversations(first: 5) { edges { node { messages(first: 50) { edges { node { kind text providerMessageId } } } } } } }",
            json!({}),
        )
        .await;
    let mut stored: Vec<(String, String, Option<String>)> = Vec::new();
    for conversation in data["data"]["conversations"]["edges"].as_array().unwrap() {
        for message in conversation["node"]["messages"]["edges"]
            .as_array()
            .unwrap()
        {
            let node = &message["node"];
            stored.push((
                node["providerMessageId"].as_str().unwrap().to_owned(),
                node["kind"].as_str().unwrap().to_owned(),
                node["text"].as_str().map(str::to_owned),
            ));
        }
    }
    stored.sort();
    assert_eq!(stored, expected);
    let kinds: std::collections::HashSet<_> = stored.iter().map(|s| s.1.as_str()).collect();
    for kind in [
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "unsupported",
    ] {
        assert!(kinds.contains(kind), "no {kind} message stored");
    }
    // Interactive replies keep the chosen title as their text.
    let interactive =
        parley::ingest::cloud_api::parse_webhook(fixture("interactive_button_reply").as_bytes())
            .unwrap();
    let title = interactive.messages[0].text.clone().unwrap();
    assert!(
        stored
            .iter()
            .any(|s| s.1 == "interactive" && s.2.as_deref() == Some(title.as_str()))
    );
}

async fn one_bad_message_does_not_block_the_rest_of_its_batch(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = fixture("mixed_batch_with_one_bad_message");
    let parsed = parley::ingest::cloud_api::parse_webhook(body.as_bytes()).unwrap();
    assert!(!parsed.rejected.is_empty());
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    eventually("the good messages are applied", || async {
        app.count("messages").await == parsed.messages.len() as i64
    })
    .await;
    eventually("the bad item is a dead letter", || async {
        app.count("dead_letters").await == parsed.rejected.len() as i64
    })
    .await;
    assert_eq!(
        app.count("message_statuses").await,
        parsed.statuses.len() as i64
    );
}

async fn signed_but_unparseable_payload_is_kept_as_a_dead_letter_and_acknowledged(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let response = app
        .post_webhook("{\"object\": \"whatsapp_business_account\", \"entry\": 42")
        .await;
    assert_eq!(response.status(), 200, "Meta must stop retrying it");
    eventually("the payload is a dead letter", || async {
        app.count("dead_letters").await == 1
    })
    .await;
    let data = app
        .graphql(
            "{ deadLetters { source reason payload channelId } }",
            json!({}),
        )
        .await;
    let letters = data["data"]["deadLetters"].as_array().unwrap();
    assert_eq!(letters[0]["source"], "webhook");
    assert_eq!(letters[0]["channelId"], CHANNEL);
    assert!(
        letters[0]["payload"]
            .as_str()
            .unwrap()
            .contains("whatsapp_business_account")
    );
    let agent = app.token(Role::Agent, None).await;
    let refused = app
        .graphql_as(&agent, "{ deadLetters { id } }", json!({}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "forbidden");
    assert!(app.store.pending_inbox(0, 10).await.unwrap().is_empty());
}

async fn statuses_are_recorded_once_even_for_messages_parley_does_not_know(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let body = status_webhook("wamid.UNKNOWN", "delivered", None);
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    let again =
        status_webhook("wamid.UNKNOWN", "delivered", None).replace("1669233800", "1669233801");
    assert_eq!(app.post_webhook(&again).await.status(), 200);
    eventually("both webhooks are processed", || async {
        app.store.pending_inbox(0, 10).await.unwrap().is_empty() && app.count("inbox").await == 2
    })
    .await;
    assert_eq!(app.count("message_statuses").await, 1);
}

on_both_databases!(
    subscription_handshake_echoes_the_challenge_only_for_the_right_token,
    unsigned_or_wrongly_signed_webhooks_are_refused_and_nothing_is_stored,
    oversized_bodies_and_unknown_channels_are_refused,
    metas_text_example_is_stored_once_however_often_it_is_delivered,
    every_message_type_is_stored_with_its_text,
    one_bad_message_does_not_block_the_rest_of_its_batch,
    signed_but_unparseable_payload_is_kept_as_a_dead_letter_and_acknowledged,
    statuses_are_recorded_once_even_for_messages_parley_does_not_know,
);
