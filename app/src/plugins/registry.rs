//! The loaded plugins, by id, and the typed way to call them.
//!
//! Plugins can be added, replaced and removed while calls are running: a call
//! holds an `Arc` of the plugin version it started with, so replacing or
//! removing a plugin never cuts a call short; the old version is freed when
//! its last call ends. Statistics and the circuit breaker belong to the id and
//! survive a replacement (the breaker is reset: new code deserves a chance).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::plugins::bindings::v0_1::types::{
    CustomerKey, CustomerProfile, InboundHttpRequest, InboundItem, Order, OutboundMessage,
};
use crate::plugins::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use crate::plugins::error::PluginError;
use crate::plugins::host::{Grants, SecretValue};
use crate::plugins::manifest::{LocatedManifest, WorldKind, WorldRef};
use crate::plugins::runtime::{Call, LoadedPlugin, PluginRuntime, Reply};
use crate::plugins::stats::{CallStats, StatsSnapshot};

/// Where plugin secrets come from (Parley's configuration). A plugin only
/// ever sees the names its manifest lists.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name` for plugin `plugin_id`, if configured.
    fn secret(&self, plugin_id: &str, name: &str) -> Option<SecretValue>;
}

/// Secrets held in memory, keyed by plugin id and secret name. Ids and names
/// match case-insensitively, with `-` and `_` alike, so that the same secret can
/// be written in TOML (`[plugins.secrets.crm-http]`) or as an environment
/// variable (`PARLEY_PLUGINS__SECRETS__CRM_HTTP__API_TOKEN`).
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets(HashMap<(String, String), SecretValue>);

fn secret_key(plugin_id: &str, name: &str) -> (String, String) {
    let normalize = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    (normalize(plugin_id), normalize(name))
}

impl StaticSecrets {
    /// No secrets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a secret for one plugin.
    pub fn with(mut self, plugin_id: &str, name: &str, value: impl Into<String>) -> Self {
        self.0
            .insert(secret_key(plugin_id, name), SecretValue::new(value));
        self
    }
}

impl SecretSource for StaticSecrets {
    fn secret(&self, plugin_id: &str, name: &str) -> Option<SecretValue> {
        self.0.get(&secret_key(plugin_id, name)).cloned()
    }
}

/// How a plugin is doing, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginHealth {
    /// The last call succeeded (or no call was made yet).
    Healthy,
    /// Recent calls failed, but fewer than the breaker tolerates.
    Degraded,
    /// The breaker is open: calls fail fast.
    Unavailable,
    /// The breaker lets a probe call through to test recovery.
    Recovering,
}

/// What the registry tells about one plugin.
#[derive(Debug, Clone)]
pub struct PluginStatus {
    /// Plugin id.
    pub id: String,
    /// The plugin's version from its manifest.
    pub version: String,
    /// World and contract version.
    pub world: WorldRef,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// Component size in bytes.
    pub component_bytes: usize,
    /// Health.
    pub health: PluginHealth,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// Call statistics.
    pub stats: StatsSnapshot,
}

/// A manifest that could not be loaded, kept until it loads or is removed so
/// that operators see why a plugin is missing.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The plugin's id, when the manifest got far enough to name it.
    pub plugin_id: Option<String>,
    /// Stable error code, e.g. `plugin_wrong_world`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// When it happened.
    pub at: SystemTime,
}

/// Breaker and statistics of one plugin id.
#[derive(Debug)]
struct Monitor {
    /// Guards sends, look-ups and health checks; what `status` reports.
    breaker: CircuitBreaker,
    /// Guards the verification of inbound webhooks, which strangers can trigger.
    inbound: CircuitBreaker,
    stats: CallStats,
}

impl Monitor {
    fn breaker_for(&mut self, inbound: bool) -> &mut CircuitBreaker {
        if inbound {
            &mut self.inbound
        } else {
            &mut self.breaker
        }
    }
}

#[derive(Debug)]
struct Entry {
    plugin: Arc<LoadedPlugin>,
    monitor: Arc<Mutex<Monitor>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the counters inconsistent
    // in a way that matters; keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The plugins of this Parley process. Cheap to share behind an `Arc`.
pub struct PluginRegistry {
    runtime: Arc<PluginRuntime>,
    secrets: Arc<dyn SecretSource>,
    breaker: BreakerConfig,
    entries: RwLock<BTreeMap<String, Entry>>,
    failures: Mutex<BTreeMap<PathBuf, LoadFailure>>,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("plugins", &self.ids())
            .finish_non_exhaustive()
    }
}

