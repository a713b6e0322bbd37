//! `parley audit verify` on a real database: an intact chain passes, an edited entry and
//! a removed one are named.

use crate::helpers::*;
use parley::config::DatabaseSettings;
use parley::store::Store;
use parley::store::audit::AuditRecord;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use std::process::Command;

fn verify(config: &std::path::Path) -> (Option<i32>, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["--config", config.to_str().unwrap(), "audit", "verify"])
        .env("RUST_LOG", "error")
        .output()
        .expect("parley runs");
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "no JSON report: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), report)
}

#[actix_rt::test]
async fn audit_verify_passes_an_intact_chain_and_names_the_first_broken_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = binary_config(dir.path(), free_port());
    let store = Store::connect(&DatabaseSettings {
        url: format!("sqlite://{}/parley.db?mode=rwc", dir.path().display()),
        inbox_url: None,
        max_connections: 2,
        sqlite_synchronous: parley::config::SqliteSynchronous::Full,
        migrate_on_start: false,
        group_commit_max_batch: 16,
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();

    let (code, report) = verify(&config);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["entries"], 0);

    for (n, action) in [
        "token.created",
        "routing.reloaded",
        "contact.blocked",
        "contact.vip",
    ]
    .into_iter()
    .enumerate()
    {
        store
            .audit(AuditRecord {
                actor: "token:1".into(),
                action: action.into(),
                subject: Some(format!("contact:{n}")),
                data: json!({ "n": n }),
                at: 1_700_000_000_000_000 + n as i64,
            })
            .await
            .unwrap();
    }
    let (code, report) = verify(&config);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["entries"], 4);
    assert_eq!(report["first_broken"], Value::Null);

    // The database refuses edits and deletions of the log.
    let refused = store
        .db()
        .execute_unprepared("UPDATE audit_log SET data = '{}' WHERE id = 3")
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    assert!(
        store
            .db()
            .execute_unprepared("DELETE FROM audit_log WHERE id = 1")
            .await
            .is_err()
    );

    // Someone with the power to drop the guards edits the third entry's details.
    store
        .db()
        .execute_unprepared("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
        .await
        .unwrap();
    store
        .db()
        .execute_unprepared("UPDATE audit_log SET data = '{\"n\":99}' WHERE id = 3")
        .await
        .unwrap();
    let (code, report) = verify(&config);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["first_broken"]["id"], 3, "{report}");
    assert_eq!(
        report["first_broken"]["reason"], "hash_mismatch",
        "{report}"
    );

    // And removes the first: the chain now breaks earlier, at the second.
    store
        .db()
        .execute_unprepared("DELETE FROM audit_log WHERE id = 1")
        .await
        .unwrap();
    let (code, report) = verify(&config);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["first_broken"]["id"], 2, "{report}");
    assert_eq!(
        report["first_broken"]["reason"], "prev_hash_mismatch",
        "{report}"
    );
}
