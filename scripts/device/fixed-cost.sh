#!/usr/bin/env bash
# Device run for issue 17: where a small GPU job's time goes, as a user runs it, and the node under load
# with every log kept.
#   1. first proofs on a fresh kernel cache (custom, ml-inference), then three warm `bitsage-host run
#      --backend cuda` of custom with span timings (BITSAGE_LOG_SPANS=1): context, kernel loads, pinned
#      staging, trace, commitments, and the whole process's wall time beside `--backend cpu`;
#   2. the node under load (`user-figures.sh node`), its log, failed clients' output and metrics in $OUT.
# Binaries and guests as scripts/device/README.md says (`bitsage-host`, `wasm/`).
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
b=./bitsage-host
ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }
O=${OUT:-/tmp}

echo "== first proofs on a fresh kernel cache"; date +%T
for pair in custom:custom ml_inference:ml-inference; do
  w=${pair%%:*}
  s=$(date +%s%N); $b run wasm/$w.wasm --input wasm/${pair#*:}.json --out /tmp/first-$w.bin --backend cuda > /tmp/first-$w.log 2>&1
  rc=$?; e=$(date +%s%N); echo "$w: first run $(ms $s $e) ms (exit $rc)"; grep proved /tmp/first-$w.log
done
tar czf "$O/kc.tgz" -C /tmp kc

echo "== warm runs of custom, whole process, with span timings"; date +%T
for i in 1 2 3; do
  for backend in cuda cpu; do
    s=$(date +%s%N)
    BITSAGE_LOG_SPANS=1 BITSAGE_LOG=bitsage_cuda=debug,bitsage_prover=info \
      $b run wasm/custom.wasm --input wasm/custom.json --out /tmp/c-$backend.bin --backend $backend --json \
      > /tmp/c-$backend-$i.json 2> "$O/spans-$backend-$i.log"
    e=$(date +%s%N)
    echo "run $i $backend: $(ms $s $e) ms wall; $(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('prove_ms', d.get('prove_ms'), 'stages', d.get('stages_ms'))" /tmp/c-$backend-$i.json)"
  done
done
cmp -s /tmp/c-cuda.bin /tmp/c-cpu.bin && echo "custom: cuda and cpu receipts identical" || echo "custom: receipts DIFFER"
grep -h "close" "$O/spans-cuda-3.log" | sed 's/^.*Z //' | head -40

bash "$here/user-figures.sh" node
date +%T
