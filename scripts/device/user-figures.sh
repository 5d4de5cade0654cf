#!/usr/bin/env bash
# Device run for issue 17 (proof format 4): what users see, on one GPU.
#   1. kernel checks; SIMD vs CUDA at 2^MIN..2^MAX rows (byte-identical, verified, median times);
#   2. `bitsage-host run` of each workload, CUDA and CPU, whole-process wall time (a warm-up, then
#      the median of 5), the two receipts compared byte for byte, and the receipt and proof sizes;
#   3. `bitsage-host prove` of a 2^20-row MAC loop, CUDA and CPU;
#   4. the node (`serve --backend cuda --workers 8`): 64 ml-inference jobs from 8 clients, each client
#      verifying every receipt it gets back;
#   5. the soundness suite with GPU provers, when `all-tests` is carried.
# Binaries as scripts/device/README.md says; guests and inputs under .device-bin/wasm/.
# Usage: user-figures.sh [PARTS] [MIN MAX], PARTS a comma list of first,proofs,cli,node,soundness (default all),
# so that a run fits the device tool's 10 minutes per call.
set -u
parts="${1:-first,proofs,cli,node,soundness}"
want() { [[ ",$parts," == *",$1,"* ]]; }
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
b=./bitsage-host
ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if want first; then
echo "== first proofs on a fresh kernel cache (NVRTC compiles what each proof needs)"; date +%T
rm -rf /tmp/kc
for pair in custom:custom ml_inference:ml-inference data_transform:data-transform; do
  w=${pair%%:*}
  s=$(date +%s%N); $b run wasm/$w.wasm --input wasm/${pair#*:}.json --out /tmp/first-$w.bin --backend cuda > /tmp/first-$w.log 2>&1
  rc=$?; e=$(date +%s%N); echo "$w: first run $(ms $s $e) ms (exit $rc)"; grep proved /tmp/first-$w.log
done

fi

if want proofs; then
echo "== kernel checks"; date +%T
./bitsage-cuda-check --skip-hash 2>&1 | grep -E "FAIL|checks:|passed"
echo "== gpu-proofs ${2:-10} ${3:-20}"; date +%T
timeout 400 ./bitsage-gpu-proofs "${2:-10}" "${3:-20}" 2>&1 | tee "${OUT:-/tmp}/gpu-proofs.txt" | grep -v "^All spans"
fi
tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc

if want cli; then
echo "== bitsage-host run, whole process, ms (warm-up, then the median of 5)"; date +%T
echo "| workload | cuda ms | cpu ms | receipts identical | receipt bytes | proof bytes |"
for pair in custom:custom ml_inference:ml-inference data_transform:data-transform \
            privacy_transfer:privacy-transfer batch_verify:batch-verify; do
  w=${pair%%:*}; input=wasm/${pair#*:}.json
  declare -A t=()
  for backend in cuda cpu; do
    $b run wasm/$w.wasm --input "$input" --out /tmp/$w-$backend.bin --backend $backend > /tmp/$w-$backend.log 2>&1 \
      || { echo "$w $backend failed:"; tail -5 /tmp/$w-$backend.log; }
    runs=""
    for i in 1 2 3 4 5; do
      s=$(date +%s%N); $b run wasm/$w.wasm --input "$input" --out /tmp/$w-$backend.bin --backend $backend > /dev/null 2>&1
      e=$(date +%s%N); runs="$runs $(ms $s $e)"
    done
    t[$backend]=$(echo $runs | median)
  done
  same=$(cmp -s /tmp/$w-cuda.bin /tmp/$w-cpu.bin && echo yes || echo NO)
  $b verify /tmp/$w-cuda.bin > /dev/null 2>&1 || same="$same (cuda receipt REJECTED)"
  proof=$($b inspect /tmp/$w-cuda.bin --json | python3 -c "import json,sys; print(json.load(sys.stdin)['proof_bytes'])")
  echo "| $w | ${t[cuda]} | ${t[cpu]} | $same | $(stat -c %s /tmp/$w-cuda.bin) | $proof |"
done
grep -h "proved" /tmp/*-cuda.log | head -5

echo "== prove 2^20-row MAC loop"; date +%T
for backend in cuda cpu; do
  $b prove ../examples/mac_loop.obk --input 349524,7 --out /tmp/mac-$backend.bin --backend $backend 2>&1 | grep -E "proved|rows" | head -2
done
cmp /tmp/mac-cuda.bin /tmp/mac-cpu.bin && echo "2^20 receipts identical"
$b inspect /tmp/mac-cuda.bin | grep -E "proof size|security|trace rows"

fi

if want node; then
echo "== node: serve --backend cuda --workers 8, 64 ml-inference jobs from 8 clients"; date +%T
D=$(mktemp -d)
OP=$($b apikey create --data-dir $D --name ops --role operator 2>/dev/null)
KEY=$($b apikey create --data-dir $D --name alice 2>/dev/null)
BITSAGE_LOG=info $b serve --data-dir $D --listen 127.0.0.1:18080 --backend cuda --workers 8 --max-active-per-key 1000 \
  > "${OUT:-$D}/serve.log" 2>&1 &
SERVE=$!
for i in $(seq 1 100); do curl -sf localhost:18080/health > /dev/null && break; sleep 0.2; done
printf '{"name":"ml","module":"%s"}' "$(base64 -w0 wasm/ml_inference.wasm)" > $D/mod.json
curl -s -H "Authorization: Bearer $OP" --data-binary @$D/mod.json localhost:18080/v1/modules > /dev/null
DIG=$(sha256sum wasm/ml_inference.wasm | cut -d' ' -f1)
# One warm-up job (kernels loaded, sandbox compiled).
$b submit --url http://127.0.0.1:18080 --key $KEY --module-digest $DIG --input wasm/ml-inference.json --wait $D/warm.bin > /dev/null 2>&1
client() { # 8 jobs in turn; `submit --wait` verifies each receipt it downloads (exit 0 only if valid)
  for j in 1 2 3 4 5 6 7 8; do
    $b submit --url http://127.0.0.1:18080 --key $KEY --module-digest $DIG --input wasm/ml-inference.json \
      --wait $D/r$1-$j.bin > $D/sub$1-$j.log 2>&1 && echo ok >> $D/verified$1 || cp $D/sub$1-$j.log "${OUT:-$D}/failed-$1-$j.log"
  done
}
s=$(date +%s%N)
pids=()
for c in 1 2 3 4 5 6 7 8; do client $c & pids+=($!); done
wait "${pids[@]}"
e=$(date +%s%N)
n=$(cat $D/verified* 2>/dev/null | wc -l)
echo "64 jobs in $(ms $s $e) ms wall, $n receipts verified by their clients"
curl -s localhost:18080/metrics > "${OUT:-$D}/metrics.txt"
grep -E "^bitsage_(proofs_total|prove_seconds|job_seconds)" "${OUT:-$D}/metrics.txt" | head -12
kill $SERVE
for f in $(ls "${OUT:-$D}"/failed-* 2>/dev/null | head -3); do echo "--- $f"; tail -4 "$f"; done
echo "node log lines with warn/error: $(grep -ciE "warn|error" "${OUT:-$D}/serve.log")"
grep -iE "warn|error" "${OUT:-$D}/serve.log" | head -8
fi

if want soundness && [ -x all-tests ]; then
  echo "== soundness with GPU provers"; date +%T
  (cd ../tests && BITSAGE_TEST_BACKEND=cuda timeout 200 ../.device-bin/all-tests soundness --test-threads 4 2>&1 | tail -15)
fi
date +%T
