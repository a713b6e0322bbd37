#!/usr/bin/env bash
# Builds every reference plugin into plugins/dist/<name>.wasm (a WebAssembly
# component) with its manifest plugins/dist/<name>.toml.
#
# Needs Debian's rustc-web, cargo-web, rust-web-src and lld (for wasm-ld), which
# build the wasm32 standard library from source, and the normal Rust toolchain
# (cargo on PATH) for the componentize tool. When the Debian packages are
# missing it installs them with apt-get (through sudo when not root); set
# PARLEY_NO_INSTALL=1 to be told what is missing instead.
#
# Usage: plugins/build.sh [--test] [plugin ...]     (default: all plugins)
#   --test  also runs each plugin's unit tests natively first.
#
# Build output goes to $PLUGINS_TARGET_DIR (default plugins/target), never to
# $CARGO_TARGET_DIR: that one belongs to the server's workspace and its compiler.
#
# Each plugin is built by its own cargo invocation: the SDK's world features
# (crm, orders, transport) exclude each other, and building several plugins in
# one invocation would unify them.
set -euo pipefail

cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${PLUGINS_TARGET_DIR:-$PWD/target}"
ALL=(crm-http orders-http twilio)
RUN_TESTS=0
if [ "${1:-}" = "--test" ]; then RUN_TESTS=1; shift; fi
if [ "$#" -gt 0 ]; then PLUGINS=("$@"); else PLUGINS=("${ALL[@]}"); fi

guest_toolchain_missing() {
    ! { [ -x /usr/bin/cargo ] && [ -x /usr/bin/rustc ] && command -v wasm-ld >/dev/null \
        && [ -d /usr/lib/rustlib/src/rust/library/std ]; }
}
if guest_toolchain_missing && [ "${PARLEY_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null; then
    echo "build.sh: installing the wasm32 guest toolchain (rustc-web cargo-web rust-web-src lld)" >&2
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then as_root=(sudo); fi
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq \
        rustc-web cargo-web rust-web-src lld >/dev/null
fi

missing=()
[ -x /usr/bin/cargo ] || missing+=("/usr/bin/cargo (cargo-web)")
[ -x /usr/bin/rustc ] || missing+=("/usr/bin/rustc (rustc-web)")
command -v wasm-ld >/dev/null || missing+=("wasm-ld (lld)")
ls /usr/lib/rustlib/src/rust/library/std >/dev/null 2>&1 || missing+=("rust std sources (rust-web-src)")
command -v cargo >/dev/null || missing+=("cargo (rustup toolchain)")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "build.sh: missing: ${missing[*]}" >&2
    echo "install with: apt-get update && apt-get install -y rustc-web cargo-web rust-web-src lld" >&2
    exit 1
fi

if [ "$RUN_TESTS" = 1 ]; then
    cargo test --quiet -p parley-plugin-sdk --features crm
    for p in "${PLUGINS[@]}"; do cargo test --quiet -p "parley-$p"; done
fi

# Guest: Debian's compiler builds std for wasm32 from source. Call cargo by
# full path (rustup's proxy comes first on PATH) and keep RUSTC_BOOTSTRAP in
# cargo's own environment.
for p in "${PLUGINS[@]}"; do
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
        /usr/bin/cargo build --release --target wasm32-unknown-unknown \
        -Zbuild-std=std,panic_abort --locked -p "parley-$p"
done

# Host tool: the normal toolchain, its own workspace and target directory.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/componentize" \
    cargo build --quiet --release --locked --manifest-path componentize/Cargo.toml
componentize="$CARGO_TARGET_DIR/componentize/release/parley-componentize"

mkdir -p dist
for p in "${PLUGINS[@]}"; do
    module="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/parley_${p//-/_}.wasm"
    "$componentize" "$module" "dist/$p.wasm"
    cp "$p/plugin.toml" "dist/$p.toml"
done
echo "built: ${PLUGINS[*]} -> $(pwd)/dist"
