#!/usr/bin/env bash
# Issue 17, items 3, 4 and 6: the checks for the kernels changed since the last GPU run (Blake2s leaves), then
# small and large proofs of the new binaries, each with a CUPTI trace (driver calls, kernels, copies), and
# 2^12-row throughput on 1, 2 and 4 lanes of the previous binaries (in .device-bin/) against the new ones (in
# .device-bin/new/), side by side, then the new binaries under a trace and in 1 and 4 processes at once.
# Binaries as scripts/device/README.md says; output files in $OUT. Run on nvidia-h100-x1 or nvidia-h200.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== kernel checks"; timeout 100 new/bitsage-cuda-check --skip-hash > "$OUT/check.txt" 2>&1; echo "rc=$?"
grep -c FAIL "$OUT/check.txt"; tail -3 "$OUT/check.txt"
echo "== gpu-proofs 12"; BITSAGE_CUPTI=1 timeout 60 new/bitsage-gpu-proofs 12 12 --no-chain > "$OUT/gp12.txt" 2>&1
grep -E "^\| (mac|random|hash|every)" "$OUT/gp12.txt" | head -8
echo "== gpu-proofs 20"; BITSAGE_CUPTI=1 timeout 90 new/bitsage-gpu-proofs 20 20 --no-chain > "$OUT/gp20.txt" 2>&1
grep -E "^\| (mac|random|hash|every)" "$OUT/gp20.txt" | head -8
export BITSAGE_LANE_THREADS=4
for v in . new; do
  echo "== throughput 2^12, binaries in $v"; timeout 45 "$v"/bitsage-throughput 12 128 0 4 2>&1 | grep -E "^\| [0-9]" | tail -3
done
echo "== the new binaries under CUPTI"; BITSAGE_CUPTI=1 timeout 60 new/bitsage-throughput 12 64 0 4 > "$OUT/cupti-tp12.txt" 2>&1
grep -E "^\| [0-9]|^CUPTI|^driver calls|^GPU:" "$OUT/cupti-tp12.txt"
for n in 1 4; do
  echo "== $n process(es) at once, one lane each"
  for i in $(seq 1 "$n"); do timeout 40 new/bitsage-throughput 12 128 0 1 > "/tmp/p-$n-$i.txt" 2>&1 & done
  wait; grep -h -E "^\| 1 GPU" /tmp/p-"$n"-*.txt
done
