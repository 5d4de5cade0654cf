#!/usr/bin/env bash
# One-time set-up on a fresh machine: the pinned toolchain and its targets
# (automatic rustup installs are off here). Idempotent and fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup run 1.95.0 cargo --version >/dev/null 2>&1; then
  rustup toolchain install 1.95.0 --profile minimal --component rustfmt --component clippy
fi
if ! rustup target list --installed --toolchain 1.95.0 | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2 --toolchain 1.95.0
fi
