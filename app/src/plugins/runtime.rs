//! The wasmtime side: one engine, compiled components, and the life of a call.
//!
//! One [`PluginRuntime`] per process owns the `Engine` (with the pooling
//! allocator, so a fresh instance per call costs microseconds), the `Linker`
//! with the host imports, the HTTP client plugins share, and the thread that
//! advances the epoch so calls can be stopped at their deadline.
//!
//! A [`LoadedPlugin`] is a compiled component pre-linked against its world
//! (`InstancePre`). Each call gets a new `Store`, so nothing a plugin does in
//! one call (or one conversation) is visible in the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use crate::plugins::bindings::v0_1::{crm, imports, orders, transport, types};
use crate::plugins::error::{PluginError, ReportedError};
use crate::plugins::host::{CallLimiter, CallState, Grants};
use crate::plugins::manifest::{LocatedManifest, WorldKind};

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Time a call may overrun its deadline while the host notices (an epoch tick,
/// a host request being cancelled) before it is abandoned outright.
const DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Settings of the plugin runtime, shared by all plugins.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Most plugin instances alive at once (calls in flight across all
    /// plugins); the pooling allocator reserves this many slots.
    pub max_concurrent_calls: u32,
    /// Ceiling for any manifest's `memory_limit_mb`.
    pub max_memory_mb: u32,
    /// Largest response body a plugin may receive through `http-request`.
    pub max_response_bytes: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_calls: 128,
            max_memory_mb: 256,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The engine, linker and epoch ticker shared by every plugin.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<CallState>,
    http: reqwest::Client,
    config: RuntimeConfig,
    /// One permit per pooled instance slot: calls beyond the pool wait for a
    /// slot (within their deadline) instead of failing.
    slots: tokio::sync::Semaphore,
    _ticker: EpochTicker,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PluginRuntime {
    /// Creates the engine and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, PluginError> {
        let host =
            |what: &str, e: &dyn std::fmt::Display| PluginError::Host(format!("{what}: {e}"));
        let mut pool = PoolingAllocationConfig::new();
        let slots = config.max_concurrent_calls.max(1);
        pool.total_component_instances(slots)
            // A component made by wit-component holds a few core instances
            // (the module plus small shims) with their tables.
            .total_core_instances(slots.saturating_mul(4))
            .total_memories(slots.saturating_mul(2))
            .total_tables(slots.saturating_mul(4))
            .total_stacks(slots)
            .max_memory_size(config.max_memory_mb as usize * 1024 * 1024)
            // Every call gets a fresh instance. Resetting a slot's memory with madvise
            // makes the next call fault its pages in again and makes the kernel flush
            // the other cores' TLBs: at thousands of calls per second that cost more
            // than the calls (a transport plugin verifying each webhook). The first
            // pages of each memory and table are zeroed in place instead, pages still
            // resident are found with PAGEMAP_SCAN where the kernel has it, and the
            // remaining decommits are batched.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_TABLE_BYTES)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .decommit_batch_size(DECOMMIT_BATCH);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| host("cannot create the wasm engine", &e))?;

        let mut linker = Linker::new(&engine);
        imports::PluginImports::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| host("cannot link the host imports", &e))?;

        let http = reqwest::Client::builder()
            // A redirect could lead outside the allowed hosts; plugins see the
            // 3xx and decide themselves.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| host("cannot create the HTTP client", &e))?;

        let ticker = EpochTicker::start(engine.clone())
            .map_err(|e| host("cannot start the epoch ticker", &e))?;
        Ok(Self {
            engine,
            linker,
            http,
            config,
            slots: tokio::sync::Semaphore::new(slots as usize),
            _ticker: ticker,
        })
    }

    /// The runtime's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Compiles a component and links it against the world its manifest names.
    /// CPU-bound (tens of milliseconds): call it from a blocking context.
    pub fn prepare(
        &self,
        manifest: LocatedManifest,
        bytes: &[u8],
        grants: Grants,
    ) -> Result<LoadedPlugin, PluginError> {
        let id = manifest.manifest.id.clone();
        if manifest.world.major != 0 || manifest.world.minor != 1 {
            return Err(PluginError::UnsupportedWorld {
                plugin: id,
                world: manifest.manifest.world.clone(),
            });
        }
        if manifest.manifest.memory_limit_mb > self.config.max_memory_mb {
            return Err(PluginError::Manifest {
                path: manifest.path.clone(),
                reason: format!(
                    "`memory_limit_mb` {} is above this host's ceiling of {}",
                    manifest.manifest.memory_limit_mb, self.config.max_memory_mb
                ),
            });
        }
        let component = Component::from_binary(&self.engine, bytes).map_err(|e| {
            PluginError::CorruptComponent {
                plugin: id.clone(),
                reason: format!("{e:#}"),
            }
        })?;
        let wrong_world = |e: wasmtime::Error| PluginError::WrongWorld {
            plugin: id.clone(),
            world: manifest.world.to_string(),
            reason: format!("{e:#}"),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        let pre = match manifest.world.kind {
            WorldKind::CrmConnector => {
                WorldPre::Crm(crm::CrmConnectorPre::new(instance_pre).map_err(wrong_world)?)
            }
            WorldKind::OrderConnector => {
                WorldPre::Orders(orders::OrderConnectorPre::new(instance_pre).map_err(wrong_world)?)
            }
            WorldKind::Transport => WorldPre::Transport(
                transport::TransportPre::new(instance_pre).map_err(wrong_world)?,
            ),
        };
        Ok(LoadedPlugin {
            id: Arc::from(id.as_str()),
            manifest,
            grants: Arc::new(grants),
            pre,
            component_bytes: bytes.len(),
        })
    }

    /// Runs one call on a fresh instance of `plugin`, with its deadline and
    /// memory limit, and turns every failure into a [`PluginError`].
    pub(crate) async fn call(
        &self,
        plugin: &LoadedPlugin,
        call: Call,
    ) -> Result<Reply, PluginError> {
        let timeout = Duration::from_millis(plugin.manifest.manifest.timeout_ms);
        let started = Instant::now();
        let _slot = match tokio::time::timeout(timeout, self.slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => return Err(PluginError::Host("instance slots closed".to_owned())),
            Err(_elapsed) => {
                return Err(PluginError::Instantiation {
                    plugin: plugin.id.to_string(),
                    reason: format!(
                        "all {} instance slots stayed busy for {} ms",
                        self.config.max_concurrent_calls, plugin.manifest.manifest.timeout_ms
                    ),
                });
            }
        };
        let memory_limit_bytes = plugin.manifest.manifest.memory_limit_mb as usize * 1024 * 1024;
        let state = CallState {
            plugin_id: plugin.id.clone(),
            grants: plugin.grants.clone(),
            http: self.http.clone(),
            // Time spent waiting for a slot counts against the deadline.
            deadline: started + timeout,
            limiter: CallLimiter::new(memory_limit_bytes),
            max_response_bytes: self.config.max_response_bytes,
            timed_out: false,
            denied_origin: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // Check the deadline at every epoch tick; yield to the executor in
        // between so a busy plugin does not hold an async worker thread.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            if Instant::now() >= ctx.data().deadline {
                ctx.data_mut().timed_out = true;
                return Err(wasmtime::Error::msg("plugin call deadline reached"));
            }
            // tokio's own yield lets the scheduler poll its I/O and timer
            // drivers before resuming the plugin, so other tasks on this
            // thread (even a single-threaded runtime) keep being served.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });

        let outcome = tokio::time::timeout(
            timeout.saturating_sub(started.elapsed()) + DEADLINE_GRACE,
            run_call(&plugin.pre, &mut store, call),
        )
        .await;
        let state = store.data();
        let plugin_id = plugin.id.to_string();
        match outcome {
            Err(_elapsed) => Err(PluginError::Timeout {
                plugin: plugin_id,
                timeout_ms: plugin.manifest.manifest.timeout_ms,
            }),
            Ok(Err(failure)) => Err(classify(plugin, state, failure)),
            // What the plugin makes of a refused host or of a back end that kept it
            // past its deadline matters less than the cause.
            Ok(Ok(Err(_))) if state.timed_out => Err(PluginError::Timeout {
                plugin: plugin_id,
                timeout_ms: plugin.manifest.manifest.timeout_ms,
            }),
            Ok(Ok(Err(reported))) => Err(match &state.denied_origin {
                Some(origin) => PluginError::HostNotAllowed {
                    plugin: plugin_id,
                    origin: origin.clone(),
                },
                None => PluginError::Reported {
                    plugin: plugin_id,
                    error: reported,
                },
            }),
            Ok(Ok(Ok(reply))) => Ok(reply),
        }
    }
}

/// Bytes of each pooled linear memory zeroed in place (kept resident) between calls: a
/// typical plugin (a Rust guest) touches about this much per call.
const KEEP_RESIDENT_BYTES: usize = 2 * 1024 * 1024;
/// The same for tables.
const KEEP_RESIDENT_TABLE_BYTES: usize = 64 * 1024;
/// Decommits of pool slots gathered before one flush.
const DECOMMIT_BATCH: usize = 16;

/// What went wrong outside the contract: instantiation or a trap.
enum CallFailure {
    Instantiate(wasmtime::Error),
    Run(wasmtime::Error),
}

fn classify(plugin: &LoadedPlugin, state: &CallState, failure: CallFailure) -> PluginError {
    let plugin_id = plugin.id.to_string();
    if state.timed_out {
        return PluginError::Timeout {
            plugin: plugin_id,
            timeout_ms: plugin.manifest.manifest.timeout_ms,
        };
    }
    if state.limiter.memory_exhausted {
        return PluginError::OutOfMemory {
            plugin: plugin_id,
            limit_mb: plugin.manifest.manifest.memory_limit_mb,
        };
    }
    match failure {
        CallFailure::Instantiate(e) => PluginError::Instantiation {
            plugin: plugin_id,
            reason: format!("{e:#}"),
        },
        CallFailure::Run(e) => {
            let reason = match e.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(),
                None => format!("{e:#}"),
            };
            PluginError::Trap {
                plugin: plugin_id,
                reason,
            }
        }
    }
}

