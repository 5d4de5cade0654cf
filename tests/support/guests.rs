//! Finding the built guest components. `scripts/build-workloads.sh` builds
//! them (the test command runs it first) into the cargo target directory.

use std::path::PathBuf;

/// The five workloads (crate names with `_`) and their example inputs.
pub const WORKLOADS: [(&str, &str); 5] = [
    ("custom", "custom.json"),
    ("ml_inference", "ml-inference.json"),
    ("data_transform", "data-transform.json"),
    ("privacy_transfer", "privacy-transfer.json"),
    ("batch_verify", "batch-verify.json"),
];

/// `$CARGO_TARGET_DIR` (or the repository's `target/`) `/wasm32-wasip2/release`.
pub fn dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    target.join("wasm32-wasip2").join("release")
}

/// The bytes of guest `name` (crate name with `_`), or a panic that says how
/// to build it.
pub fn bytes(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.wasm"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; build the guests first with scripts/build-workloads.sh", path.display()))
}

/// An example input from `examples/`.
pub fn example(file: &str) -> Vec<u8> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples")).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
