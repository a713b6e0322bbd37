//! Watches a directory for plugins (`plugins.watch_dir`) and keeps the
//! registry in step with it.
//!
//! Every `*.toml` directly in the directory and every `*/plugin.toml` one level
//! below is a manifest. The directory is looked at on a fixed interval (a
//! poll of modification times rather than file-system notifications: it works
//! the same on every file system, network mounts and containers included, and
//! a plugin change is rare). A manifest that appears is loaded; one whose
//! file or component changes is loaded again, replacing the running version
//! without cutting its calls short; one that disappears takes its plugin with
//! it. A manifest that fails to load is reported once per change, not once
//! per look.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::plugins::manifest::LocatedManifest;
use crate::plugins::registry::PluginRegistry;

/// What a manifest and its component looked like at the last look: a change
/// to either reloads the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    manifest: Option<(SystemTime, u64)>,
    component: Option<(SystemTime, u64)>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn fingerprint(manifest_path: &Path) -> Fingerprint {
    let component = LocatedManifest::read(manifest_path)
        .ok()
        .and_then(|m| stamp(&m.component_path()));
    Fingerprint {
        manifest: stamp(manifest_path),
        component,
    }
}

/// The manifests in `dir`, sorted.
fn manifests_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            let nested = path.join("plugin.toml");
            if nested.is_file() {
                found.push(nested);
            }
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// What one look at the directory changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Manifests loaded or reloaded successfully.
    pub loaded: Vec<PathBuf>,
    /// Manifests that failed to load.
    pub failed: Vec<PathBuf>,
    /// Plugins removed because their manifest disappeared.
    pub removed: Vec<String>,
}

/// Keeps a registry in step with a directory.
pub struct PluginWatcher {
    dir: PathBuf,
    registry: Arc<PluginRegistry>,
    seen: HashMap<PathBuf, Fingerprint>,
}

impl PluginWatcher {
    /// A watcher that has not looked yet: its first [`scan`](Self::scan)
    /// loads everything in the directory.
    pub fn new(dir: PathBuf, registry: Arc<PluginRegistry>) -> Self {
        Self {
            dir,
            registry,
            seen: HashMap::new(),
        }
    }

    /// Looks at the directory once and applies what changed.
    pub async fn scan(&mut self) -> ScanOutcome {
        let mut outcome = ScanOutcome::default();
        let present = match manifests_in(&self.dir) {
            Ok(present) => present,
            Err(error) => {
                // A directory that vanished for a moment (being replaced, an
                // unmounted volume) must not unload every plugin.
                tracing::warn!(dir = %self.dir.display(), error = %error, "Plugin directory cannot be read; plugins are kept as they are.");
                return outcome;
            }
        };
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| !present.contains(p))
            .cloned()
            .collect();
        for path in gone {
            self.seen.remove(&path);
            self.registry.forget_failure(&path);
            if let Some(id) = self.registry.remove_loaded_from(&path) {
                outcome.removed.push(id);
            }
        }
        for path in present {
            let now = fingerprint(&path);
            if self.seen.get(&path) == Some(&now) {
                continue;
            }
            self.seen.insert(path.clone(), now);
            match self.registry.load_and_check(&path).await {
                Ok(_) => outcome.loaded.push(path),
                Err(error) => {
                    tracing::error!(manifest = %path.display(), error = %error, code = error.code(), "Plugin could not be loaded from the watched directory.");
                    outcome.failed.push(path);
                }
            }
        }
        outcome
    }

    /// Looks at the directory every `interval` until the task is dropped.
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                self.scan().await;
            }
        })
    }
}
