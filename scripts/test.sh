#!/usr/bin/env bash
# The test command: builds the guest components, runs every test in the
# workspace, then drives the real binary: prove/verify/tamper round trip,
# a workload run with its receipt, the approved-module flow, and a
# `bitsage-host new` scaffold that must build as-is.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Formatting is checked first: it takes a second and says exactly what to run.
cargo fmt --all -- --check || { echo "run: cargo fmt --all" >&2; exit 1; }
(cd workloads && cargo fmt --all -- --check) || { echo "run: (cd workloads && cargo fmt --all)" >&2; exit 1; }
./scripts/build-workloads.sh > /dev/null
# The settlement tests deploy the compiled contracts on starknet-devnet.
./scripts/build-contracts.sh > /dev/null
# The browser verifier (wasm32-unknown-unknown + wasm-bindgen), before the
# node that embeds it; its tests run it in Node.js and headless Chromium.
./scripts/build-web.sh
export BITSAGE_DEVNET="${BITSAGE_DEVNET:-$HOME/.cache/bitsage/tools/bin/starknet-devnet}"
# The node tests drive the real binary, so it is built first.
cargo build -p bitsage-host --locked
cargo test --workspace --locked
cargo test --locked --manifest-path workloads/Cargo.toml -p bitsage-guest --target-dir "${CARGO_TARGET_DIR:-$PWD/target}"
# The CUDA backend compiles everywhere; its checks run on a GPU machine.
cargo build -p bitsage-prover --features cuda,host-profile --bin bitsage-gpu-proofs --locked
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/debug/bitsage-host"
guests="$target/wasm32-wasip2/release"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export BITSAGE_DATA_DIR="$tmp/data"
passed=0

expect_code() { # expect_code CODE CMD...: runs CMD, requires exit status CODE
    local want=$1; shift
    set +e; "$@" > "$tmp/out" 2>&1; local got=$?; set -e
    if [ "$got" != "$want" ]; then
        echo "expected exit $want, got $got: $*" >&2; cat "$tmp/out" >&2; exit 1
    fi
    passed=$((passed + 1))
}
expect_rejected() { # a tampered receipt: rejected (1) or corrupt (5), never accepted
    set +e; "$@" > "$tmp/out" 2>&1; local got=$?; set -e
    if [ "$got" != 1 ] && [ "$got" != 5 ]; then
        echo "expected rejection (exit 1 or 5), got $got: $*" >&2; cat "$tmp/out" >&2; exit 1
    fi
    passed=$((passed + 1))
}
flip_middle_byte() {
    python3 - "$1" "$2" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read()); b[len(b) // 2] ^= 1
open(sys.argv[2], 'wb').write(b)
PY
}

# --help ends with every exit status and its meaning (the Exit enum).
expect_code 0 "$bin" --help
grep -q "^  25  the chain could not be reached" "$tmp/out"

# Assembly programs: prove, verify, tamper.
expect_code 0 "$bin" prove examples/mac_loop.obk --input 1000,7 --out "$tmp/r.bin" --json
expect_code 0 "$bin" verify "$tmp/r.bin" --program examples/mac_loop.obk
flip_middle_byte "$tmp/r.bin" "$tmp/bad.bin"
expect_rejected "$bin" verify "$tmp/bad.bin"

# A workload: run (prove + verify), verify the receipt file, tamper.
expect_code 0 "$bin" run "$guests/privacy_transfer.wasm" --input examples/privacy-transfer.json --out "$tmp/w.bin"
expect_code 0 "$bin" verify "$tmp/w.bin"
flip_middle_byte "$tmp/w.bin" "$tmp/wbad.bin"
expect_rejected "$bin" verify "$tmp/wbad.bin"
expect_code 0 "$bin" run "$guests/data_transform.wasm" --input examples/data-transform.json --dev --json

# Backend selection: auto falls back to the CPU and says so; cuda without a
# GPU is a clear error (exit 7).
expect_code 0 "$bin" prove examples/mac_loop.obk --input 100,7 --out "$tmp/auto.bin" --backend auto
grep -q "on cpu (SIMD)\|on cuda (" "$tmp/out"
if ! command -v nvidia-smi > /dev/null; then
    expect_code 7 "$bin" prove examples/mac_loop.obk --input 100,7 --out "$tmp/gpu.bin" --backend cuda
fi

# Sandbox failures map to their exit codes.
expect_code 11 "$bin" run "$guests/hostile_fs.wasm" --dev
echo '{"case": "spin"}' > "$tmp/spin.json"
expect_code 13 "$bin" run "$guests/hostile_misbehave.wasm" --input "$tmp/spin.json" --fuel 10000000 --dev
expect_code 14 "$bin" run "$guests/hostile_misbehave.wasm" --input "$tmp/spin.json" --fuel 100000000000000 --timeout-ms 200 --dev
head -c 1000 /dev/urandom > "$tmp/noise.wasm"
expect_code 10 "$bin" run "$tmp/noise.wasm" --dev

