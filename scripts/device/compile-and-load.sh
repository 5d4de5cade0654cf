#!/usr/bin/env bash
# Device run for issue 17, items 4, 5 and 7: kernel compilation, the node under load, throughput.
#   compile: `bitsage-cuda-check --compile`: NVRTC per kernel source (no cache), then sets of them at once;
#   first:   `bitsage-host run --backend cuda` of custom, ml_inference, data_transform on a fresh kernel cache
#            (the first proof compiles every kernel it needs in parallel), receipts checked against the CPU's;
#   checks:  `bitsage-cuda-check` with the hash component's constraint kernels (no --skip-hash);
#   load:    `serve --backend cuda` and `--backend cpu`, then `bitsage-host load` with 1..64 clients, every
#            receipt verified by its client;
#   throughput: `bitsage-throughput` at 2^18 and 2^20 rows on one GPU, with 1, 2 (and 4) lanes, every proof verified.
#   spans:   `bitsage-gpu-proofs 20 20` with every span to OUT (where a 2^20-row proof's time goes).
#   procs:   `bitsage-throughput` at 2^12 rows, one lane, in 1, 2 and 4 processes at once on one GPU (each its
#            own CUDA context): if several processes together prove more than one process with several lanes,
#            what small proofs queue on is in the process (the context, the driver's calls), not the GPU;
#   small:   a 2^12-row proof's phases and spans (OUT/spans-12.log), then `bitsage-throughput` at 2^12 rows with
#            1..8 lanes under each BITSAGE_LANE_THREADS in SMALL_THREADS (default "all 4 2"): do small proofs
#            on several lanes of one GPU overlap, and do the lanes' host threads contend?
# NODES (default "cuda:1 cuda:4 cpu:1") lists backend:lanes[:threads per lane] for the load part.
# Binaries as scripts/device/README.md says; guests and inputs under .device-bin/wasm/.
# Usage: compile-and-load.sh [PARTS], PARTS a comma list (default compile,first,checks).
set -u
parts="${1:-compile,first,checks}"
want() { [[ ",$parts," == *",$1,"* ]]; }
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
b=./bitsage-host
ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }

if want compile; then
  echo "== NVRTC per source and at once (no cache)"; date +%T
  timeout 500 ./bitsage-cuda-check --compile
fi

