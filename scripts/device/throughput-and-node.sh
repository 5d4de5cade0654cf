#!/usr/bin/env bash
# Device run for issues 4/5/7: byte-identity regression, throughput mode on 1..N GPUs, a GPU subset, the node on GPUs.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv
echo "== gpu-proofs 16 17 (GPU 0)"; date +%T
./bitsage-gpu-proofs 16 17 2>&1 | tail -6
echo "== throughput 18 8 4"; date +%T
./bitsage-throughput 18 8 4 2>&1
echo "== throughput 20 4 2"; date +%T
./bitsage-throughput 20 4 2 2>&1
echo "== CUDA_VISIBLE_DEVICES=1 throughput 16 4 0"; date +%T
CUDA_VISIBLE_DEVICES=1 ./bitsage-throughput 16 4 0 2>&1
echo "== node on the GPUs"; date +%T
D=$(mktemp -d)
OP=$(./bitsage-host apikey create --data-dir $D --name ops --role operator 2>/dev/null)
KEY=$(./bitsage-host apikey create --data-dir $D --name alice 2>/dev/null)
./bitsage-host serve --data-dir $D --listen 127.0.0.1:18080 --backend cuda --workers 4 > $D/serve.log 2>&1 &
SERVE=$!
for i in $(seq 1 100); do curl -sf localhost:18080/health > /dev/null && break; sleep 0.2; done
cat $D/serve.log
printf '{"name":"ml","module":"%s"}' "$(base64 -w0 wasm/ml_inference.wasm)" > $D/mod.json
curl -s -H "Authorization: Bearer $OP" --data-binary @$D/mod.json localhost:18080/v1/modules | head -c 200; echo
DIG=$(sha256sum wasm/ml_inference.wasm | cut -d' ' -f1)
t0=$(date +%s.%N)
pids=()
for i in 1 2 3 4 5 6 7 8; do
  ./bitsage-host submit --url http://127.0.0.1:18080 --key $KEY --module-digest $DIG --input wasm/ml-inference.json --wait $D/r$i.bin > $D/sub$i.log 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
t1=$(date +%s.%N); echo "8 ml-inference jobs through the node: $(python3 -c "print(round($t1 - $t0, 2))") s"
cat $D/sub*.log
./bitsage-host verify $D/r1.bin
curl -s -H "Authorization: Bearer $KEY" localhost:18080/v1/gpu; echo
curl -s localhost:18080/metrics | grep -E "^bitsage_(device|proofs_total)"
BITSAGE_API_KEY=$OP ./bitsage-host status --url http://127.0.0.1:18080
kill $SERVE; date +%T
