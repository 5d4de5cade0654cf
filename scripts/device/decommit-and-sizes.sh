#!/usr/bin/env bash
# Device run: host mirror for decommitment reads. Kernel checks, byte identity 2^12..2^22, spans at 2^16.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | tail -3
date +%T; ./bitsage-gpu-proofs 12 20 2>&1 | grep -v "CUDA stages"
date +%T; BITSAGE_LOG=info ./bitsage-gpu-proofs 16 16 > ${OUT:-/tmp}/spans16.txt 2>&1; grep -E "time.busy" ${OUT:-/tmp}/spans16.txt | sed -E 's/.*\x1b\[3m//' | sort | uniq -c | sort -rn | head -5
date +%T; ./bitsage-gpu-proofs 21 22 2>&1 | grep -v "CUDA stages"
date +%T; tar czf ${OUT:-/tmp}/kc.tgz -C /tmp kc; ls -la $OUT
