//! The one error type of the plugin host.
//!
//! Every way a plugin call can go wrong ends here as a distinct variant, so
//! callers decide from the variant alone: fall back to a human, retry later,
//! or tell an operator the plugin is broken. Nothing in the host panics on a
//! plugin's behalf.

use std::path::PathBuf;

use crate::plugins::bindings::v0_1::types::PluginError as WitPluginError;

/// The error a plugin reported through its WIT `plugin-error` result: the
/// plugin ran correctly and told us why it could not help.
pub type ReportedError = WitPluginError;

/// Why loading or calling a plugin failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The manifest could not be read or is invalid.
    #[error("plugin manifest {path} is invalid: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The component file could not be read.
    #[error("plugin {plugin}: cannot read component {path}: {source}")]
    ComponentUnreadable {
        /// Plugin id.
        plugin: String,
        /// The component file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The component file is not a valid WebAssembly component.
    #[error("plugin {plugin}: component is corrupt or not a component: {reason}")]
    CorruptComponent {
        /// Plugin id.
        plugin: String,
        /// The compiler's explanation.
        reason: String,
    },
    /// The manifest names a world (or version of it) this host does not serve.
    #[error("plugin {plugin}: world {world:?} is not supported by this host")]
    UnsupportedWorld {
        /// Plugin id.
        plugin: String,
        /// The world as written in the manifest.
        world: String,
    },
    /// The component does not implement the world its manifest names, or it
    /// imports something the host does not provide.
    #[error("plugin {plugin}: component does not fit world {world}: {reason}")]
    WrongWorld {
        /// Plugin id.
        plugin: String,
        /// The world the manifest names.
        world: String,
        /// What does not fit.
        reason: String,
    },
    /// No plugin with this id is loaded.
    #[error("plugin {plugin} is not loaded")]
    NotLoaded {
        /// Plugin id.
        plugin: String,
    },
    /// The plugin is loaded but serves another world than the one asked for.
    #[error("plugin {plugin} is a {actual} plugin, not a {expected} plugin")]
    KindMismatch {
        /// Plugin id.
        plugin: String,
        /// The world the caller needed.
        expected: &'static str,
        /// The world the plugin serves.
        actual: &'static str,
    },
    /// The call ran past the manifest's `timeout_ms`.
    #[error("plugin {plugin} did not finish within {timeout_ms} ms")]
    Timeout {
        /// Plugin id.
        plugin: String,
        /// The deadline that passed.
        timeout_ms: u64,
    },
    /// The call tried to grow its memory past `memory_limit_mb`.
    #[error("plugin {plugin} exceeded its memory limit of {limit_mb} MiB")]
    OutOfMemory {
        /// Plugin id.
        plugin: String,
        /// The limit.
        limit_mb: u32,
    },
    /// The plugin trapped (crashed): unreachable code, a panic, a stack overflow.
    #[error("plugin {plugin} crashed: {reason}")]
    Trap {
        /// Plugin id.
        plugin: String,
        /// The trap as wasmtime describes it.
        reason: String,
    },
    /// The plugin tried to reach a host its manifest does not allow, and the
    /// call failed.
    #[error("plugin {plugin} tried to reach {origin}, which its manifest does not allow")]
    HostNotAllowed {
        /// Plugin id.
        plugin: String,
        /// The refused origin, e.g. `https://evil.example:443`.
        origin: String,
    },
    /// The circuit breaker is open after repeated failures: the call was not
    /// attempted.
    #[error("plugin {plugin} is unavailable after repeated failures; retry in {retry_in_ms} ms")]
    CircuitOpen {
        /// Plugin id.
        plugin: String,
        /// When the breaker lets a probe call through.
        retry_in_ms: u64,
    },
    /// The host could not create an instance (for example: every pooled slot
    /// is in use).
    #[error("plugin {plugin} could not be started: {reason}")]
    Instantiation {
        /// Plugin id.
        plugin: String,
        /// wasmtime's explanation.
        reason: String,
    },
    /// The plugin ran and returned one of the contract's errors.
    #[error("plugin {plugin} reported: {}", describe_reported(error))]
    Reported {
        /// Plugin id.
        plugin: String,
        /// The error the plugin returned.
        error: ReportedError,
    },
    /// The configuration names no plugin for this role (`plugins.crm`,
    /// `plugins.orders`).
    #[error("no {connector} plugin is configured")]
    NotConfigured {
        /// What is missing: `CRM` or `order system`.
        connector: &'static str,
    },
    /// The host itself failed (engine set-up, a blocking task that died).
    #[error("plugin host failure: {0}")]
    Host(String),
}

