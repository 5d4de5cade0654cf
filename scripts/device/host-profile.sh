#!/usr/bin/env bash
# Issue 17, items 3 and 6: where a small GPU proof's host time goes, and what a fresh `bitsage-host run` pays.
# PARTS (default all), a comma list of:
#   checks:  exp/bitsage-cuda-check --skip-hash (an experimental kernel's checks; FAIL lines counted);
#   compare: base/ against exp/ bitsage-gpu-proofs at 2^20 and 2^12 rows, ROUNDS rounds, alternating;
#   profile: new/bitsage-gpu-proofs 12 12 with BITSAGE_HOST_PROFILE=${PROFILE_RUNS:-600} (a build with the
#            `host-profile` feature, symbols kept: `strip --strip-debug`): the host's stacks, folded, in $OUT;
#   prefetch: $A/ (default new/) against $B/ (default pre/, a build to compare, e.g. an experiment) at 2^12 rows
#            under CUPTI (driver calls, synchronisations) and 2^20, then 2^12-row throughput on 1 and 4 lanes,
#            alternating;
#   node:    the node (8 lanes of 2 threads) under `bitsage-host load` with ./bitsage-host, then with
#            pre/bitsage-host (NODE_CLIENTS, NODE_JOBS);
#   run:     `bitsage-host run` of the five workloads, whole process, CUDA and CPU, three times each: first with
#            the GPU idle, then with another process holding it open (as a running node or the driver's
#            persistence mode does); spans of one CUDA run in each setting in $OUT;
#   fresh:   where a fresh process's CUDA `run` goes, with the GPU held by another process: $A/bitsage-host run of
#            custom and data_transform, twice each and once more with CUDA_MODULE_LOADING=EAGER, each run's
#            longest spans printed (four files in $OUT: the device tool returns a limited number);
#   runs:    `bitsage-host run` of the five workloads, whole process, with the GPU held by another process: $A/ and
#            $B/ builds alternating, three times each on CUDA, then once on the CPU; receipts compared byte for byte.
# Binaries as scripts/device/README.md says. Run on nvidia-h100-x1 or nvidia-h200.
set -u
source "$(dirname "$0")/env.sh"
parts=",${1:-profile,prefetch,run},"
want() { [[ "$parts" == *",$1,"* ]]; }
O=${OUT:-/tmp}
nvidia-smi --query-gpu=name,persistence_mode,driver_version --format=csv,noheader
if want checks; then
  echo "== exp kernel checks"; timeout 150 exp/bitsage-cuda-check --skip-hash > "$O/check-exp.txt" 2>&1; echo "rc=$?"
  echo "FAIL lines: $(grep -c FAIL "$O/check-exp.txt")"; grep FAIL "$O/check-exp.txt" | head -5; tail -2 "$O/check-exp.txt"
fi
if want compare; then
  for log in 20 12; do
    for round in $(seq 1 ${ROUNDS:-1}); do
      for d in base exp; do
        echo "== $d/bitsage-gpu-proofs $log $log, round $round"
        timeout 120 $d/bitsage-gpu-proofs $log $log --no-chain > "$O/cmp-$d-$log-$round.txt" 2>&1
        grep -E "^\| (mac|random)" "$O/cmp-$d-$log-$round.txt" | head -2
      done
    done
  done
fi
if want profile; then
  echo "== host profile, 2^12 rows"
  BITSAGE_HOST_PROFILE=${PROFILE_RUNS:-600} BITSAGE_HOST_PROFILE_DIR="$O" timeout 200 new/bitsage-gpu-proofs 12 12 --no-chain \
    > "$O/profile-12.txt" 2>&1
  echo "rc=$?"; grep -E "^\| (mac|random)" "$O/profile-12.txt"; grep -E "^Host profile" "$O/profile-12.txt"
