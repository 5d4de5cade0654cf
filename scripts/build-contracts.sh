#!/usr/bin/env bash
# Compiles the Cairo contracts in contracts/ to Sierra and CASM, offline,
# into ${CARGO_TARGET_DIR:-target}/contracts. The compiler (cairo-lang 2.16,
# tools/cairo-build) builds once into ~/.cache/bitsage/cairo-target (about 9
# minutes on 2 cores); the corelib comes from the cairo-native 0.9.0-rc.2
# crate package, which cargo fetches and nothing builds.
set -euo pipefail
cd "$(dirname "$0")/.."
tool_target="${BITSAGE_CAIRO_TARGET:-$HOME/.cache/bitsage/cairo-target}"
manifest=tools/cairo-build/Cargo.toml
cargo build --release --locked --manifest-path "$manifest" --target-dir "$tool_target" -q
cargo fetch --locked --manifest-path "$manifest" -q
corelib=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cairo-native-0.9.0-rc.2/corelib/src 2>/dev/null | head -1)
if [ -z "$corelib" ]; then
    echo "the cairo-native 0.9.0-rc.2 corelib was not fetched" >&2
    exit 1
fi
out="${CARGO_TARGET_DIR:-$PWD/target}/contracts"
# The AIR's generated evaluators (contracts/src/stwo/air/, one class per file).
air=()
for f in contracts/src/stwo/air/*.cairo; do
    m=$(basename "$f" .cairo)
    c=$(sed -n 's/^pub mod \(Air[A-Za-z0-9]*\) {$/\1/p' "$f")
    air+=("bitsage::stwo::air::$m::$c")
done
"$tool_target/release/bitsage-cairo-build" contracts "$out" "$corelib" bitsage::staking::Staking bitsage::registry::ValidatorRegistry bitsage::escrow::JobEscrow bitsage::stwo::channel::StwoChannel bitsage::stwo::merkle::StwoMerkle bitsage::stwo::fri::StwoFri bitsage::stwo::pcs::StwoPcs bitsage::stwo::stark::StwoStark bitsage::stwo::statement::StwoStatement bitsage::stwo::verifier::BitsageVerifier bitsage::stwo::verifier::VerifierSteps bitsage::stwo::verifier::VerifierTranscript "${air[@]}"
