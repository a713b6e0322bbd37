//! Write a Parley plugin in a few lines.
//!
//! Pick the world with a cargo feature (`crm`, `orders` or `transport`),
//! implement its traits, and export:
//!
//! ```ignore
//! use parley_plugin_sdk::{crm::*, http, settings, PluginError};
//!
//! struct MyCrm;
//!
//! impl Health for MyCrm {
//!     fn check() -> Result<(), PluginError> { Ok(()) }
//! }
//!
//! impl Crm for MyCrm {
//!     fn lookup_customer(key: CustomerKey) -> Result<CustomerProfile, PluginError> {
//!         let response = http::Request::get("https://crm.example.com/customers/1").send()?;
//!         // ...
//!         # todo!()
//!     }
//! }
//!
//! parley_plugin_sdk::export_plugin!(MyCrm);
//! ```
//!
//! Besides the bindings the SDK offers what every connector needs: HTTP with
//! JSON through the host ([`http`]), the plugin's settings ([`settings`]) and
//! secrets ([`secret`]), logging ([`log`]), a clock ([`now_ms`]), JSON
//! field mapping ([`json`]), and what REST connectors share ([`rest`]).

// Lets paths inside generated code name this crate the same way from here and
// from the plugin crate that expands `export_plugin!`.
extern crate self as parley_plugin_sdk;

#[cfg(any(
    all(feature = "crm", feature = "orders"),
    all(feature = "crm", feature = "transport"),
    all(feature = "orders", feature = "transport"),
))]
compile_error!("enable exactly one of the features `crm`, `orders`, `transport`");

#[cfg(not(any(feature = "crm", feature = "orders", feature = "transport")))]
compile_error!("enable one of the features `crm`, `orders`, `transport`");

/// The generated bindings of the selected world.
#[doc(hidden)]
#[allow(unsafe_code, clippy::all)]
pub mod bindings {
    #[cfg(feature = "crm")]
    wit_bindgen::generate!({
        world: "parley:plugin/crm-connector@0.1.0",
        path: "../../schema/wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "parley_plugin_sdk::bindings",
        runtime_path: "parley_plugin_sdk::rt",
        additional_derives: [PartialEq],
    });

    #[cfg(feature = "orders")]
    wit_bindgen::generate!({
        world: "parley:plugin/order-connector@0.1.0",
        path: "../../schema/wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "parley_plugin_sdk::bindings",
        runtime_path: "parley_plugin_sdk::rt",
        additional_derives: [PartialEq],
    });

    #[cfg(feature = "transport")]
    wit_bindgen::generate!({
        world: "parley:plugin/transport@0.1.0",
        path: "../../schema/wit",
        pub_export_macro: true,
        export_macro_name: "export_plugin",
        default_bindings_module: "parley_plugin_sdk::bindings",
        runtime_path: "parley_plugin_sdk::rt",
        additional_derives: [PartialEq],
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt;

/// Exports the plugin type: `parley_plugin_sdk::export_plugin!(MyPlugin);`.
pub use bindings::export_plugin;

pub mod http;
pub mod json;
pub mod rest;

use bindings::parley::plugin::host;

/// The contract's shared types (customers, orders, messages, errors).
pub use bindings::parley::plugin::types;
pub use types::PluginError;

/// The `health` export every plugin implements.
pub use bindings::exports::parley::plugin::health::Guest as Health;

/// Everything a CRM connector needs: `use parley_plugin_sdk::crm::*;`.
#[cfg(feature = "crm")]
pub mod crm {
    pub use crate::Health;
    pub use crate::bindings::exports::parley::plugin::crm::Guest as Crm;
    pub use crate::types::{CustomerKey, CustomerProfile, PluginError};
}

/// Everything an order connector needs: `use parley_plugin_sdk::orders::*;`.
#[cfg(feature = "orders")]
pub mod orders {
    pub use crate::Health;
    pub use crate::bindings::exports::parley::plugin::orders::Guest as Orders;
    pub use crate::types::{Money, Order, OrderItem, OrderStatus, PluginError};
}

/// Everything a transport needs: `use parley_plugin_sdk::transport::*;`.
#[cfg(feature = "transport")]
pub mod transport {
    pub use crate::Health;
    pub use crate::bindings::exports::parley::plugin::messaging::Guest as Messaging;
    pub use crate::types::{
        ButtonReply, DeliveryState, DeliveryStatus, InboundHttpRequest, InboundItem,
        InboundMessage, InteractiveButtons, Location, MediaAttachment, OutboundContent,
        OutboundMessage, PluginError, ReplyButton, TemplateMessage,
    };
}

/// The value of a secret the manifest lists, or `misconfigured` naming it.
pub fn secret(name: &str) -> Result<String, PluginError> {
    host::secret(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| PluginError::Misconfigured(format!("secret `{name}` is not configured")))
}

/// The manifest's `[settings]`, deserialized; `misconfigured` when they do
/// not fit `T`.
pub fn settings<T: serde::de::DeserializeOwned>() -> Result<T, PluginError> {
    serde_json::from_str(&host::settings())
        .map_err(|e| PluginError::Misconfigured(format!("settings: {e}")))
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now_ms()
}

/// Logging into Parley's log, tagged with the plugin's id. Never log message
/// text, phone numbers or secrets.
pub mod log {
    use crate::host::{LogLevel, log};

    /// Diagnostic detail.
    pub fn debug(message: &str) {
        log(LogLevel::Debug, message);
    }

    /// Normal operation worth recording.
    pub fn info(message: &str) {
        log(LogLevel::Info, message);
    }

    /// Something unexpected that the plugin handled.
    pub fn warn(message: &str) {
        log(LogLevel::Warn, message);
    }

    /// A failure.
    pub fn error(message: &str) {
        log(LogLevel::Error, message);
    }
}
