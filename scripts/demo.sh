#!/usr/bin/env bash
# The main job end to end: build the workload components, run ml-inference
# on a held-out digit in the sandbox, prove the VM execution, verify the
# receipt, and show what it proves. Users get the release build (the one
# `cargo install --path host/cli --locked` installs); the tests keep the
# dev profile.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh --minimal
./scripts/build-workloads.sh > /dev/null
cargo build --release -p bitsage-host --locked
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/release/bitsage-host"
"$bin" run "$target/wasm32-wasip2/release/ml_inference.wasm" --input examples/ml-inference.json --out receipt.bin
"$bin" verify receipt.bin
"$bin" inspect receipt.bin