if want first; then
  echo "== first proofs on a fresh kernel cache"; date +%T
  rm -rf /tmp/kc
  for pair in custom:custom ml_inference:ml-inference data_transform:data-transform privacy_transfer:privacy-transfer batch_verify:batch-verify; do
    w=${pair%%:*}
    s=$(date +%s%N)
    BITSAGE_LOG=bitsage_cuda=info $b run wasm/$w.wasm --input wasm/${pair#*:}.json --out /tmp/first-$w.bin \
      --backend cuda > /tmp/first-$w.log 2>&1
    rc=$?; e=$(date +%s%N)
    $b run wasm/$w.wasm --input wasm/${pair#*:}.json --out /tmp/cpu-$w.bin --backend cpu > /dev/null 2>&1
    same=$(cmp -s /tmp/first-$w.bin /tmp/cpu-$w.bin && echo "receipt = CPU's" || echo "RECEIPT DIFFERS")
    echo "$w: first run $(ms $s $e) ms (exit $rc), $same"
    grep -E "compiled the proof|proved" /tmp/first-$w.log | sed 's/\x1b\[[0-9;]*m//g'
  done
  tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc
fi

if want checks; then
  echo "== kernel checks, the hash component's constraints included"; date +%T
  timeout 300 ./bitsage-cuda-check 2>&1 | grep -E "FAIL|checks:|constraints|error" | head -20
fi

if want load; then
  for run in ${NODES:-cuda:1 cuda:4 cpu:1}; do
    IFS=: read -r backend lanes threads <<< "$run"
    export BITSAGE_GPU_LANES=${lanes:-1}
    if [ -n "${threads:-}" ]; then export BITSAGE_LANE_THREADS=$threads; else unset BITSAGE_LANE_THREADS; fi
    echo "== node: serve --backend $backend --workers ${WORKERS:-8}, BITSAGE_GPU_LANES=$BITSAGE_GPU_LANES BITSAGE_LANE_THREADS=${threads:-all}; bitsage-host load, ml_inference"; date +%T
    D=$(mktemp -d)
    OP=$($b apikey create --data-dir $D --name ops --role operator 2>/dev/null)
    KEY=$($b apikey create --data-dir $D --name load 2>/dev/null)
    $b serve --data-dir $D --listen 127.0.0.1:18080 --backend $backend --workers "${WORKERS:-8}" \
      --max-active-per-key 100000 --max-queue 100000 --rate-limit 10000000 --rate-burst 1000000 \
      > "${OUT:-$D}/serve-$backend-$BITSAGE_GPU_LANES-${threads:-all}.log" 2>&1 &
    SERVE=$!
    for i in $(seq 1 100); do curl -sf localhost:18080/health > /dev/null && break; sleep 0.2; done
    printf '{"name":"ml","module":"%s"}' "$(base64 -w0 wasm/ml_inference.wasm)" > $D/mod.json
    curl -s -H "Authorization: Bearer $OP" --data-binary @$D/mod.json localhost:18080/v1/modules > /dev/null
    timeout 280 $b load --url http://127.0.0.1:18080 --key $KEY wasm/ml_inference.wasm --input wasm/ml-inference.json \
      --clients ${CLIENTS:-1,4,8,16,32,64} --jobs ${JOBS:-192}
    echo "load exit $?"
    curl -s localhost:18080/metrics > "${OUT:-$D}/metrics-$backend-$BITSAGE_GPU_LANES-${threads:-all}.txt"
    grep -E "^bitsage_(proofs_total|job_seconds_(sum|count)|proving_seconds_(sum|count))" \
      "${OUT:-$D}/metrics-$backend-$BITSAGE_GPU_LANES-${threads:-all}.txt" | head -8
    kill $SERVE; wait $SERVE 2>/dev/null
    # Where a job's time went, from the node's own records (medians over the proved jobs, ms).
    python3 - "$D/node.db" <<'PY'
import sqlite3, statistics, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT finished_at - created_at, started_at - created_at, execute_us, prove_us, verify_us FROM jobs "
    "WHERE state = 'proved'").fetchall()
if rows:
    med = lambda i, k=1: statistics.median(r[i] / k for r in rows)
    print(f"node, {len(rows)} proved jobs, medians: submit->end {med(0):.1f} ms, queued {med(1):.1f} ms, "
          f"execute {med(2, 1000):.1f} ms, prove {med(3, 1000):.1f} ms, verify {med(4, 1000):.1f} ms")
PY
    echo "node log lines with WARN/ERROR: $(grep -cE "WARN|ERROR" "${OUT:-$D}/serve-$backend-$BITSAGE_GPU_LANES-${threads:-all}.log")"
    grep -E "WARN|ERROR" "${OUT:-$D}/serve-$backend-$BITSAGE_GPU_LANES-${threads:-all}.log" | head -5
  done
fi

if want throughput; then
  echo "== throughput mode, one GPU"; date +%T
  timeout 250 ./bitsage-throughput 18 16 2 4 2>&1 | grep -vE "^\s*$" | tail -12
  timeout 250 ./bitsage-throughput 20 12 1 2 2>&1 | grep -vE "^\s*$" | tail -12
fi
if want spans; then
  echo "== a 2^20-row proof: SIMD vs CUDA, phases, and every span (in OUT)"; date +%T
  BITSAGE_LOG=info,bitsage_cuda=debug timeout 200 ./bitsage-gpu-proofs 20 20 > "${OUT:-/tmp}/gpu-proofs-20.txt" \
    2> "${OUT:-/tmp}/spans-20.log"
  grep -vE "^All spans" "${OUT:-/tmp}/gpu-proofs-20.txt" | tail -25
fi
if want small; then
  echo "== a 2^12-row proof: phases and every span (in OUT)"; date +%T
  BITSAGE_LOG=info,bitsage_cuda=debug timeout 120 ./bitsage-gpu-proofs 12 12 > "${OUT:-/tmp}/gpu-proofs-12.txt" \
    2> "${OUT:-/tmp}/spans-12.log"
  grep -vE "^All spans" "${OUT:-/tmp}/gpu-proofs-12.txt" | tail -14
  for t in ${SMALL_THREADS:-all 4 2}; do
    if [ "$t" = all ]; then unset BITSAGE_LANE_THREADS; else export BITSAGE_LANE_THREADS=$t; fi
    echo "== throughput, 2^12 rows, BITSAGE_LANE_THREADS=$t"; date +%T
    timeout 120 ./bitsage-throughput 12 ${SMALL_JOBS:-128} 0 8 2>&1 | grep -E "^\|" | tail -5
  done
  unset BITSAGE_LANE_THREADS
fi
if want procs; then
  export BITSAGE_LANE_THREADS=${PROCS_THREADS:-4}
  timeout 60 ./bitsage-throughput 12 16 0 1 > /dev/null 2>&1  # compiles the kernels once, into the cache
  for n in 1 2 4; do
    echo "== $n process(es) at once, 2^12 rows, one lane of $BITSAGE_LANE_THREADS threads each"; date +%T
    for i in $(seq 1 "$n"); do timeout 90 ./bitsage-throughput 12 ${SMALL_JOBS:-256} 0 1 > "/tmp/procs-$n-$i.txt" 2>&1 & done
    wait
    grep -h -E "^\| 1 GPU" /tmp/procs-"$n"-*.txt
  done
  unset BITSAGE_LANE_THREADS
fi
date +%T
