//! Nothing accepted is lost: a database that refuses writes for a moment (a trigger that
//! fails every insert, installed and dropped by the test) neither loses a customer
//! message nor marks its webhook done before the message is applied or kept as a dead
//! letter.

use crate::helpers::*;
use parley::domain::Role;
use sea_orm::ConnectionTrait;
use serde_json::json;
use std::time::Duration;

on_both_databases!(
    a_second_of_refused_writes_delays_a_message_but_does_not_lose_it,
    a_webhook_whose_message_was_neither_applied_nor_set_aside_stays_pending,
    an_admin_redrives_dead_letters_through_graphql_and_the_cli,
    a_webhook_about_a_number_the_channel_does_not_list_is_not_taken_in,
);

const CUSTOMER: &str = "16315551234";

/// Makes every insert into `table` fail until [`heal`].
async fn refuse_inserts(app: &TestApp, backend: Backend, table: &str) {
    let db = app.store.db();
    let statements = match backend {
        Backend::Sqlite => vec![format!(
            "CREATE TRIGGER hiccup_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
        )],
        Backend::Postgres => vec![
            "CREATE OR REPLACE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql".to_owned(),
            format!(
                "CREATE TRIGGER hiccup_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION injected_fault()"
            ),
        ],
    };
    for sql in statements {
        db.execute_unprepared(&sql).await.expect("fault installed");
    }
}

async fn heal(app: &TestApp, backend: Backend, table: &str) {
    let sql = match backend {
        Backend::Sqlite => format!("DROP TRIGGER hiccup_{table}"),
        Backend::Postgres => format!("DROP TRIGGER hiccup_{table} ON {table}"),
    };
    app.store
        .db()
        .execute_unprepared(&sql)
        .await
        .expect("fault removed");
}

async fn a_second_of_refused_writes_delays_a_message_but_does_not_lose_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    refuse_inserts(&app, backend, "messages").await;
    let stamped = START / 1_000_000;
    let response = app
        .post_webhook(&text_webhook(
            CUSTOMER,
            "wamid.H1",
            "my card was charged twice",
            stamped,
        ))
        .await;
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.count("messages").await, 0, "the fault held");
    heal(&app, backend, "messages").await;

    conversation_holding(&app, CUSTOMER, "wamid.H1").await;
    all_webhooks_applied(&app).await;
    assert_eq!(app.count("dead_letters").await, 0);
}

async fn a_webhook_whose_message_was_neither_applied_nor_set_aside_stays_pending(backend: Backend) {
    // Two quick attempts, so that the test outlasts them in well under a second.
    let Some(app) = spawn_app_with(backend, "[conversations]\nmax_apply_attempts = 2\n").await
    else {
        return;
    };
    refuse_inserts(&app, backend, "messages").await;
    refuse_inserts(&app, backend, "dead_letters").await;
    let stamped = START / 1_000_000;
    let body = text_webhook(CUSTOMER, "wamid.H2", "the parcel is damaged", stamped);
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    heal(&app, backend, "messages").await;
    heal(&app, backend, "dead_letters").await;
    // Long past the marking of processed rows (every 100 ms): still pending.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = app.store.pending_inbox(0, 10).await.unwrap();
    assert_eq!(pending.len(), 1, "the webhook is not marked done");
    assert_eq!(app.count("messages").await, 0);
    assert_eq!(app.count("dead_letters").await, 0);

    // The next start replays it.
    let app = app.restart_after(Duration::from_secs(1)).await;
    conversation_holding(&app, CUSTOMER, "wamid.H2").await;
    all_webhooks_applied(&app).await;
}

const REDRIVE: &str = "mutation($id: ID!) { redriveDeadLetter(id: $id) }";

