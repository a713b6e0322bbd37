//! Rust bindings generated from the WIT contract in `schema/wit/`, one module
//! per supported package version.
//!
//! Only `v0_1` exists today. When the contract gains a new major version, the
//! current `schema/wit/` is frozen into `schema/wit/deps/parley-plugin-0.1.0/`,
//! a `v1_0` module is generated from the new files beside this one, and `v0_1`
//! gains conversions from its types into the current ones; the registry picks
//! the bindings from the manifest's `world = "...@MAJOR.MINOR"`.

/// Package `parley:plugin@0.1.x`.
// The generated code builds typed function handles with `unsafe`; it is the
// only `unsafe` in Parley, hence the workspace lint is `deny`, not `forbid`.
#[allow(unsafe_code, unused, clippy::all)]
pub mod v0_1 {
    /// The shared types and host imports (`world plugin-imports`).
    pub mod imports {
        wasmtime::component::bindgen!({
            world: "parley:plugin/plugin-imports@0.1.0",
            path: "../schema/wit",
            imports: { "parley:plugin/host.http-request": async },
            additional_derives: [PartialEq],
        });
    }

    /// `world crm-connector`.
    pub mod crm {
        wasmtime::component::bindgen!({
            world: "parley:plugin/crm-connector@0.1.0",
            path: "../schema/wit",
            exports: { default: async },
            with: {
                "parley:plugin/types": super::imports::parley::plugin::types,
                "parley:plugin/host": super::imports::parley::plugin::host,
            },
        });
    }

    /// `world order-connector`.
    pub mod orders {
        wasmtime::component::bindgen!({
            world: "parley:plugin/order-connector@0.1.0",
            path: "../schema/wit",
            exports: { default: async },
            with: {
                "parley:plugin/types": super::imports::parley::plugin::types,
                "parley:plugin/host": super::imports::parley::plugin::host,
            },
        });
    }

    /// `world transport`.
    pub mod transport {
        wasmtime::component::bindgen!({
            world: "parley:plugin/transport@0.1.0",
            path: "../schema/wit",
            exports: { default: async },
            with: {
                "parley:plugin/types": super::imports::parley::plugin::types,
                "parley:plugin/host": super::imports::parley::plugin::host,
            },
        });
    }

    pub use imports::parley::plugin::host;
    pub use imports::parley::plugin::types;
}
