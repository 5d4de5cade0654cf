#!/usr/bin/env bash
# One-time set-up on a fresh machine: the pinned toolchain and its targets
# (automatic rustup installs are off here), then what the tests use.
# Idempotent and fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! rustup run 1.95.0 cargo --version >/dev/null 2>&1; then
  rustup toolchain install 1.95.0 --profile minimal --component rustfmt --component clippy
fi
for t in wasm32-wasip2 wasm32-unknown-unknown; do
  if ! rustup target list --installed --toolchain 1.95.0 | grep -qx "$t"; then
    rustup target add "$t" --toolchain 1.95.0
  fi
done

# `--minimal`: the toolchain only (what the demo needs); the test tools below
# are for scripts/test.sh and scripts/settle-demo.sh.
if [ "${1:-}" = "--minimal" ]; then
  exit 0
fi

# The node's tests start a real PostgreSQL server and drive the dashboard in
# headless Chromium (Debian packages), through playwright-core (npm, cached
# outside the clone).
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
node_cache="$HOME/.cache/bitsage/node"
if [ ! -d "$node_cache/node_modules/playwright-core" ]; then
  mkdir -p "$node_cache"
  (cd "$node_cache" && npm install --silent --no-audit --no-fund playwright-core@1.64.1 >/dev/null)
fi

# Settlement tests run against a real local Starknet: starknet-devnet 0.10.1
# (RPC 0.10), built once per machine into the cache (about 24 minutes on 2
# cores; its cairo_native feature stays off).
tools="$HOME/.cache/bitsage/tools"
if ! "$tools/bin/starknet-devnet" --version 2>/dev/null | grep -q "0.10.1"; then
  echo "building starknet-devnet 0.10.1 into $tools (once per machine, ~24 min on 2 cores)" >&2
  cargo install starknet-devnet --version 0.10.1 --locked --root "$tools" --quiet
fi
