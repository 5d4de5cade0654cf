#!/usr/bin/env bash
# Runs every command of the README's quickstart "By hand" block, in order,
# from the repository root. Two substitutions, so that CI
# stays within its time: `target/` is the cargo target dir in use, and the
# release build is the dev build unless QUICKSTART_RELEASE=1 (a cold release
# build is ~11 minutes on 2 cores; demo.sh runs the release one).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
target="${CARGO_TARGET_DIR:-$root/target}"
block="$(awk '/^By hand:$/ {on=1; next} on && /^```sh$/ {inside=1; next} inside && /^```$/ {exit} inside {print}' README.md)"
[ -n "$block" ] || { echo "no 'By hand' block in README.md" >&2; exit 1; }
block="${block//target\//$target/}"
if [ "${QUICKSTART_RELEASE:-0}" != 1 ]; then
  block="${block//cargo build --release -p bitsage-host/cargo build -p bitsage-host}"
  block="${block//$target\/release\/bitsage-host/$target/debug/bitsage-host}"
fi
# The block writes r.bin, r2.bin and my-workload/ where it runs: here, so
# refuse to overwrite any that exist, and remove them afterwards.
made=(r.bin r2.bin my-workload)
for f in "${made[@]}"; do
  [ ! -e "$f" ] || { echo "check-quickstart: $f exists; move it away first" >&2; exit 1; }
done
log="$(mktemp)"
trap 'rm -rf "${made[@]}" "$log"' EXIT
if ! bash -c "set -euxo pipefail
$block" > "$log" 2>&1; then
  cat "$log" >&2
  echo "a quickstart command failed (the last '+' line above)" >&2
  exit 1
fi
echo "quickstart: $(grep -c '^[^#[:space:]]' <<< "$block") commands ran"
