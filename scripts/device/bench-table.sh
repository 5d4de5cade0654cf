#!/usr/bin/env bash
# Device run: the issue-4 benchmark table, SIMD vs CUDA at 2^16..2^22 with a phase breakdown and GPU memory peak.
# Carries a kernel cache (kc.tgz from an earlier run) when present, to skip the one-time NVRTC compile.
set -u
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} BITSAGE_KERNEL_CACHE=/tmp/kc
cd "$(dirname "$0")/../../.device-bin"  # the binaries built here and carried to the GPU machine
[ -f kc.tgz ] && tar xzf kc.tgz -C /tmp
nvidia-smi --query-gpu=index,name,memory.total --format=csv
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "barycentric|checks:"
date +%T; ./bitsage-gpu-proofs 16 22 2>&1
date +%T
