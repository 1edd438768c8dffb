# Sourced by the other scripts: pinned tool versions and PATH. Not meant to be run.
# shellcheck shell=bash
TRUNK_VERSION=0.21.14          # builds on the preinstalled Rust 1.95 (0.22 needs 1.96.1)
WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen` pin in Cargo.toml and Cargo.lock
BINARYEN_VERSION=132.0.0       # npm binaryen: Debian's wasm-opt 108 silently breaks the wasm

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
export PATH="$TOOLS/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Trunk must never reach for the internet: no update check, tools from PATH only.
export TRUNK_SKIP_VERSION_CHECK=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
