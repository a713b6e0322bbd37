//! `parley-componentize [--world WORLD] IN.wasm|IN.wat OUT.wasm`: wraps a core module
//! (as built by a plugin crate for `wasm32-unknown-unknown`, with the WIT world
//! embedded by wit-bindgen) into a WebAssembly component, and validates the result.
//!
//! With `--world` (`crm-connector`, `order-connector` or `transport`) the world is
//! taken from Parley's contract in `schema/wit/` instead, for modules written by hand
//! (in WAT, for example) that carry no WIT of their own.
//!
//! No WASI adapter is involved: such a module imports only what its world
//! imports, which is all Parley's host provides.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wit_component::{ComponentEncoder, StringEncoding};

/// The contract, beside this tool in the repository.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema/wit");

const USAGE: &str = "usage: parley-componentize [--world WORLD] IN.wasm|IN.wat OUT.wasm";

/// Embeds `world` of the contract into a module that has no WIT of its own.
fn embed_world(module: &mut Vec<u8>, world: &str) -> Result<()> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_dir(Path::new(WIT_DIR))
        .with_context(|| format!("Failed to read the contract in {WIT_DIR}"))?;
    let world = resolve
        .select_world(&[package], Some(world))
        .with_context(|| format!("The contract has no world {world:?}"))?;
    wit_component::embed_component_metadata(module, &resolve, world, StringEncoding::UTF8, false)
        .context("Failed to embed the world")
}

fn run() -> Result<()> {
    let mut world = None;
    let mut paths = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--world" {
            let name = args.next().context(USAGE)?;
            world = Some(
                name.into_string()
                    .ok()
                    .context("the world name is not UTF-8")?,
            );
        } else {
            paths.push(PathBuf::from(arg));
        }
    }
    let [input, output] = paths.as_slice() else {
        bail!(USAGE);
    };
    let mut module = if input.extension().is_some_and(|e| e == "wat") {
        wat::parse_file(input).with_context(|| format!("Failed to read {}", input.display()))?
    } else {
        std::fs::read(input).with_context(|| format!("Failed to read {}", input.display()))?
    };
    if let Some(world) = &world {
        embed_world(&mut module, world)?;
    }
    let component = ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .with_context(|| {
            format!(
                "Failed to decode the WIT world embedded in {}",
                input.display()
            )
        })?
        .encode()
        .with_context(|| format!("Failed to turn {} into a component", input.display()))?;
    std::fs::write(output, &component)
        .with_context(|| format!("Failed to write {}", output.display()))?;
    println!(
        "{} -> {} ({} bytes)",
        input.display(),
        output.display(),
        component.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