/// Reads a manifest and its component and prepares the plugin (compilation
/// happens on a blocking thread).
pub(crate) async fn prepare_from_path(
    runtime: &Arc<PluginRuntime>,
    secrets: &Arc<dyn SecretSource>,
    manifest_path: &Path,
) -> Result<LoadedPlugin, PluginError> {
    let manifest = LocatedManifest::read(manifest_path)?;
    let component_path = manifest.component_path();
    let bytes = tokio::fs::read(&component_path).await.map_err(|source| {
        PluginError::ComponentUnreadable {
            plugin: manifest.manifest.id.clone(),
            path: component_path.clone(),
            source,
        }
    })?;
    let grants = Grants {
        allowed_hosts: manifest.allowed_hosts.clone(),
        secrets: manifest
            .manifest
            .secrets
            .iter()
            .filter_map(|name| {
                secrets
                    .secret(&manifest.manifest.id, name)
                    .map(|v| (name.clone(), v))
            })
            .collect(),
        settings_json: manifest.settings_json(),
    };
    let runtime = runtime.clone();
    tokio::task::spawn_blocking(move || runtime.prepare(manifest, &bytes, grants))
        .await
        .map_err(|e| PluginError::Host(format!("plugin compilation task failed: {e}")))?
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new(
        runtime: Arc<PluginRuntime>,
        secrets: Arc<dyn SecretSource>,
        breaker: BreakerConfig,
    ) -> Self {
        Self {
            runtime,
            secrets,
            breaker,
            entries: RwLock::new(BTreeMap::new()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    /// The runtime plugins run in.
    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.runtime
    }

    /// Loads the plugins of a list of manifests. One bad plugin does not stop
    /// the others; each manifest's outcome is returned.
    pub async fn load_all(
        &self,
        manifest_paths: &[PathBuf],
    ) -> Vec<(PathBuf, Result<PluginStatus, PluginError>)> {
        let mut outcomes = Vec::with_capacity(manifest_paths.len());
        for path in manifest_paths {
            let outcome = self.load(path).await;
            if let Err(e) = &outcome {
                tracing::error!(manifest = %path.display(), error = %e, code = e.code(), "Plugin could not be loaded.");
            }
            outcomes.push((path.clone(), outcome));
        }
        outcomes
    }

    /// Loads a plugin, or replaces the loaded plugin with the same id. Calls
    /// in flight finish on the version they started with.
    pub async fn load(&self, manifest_path: &Path) -> Result<PluginStatus, PluginError> {
        let plugin = match prepare_from_path(&self.runtime, &self.secrets, manifest_path).await {
            Ok(plugin) => plugin,
            Err(error) => {
                lock(&self.failures).insert(
                    manifest_path.to_owned(),
                    LoadFailure {
                        manifest_path: manifest_path.to_owned(),
                        plugin_id: error.plugin_id().map(str::to_owned),
                        code: error.code(),
                        message: error.to_string(),
                        at: SystemTime::now(),
                    },
                );
                return Err(error);
            }
        };
        lock(&self.failures).remove(manifest_path);
        let id = plugin.id().to_owned();
        let plugin = Arc::new(plugin);
        let replaced = {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            let monitor = match entries.get(&id) {
                Some(old) => {
                    let mut monitor = lock(&old.monitor);
                    monitor.breaker = CircuitBreaker::new(self.breaker);
                    monitor.inbound = CircuitBreaker::new(self.breaker);
                    old.monitor.clone()
                }
                None => Arc::new(Mutex::new(Monitor {
                    breaker: CircuitBreaker::new(self.breaker),
                    inbound: CircuitBreaker::new(self.breaker),
                    stats: CallStats::default(),
                })),
            };
            entries
                .insert(
                    id.clone(),
                    Entry {
                        plugin: plugin.clone(),
                        monitor,
                    },
                )
                .is_some()
        };
        tracing::info!(
            plugin = %id,
            version = %plugin.manifest().manifest.version,
            world = %plugin.manifest().world,
            replaced,
            "Plugin loaded."
        );
        self.status(&id)
    }

    /// Loads a plugin like [`load`](Self::load), then runs its `health.check`
    /// export. A failing check is answered beside the status (and counted in
    /// the plugin's statistics) but does not unload the plugin: its back end
    /// may only be down for now.
    pub async fn load_and_check(
        &self,
        manifest_path: &Path,
    ) -> Result<(PluginStatus, Result<(), PluginError>), PluginError> {
        let status = self.load(manifest_path).await?;
        let checked = match self.handle(&status.id) {
            Ok(handle) => handle.health_check().await,
            Err(error) => Err(error),
        };
        if let Err(error) = &checked {
            tracing::warn!(plugin = %status.id, error = %error, code = error.code(), "Plugin loaded, but its health check failed.");
        }
        let status = self.status(&status.id).unwrap_or(status);
        Ok((status, checked))
    }

    /// Manifests that failed to load and have not loaded since, by path.
    pub fn load_failures(&self) -> Vec<LoadFailure> {
        lock(&self.failures).values().cloned().collect()
    }

    /// Forgets the load failure of a manifest (it was removed).
    pub fn forget_failure(&self, manifest_path: &Path) {
        lock(&self.failures).remove(manifest_path);
    }

    /// Removes the plugin loaded from `manifest_path`, if the plugin loaded
    /// under its id still comes from that file. Returns the removed id.
    pub fn remove_loaded_from(&self, manifest_path: &Path) -> Option<String> {
        let id = {
            let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
            let id = entries
                .iter()
                .find(|(_, e)| e.plugin.manifest().path == manifest_path)
                .map(|(id, _)| id.clone())?;
            entries.remove(&id);
            id
        };
        tracing::info!(plugin = %id, manifest = %manifest_path.display(), "Plugin removed: its manifest is gone.");
        Some(id)
    }

    /// Removes a plugin. Calls in flight finish; new calls get
    /// [`PluginError::NotLoaded`]. Returns whether it was loaded.
    pub fn remove(&self, plugin_id: &str) -> bool {
        let removed = self
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(plugin_id)
            .is_some();
        if removed {
            tracing::info!(plugin = %plugin_id, "Plugin removed.");
        }
        removed
    }

    /// Ids of the loaded plugins, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Status of one plugin.
    pub fn status(&self, plugin_id: &str) -> Result<PluginStatus, PluginError> {
        let handle = self.handle(plugin_id)?;
        Ok(handle.status())
    }

    /// Status of every plugin, sorted by id.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let handles: Vec<PluginHandle> = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|e| self.handle_of(e))
            .collect();
        handles.iter().map(PluginHandle::status).collect()
    }

    fn handle_of(&self, entry: &Entry) -> PluginHandle {
        PluginHandle {
            runtime: self.runtime.clone(),
            plugin: entry.plugin.clone(),
            monitor: entry.monitor.clone(),
        }
    }

    /// A handle on the current version of a plugin, whatever its world.
    pub fn handle(&self, plugin_id: &str) -> Result<PluginHandle, PluginError> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(plugin_id)
            .map(|e| self.handle_of(e))
            .ok_or_else(|| PluginError::NotLoaded {
                plugin: plugin_id.to_owned(),
            })
    }

    fn handle_for(&self, plugin_id: &str, kind: WorldKind) -> Result<PluginHandle, PluginError> {
        let handle = self.handle(plugin_id)?;
        let actual = handle.plugin.manifest().world.kind;
        if actual != kind {
            return Err(PluginError::KindMismatch {
                plugin: plugin_id.to_owned(),
                expected: kind.wit_name(),
                actual: actual.wit_name(),
            });
        }
        Ok(handle)
    }

    /// The CRM connector `plugin_id`.
    pub fn crm(&self, plugin_id: &str) -> Result<CrmPlugin, PluginError> {
        self.handle_for(plugin_id, WorldKind::CrmConnector)
            .map(CrmPlugin)
    }

    /// The order connector `plugin_id`.
    pub fn orders(&self, plugin_id: &str) -> Result<OrderPlugin, PluginError> {
        self.handle_for(plugin_id, WorldKind::OrderConnector)
            .map(OrderPlugin)
    }

    /// The transport `plugin_id`.
    pub fn transport(&self, plugin_id: &str) -> Result<TransportPlugin, PluginError> {
        self.handle_for(plugin_id, WorldKind::Transport)
            .map(TransportPlugin)
    }
}