# Approved modules, with a publisher signature.
expect_code 12 "$bin" run "$guests/custom.wasm" --input examples/custom.json --require-approved --dev
expect_code 0 "$bin" modules keygen --out "$tmp/publisher.key"
"$bin" modules sign "$guests/custom.wasm" --key "$tmp/publisher.key" --json > "$tmp/sig.json"
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["publisher_key"])' "$tmp/sig.json")
sig=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signature"])' "$tmp/sig.json")
expect_code 12 "$bin" modules approve "$guests/ml_inference.wasm" --publisher-key "$key" --signature "$sig"
expect_code 0 "$bin" modules approve "$guests/custom.wasm" --name hello --publisher-key "$key" --signature "$sig"
expect_code 0 "$bin" modules list
expect_code 0 "$bin" run "$guests/custom.wasm" --input examples/custom.json --require-approved --dev
expect_code 12 "$bin" run "$guests/ml_inference.wasm" --input examples/ml-inference.json --require-approved --dev
expect_code 0 "$bin" modules revoke hello
expect_code 12 "$bin" run "$guests/custom.wasm" --input examples/custom.json --require-approved --dev

# The README's quickstart, command by command.
./scripts/check-quickstart.sh

# `new` scaffolds a crate that builds as-is and runs.
(cd "$tmp" && expect_code 0 "$bin" new my-first-workload)
(cd "$tmp/my-first-workload" && RUSTUP_TOOLCHAIN=1.95.0 cargo build --release --target wasm32-wasip2 --target-dir "$target/scaffold" -q)
expect_code 0 "$bin" run "$target/scaffold/wasm32-wasip2/release/my_first_workload.wasm" --input "$tmp/my-first-workload/input.json" --out "$tmp/new.bin"
expect_code 0 "$bin" verify "$tmp/new.bin"

# The node: bad settings are refused before it starts; a separate worker
# needs a shared PostgreSQL store. (The node's behaviour is tested over HTTP
# in tests/all/node.rs.)
expect_code 2 "$bin" serve --listen not-an-address
expect_code 8 "$bin" worker
key=$("$bin" apikey create --name ci --role operator 2>/dev/null)
case "$key" in bsk_*) passed=$((passed + 1)) ;; *) echo "apikey create printed no key" >&2; exit 1 ;; esac
expect_code 0 "$bin" apikey list

# The worker's identity: an encrypted keystore, never overwritten; a backup
# needs the right password.
export BITSAGE_KEYSTORE_PASSWORD=ci-password
expect_code 0 "$bin" setup --keystore "$tmp/keys/worker.json"
expect_code 2 "$bin" setup --keystore "$tmp/keys/worker.json"
expect_code 0 "$bin" export --keystore "$tmp/keys/worker.json" --out "$tmp/backup.json"
expect_code 2 env BITSAGE_KEYSTORE_PASSWORD=wrong "$bin" export --keystore "$tmp/keys/worker.json" --out "$tmp/b2.json"
[ "$(stat -c %a "$tmp/keys/worker.json")" = 600 ] && [ "$(stat -c %a "$tmp/backup.json")" = 600 ] && passed=$((passed + 1))

# Chain commands refuse bad input before touching a chain: nothing to report,
# a malformed amount, a missing deployment file.
expect_code 2 "$bin" status
expect_code 2 "$bin" stake --amount 1e3 --account 0x1 --rpc http://127.0.0.1:9 --deployment "$tmp/none.json"
expect_code 2 "$bin" info --account 0x1 --rpc http://127.0.0.1:9 --deployment "$tmp/none.json"
# An unreachable chain is exit 25, not a hang or a crash.
echo '{"chain_id":"0x534e5f5345504f4c4941","token":"0x1","staking":"0x2","registry":"0x3","escrow":"0x4","treasury":"0x5","stakers_pool":"0x6","unbonding_secs":100,"min_validator_stake":"1","slash_amount":"1","from_block":0}' > "$tmp/dep.json"
expect_code 25 "$bin" status --rpc http://127.0.0.1:9 --deployment "$tmp/dep.json"

# The Cairo contracts (compiled above) expose the entry points settlement uses.
python3 - "$target/contracts" <<'PY'
import json, sys
want = {
    "Staking": {"stake", "unstake", "claim", "slash", "set_slasher", "set_public_key", "tier_of"},
    "ValidatorRegistry": {"register", "deregister", "is_quorum"},
    "JobEscrow": {"deposit", "submit_result", "vote", "refund", "job"},
}
for name, fns in want.items():
    cls = json.load(open(f"{sys.argv[1]}/{name}.contract_class.json"))
    casm = json.load(open(f"{sys.argv[1]}/{name}.compiled_contract_class.json"))
    abi = cls["abi"] if isinstance(cls["abi"], list) else json.loads(cls["abi"])
    have = {i["name"] for e in abi if e.get("type") == "interface" for i in e["items"]}
    missing = fns - have
    assert not missing, f"{name} lacks {missing}"
    assert casm["bytecode"], f"{name}: empty CASM"
PY
passed=$((passed + 1))

echo "cli: $passed passed, 0 failed"