type CallResult = Result<Result<Reply, ReportedError>, CallFailure>;

async fn run_call(pre: &WorldPre, store: &mut Store<CallState>, call: Call) -> CallResult {
    use CallFailure::{Instantiate, Run};
    match pre {
        WorldPre::Crm(pre) => {
            let bindings = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Instantiate)?;
            match call {
                Call::Health => Ok(bindings
                    .parley_plugin_health()
                    .call_check(&mut *store)
                    .await
                    .map_err(Run)?
                    .map(|()| Reply::Done)),
                Call::LookupCustomer(key) => Ok(bindings
                    .parley_plugin_crm()
                    .call_lookup_customer(&mut *store, &key)
                    .await
                    .map_err(Run)?
                    .map(Reply::Customer)),
                other => Err(Run(mismatch(&other, WorldKind::CrmConnector))),
            }
        }
        WorldPre::Orders(pre) => {
            let bindings = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Instantiate)?;
            match call {
                Call::Health => Ok(bindings
                    .parley_plugin_health()
                    .call_check(&mut *store)
                    .await
                    .map_err(Run)?
                    .map(|()| Reply::Done)),
                Call::LookupOrder(id) => Ok(bindings
                    .parley_plugin_orders()
                    .call_lookup_order(&mut *store, &id)
                    .await
                    .map_err(Run)?
                    .map(Reply::Order)),
                Call::RecentOrders { wa_id, limit } => Ok(bindings
                    .parley_plugin_orders()
                    .call_recent_orders(&mut *store, &wa_id, limit)
                    .await
                    .map_err(Run)?
                    .map(Reply::Orders)),
                other => Err(Run(mismatch(&other, WorldKind::OrderConnector))),
            }
        }
        WorldPre::Transport(pre) => {
            let bindings = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(Instantiate)?;
            match call {
                Call::Health => Ok(bindings
                    .parley_plugin_health()
                    .call_check(&mut *store)
                    .await
                    .map_err(Run)?
                    .map(|()| Reply::Done)),
                Call::VerifyAndParse(request) => Ok(bindings
                    .parley_plugin_messaging()
                    .call_verify_and_parse(&mut *store, &request)
                    .await
                    .map_err(Run)?
                    .map(Reply::Inbound)),
                Call::Send(message) => Ok(bindings
                    .parley_plugin_messaging()
                    .call_send(&mut *store, &message)
                    .await
                    .map_err(Run)?
                    .map(Reply::MessageId)),
                other => Err(Run(mismatch(&other, WorldKind::Transport))),
            }
        }
    }
}

