//! Builds components from WAT and writes manifests for tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wit_component::{ComponentEncoder, StringEncoding};

use crate::plugins::{BreakerConfig, PluginRegistry, PluginRuntime, RuntimeConfig, StaticSecrets};

/// The contract, as the host and the plugins see it.
pub const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/wit");

/// Turns a core module written in WAT into a component of `world`
/// (`crm-connector`, `order-connector` or `transport`).
pub fn component_from_wat(wat: &str, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve.push_dir(WIT_DIR).unwrap();
    let world = resolve.select_world(&[package], Some(world)).unwrap();
    let mut module = wat::parse_str(wat).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        StringEncoding::UTF8,
        false,
    )
    .unwrap();
    ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

/// A core module implementing `crm-connector` whose `health.check` runs
/// `check_body` and whose `lookup-customer` runs `lookup_body`; both must
/// leave the address of the return area (2048) on the stack. `extra` adds
/// imports and data.
pub fn crm_module(imports: &str, check_body: &str, lookup_body: &str, data: &str) -> String {
    format!(
        r#"(module
  {imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
        (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.const 16)))))
    (local.get $p))
  (func (export "parley:plugin/health@0.1.0#check") (result i32)
    {check_body})
  (func (export "parley:plugin/crm@0.1.0#lookup-customer") (param i32 i32 i32) (result i32)
    {lookup_body})
  {data}
)"#
    )
}

/// Return `ok` from `health.check`.
pub const RETURN_OK: &str = "(i32.store8 (i32.const 2048) (i32.const 0)) (i32.const 2048)";

/// Return `err(not-found)` (case 4 of `plugin-error`).
pub const RETURN_NOT_FOUND: &str = "(i32.store8 (i32.const 2048) (i32.const 1)) \
     (i32.store8 (i32.const 2052) (i32.const 4)) (i32.const 2048)";

/// A CRM plugin that behaves: `check` is ok, every customer is unknown.
pub fn well_behaved_crm() -> Vec<u8> {
    component_from_wat(
        &crm_module("", RETURN_OK, RETURN_NOT_FOUND, ""),
        "crm-connector",
    )
}

/// A CRM plugin whose calls run `body` (in both exports).
pub fn crm_plugin_doing(imports: &str, body: &str, data: &str) -> Vec<u8> {
    component_from_wat(&crm_module(imports, body, body, data), "crm-connector")
}

/// A test directory with plugins in it.
pub struct PluginDir {
    pub dir: tempfile::TempDir,
}

impl PluginDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Writes `<id>.wasm` and `<id>.toml`; `extra` is appended to the manifest.
    pub fn add(&self, id: &str, world: &str, component: &[u8], extra: &str) -> PathBuf {
        let wasm = self.dir.path().join(format!("{id}.wasm"));
        std::fs::write(&wasm, component).unwrap();
        self.manifest(id, world, &wasm, extra)
    }

    /// Writes a manifest for an existing component file.
    pub fn manifest(&self, id: &str, world: &str, component: &Path, extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{id}.toml"));
        let text = format!(
            "id = \"{id}\"\nversion = \"0.0.1\"\nworld = \"{world}\"\ncomponent = {component:?}\n{extra}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// A runtime and an empty registry with a small breaker threshold.
pub fn registry(secrets: StaticSecrets) -> PluginRegistry {
    let runtime = Arc::new(
        PluginRuntime::new(RuntimeConfig {
            max_concurrent_calls: 32,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    PluginRegistry::new(
        runtime,
        Arc::new(secrets),
        BreakerConfig {
            failure_threshold: 3,
            cool_down: std::time::Duration::from_secs(60),
        },
    )
}
