#!/usr/bin/env bash
# Device run: kernel checks, the SIMD-vs-CUDA table with the stream-ordered memory pool keeping freed
# memory (the default now), then 2^20..2^21 again with the pool releasing at every synchronisation
# (BITSAGE_CUDA_POOL_RELEASE_BYTES=0, cudarc's default) for a side-by-side comparison. The gpu-proofs
# output ends with every span's time and the host time in the column API, to locate `other`.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "FAIL|checks:|passed"
date +%T; timeout 300 ./bitsage-gpu-proofs "${1:-16}" "${2:-22}" 2>&1
date +%T; tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc
date +%T; BITSAGE_CUDA_POOL_RELEASE_BYTES=0 timeout 120 ./bitsage-gpu-proofs 20 21 2>&1
date +%T
