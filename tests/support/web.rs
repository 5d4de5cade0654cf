//! Receipts for the browser-verifier tests and bench: each of the five
//! workloads run in the sandbox, proved, and attested by a fresh worker key,
//! as a node makes them; and the `@bitsage/verify` package's files.

use std::path::PathBuf;

use bitsage_prover::{prove_trace, ProveOptions, Receipt};
use bitsage_sandbox::{Sandbox, SandboxConfig};
use bitsage_settle::attest::attest_receipt;
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::tee::Evidence;
use bitsage_settle::Felt;
use sha2::{Digest, Sha256};

use crate::guests::{self, WORKLOADS};

/// An attested receipt file of workload `name` on example `input`.
pub fn workload_receipt(sandbox: &Sandbox, key: &WorkerKey, name: &str, input: &str) -> Receipt {
    let wasm = guests::bytes(name);
    let module = sandbox.load(&wasm).unwrap_or_else(|e| panic!("{name} loads: {e}"));
    let input = guests::example(input);
    let run = sandbox.run(&module, &input).unwrap_or_else(|e| panic!("{name} runs: {e}"));
    let st = crate::statement_of(&run.recorded);
    let (proof, _) = prove_trace(&st, &run.recorded.trace, &ProveOptions::default()).expect("honest run proves");
    let mut receipt = Receipt::with_module(st, proof, Some(Sha256::digest(&wasm).into())).expect("encodes");
    let worker = Felt::from(0xb175a6e_u64);
    attest_receipt(&mut receipt, key, worker, Sha256::digest(&input).into(), "web-test", Evidence::SoftwareSigned)
        .expect("attests");
    receipt
}

/// `(workload, receipt file bytes)` for each workload, attested by one key.
pub fn workload_receipts() -> Vec<(&'static str, Vec<u8>)> {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let key = WorkerKey::generate();
    WORKLOADS
        .iter()
        .map(|(name, input)| {
            let r = workload_receipt(&sandbox, &key, name, input);
            (*name, r.to_bytes().expect("receipt file"))
        })
        .collect()
}

/// `web/verifier/`, whose `pkg/` scripts/build-web.sh fills.
pub fn package_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web/verifier"));
    let wasm = dir.join("pkg/bitsage_verify_wasm_bg.wasm");
    assert!(wasm.is_file(), "{} is missing: build the browser verifier with scripts/build-web.sh", wasm.display());
    dir
}
