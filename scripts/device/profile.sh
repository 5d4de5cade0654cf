#!/usr/bin/env bash
# Issue 17, items 3, 4 and 6: the kernel checks, then 2^12- and 2^20-row proofs of the binaries in .device-bin/new/
# under a CUPTI trace (per-kernel GPU time, per-driver-function host time; full output in $OUT/gpN.txt), 2^12-row
# throughput on 1 and 4 lanes, and the node (.device-bin/bitsage-host) under load. PARTS (default all) is a comma
# list of checks, proofs, compare, throughput, node. Binaries as scripts/device/README.md says. Run on nvidia-h100-x1 or
# nvidia-h200.
set -u
source "$(dirname "$0")/env.sh"
parts=",${1:-checks,proofs,throughput,node},"
want() { [[ "$parts" == *",$1,"* ]]; }
nvidia-smi --query-gpu=name --format=csv,noheader
if want checks; then
  echo "== kernel checks"; timeout 120 new/bitsage-cuda-check --skip-hash > "$OUT/check.txt" 2>&1; echo "rc=$?"
  echo "FAIL lines: $(grep -c FAIL "$OUT/check.txt")"; grep FAIL "$OUT/check.txt" | head -5; grep -i "pool" "$OUT/check.txt" | head -12
  tail -2 "$OUT/check.txt"
fi
if want proofs; then
  for log in ${LOGS:-12 20}; do
    echo "== gpu-proofs $log"; BITSAGE_CUPTI=1 timeout 120 new/bitsage-gpu-proofs $log $log --no-chain > "$OUT/gp$log.txt" 2>&1
    echo "rc=$?"; grep -E "^\| (mac|random|hash|every)" "$OUT/gp$log.txt" | head -12
    grep -A34 "CUPTI trace of one proof of mac_loop" "$OUT/gp$log.txt" | head -70
  done
fi
if want compare; then
  # The same 2^20-row proofs from two builds side by side (COMPARE, default "new exp": folders of .device-bin/).
  for round in $(seq 1 ${ROUNDS:-1}); do
    for d in ${COMPARE:-new exp}; do
      echo "== $d/bitsage-gpu-proofs 20 20, round $round"
      timeout 120 $d/bitsage-gpu-proofs 20 20 --no-chain > "$OUT/cmp-$d-$round.txt" 2>&1
      grep -E "^\| (mac|random)" "$OUT/cmp-$d-$round.txt" | head -4
      grep -oE "(main_trace|steps upload|Generation) [0-9.]+" "$OUT/cmp-$d-$round.txt" | head -6 | tr '\n' ' '; echo
    done
  done
fi
if want throughput; then
  # The previous build's (old/, when carried) beside the new one's, alternating.
  alternate_small_throughput old new
fi
if want node; then
  cd .. || exit 1
  NODES="cuda:4:4" CLIENTS=${CLIENTS:-1,4,8,16,64} JOBS=${JOBS:-384} \
    bash scripts/device/compile-and-load.sh load 2>&1 | grep -vE "^[0-9]+$|^0, NVIDIA"
fi
# The kernel cache back, to carry as .device-bin/kc.tgz next time (skips NVRTC), when none was carried or kernels
# were compiled this run.
kc="$(dirname "$0")/../../.device-bin/kc.tgz"
if [ -d /tmp/kc ] && { [ ! -f "$kc" ] || [ -n "$(find /tmp/kc -type f -newer "$kc" | head -1)" ]; }; then
  tar czf "$OUT/kc.tgz" -C /tmp kc
fi
