//! Who gets in at the GraphQL endpoint: the token is checked before the body is read, the
//! body is capped, multipart is refused, a WebSocket must say `connection_init` in time,
//! and tokens can be listed, revoked and given an expiry (open WebSockets included).

use crate::graphql::{Socket, next_message, open_socket, send_frame};
use crate::helpers::*;
use futures::StreamExt;
use parley::clock::Clock;
use parley::domain::Role;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as Frame;

on_both_databases!(
    a_large_body_without_a_token_is_refused_before_it_is_read,
    bodies_over_the_cap_are_refused_as_payload_too_large,
    multipart_requests_are_refused,
    a_websocket_without_connection_init_is_closed_within_seconds,
    tokens_are_listed_revoked_and_refused_once_revoked,
    an_expired_token_is_refused,
    an_open_websocket_of_a_revoked_token_is_closed,
);

/// Sends `head` and then `body_bytes` of body on a raw connection, and answers the status
/// line the server sends back within `wait` (`None`: nothing came).
async fn raw_exchange(
    app: &TestApp,
    head: &str,
    body_bytes: usize,
    wait: Duration,
) -> Option<String> {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // Part of the body: whatever the server does not read stays in the socket buffers.
    let chunk = vec![b' '; body_bytes];
    let _ = stream.write_all(&chunk).await;
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(wait, stream.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    answer.lines().next().map(str::to_owned)
}

async fn a_large_body_without_a_token_is_refused_before_it_is_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // 50 MB announced, 64 KB sent: an answer can only come if the server did not wait for
    // (or read) the rest.
    let head = "POST /graphql HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n";
    let status = raw_exchange(&app, head, 64 * 1024, Duration::from_secs(5)).await;
    assert_eq!(
        status.as_deref(),
        Some("HTTP/1.1 401 Unauthorized"),
        "an unauthenticated 50 MB body must be refused without being read"
    );
    // The same with a token that is not one.
    let head = "POST /graphql HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer prl_nope\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\n\r\n";
    let status = raw_exchange(&app, head, 64 * 1024, Duration::from_secs(5)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 401 Unauthorized"));
}

async fn bodies_over_the_cap_are_refused_as_payload_too_large(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Declared too large: refused at once, even from an admin.
    let padding = " ".repeat(1024 * 1024 + 1);
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(format!("{{\"query\": \"{{ me {{ role }} }}\"}}{padding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_code(&answer), "payload_too_large", "{answer}");

    // Chunked, without a length: refused once the cap is passed.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.admin_token
    );
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
    for _ in 0..20 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // Under the cap, a request is served as before.
    let answer = app.graphql("{ me { role } }", json!({})).await;
    assert_eq!(answer["data"]["me"]["role"], "ADMIN", "{answer}");
}

async fn multipart_requests_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let boundary = "xyzzy";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{{\"query\":\"{{ me {{ role }} }}\"}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.file\"]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"a.txt\"\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&app.admin_token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(error_code(&answer), "unsupported_media_type", "{answer}");
}

/// Waits until the server closes the socket; answers the close code (`None`: the
/// connection dropped without a close frame) and how long it took.
async fn closed_within(socket: &mut Socket, wait: Duration) -> (Option<u16>, Duration) {
    let started = Instant::now();
    let code = tokio::time::timeout(wait, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) => return None,
                Some(Ok(Frame::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the socket stayed open for {wait:?}"));
    (code, started.elapsed())
}

async fn a_websocket_without_connection_init_is_closed_within_seconds(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let mut socket = open_socket(&app).await;
    let (code, after) = closed_within(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(code, Some(4408), "closed after {after:?}");
    assert!(
        after <= Duration::from_secs(7),
        "closed only after {after:?}"
    );
}

async fn create_token(app: &TestApp, role: &str, expires_at: Option<String>) -> (String, String) {
    let answer = app
        .graphql(
            "mutation($r: Role!, $e: DateTime) { createApiToken(name: \"inbox\", role: $r, expiresAt: $e) { id token expiresAt } }",
            json!({ "r": role, "e": expires_at }),
        )
        .await;
    let created = &answer["data"]["createApiToken"];
    assert!(created.is_object(), "{answer}");
    (
        created["id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

async fn tokens_are_listed_revoked_and_refused_once_revoked(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (id, token) = create_token(&app, "SUPERVISOR", None).await;
    let me = app.graphql_as(&token, "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "SUPERVISOR", "{me}");

    let list = app
        .graphql(
            "{ apiTokens { id name role active revokedAt expiresAt } }",
            json!({}),
        )
        .await;
    let listed = list["data"]["apiTokens"]
        .as_array()
        .expect("a list")
        .clone();
    assert_eq!(listed.len(), 2, "{list}");
    let entry = listed
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("listed");
    assert_eq!(entry["active"], true);
    assert!(
        !list.to_string().contains(&token),
        "a listing never shows a token"
    );

    // Only admins list and revoke.
    let refused = app
        .graphql_as(&token, "{ apiTokens { id } }", json!({}))
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");
    let refused = app
        .graphql_as(
            &token,
            "mutation($i: ID!) { revokeApiToken(id: $i) { id } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");

    let revoked = app
        .graphql(
            "mutation($i: ID!) { revokeApiToken(id: $i) { id active revokedAt } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeApiToken"]["active"], false,
        "{revoked}"
    );
    assert!(revoked["data"]["revokeApiToken"]["revokedAt"].is_string());

    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .json(&json!({ "query": "{ me { role } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        audit_actions(&app)
            .await
            .contains(&"token.revoked".to_owned())
    );

    let unknown = app
        .graphql(
            "mutation { revokeApiToken(id: \"999999\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&unknown), "token_not_found", "{unknown}");
}

async fn an_expired_token_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let in_an_hour = parley::clock::micros_to_datetime(app.clock.now() + 3_600_000_000);
    let (_, token) = create_token(&app, "AGENT", Some(in_an_hour.to_rfc3339())).await;
    let me = app.graphql_as(&token, "{ me { role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["role"], "AGENT", "{me}");

    app.clock.advance(Duration::from_secs(3601));
    let refused = app.graphql_as(&token, "{ me { role } }", json!({})).await;
    assert_eq!(error_code(&refused), "unauthenticated", "{refused}");
    let list = app
        .graphql("{ apiTokens { role active } }", json!({}))
        .await;
    let agent = list["data"]["apiTokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "AGENT")
        .cloned()
        .unwrap();
    assert_eq!(agent["active"], false, "{list}");

    let past = parley::clock::micros_to_datetime(app.clock.now() - 1_000_000);
    let answer = app
        .graphql(
            "mutation($e: DateTime) { createApiToken(name: \"x\", role: AGENT, expiresAt: $e) { id } }",
            json!({ "e": past.to_rfc3339() }),
        )
        .await;
    assert_eq!(error_code(&answer), "invalid_input", "{answer}");
}

async fn an_open_websocket_of_a_revoked_token_is_closed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, "[graphql]\ntoken_recheck_secs = 1\n").await else {
        return;
    };
    let token = app.token(Role::Supervisor, None).await;
    let id = app
        .graphql_as(&token, "{ me { tokenId } }", json!({}))
        .await["data"]["me"]["tokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut socket = open_socket(&app).await;
    send_frame(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }),
    )
    .await;
    let ack = next_message(&mut socket, Duration::from_secs(5)).await;
    assert_eq!(
        ack.as_ref().map(|m| m["type"].clone()),
        Some(json!("connection_ack"))
    );
    send_frame(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { conversationEvents { kind } }" } }),
    )
    .await;
    // Still open over more than one recheck while the token is in force.
    let early = tokio::time::timeout(Duration::from_millis(2500), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(early.is_err(), "closed while the token was in force");
    let revoked = app
        .graphql(
            "mutation($i: ID!) { revokeApiToken(id: $i) { active } }",
            json!({ "i": id }),
        )
        .await;
    assert_eq!(
        revoked["data"]["revokeApiToken"]["active"], false,
        "{revoked}"
    );
    let (code, after) = closed_within(&mut socket, Duration::from_secs(10)).await;
    assert_eq!(code, Some(4403), "closed after {after:?}");
}

on_both_databases!(
    load_plugin_reads_only_the_plugin_directory_and_never_echoes_a_file,
    unknown_held_messages_and_templates_are_not_found,
);

async fn load_plugin_reads_only_the_plugin_directory_and_never_echoes_a_file(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[plugins]\nload_dir = {:?}\n", dir.path());
    let Some(app) = spawn_app_with(backend, &config).await else {
        return;
    };
    let load = |path: String| {
        let app = &app;
        async move {
            app.graphql(
                "mutation($p: String!) { loadPlugin(manifestPath: $p) { healthy } }",
                json!({ "p": path }),
            )
            .await
        }
    };
    for outside in [
        "/proc/self/environ".to_owned(),
        "../../../../etc/passwd".to_owned(),
        format!("{}/../elsewhere.toml", dir.path().display()),
    ] {
        let answer = load(outside.clone()).await;
        assert_eq!(error_code(&answer), "forbidden", "{outside}: {answer}");
        assert!(!answer.to_string().contains("PATH="), "{answer}");
    }

    std::fs::write(
        dir.path().join("bad.toml"),
        "id = \"x\"\napi_token = \"hunter2-secret\"\n[[[\n",
    )
    .unwrap();
    let answer = load("bad.toml".to_owned()).await;
    assert_eq!(error_code(&answer), "plugin_manifest_invalid", "{answer}");
    assert!(!answer.to_string().contains("hunter2"), "{answer}");

    std::fs::write(dir.path().join("huge.toml"), "#".repeat(100 * 1024)).unwrap();
    let answer = load("huge.toml".to_owned()).await;
    assert_eq!(error_code(&answer), "plugin_manifest_invalid", "{answer}");
    assert!(answer.to_string().contains("larger than"), "{answer}");
}

async fn unknown_held_messages_and_templates_are_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let answer = app
        .graphql(
            "mutation { approveMessage(id: \"987654\") { status } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&answer), "held_message_not_found", "{answer}");
    let answer = app
        .graphql(
            "mutation { rejectMessage(id: \"987654\", reason: \"no\") { status } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&answer), "held_message_not_found", "{answer}");
    let answer = app
        .graphql(
            "mutation { submitTemplate(id: \"987654\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&answer), "template_not_found", "{answer}");
}
