#!/usr/bin/env bash
# Settlement end to end on a local Starknet (starknet-devnet 0.10.1, which
# scripts/setup.sh builds once): deploy our contracts, stake a worker and
# three validators, run the worker's node, pay for a job, let the validators
# verify the proof and vote, and print who got what.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build-workloads.sh > /dev/null
./scripts/build-contracts.sh > /dev/null
cargo build -q -p bitsage-host --locked
target="${CARGO_TARGET_DIR:-$PWD/target}"
B="$target/debug/bitsage-host"
devnet="${BITSAGE_DEVNET:-$HOME/.cache/bitsage/tools/bin/starknet-devnet}"
tmp="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$devnet" --seed 0 --port "$port" --accounts 8 > "$tmp/devnet.log" 2>&1 &
pids+=($!)
export BITSAGE_RPC="http://127.0.0.1:$port" BITSAGE_KEYSTORE_PASSWORD=demo BITSAGE_DEPLOYMENT="$tmp/deployment.json"
rpc() { curl -s -X POST "$BITSAGE_RPC" -H 'content-type: application/json' -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}"; }
for _ in $(seq 100); do rpc devnet_getPredeployedAccounts '{}' > "$tmp/accounts.json" 2>/dev/null && grep -q address "$tmp/accounts.json" && break; sleep 0.2; done
mapfile -t addr < <(python3 -c 'import json,sys; [print(a["address"]) for a in json.load(open(sys.argv[1]))["result"]]' "$tmp/accounts.json")
mapfile -t key < <(python3 -c 'import json,sys; [print(a["private_key"]) for a in json.load(open(sys.argv[1]))["result"]]' "$tmp/accounts.json")
roles=(deployer worker val-a val-b val-c client treasury pool)
for i in "${!roles[@]}"; do
    BITSAGE_IMPORT_KEY="${key[$i]}" "$B" setup --import --data-dir "$tmp/${roles[$i]}" > /dev/null
    [ "$i" -lt 6 ] && rpc devnet_mint "{\"address\":\"${addr[$i]}\",\"amount\":100000000000000000000000,\"unit\":\"FRI\"}" > /dev/null
done
as() { local i=$1; shift; BITSAGE_ACCOUNT="${addr[$i]}" "$B" "$@" --data-dir "$tmp/${roles[$i]}"; }
strk=0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d

echo "== deploy staking, validator registry and escrow"
as 0 chain deploy --token $strk --treasury "${addr[6]}" --stakers-pool "${addr[7]}" \
    --unbonding-secs 100 --contracts "$target/contracts"
echo "== the worker stakes; three validators stake and register"
as 1 stake --amount 2500
for i in 2 3 4; do as $i stake --amount 1000 > /dev/null; as $i validator register; done

echo "== the worker's node (attests receipts, settles open escrows)"
BITSAGE_ACCOUNT="${addr[1]}" "$B" serve --data-dir "$tmp/worker" --listen 127.0.0.1:0 --open-mode \
    --account "${addr[1]}" --rpc "$BITSAGE_RPC" --deployment "$BITSAGE_DEPLOYMENT" > "$tmp/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q http:// "$tmp/serve.log" && break; sleep 0.2; done
url=$(grep -o 'http://[0-9.:]*' "$tmp/serve.log" | head -1)
apikey=$("$B" apikey create --name client --role client --data-dir "$tmp/worker")

balance() { as 1 info --address "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["balance"])'; }
echo "== the client pays 100 for an ml-inference job and gets the verified receipt"
as 5 submit "$target/wasm32-wasip2/release/ml_inference.wasm" --input examples/ml-inference.json --pay 100 \
    --url "$url" --key "$apikey" --wait "$tmp/receipt.bin" --json > "$tmp/job.json"
spec=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["spec_hash"])' "$tmp/job.json")
"$B" verify "$tmp/receipt.bin"
for _ in $(seq 100); do as 1 chain job "$spec" | grep -q Submitted && break; sleep 0.2; done
before=("$(balance "${addr[1]}")" "$(balance "${addr[6]}")" "$(balance "${addr[7]}")")

echo "== validators fetch the receipt from the node, verify the proof, vote"
for i in 2 3 4; do as $i validator run --once --node "$url"; done
as 1 chain job "$spec"
after=("$(balance "${addr[1]}")" "$(balance "${addr[6]}")" "$(balance "${addr[7]}")")
python3 - "${before[@]}" "${after[@]}" <<'PY'
import sys
from decimal import Decimal as D
b, a = [D(x) for x in sys.argv[1:4]], [D(x) for x in sys.argv[4:7]]
for name, x, y in zip(["worker", "treasury", "stakers' pool"], b, a):
    print(f"{name:14} +{format((y - x).normalize(), 'f')}")
PY
as 1 info
