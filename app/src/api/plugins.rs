//! GraphQL views and operations on the plugin host, for admins: the loaded plugins
//! with their health and call statistics, manifests that failed to load, and loading,
//! replacing and removing plugins at run time.

use super::{api, principal};
use crate::domain::Permission;
use crate::error::{ApiError, ErrorCode};
use crate::plugins::{self, LoadFailure, PluginError, PluginStatus, WorldKind};
use crate::store::audit::AuditRecord;
use async_graphql::{Context, Enum, SimpleObject};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// Which contract world a plugin implements.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PluginWorld {
    CrmConnector,
    OrderConnector,
    Transport,
}

impl From<WorldKind> for PluginWorld {
    fn from(kind: WorldKind) -> Self {
        match kind {
            WorldKind::CrmConnector => Self::CrmConnector,
            WorldKind::OrderConnector => Self::OrderConnector,
            WorldKind::Transport => Self::Transport,
        }
    }
}

/// How a plugin is doing.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum PluginHealth {
    /// The last call succeeded, or none was made yet.
    Healthy,
    /// Recent calls failed, fewer than the circuit breaker tolerates.
    Degraded,
    /// The circuit breaker is open: calls fail fast.
    Unavailable,
    /// The circuit breaker lets one call through to test recovery.
    Recovering,
}

/// The circuit breaker of a plugin.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast with `plugin_circuit_open`.
    Open,
    /// One probe call is let through.
    HalfOpen,
}

/// An error a plugin call ended with.
#[derive(SimpleObject)]
pub struct PluginCallError {
    /// Stable code, for example `plugin_timeout` or `plugin_retryable`.
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// A loaded plugin.
#[derive(SimpleObject)]
pub struct Plugin {
    /// The manifest's `id`.
    pub id: String,
    /// The plugin's own version.
    pub version: String,
    pub world: PluginWorld,
    /// The contract version the plugin was built against, for example `0.1`.
    pub contract_version: String,
    pub manifest_path: String,
    pub component_bytes: i64,
    pub health: PluginHealth,
    pub breaker: BreakerState,
    /// Calls made (not counting those the breaker refused).
    pub calls: i64,
    /// Calls that ended in an error.
    pub errors: i64,
    /// Calls the breaker refused without running the plugin.
    pub rejected: i64,
    /// Latency percentiles over the recent calls, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub last_error: Option<PluginCallError>,
}

impl From<PluginStatus> for Plugin {
    fn from(status: PluginStatus) -> Self {
        let stats = status.stats;
        Self {
            id: status.id,
            version: status.version,
            world: status.world.kind.into(),
            contract_version: format!("{}.{}", status.world.major, status.world.minor),
            manifest_path: status.manifest_path.display().to_string(),
            component_bytes: i64::try_from(status.component_bytes).unwrap_or(i64::MAX),
            health: match status.health {
                plugins::PluginHealth::Healthy => PluginHealth::Healthy,
                plugins::PluginHealth::Degraded => PluginHealth::Degraded,
                plugins::PluginHealth::Unavailable => PluginHealth::Unavailable,
                plugins::PluginHealth::Recovering => PluginHealth::Recovering,
            },
            breaker: match status.breaker {
                plugins::BreakerState::Closed => BreakerState::Closed,
                plugins::BreakerState::Open => BreakerState::Open,
                plugins::BreakerState::HalfOpen => BreakerState::HalfOpen,
            },
            calls: i64::try_from(stats.calls).unwrap_or(i64::MAX),
            errors: i64::try_from(stats.errors).unwrap_or(i64::MAX),
            rejected: i64::try_from(stats.rejected).unwrap_or(i64::MAX),
            latency_p50_ms: stats.p50_ms,
            latency_p95_ms: stats.p95_ms,
            latency_p99_ms: stats.p99_ms,
            last_error: stats.last_error.map(|e| PluginCallError {
                code: e.code.to_owned(),
                message: e.message,
                at: e.at.into(),
            }),
        }
    }
}

/// A manifest that could not be loaded (and has not loaded since).
#[derive(SimpleObject)]
pub struct PluginLoadFailure {
    pub manifest_path: String,
    /// The plugin's id, when the manifest got far enough to name it.
    pub plugin_id: Option<String>,
    /// Stable code, for example `plugin_wrong_world` or `plugin_component_corrupt`.
    pub code: String,
    pub message: String,
    pub at: DateTime<Utc>,
}

impl From<LoadFailure> for PluginLoadFailure {
    fn from(failure: LoadFailure) -> Self {
        Self {
            manifest_path: failure.manifest_path.display().to_string(),
            plugin_id: failure.plugin_id,
            code: failure.code.to_owned(),
            message: failure.message,
            at: failure.at.into(),
        }
    }
}

/// The answer of `loadPlugin`: the plugin, and how its health check went.
#[derive(SimpleObject)]
pub struct LoadedPlugin {
    pub plugin: Plugin,
    /// Whether `health.check` passed right after loading. A failing check does not
    /// unload the plugin (its back end may only be down for now).
    pub healthy: bool,
    pub health_error: Option<PluginCallError>,
}

/// An API error carrying the plugin host's own code (`plugin_wrong_world`, ...).
pub fn plugin_error(error: &PluginError) -> ApiError {
    ApiError::new(ErrorCode::Plugin(error.code()), error.to_string())
}

pub async fn plugins(ctx: &Context<'_>) -> Result<Vec<Plugin>, ApiError> {
    principal(ctx)?.require(Permission::ManagePlugins)?;
    Ok(api(ctx)
        .plugins
        .statuses()
        .into_iter()
        .map(Plugin::from)
        .collect())
}

pub async fn load_failures(ctx: &Context<'_>) -> Result<Vec<PluginLoadFailure>, ApiError> {
    principal(ctx)?.require(Permission::ManagePlugins)?;
    Ok(api(ctx)
        .plugins
        .load_failures()
        .into_iter()
        .map(PluginLoadFailure::from)
        .collect())
}

/// Records a plugin change in the audit log.
async fn audit(
    ctx: &Context<'_>,
    action: &str,
    id: &str,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    let context = api(ctx);
    context
        .store
        .audit(AuditRecord {
            actor: principal(ctx)?.actor().label(),
            action: action.into(),
            subject: Some(format!("plugin:{id}")),
            data,
            at: context.clock.now(),
        })
        .await
        .map(|_| ())
        .map_err(ApiError::internal)
}

/// The manifest `requested` names, refused unless it resolves (links followed) to a file
/// inside `[plugins] load_dir` (or the watched directory): an admin's token must not read
/// any file the server can.
fn inside_load_dir(
    settings: &crate::config::PluginSettings,
    requested: &str,
) -> Result<PathBuf, ApiError> {
    let Some(dir) = settings.load_dir.as_ref().or(settings.watch_dir.as_ref()) else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "loadPlugin is off: set [plugins] load_dir (or watch_dir) to the plugin directory",
        ));
    };
    let outside = || {
        ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "loadPlugin reads manifests only inside the plugin directory {}",
                dir.display()
            ),
        )
    };
    let dir = dir.canonicalize().map_err(|_| outside())?;
    let path = dir.join(requested);
    match path.canonicalize() {
        Ok(resolved) if resolved.starts_with(&dir) => Ok(resolved),
        Ok(_) => Err(outside()),
        // A file that does not exist: refused as outside unless its parent is inside, so
        // nothing tells which paths exist elsewhere.
        Err(_) => match path.parent().map(Path::canonicalize) {
            Some(Ok(parent)) if parent.starts_with(&dir) => Ok(path),
            _ => Err(outside()),
        },
    }
}