fn mismatch(call: &Call, world: WorldKind) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{} is not an export of world {world}", call.name()))
}

/// A component linked against its world, ready to instantiate.
enum WorldPre {
    Crm(crm::CrmConnectorPre<CallState>),
    Orders(orders::OrderConnectorPre<CallState>),
    Transport(transport::TransportPre<CallState>),
}

/// One plugin, compiled and linked; immutable, shared by its in-flight calls.
pub struct LoadedPlugin {
    pub(crate) id: Arc<str>,
    pub(crate) manifest: LocatedManifest,
    pub(crate) grants: Arc<Grants>,
    pre: WorldPre,
    pub(crate) component_bytes: usize,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.id)
            .field("world", &self.manifest.world)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// The plugin's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The manifest it was loaded from.
    pub fn manifest(&self) -> &LocatedManifest {
        &self.manifest
    }
}

/// A call into a plugin export.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    Health,
    LookupCustomer(types::CustomerKey),
    LookupOrder(String),
    RecentOrders { wa_id: String, limit: u32 },
    VerifyAndParse(types::InboundHttpRequest),
    Send(types::OutboundMessage),
}

impl Call {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Call::Health => "health.check",
            Call::LookupCustomer(_) => "crm.lookup-customer",
            Call::LookupOrder(_) => "orders.lookup-order",
            Call::RecentOrders { .. } => "orders.recent-orders",
            Call::VerifyAndParse(_) => "messaging.verify-and-parse",
            Call::Send(_) => "messaging.send",
        }
    }
}

/// The successful result of a [`Call`].
#[derive(Debug)]
pub(crate) enum Reply {
    Done,
    Customer(types::CustomerProfile),
    Order(types::Order),
    Orders(Vec<types::Order>),
    Inbound(Vec<types::InboundItem>),
    MessageId(String),
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("plugin-epoch".to_owned())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
