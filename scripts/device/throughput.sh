#!/usr/bin/env bash
# Device run: throughput mode on pools of 1..N GPUs and the CPU (run on nvidia-h200-x2, -x4 or -x8). Carries a kernel cache if present.
set -u
source "$(dirname "$0")/env.sh"
nvidia-smi --query-gpu=index,name,memory.total --format=csv
nproc; free -g | head -2
date +%T; ./bitsage-throughput 18 8 4 2>&1
date +%T; ./bitsage-throughput 20 4 2 2>&1
date +%T
