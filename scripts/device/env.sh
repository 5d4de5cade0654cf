# Sourced by the device scripts: the CUDA libraries (CUPTI's too, for BITSAGE_CUPTI=1), the kernel cache (a kc.tgz carried from an earlier run
# skips the one-time NVRTC compile), and the carried binaries' folder as the working directory.
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH:-} BITSAGE_KERNEL_CACHE=/tmp/kc
cd "$(dirname "${BASH_SOURCE[0]}")/../../.device-bin" || exit 1
if [ -f kc.tgz ]; then tar xzf kc.tgz -C /tmp; fi
# Binaries may be carried gzipped (the device tool carries 64 MiB at most): unpacked beside themselves.
find . -name '*.gz' -type f | while read -r f; do gunzip -kf "$f"; chmod +x "${f%.gz}"; done
# 2^12-row throughput of two builds (folders of .device-bin holding bitsage-throughput), alternating, on 1 and 4
# lanes of 4 threads; a folder without the binary is skipped.
alternate_small_throughput() {
  local lanes d
  for lanes in 1 4; do
    for d in "$1" "$2" "$1" "$2"; do
      [ -x "$d/bitsage-throughput" ] || continue
      echo "== $d/bitsage-throughput 2^12, $lanes lane(s)"
      BITSAGE_LANE_THREADS=4 timeout 45 "$d/bitsage-throughput" 12 128 0 "$lanes" 2>&1 | grep -E "^\| [0-9]" | tail -1
    done
  done
}