fi
if want prefetch; then
  for round in $(seq 1 ${ROUNDS12:-${ROUNDS:-1}}); do
    for d in "${A:-new}" "${B:-pre}"; do
      echo "== $d/bitsage-gpu-proofs 12 12 (CUPTI), round $round"
      BITSAGE_CUPTI=1 timeout 120 $d/bitsage-gpu-proofs 12 12 --no-chain > "$O/pf-$d-12-$round.txt" 2>&1; echo "rc=$?"
      grep -E "^\| (mac|random)" "$O/pf-$d-12-$round.txt" | head -2
      grep -A40 "CUPTI trace of one proof of mac_loop" "$O/pf-$d-12-$round.txt" | grep -E "traced|driver calls|cuStreamSynchronize|cuMemcpyDtoH|cuLaunchKernel|busy" | head -6
    done
  done
  for round in $(seq 1 ${ROUNDS:-1}); do
    for d in "${A:-new}" "${B:-pre}"; do
      echo "== $d/bitsage-gpu-proofs 20 20, round $round"
      timeout 120 $d/bitsage-gpu-proofs 20 20 --no-chain > "$O/pf-$d-20-$round.txt" 2>&1; echo "rc=$?"
      grep -E "^\| (mac|random)" "$O/pf-$d-20-$round.txt" | head -2
    done
  done
  alternate_small_throughput "${A:-new}" "${B:-pre}"
fi
if want node; then
  cp bitsage-host bitsage-host.main
  for d in main pre; do
    [ -f $d/bitsage-host ] || [ $d = main ] || continue
    if [ $d = pre ]; then cp pre/bitsage-host bitsage-host; else cp bitsage-host.main bitsage-host; fi
    echo "== the node, $d build"
    (cd .. && NODES="cuda:8:2" CLIENTS=${NODE_CLIENTS:-1,8,16} JOBS=${NODE_JOBS:-256} bash scripts/device/compile-and-load.sh load 2>&1 \
      | grep -E "^\| *[0-9]|node, |WARN|ERROR|load exit")
  done
  cp bitsage-host.main bitsage-host
fi
if want run; then
  ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }
  runs() {  # $1: label
    for w in custom:custom ml_inference:ml-inference data_transform:data-transform privacy_transfer:privacy-transfer batch_verify:batch-verify; do
      name=${w%%:*}; line="$1 $name:"
      for backend in cuda cpu; do
        for i in 1 2 3; do
          s=$(date +%s%N)
          BITSAGE_LOG_SPANS=1 BITSAGE_LOG=bitsage_cuda=debug,bitsage_prover=info \
            ./bitsage-host run wasm/$name.wasm --input wasm/${w#*:}.json --out /tmp/r-$backend.bin --backend $backend --json \
            > /tmp/r.json 2> "$O/spans-$1-$name-$backend-$i.log"
          rc=$?; e=$(date +%s%N)
          line="$line $backend $(ms $s $e) ms (prove $(python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['prove_ms'],1))" /tmp/r.json 2>/dev/null), rc $rc);"
        done
      done
      cmp -s /tmp/r-cuda.bin /tmp/r-cpu.bin && line="$line receipts identical" || line="$line receipts DIFFER"
      echo "$line"
    done
  }
  echo "== bitsage-host run, the GPU idle"; runs idle
  python3 -c 'import torch, time; torch.zeros(1, device="cuda"); print("holding the GPU", flush=True); time.sleep(150)' &
  HOLD=$!
  for i in $(seq 1 100); do nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -q . && break; sleep 0.2; done
  echo "== bitsage-host run, the GPU held open by another process"; runs held
  kill $HOLD 2>/dev/null
  grep -h "close" "$O/spans-idle-custom-cuda-3.log" | grep -E "driver init|context|open|nvrtc" | sed 's/^.*Z //' | head -8
  grep -h "close" "$O/spans-held-custom-cuda-3.log" | grep -E "driver init|context|open|nvrtc" | sed 's/^.*Z //' | head -8
