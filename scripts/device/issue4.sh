#!/usr/bin/env bash
# Device run for issue 4: kernel checks, the SIMD-vs-CUDA table (rows MIN..MAX, phase breakdown, host time in
# the column API, every proof byte-identical and verified, the GPU-built CPU rows compared cell by cell with
# the host's), then the soundness suite with its provers on the GPU when the test binary is carried
# (`cargo test --release -p bitsage-tests --test all --no-run`, copied to .device-bin/all-tests).
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
nproc
date +%T; ./bitsage-cuda-check --skip-hash 2>&1 | grep -E "FAIL|checks:|passed"
date +%T; timeout "${3:-300}" ./bitsage-gpu-proofs "${1:-16}" "${2:-22}" 2>&1 | tee "${OUT:-/tmp}/gpu-proofs.txt" | grep -v "^All spans"
date +%T; tar czf "${OUT:-/tmp}/kc.tgz" -C /tmp kc
if [ -x all-tests ]; then
  date +%T; (cd ../tests && BITSAGE_TEST_BACKEND=cuda timeout 200 ../.device-bin/all-tests soundness --test-threads 4 2>&1 | tail -15)
fi
date +%T