/// One version of one plugin, with its breaker and statistics. Holding a
/// handle keeps that version alive even if the registry replaces it.
#[derive(Debug, Clone)]
pub struct PluginHandle {
    runtime: Arc<PluginRuntime>,
    plugin: Arc<LoadedPlugin>,
    monitor: Arc<Mutex<Monitor>>,
}

impl PluginHandle {
    /// The plugin's id.
    pub fn id(&self) -> &str {
        self.plugin.id()
    }

    /// Status of this plugin.
    pub fn status(&self) -> PluginStatus {
        let monitor = lock(&self.monitor);
        let now = Instant::now();
        let breaker = monitor.breaker.state(now);
        let health = match breaker {
            BreakerState::Open => PluginHealth::Unavailable,
            BreakerState::HalfOpen => PluginHealth::Recovering,
            BreakerState::Closed if monitor.breaker.consecutive_failures() > 0 => {
                PluginHealth::Degraded
            }
            BreakerState::Closed => PluginHealth::Healthy,
        };
        let manifest = self.plugin.manifest();
        PluginStatus {
            id: self.plugin.id().to_owned(),
            version: manifest.manifest.version.clone(),
            world: manifest.world,
            manifest_path: manifest.path.clone(),
            component_bytes: self.plugin.component_bytes,
            health,
            breaker,
            stats: monitor.stats.snapshot(),
        }
    }