impl PluginError {
    /// A stable snake_case code for the API error catalogue
    /// (`plugin_timeout`, `plugin_window_closed`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            PluginError::Manifest { .. } => "plugin_manifest_invalid",
            PluginError::ComponentUnreadable { .. } => "plugin_component_unreadable",
            PluginError::CorruptComponent { .. } => "plugin_component_corrupt",
            PluginError::UnsupportedWorld { .. } => "plugin_world_unsupported",
            PluginError::WrongWorld { .. } => "plugin_wrong_world",
            PluginError::NotLoaded { .. } => "plugin_not_loaded",
            PluginError::KindMismatch { .. } => "plugin_kind_mismatch",
            PluginError::Timeout { .. } => "plugin_timeout",
            PluginError::OutOfMemory { .. } => "plugin_out_of_memory",
            PluginError::Trap { .. } => "plugin_trap",
            PluginError::HostNotAllowed { .. } => "plugin_host_not_allowed",
            PluginError::CircuitOpen { .. } => "plugin_circuit_open",
            PluginError::Instantiation { .. } => "plugin_instantiation_failed",
            PluginError::NotConfigured { .. } => "plugin_not_configured",
            PluginError::Host(_) => "plugin_host_failure",
            PluginError::Reported { error, .. } => match error {
                ReportedError::Retryable(_) => "plugin_retryable",
                ReportedError::RateLimited(_) => "plugin_rate_limited",
                ReportedError::WindowClosed => "plugin_window_closed",
                ReportedError::Permanent(_) => "plugin_permanent",
                ReportedError::NotFound => "plugin_record_not_found",
                ReportedError::Unauthorized(_) => "plugin_unauthorized",
                ReportedError::Misconfigured(_) => "plugin_misconfigured",
                ReportedError::Other(_) => "plugin_other",
            },
        }
    }

    /// The plugin the error is about, when it is known.
    pub fn plugin_id(&self) -> Option<&str> {
        match self {
            PluginError::ComponentUnreadable { plugin, .. }
            | PluginError::CorruptComponent { plugin, .. }
            | PluginError::UnsupportedWorld { plugin, .. }
            | PluginError::WrongWorld { plugin, .. }
            | PluginError::NotLoaded { plugin }
            | PluginError::KindMismatch { plugin, .. }
            | PluginError::Timeout { plugin, .. }
            | PluginError::OutOfMemory { plugin, .. }
            | PluginError::Trap { plugin, .. }
            | PluginError::HostNotAllowed { plugin, .. }
            | PluginError::CircuitOpen { plugin, .. }
            | PluginError::Instantiation { plugin, .. }
            | PluginError::Reported { plugin, .. } => Some(plugin),
            PluginError::Manifest { .. }
            | PluginError::NotConfigured { .. }
            | PluginError::Host(_) => None,
        }
    }

    /// Whether the plugin or its manifest is at fault at load time (as
    /// opposed to a call that failed, or a plugin that is missing).
    pub fn is_load_error(&self) -> bool {
        matches!(
            self,
            PluginError::Manifest { .. }
                | PluginError::ComponentUnreadable { .. }
                | PluginError::CorruptComponent { .. }
                | PluginError::UnsupportedWorld { .. }
                | PluginError::WrongWorld { .. }
        )
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            PluginError::Timeout { .. }
            | PluginError::CircuitOpen { .. }
            | PluginError::Instantiation { .. } => true,
            PluginError::Reported { error, .. } => matches!(
                error,
                ReportedError::Retryable(_) | ReportedError::RateLimited(_)
            ),
            _ => false,
        }
    }

    /// Whether this outcome says the plugin (or its back end) is unwell, and
    /// so counts towards opening its circuit breaker. Answers about the
    /// request itself (not found, window closed, a bad inbound signature)
    /// do not: a stranger sending forged webhooks must not switch a
    /// transport off. Nor does running out of instance slots, which is the
    /// host's capacity, not the plugin's health.
    pub fn counts_against_plugin(&self) -> bool {
        match self {
            PluginError::Timeout { .. }
            | PluginError::OutOfMemory { .. }
            | PluginError::Trap { .. }
            | PluginError::HostNotAllowed { .. } => true,
            PluginError::Reported { error, .. } => matches!(
                error,
                ReportedError::Retryable(_)
                    | ReportedError::RateLimited(_)
                    | ReportedError::Misconfigured(_)
                    | ReportedError::Other(_)
            ),
            _ => false,
        }
    }
}

fn describe_reported(error: &ReportedError) -> String {
    match error {
        ReportedError::Retryable(m) => format!("temporary failure: {m}"),
        ReportedError::RateLimited(Some(ms)) => format!("rate limited, retry after {ms} ms"),
        ReportedError::RateLimited(None) => "rate limited".to_owned(),
        ReportedError::WindowClosed => "customer-service window closed".to_owned(),
        ReportedError::Permanent(m) => format!("permanent failure: {m}"),
        ReportedError::NotFound => "not found".to_owned(),
        ReportedError::Unauthorized(m) => format!("unauthorized: {m}"),
        ReportedError::Misconfigured(m) => format!("misconfigured: {m}"),
        ReportedError::Other(m) => m.clone(),
    }
}
