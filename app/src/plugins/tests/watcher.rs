//! The watched plugin directory and the configured connectors, on hand-made
//! components.

use std::sync::Arc;

use super::support::*;
use crate::plugins::{Connectors, PluginWatcher, StaticSecrets};

#[tokio::test]
async fn a_watched_directory_loads_replaces_and_removes_plugins() {
    let dir = PluginDir::new();
    let registry = Arc::new(registry(StaticSecrets::new()));
    let mut watcher = PluginWatcher::new(dir.dir.path().to_owned(), registry.clone());
    assert_eq!(watcher.scan().await, Default::default());

    let manifest = dir.add("watched", "crm-connector@0.1", &well_behaved_crm(), "");
    let outcome = watcher.scan().await;
    assert_eq!(outcome.loaded, vec![manifest.clone()]);
    assert_eq!(registry.ids(), vec!["watched".to_owned()]);
    assert_eq!(
        watcher.scan().await,
        Default::default(),
        "nothing changed, nothing reloaded"
    );

    // A new component under the same manifest replaces the running version;
    // its failing health check is recorded, the plugin stays loaded.
    dir.add(
        "watched",
        "crm-connector@0.1",
        &crm_plugin_doing("", "unreachable", ""),
        "",
    );
    assert_eq!(watcher.scan().await.loaded, vec![manifest.clone()]);
    let status = registry.status("watched").unwrap();
    assert_eq!(status.stats.last_error.map(|e| e.code), Some("plugin_trap"));

    // A broken manifest is reported once, with its error, and not retried
    // until it changes.
    let broken = dir.dir.path().join("broken.toml");
    std::fs::write(&broken, "id = \"broken\"\n").unwrap();
    assert_eq!(watcher.scan().await.failed, vec![broken.clone()]);
    assert_eq!(watcher.scan().await, Default::default());
    let failures = registry.load_failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].code, "plugin_manifest_invalid");
    assert_eq!(failures[0].manifest_path, broken);

    std::fs::remove_file(&manifest).unwrap();
    std::fs::remove_file(&broken).unwrap();
    let outcome = watcher.scan().await;
    assert_eq!(outcome.removed, vec!["watched".to_owned()]);
    assert!(registry.ids().is_empty());
    assert!(
        registry.load_failures().is_empty(),
        "a removed manifest's failure is forgotten"
    );
}

#[tokio::test]
async fn a_plugin_loaded_from_elsewhere_is_not_removed_with_a_watched_manifest() {
    let watched = PluginDir::new();
    let elsewhere = PluginDir::new();
    let registry = Arc::new(registry(StaticSecrets::new()));
    let mut watcher = PluginWatcher::new(watched.dir.path().to_owned(), registry.clone());
    let manifest = watched.add("same", "crm-connector@0.1", &well_behaved_crm(), "");
    watcher.scan().await;
    // An operator loads the same id from another file; it now owns the id.
    let other = elsewhere.add("same", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&other).await.unwrap();
    std::fs::remove_file(&manifest).unwrap();
    assert!(watcher.scan().await.removed.is_empty());
    assert_eq!(registry.status("same").unwrap().manifest_path, other);
}

#[tokio::test]
async fn connectors_answer_typed_errors_for_every_way_a_lookup_can_fail() {
    let dir = PluginDir::new();
    let registry = Arc::new(registry(StaticSecrets::new()));

    let none = Connectors::new(registry.clone(), None, None);
    let error = none.lookup_customer("4915112345678").await.unwrap_err();
    assert_eq!(error.code(), "plugin_not_configured");
    assert_eq!(error.fallback_reason(), "no CRM is configured");
    let error = none.recent_orders("4915112345678", 3).await.unwrap_err();
    assert_eq!(error.fallback_reason(), "no order system is configured");

    let configured = Connectors::new(registry.clone(), Some("crm".into()), Some("shop".into()));
    let error = configured.lookup_order("A-1").await.unwrap_err();
    assert_eq!(error.code(), "plugin_not_loaded");
    assert_eq!(
        error.fallback_reason(),
        "order system unavailable: plugin shop is not loaded"
    );

    let good = dir.add("crm", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&good).await.unwrap();
    let error = configured
        .lookup_customer("4915112345678")
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error}");
    assert_eq!(error.fallback_reason(), "not found in the CRM");

    let crashing = dir.add(
        "crm",
        "crm-connector@0.1",
        &crm_plugin_doing("", "unreachable", ""),
        "",
    );
    registry.load(&crashing).await.unwrap();
    let error = configured
        .lookup_customer("4915112345678")
        .await
        .unwrap_err();
    assert_eq!(error.code(), "plugin_trap");
    assert!(
        error
            .fallback_reason()
            .starts_with("CRM unavailable: plugin crm crashed"),
        "{}",
        error.fallback_reason()
    );

    // The order slot names a CRM plugin by mistake: a typed error too.
    let shop = dir.add("shop", "crm-connector@0.1", &well_behaved_crm(), "");
    registry.load(&shop).await.unwrap();
    let error = configured.lookup_order("A-1").await.unwrap_err();
    assert_eq!(error.code(), "plugin_kind_mismatch");
}
