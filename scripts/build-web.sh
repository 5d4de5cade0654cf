#!/usr/bin/env bash
# Builds the browser verifier: host/verify-wasm for wasm32-unknown-unknown
# (the `web` profile), then its JavaScript glue with wasm-bindgen, into
# web/verifier/pkg/ (git-ignored). The node embeds that folder when it is
# built after this script; web/verify.html loads it from beside itself.
# Prints the bundle's size, raw and gzipped.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
tools="$HOME/.cache/bitsage/tools"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
# The CLI must be the exact version of the wasm-bindgen crate in Cargo.lock.
version="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
if ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -qx "wasm-bindgen $version"; then
  echo "installing wasm-bindgen-cli $version into $tools (once per machine, ~5 min on 2 cores)" >&2
  # Not --locked: the CLI's own lock file pins a webpki-roots release that
  # some registry mirrors lack; the version itself is pinned.
  cargo install wasm-bindgen-cli --version "$version" --root "$tools" --quiet
fi
cargo build --locked --profile web --target wasm32-unknown-unknown -p bitsage-verify-wasm
out=web/verifier/pkg
mkdir -p "$out"
"$tools/bin/wasm-bindgen" --target web --out-dir "$out" \
  "$target/wasm32-unknown-unknown/web/bitsage_verify_wasm.wasm"
wasm="$out/bitsage_verify_wasm_bg.wasm"
echo "web verifier: $wasm, $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
