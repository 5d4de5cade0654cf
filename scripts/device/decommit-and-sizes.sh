#!/usr/bin/env bash
# Device run: host mirror for decommitment reads. Kernel checks, byte identity 2^12..2^22, spans at 2^16.
set -u
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} BITSAGE_KERNEL_CACHE=/tmp/kc
cd "$(dirname "$0")/../../.device-bin"  # the binaries built here and carried to the GPU machine
nvidia-smi --query-gpu=index,name,memory.total --format=csv
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | tail -3
date +%T; ./bitsage-gpu-proofs 12 20 2>&1 | grep -v "CUDA stages"
date +%T; BITSAGE_LOG=info ./bitsage-gpu-proofs 16 16 > ${OUT:-/tmp}/spans16.txt 2>&1; grep -E "time.busy" ${OUT:-/tmp}/spans16.txt | sed -E 's/.*\x1b\[3m//' | sort | uniq -c | sort -rn | head -5
date +%T; ./bitsage-gpu-proofs 21 22 2>&1 | grep -v "CUDA stages"
date +%T; tar czf ${OUT:-/tmp}/kc.tgz -C /tmp kc; ls -la $OUT
