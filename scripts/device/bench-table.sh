#!/usr/bin/env bash
# Device run: the issue-4 benchmark table, SIMD vs CUDA at 2^16..2^22 with a phase breakdown and GPU memory peak.
# Carries a kernel cache (kc.tgz from an earlier run) when present, to skip the one-time NVRTC compile.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "barycentric|checks:"
date +%T; ./bitsage-gpu-proofs 16 22 2>&1
date +%T
