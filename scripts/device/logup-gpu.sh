#!/usr/bin/env bash
# Device run: kernel checks, then the issue-4 table (SIMD vs CUDA, 2^16..2^22, phase breakdown, proofs
# byte-identical and verified) with the LogUp interaction trace generated on the GPU. The kernel cache
# (NVRTC output) comes back as $OUT/kc.tgz; put it in .device-bin to skip the compile next time.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "FAIL|checks:|passed"
date +%T; timeout "${3:-470}" ./bitsage-gpu-proofs "${1:-16}" "${2:-22}" 2>&1
date +%T; tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc
date +%T; BITSAGE_LOG=info timeout 120 ./bitsage-gpu-proofs 20 20 > /dev/null 2> "${OUT:-/tmp}/spans-2-20.log"; grep -c close "${OUT:-/tmp}/spans-2-20.log"
# The soundness suite with its provers on the GPU (test binary built with
# `cargo test --release -p bitsage-tests --test all --no-run`, carried as .device-bin/all-tests).
if [ -x all-tests ]; then
  date +%T; (cd ../tests && BITSAGE_TEST_BACKEND=cuda timeout 200 ../.device-bin/all-tests soundness --test-threads 4 2>&1 | tail -15)
fi
date +%T
