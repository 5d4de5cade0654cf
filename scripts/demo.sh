#!/usr/bin/env bash
# The main job end to end: assemble a program, execute it, prove the run,
# write a receipt, and verify it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release -p bitsage-host --locked
bin="${CARGO_TARGET_DIR:-target}/release/bitsage-host"
"$bin" prove examples/mac_loop.obk --input 100000,7 --out receipt.bin
"$bin" verify receipt.bin --program examples/mac_loop.obk
"$bin" inspect receipt.bin
