#!/usr/bin/env bash
# Device run for issue 19's last step: the CUDA backend proving over the Poseidon252 channel (the proofs
# the on-chain verifier checks).
#   1. kernel checks (`--skip-hash`), with the lifted Poseidon252 tree (six column layouts, every sponge
#      remainder) against Stwo's CPU and SIMD backends and Poseidon252 grinding against SIMD's nonce;
#   2. `bitsage-host run --channel poseidon252` of each workload on CUDA and the CPU: whole-process wall time
#      (a warm-up, then the median of 3), the receipts compared byte for byte, the CUDA one verified;
#   3. with `proofs MIN MAX`: `bitsage-gpu-proofs MIN MAX`, whose last table is SIMD vs CUDA Poseidon252 proofs
#      (median of five, byte comparison, the chain verifier's Rust twin on the GPU proof).
# Binaries as scripts/device/README.md says; all five guests and inputs under .device-bin/wasm/.
# Usage: poseidon252.sh [cli|proofs] [MIN MAX]
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
b=./bitsage-host
ms() { python3 -c "import sys; print(round((int(sys.argv[2]) - int(sys.argv[1])) / 1e6, 1))" "$1" "$2"; }
median() { tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if [ "${1:-cli}" = cli ]; then
echo "== kernel checks"; date +%T
./bitsage-cuda-check --skip-hash 2>&1 | grep -E "FAIL|poseidon252|checks:"
echo "== bitsage-host run --channel poseidon252, whole process, ms (warm-up, then the median of 3)"; date +%T
echo "| workload | cuda ms | cpu ms | receipts identical | cuda receipt verifies | receipt bytes |"
for pair in custom:custom ml_inference:ml-inference data_transform:data-transform \
            privacy_transfer:privacy-transfer batch_verify:batch-verify; do
  w=${pair%%:*}; input=wasm/${pair#*:}.json
  declare -A t=()
  for backend in cuda cpu; do
    $b run wasm/$w.wasm --input "$input" --channel poseidon252 --out /tmp/p-$w-$backend.bin --backend $backend \
      > /tmp/p-$w-$backend.log 2>&1 || { echo "$w $backend failed:"; tail -5 /tmp/p-$w-$backend.log; }
    runs=""
    for i in 1 2 3; do
      s=$(date +%s%N)
      $b run wasm/$w.wasm --input "$input" --channel poseidon252 --out /tmp/p-$w-$backend.bin --backend $backend \
        > /dev/null 2>&1
      e=$(date +%s%N); runs="$runs $(ms $s $e)"
    done
    t[$backend]=$(echo $runs | median)
  done
  same=$(cmp -s /tmp/p-$w-cuda.bin /tmp/p-$w-cpu.bin && echo yes || echo NO)
  ok=$($b verify /tmp/p-$w-cuda.bin > /dev/null 2>&1 && echo yes || echo NO)
  echo "| $w | ${t[cuda]} | ${t[cpu]} | $same | $ok | $(stat -c %s /tmp/p-$w-cuda.bin) |"
done
grep -h "proved" /tmp/p-*-cuda.log | head -5
fi

if [ "${1:-}" = proofs ]; then
echo "== gpu-proofs ${2:-10} ${3:-16}"; date +%T
timeout 500 ./bitsage-gpu-proofs "${2:-10}" "${3:-16}" 2>&1 | tee "${OUT:-/tmp}/gpu-proofs.txt" | grep -v "^All spans"
fi
tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc
date +%T