fi
if want fresh; then
  python3 -c 'import torch, time; torch.zeros(1, device="cuda"); print("holding the GPU", flush=True); time.sleep(100)' &
  HOLD=$!
  for i in $(seq 1 100); do nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -q . && break; sleep 0.2; done
  for w in custom:custom data_transform:data-transform; do
    name=${w%%:*}
    for i in 1 2 eager; do
      s=$(date +%s%N)
      if [ $i = eager ]; then export CUDA_MODULE_LOADING=EAGER; fi
      BITSAGE_LOG_SPANS=1 BITSAGE_LOG=bitsage_cuda=debug,bitsage_prover=debug,bitsage_host=debug,info \
        ${A:-new}/bitsage-host run wasm/$name.wasm --input wasm/${w#*:}.json --out /tmp/r.bin --backend cuda --json \
        > /tmp/r.json 2> /tmp/spans.log
      rc=$?; e=$(date +%s%N); unset CUDA_MODULE_LOADING
      echo "== $name run $i: $(( (e - s) / 1000000 )) ms wall, rc $rc, $(grep -o '"prove_ms":[0-9.]*' /tmp/r.json)"
      # Each closed span with its busy and idle time, longest first (times in ms).
      python3 - /tmp/spans.log "${TOP:-22}" <<'PY'
import re, sys
rows = []
for line in open(sys.argv[1], errors="replace"):
    line = re.sub(r"\x1b\[[0-9;]*m", "", line)
    if " close" not in line:
        continue
    busy = re.search(r"time\.busy=([0-9.]+)(ns|µs|us|ms|s)\b", line)
    idle = re.search(r"time\.idle=([0-9.]+)(ns|µs|us|ms|s)\b", line)
    scale = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
    ms = lambda m: float(m.group(1)) * scale[m.group(2)] if m else 0.0
    name = re.sub(r"^\S+\s+\S+\s+", "", line.strip())
    name = re.sub(r"\s*time\.(busy|idle)=\S+", "", name)[:150]
    rows.append((ms(busy) + ms(idle), ms(busy), name))
top = int(sys.argv[2]) if len(sys.argv) > 2 else 22
for total, busy, name in sorted(rows, reverse=True)[:top]:
    print(f"{total:9.1f} {busy:9.1f}  {name}")
PY
      [ $i = 2 ] && cp /tmp/spans.log "$O/fresh-$name.log"
    done
  done
  kill $HOLD 2>/dev/null
fi
if want runs; then
  python3 -c 'import torch, time; torch.zeros(1, device="cuda"); print("holding the GPU", flush=True); time.sleep(200)' &
  HOLD=$!
  for i in $(seq 1 100); do nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -q . && break; sleep 0.2; done
  for w in custom:custom ml_inference:ml-inference data_transform:data-transform privacy_transfer:privacy-transfer batch_verify:batch-verify; do
    name=${w%%:*}
    for d in "${A:-new}" "${B:-pre}"; do eval "line_$d=''"; done
    for i in 1 2 3; do
      for d in "${A:-new}" "${B:-pre}"; do
        s=$(date +%s%N)
        $d/bitsage-host run wasm/$name.wasm --input wasm/${w#*:}.json --out /tmp/r-$d.bin --backend cuda --json > /tmp/r.json 2>/dev/null
        rc=$?; e=$(date +%s%N)
        eval "line_$d=\"\$line_$d $(( (e - s) / 1000000 ))/$(grep -o '"prove_ms":[0-9]*' /tmp/r.json | cut -d: -f2)$( [ $rc = 0 ] || echo " rc $rc")\""
      done
    done
    s=$(date +%s%N); ${A:-new}/bitsage-host run wasm/$name.wasm --input wasm/${w#*:}.json --out /tmp/r-cpu.bin --backend cpu --json > /tmp/r.json 2>/dev/null; e=$(date +%s%N)
    same=$(cmp -s /tmp/r-${A:-new}.bin /tmp/r-cpu.bin && cmp -s /tmp/r-${B:-pre}.bin /tmp/r-cpu.bin && echo identical || echo DIFFER)
    eval "echo \"$name: ${A:-new} wall/prove ms \$line_${A:-new}; ${B:-pre} \$line_${B:-pre}; cpu $(( (e - s) / 1000000 ))/$(grep -o '"prove_ms":[0-9]*' /tmp/r.json | cut -d: -f2); receipts $same\""
  done
  kill $HOLD 2>/dev/null
fi
