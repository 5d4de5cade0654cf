#!/usr/bin/env bash
# Issue 17, items 3, 4 and 6, the per-lane buffer cache (host/cuda/src/pool.rs), QM31 columns passed to the FRI
# and quotient kernels as four coordinate addresses (no concatenating copies), the LogUp inputs copied in one
# launch, and a Merkle tree's top layers built in one: the kernel checks, small and
# large proofs of the new binaries under a CUPTI trace, 2^12-row throughput of the previous binaries (in
# .device-bin/) against the new ones (in .device-bin/new/) side by side, the new ones with the cache off
# (BITSAGE_CUDA_CACHE_BYTES=0), then the node (the new `bitsage-host` in .device-bin/) under load with the cache
# on and off. Binaries as scripts/device/README.md says; output files in $OUT. Run on nvidia-h100-x1 or nvidia-h200.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=name --format=csv,noheader
echo "== kernel checks"; timeout 100 new/bitsage-cuda-check --skip-hash > "$OUT/check.txt" 2>&1; echo "rc=$?"
grep -c FAIL "$OUT/check.txt"; grep FAIL "$OUT/check.txt" | head -5; tail -3 "$OUT/check.txt"
for log in 12 20; do
  echo "== gpu-proofs $log"; BITSAGE_CUPTI=1 timeout 90 new/bitsage-gpu-proofs $log $log --no-chain > "$OUT/gp$log.txt" 2>&1
  grep -E "^\| (mac|random|hash|every)" "$OUT/gp$log.txt" | head -8
done
export BITSAGE_LANE_THREADS=4
for lanes in 1 4; do
  for v in . new new-cache-off; do
    d=${v%-cache-off}; c=$([ "$v" = new-cache-off ] && echo 0 || echo "")
    echo "== throughput 2^12, $lanes lane(s), binaries in $v"
    BITSAGE_CUDA_CACHE_BYTES=${c:-} timeout 45 "$d"/bitsage-throughput 12 128 0 $lanes 2>&1 | grep -E "^\| [0-9]" | tail -1
  done
done
echo "== the new binaries under CUPTI, 4 lanes"; BITSAGE_CUPTI=1 timeout 60 new/bitsage-throughput 12 64 0 4 > "$OUT/cupti-tp12.txt" 2>&1
grep -E "^\| [0-9]|^CUPTI|^driver calls|^GPU:" "$OUT/cupti-tp12.txt"
unset BITSAGE_LANE_THREADS
cd .. || exit 1
for cache in "" 0; do
  clients=$([ -z "$cache" ] && echo "${CLIENTS:-1,4,8,16,64}" || echo 16,64)
  echo "== node, cache ${cache:-on}"
  BITSAGE_CUDA_CACHE_BYTES=$cache NODES="cuda:4:4" CLIENTS=$clients JOBS=${JOBS:-384} \
    bash scripts/device/compile-and-load.sh load 2>&1 | grep -vE "^[0-9]+$|^0, NVIDIA"
done
