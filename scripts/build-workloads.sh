#!/usr/bin/env bash
# Builds every guest component (workloads and the hostile test guests) for
# wasm32-wasip2 into the shared target directory:
#   ${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/<crate>.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked --target wasm32-wasip2 --manifest-path workloads/Cargo.toml --target-dir "$target"
ls "$target/wasm32-wasip2/release/"*.wasm
