#!/usr/bin/env bash
# Device run: kernel checks (now with the query-plan decommitment reads), the issue-4 table (SIMD vs CUDA,
# 2^16..2^22, phase breakdown), and one 2^20 proof with every Stwo span logged to $OUT/spans-2-20.log.
set -u
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-} BITSAGE_KERNEL_CACHE=/tmp/kc
cd "$(dirname "$0")/../../.device-bin"
[ -f kc.tgz ] && tar xzf kc.tgz -C /tmp
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "query plan|quotient combination|staging|FAIL|checks:"
date +%T; ./bitsage-gpu-proofs 16 22 2>&1
date +%T; BITSAGE_LOG=info ./bitsage-gpu-proofs 20 20 > /dev/null 2> "${OUT:-/tmp}/spans-2-20.log"
grep -c close "${OUT:-/tmp}/spans-2-20.log"
date +%T
