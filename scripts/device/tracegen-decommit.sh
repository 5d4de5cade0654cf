#!/usr/bin/env bash
# Device run: kernel checks (now with the query-plan decommitment reads), the issue-4 table (SIMD vs CUDA,
# 2^16..2^22, phase breakdown), and one 2^20 proof with every Stwo span logged to $OUT/spans-2-20.log.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "query plan|quotient combination|staging|FAIL|checks:"
date +%T; ./bitsage-gpu-proofs 16 22 2>&1
date +%T; BITSAGE_LOG=info ./bitsage-gpu-proofs 20 20 > /dev/null 2> "${OUT:-/tmp}/spans-2-20.log"
grep -c close "${OUT:-/tmp}/spans-2-20.log"
date +%T