pub async fn load(ctx: &Context<'_>, manifest_path: String) -> Result<LoadedPlugin, ApiError> {
    principal(ctx)?.require(Permission::ManagePlugins)?;
    if manifest_path.trim().is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the manifest path is empty",
        ));
    }
    let path = inside_load_dir(&api(ctx).settings.plugins, &manifest_path)?;
    let (status, checked) = api(ctx)
        .plugins
        .load_and_check(&path)
        .await
        .map_err(|e| plugin_error(&e))?;
    let manifest = path.display().to_string();
    api(ctx)
        .relay
        .invalidate(crate::cluster::bus::Invalidation::PluginLoaded {
            manifest_path: manifest.clone(),
        });
    audit(
        ctx,
        "plugin.loaded",
        &status.id,
        serde_json::json!({
            "version": status.version,
            "world": status.world.to_string(),
            "manifest": manifest,
        }),
    )
    .await?;
    Ok(LoadedPlugin {
        plugin: status.into(),
        healthy: checked.is_ok(),
        health_error: checked.err().map(|e| PluginCallError {
            code: e.code().to_owned(),
            message: e.to_string(),
            at: Utc::now(),
        }),
    })
}

pub async fn remove(ctx: &Context<'_>, id: String) -> Result<bool, ApiError> {
    principal(ctx)?.require(Permission::ManagePlugins)?;
    if api(ctx).plugins.remove(&id) {
        api(ctx)
            .relay
            .invalidate(crate::cluster::bus::Invalidation::PluginRemoved { id: id.clone() });
        audit(ctx, "plugin.removed", &id, serde_json::json!({})).await?;
        Ok(true)
    } else {
        Err(plugin_error(&PluginError::NotLoaded { plugin: id }))
    }
}