async fn dead_letter_ids(app: &TestApp) -> Vec<String> {
    let answer = app
        .graphql("{ deadLetters { id source } }", json!({}))
        .await;
    answer["data"]["deadLetters"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .filter(|l| l["source"] == "message")
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_admin_redrives_dead_letters_through_graphql_and_the_cli(backend: Backend) {
    let Some(app) = spawn_app_with(backend, "[conversations]\nmax_apply_attempts = 2\n").await
    else {
        return;
    };
    // Two messages that could not be applied while the database refused them.
    refuse_inserts(&app, backend, "messages").await;
    let stamped = START / 1_000_000;
    for (wamid, text) in [
        ("wamid.D1", "my order never arrived"),
        ("wamid.D2", "and the refund?"),
    ] {
        let body = text_webhook(CUSTOMER, wamid, text, stamped);
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
    eventually("both messages are dead letters", || async {
        app.count("dead_letters").await == 2
    })
    .await;
    heal(&app, backend, "messages").await;
    all_webhooks_applied(&app).await;
    assert_eq!(app.count("messages").await, 0);
    let letters = dead_letter_ids(&app).await;
    assert_eq!(letters.len(), 2);

    // Admins only.
    let supervisor = app.token(Role::Supervisor, None).await;
    let refused = app
        .graphql_as(&supervisor, REDRIVE, json!({ "id": letters[0] }))
        .await;
    assert_eq!(error_code(&refused), "forbidden", "{refused}");

    // Through GraphQL: applied, the dead letter removed, the re-drive audited.
    let answer = app.graphql(REDRIVE, json!({ "id": letters[1] })).await;
    assert_eq!(answer["data"]["redriveDeadLetter"], "message", "{answer}");
    conversation_holding(&app, CUSTOMER, "wamid.D1").await;
    assert_eq!(dead_letter_ids(&app).await, [letters[0].clone()]);
    assert!(
        audit_actions(&app)
            .await
            .contains(&"dead_letter.redriven".to_owned())
    );
    let again = app.graphql(REDRIVE, json!({ "id": letters[1] })).await;
    assert_eq!(error_code(&again), "dead_letter_not_found", "{again}");

    // Through the CLI, against the running server.
    // Waited for without blocking the runtime the server's tasks share.
    use tokio::io::AsyncWriteExt;
    let mut cli = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["dead-letter", "redrive", &letters[0], "--url", &app.address])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the CLI runs");
    let mut stdin = cli.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", app.admin_token).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = cli.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied"));
    conversation_holding(&app, CUSTOMER, "wamid.D2").await;
    assert_eq!(app.count("dead_letters").await, 0);

    // A payload that could never be read stays for inspection.
    let unreadable = app
        .post_webhook("{\"object\": \"whatsapp_business_account\", \"entry\": 42")
        .await;
    assert_eq!(unreadable.status(), 200);
    let letter = eventually_some("the payload is a dead letter", || async {
        let answer = app.graphql("{ deadLetters { id } }", json!({})).await;
        answer["data"]["deadLetters"][0]["id"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    let refused = app.graphql(REDRIVE, json!({ "id": letter })).await;
    assert_eq!(error_code(&refused), "invalid_input", "{refused}");
    assert_eq!(app.count("dead_letters").await, 1);
}

/// A signed webhook about a business number the channel does not list (another WABA's
/// number, a misrouted subscription) opens no case and sends nothing: each of its items
/// is kept as a dead letter saying why, and cannot be re-driven until the number is
/// listed.
async fn a_webhook_about_a_number_the_channel_does_not_list_is_not_taken_in(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let stamped = START / 1_000_000;
    let other_number = |body: String| body.replace(PHONE_NUMBER_ID, "999000111222333");
    let message = other_number(text_webhook(CUSTOMER, "wamid.X1", "hello?", stamped));
    assert_eq!(app.post_webhook(&message).await.status(), 200);
    let status = other_number(status_webhook("wamid.OUT1", "delivered", None));
    assert_eq!(app.post_webhook(&status).await.status(), 200);
    all_webhooks_applied(&app).await;

    assert_eq!(app.count("messages").await, 0);
    assert_eq!(app.count("conversations").await, 0);
    let answer = app
        .graphql("{ deadLetters { id source reason } }", json!({}))
        .await;
    let letters = answer["data"]["deadLetters"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .clone();
    let mut sources: Vec<&str> = letters
        .iter()
        .map(|l| l["source"].as_str().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(sources, ["message", "status"], "{letters:?}");
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            reason.contains("999000111222333") && reason.contains("not taken in"),
            "{reason}"
        );
    }
    let message_letter = letters.iter().find(|l| l["source"] == "message").unwrap();
    let answer = app
        .graphql(REDRIVE, json!({ "id": message_letter["id"] }))
        .await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not taken in")),
        "{answer}"
    );
    assert_eq!(app.count("messages").await, 0);

    // The listed number is still taken in.
    customer_writes(&app, CUSTOMER, "wamid.X2", "hello").await;
}
