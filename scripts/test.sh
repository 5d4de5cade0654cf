#!/usr/bin/env bash
# The test command: every test in the workspace, plus a CLI round trip
# (prove, verify, tamper, reject) through the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo test --workspace --locked
cargo build -p bitsage-host --locked
bin="${CARGO_TARGET_DIR:-target}/debug/bitsage-host"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$bin" prove examples/mac_loop.obk --input 1000,7 --out "$tmp/r.bin" --json
"$bin" verify "$tmp/r.bin" --program examples/mac_loop.obk
python3 - "$tmp/r.bin" "$tmp/bad.bin" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 1
open(sys.argv[2], 'wb').write(b)
PY
if "$bin" verify "$tmp/bad.bin"; then echo "tampered receipt was accepted" >&2; exit 1; fi
echo "cli: 3 passed, 0 failed"
