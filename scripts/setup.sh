#!/usr/bin/env bash
# One-time set-up on a fresh machine: the pinned toolchain and its targets
# (automatic rustup installs are off here).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup toolchain install 1.95.0 --profile minimal --component rustfmt --component clippy
rustup target add wasm32-wasip2 --toolchain 1.95.0