    /// Runs the plugin's `health.check` export.
    pub async fn health_check(&self) -> Result<(), PluginError> {
        match self.invoke(Call::Health).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    #[tracing::instrument(skip_all, fields(plugin = %self.plugin.id(), call = call.name()))]
    pub(crate) async fn invoke(&self, call: Call) -> Result<Reply, PluginError> {
        // Verifying an inbound webhook runs before anyone is authenticated: whatever junk
        // a stranger posts must not open the breaker that guards sends. Those calls have
        // a breaker of their own (an inbound path that keeps failing answers 503 at once,
        // and the provider retries); sends keep theirs.
        let inbound = matches!(call, Call::VerifyAndParse(_));
        let admitted = {
            let mut monitor = lock(&self.monitor);
            let admitted = monitor.breaker_for(inbound).try_acquire(Instant::now());
            if admitted.is_err() {
                monitor.stats.record_rejected();
            }
            admitted
        };
        if let Err(wait) = admitted {
            return Err(PluginError::CircuitOpen {
                plugin: self.plugin.id().to_owned(),
                retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            });
        }
        let started = Instant::now();
        let outcome = self.runtime.call(&self.plugin, call).await;
        let elapsed = started.elapsed();
        let mut monitor = lock(&self.monitor);
        match &outcome {
            Ok(_) => {
                monitor.breaker_for(inbound).on_success();
                monitor.stats.record(elapsed, None);
            }
            Err(e) => {
                if e.counts_against_plugin() {
                    monitor.breaker_for(inbound).on_failure(Instant::now());
                    tracing::warn!(error = %e, code = e.code(), elapsed_ms = millis(elapsed), inbound, "Plugin call failed.");
                } else {
                    monitor.breaker_for(inbound).on_success();
                    tracing::debug!(
                        code = e.code(),
                        elapsed_ms = millis(elapsed),
                        "Plugin call answered with an error."
                    );
                }
                monitor
                    .stats
                    .record(elapsed, Some((e.code(), e.to_string())));
            }
        }
        outcome
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unexpected(reply: &Reply) -> PluginError {
    PluginError::Host(format!("unexpected reply from plugin: {reply:?}"))
}

/// A CRM connector (`world crm-connector`).
#[derive(Debug, Clone)]
pub struct CrmPlugin(PluginHandle);

impl CrmPlugin {
    /// Looks up a customer; `Reported { error: NotFound }` when unknown.
    pub async fn lookup_customer(&self, key: CustomerKey) -> Result<CustomerProfile, PluginError> {
        match self.0.invoke(Call::LookupCustomer(key)).await? {
            Reply::Customer(profile) => Ok(profile),
            other => Err(unexpected(&other)),
        }
    }

    /// The underlying handle (status, health check).
    pub fn handle(&self) -> &PluginHandle {
        &self.0
    }
}

/// An order connector (`world order-connector`).
#[derive(Debug, Clone)]
pub struct OrderPlugin(PluginHandle);

impl OrderPlugin {
    /// Looks up one order by id.
    pub async fn lookup_order(&self, order_id: &str) -> Result<Order, PluginError> {
        match self
            .0
            .invoke(Call::LookupOrder(order_id.to_owned()))
            .await?
        {
            Reply::Order(order) => Ok(order),
            other => Err(unexpected(&other)),
        }
    }

    /// The customer's most recent orders, newest first.
    pub async fn recent_orders(&self, wa_id: &str, limit: u32) -> Result<Vec<Order>, PluginError> {
        let call = Call::RecentOrders {
            wa_id: wa_id.to_owned(),
            limit,
        };
        match self.0.invoke(call).await? {
            Reply::Orders(orders) => Ok(orders),
            other => Err(unexpected(&other)),
        }
    }

    /// The underlying handle (status, health check).
    pub fn handle(&self) -> &PluginHandle {
        &self.0
    }
}

/// A transport (`world transport`).
#[derive(Debug, Clone)]
pub struct TransportPlugin(PluginHandle);

impl TransportPlugin {
    /// Verifies and parses an inbound webhook.
    pub async fn verify_and_parse(
        &self,
        request: InboundHttpRequest,
    ) -> Result<Vec<InboundItem>, PluginError> {
        match self.0.invoke(Call::VerifyAndParse(request)).await? {
            Reply::Inbound(items) => Ok(items),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends a message; returns the provider's message id.
    pub async fn send(&self, message: OutboundMessage) -> Result<String, PluginError> {
        match self.0.invoke(Call::Send(message)).await? {
            Reply::MessageId(id) => Ok(id),
            other => Err(unexpected(&other)),
        }
    }

    /// The underlying handle (status, health check).
    pub fn handle(&self) -> &PluginHandle {
        &self.0
    }
}
