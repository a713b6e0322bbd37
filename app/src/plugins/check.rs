//! `parley plugin check plugin.toml`: everything an integrator wants to know
//! before deploying a plugin, without starting Parley.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plugins::error::PluginError;
use crate::plugins::manifest::WorldRef;
use crate::plugins::registry::{SecretSource, prepare_from_path};
use crate::plugins::runtime::{Call, PluginRuntime, Reply};

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    /// Plugin id.
    pub id: String,
    /// The plugin's version.
    pub version: String,
    /// World and contract version; the component implements it.
    pub world: WorldRef,
    /// The component file.
    pub component_path: PathBuf,
    /// Component size in bytes.
    pub component_bytes: usize,
    /// Time to compile and link the component.
    pub prepare_time: Duration,
    /// Secrets the manifest lists that the configuration does not provide.
    pub missing_secrets: Vec<String>,
    /// Outcome of the smoke call (`health.check`).
    pub smoke: Result<(), PluginError>,
    /// Time the smoke call took.
    pub smoke_time: Duration,
}

impl CheckReport {
    /// Whether the plugin is fit to deploy.
    pub fn passed(&self) -> bool {
        self.smoke.is_ok() && self.missing_secrets.is_empty()
    }
}

/// Validates a plugin: the manifest parses, the component compiles and
/// implements the manifest's world with only the host's imports, and its
/// `health.check` export answers `ok` within the manifest's limits.
/// Structural problems are `Err`; a failing smoke call is in the report.
pub async fn check(
    runtime: &Arc<PluginRuntime>,
    secrets: &Arc<dyn SecretSource>,
    manifest_path: &Path,
) -> Result<CheckReport, PluginError> {
    let started = Instant::now();
    let plugin = prepare_from_path(runtime, secrets, manifest_path).await?;
    let prepare_time = started.elapsed();
    let manifest = plugin.manifest().clone();
    let missing_secrets = manifest
        .manifest
        .secrets
        .iter()
        .filter(|name| !plugin.grants.secrets.contains_key(*name))
        .cloned()
        .collect();
    let started = Instant::now();
    let smoke = match runtime.call(&plugin, Call::Health).await {
        Ok(Reply::Done) => Ok(()),
        Ok(other) => Err(PluginError::Host(format!("unexpected reply {other:?}"))),
        Err(e) => Err(e),
    };
    Ok(CheckReport {
        id: manifest.manifest.id.clone(),
        version: manifest.manifest.version.clone(),
        world: manifest.world,
        component_path: manifest.component_path(),
        component_bytes: plugin.component_bytes,
        prepare_time,
        missing_secrets,
        smoke,
        smoke_time: started.elapsed(),
    })
}
