//! `parley-componentize IN.wasm OUT.wasm`: wraps a core module (as built by a
//! plugin crate for `wasm32-unknown-unknown`, with the WIT world embedded by
//! wit-bindgen) into a WebAssembly component, and validates the result.
//!
//! No WASI adapter is involved: such a module imports only what its world
//! imports, which is all Parley's host provides.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use wit_component::ComponentEncoder;

fn run() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(input), Some(output), None) = (args.next(), args.next(), args.next()) else {
        bail!("usage: parley-componentize IN.wasm OUT.wasm");
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    let module =
        std::fs::read(&input).with_context(|| format!("Failed to read {}", input.display()))?;
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
    std::fs::write(&output, &component)
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
