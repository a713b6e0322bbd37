//! The WebAssembly plugin host: CRM connectors, order connectors and
//! transports that integrators build against the WIT contract in
//! `schema/wit/` and load without recompiling Parley.
//!
//! What it owns: compiling and linking components (one wasmtime `Engine`,
//! pooling allocator, `InstancePre` per plugin), running each call in a fresh
//! `Store` with the manifest's deadline (epoch interruption) and memory limit,
//! the host imports (HTTP to allowed hosts only, logging into `tracing`
//! tagged with the plugin id, a clock, the plugin's own secrets and
//! settings), a circuit breaker and statistics per plugin, and the registry
//! that adds, replaces and removes plugins at run time.
//!
//! Who calls it: actors that enrich a case (CRM) or answer order questions
//! (orders), through [`Connectors`], which picks the plugins the configuration
//! names; ingest and outbound for transport channels, through
//! [`PluginRegistry::transport`]; operators through GraphQL
//! ([`PluginRegistry::statuses`], [`PluginRegistry::load`]), the directory
//! [`watcher`] and `parley plugin check` ([`check()`]).
//!
//! What it never does: know about conversations, tickets or the store; let a
//! plugin's failure escape as a panic. Every failure is a [`PluginError`]
//! variant with a stable [`PluginError::code`].
//!
//! Versions: the bindings live in [`bindings`], one module per contract
//! version (`v0_1` today); see `schema/wit/README.md`.

pub mod bindings;
pub mod breaker;
pub mod check;
pub mod connectors;
pub mod error;
pub mod host;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod stats;
pub mod watcher;

#[cfg(test)]
mod tests;

pub use bindings::v0_1::types::{
    ButtonReply, CustomerKey, CustomerProfile, DeliveryState, DeliveryStatus, InboundHttpRequest,
    InboundItem, InboundMessage, InteractiveButtons, Location, MediaAttachment, Money, Order,
    OrderItem, OrderStatus, OutboundContent, OutboundMessage, ReplyButton, TemplateMessage,
};
pub use breaker::{BreakerConfig, BreakerState};
pub use check::{CheckReport, check};
pub use connectors::{Connector, ConnectorError, Connectors};
pub use error::{PluginError, ReportedError};
pub use host::SecretValue;
pub use manifest::{LocatedManifest, Manifest, WorldKind, WorldRef};
pub use registry::{
    CrmPlugin, LoadFailure, OrderPlugin, PluginHandle, PluginHealth, PluginRegistry, PluginStatus,
    SecretSource, StaticSecrets, TransportPlugin,
};
pub use runtime::{PluginRuntime, RuntimeConfig};
pub use stats::{LastError, StatsSnapshot};
pub use watcher::PluginWatcher;
