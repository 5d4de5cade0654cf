//! What a proof costs to verify on chain, per proof: the verifier contract
//! (`contracts/src/stwo/verifier.cairo`) deployed on starknet-devnet 0.10.1,
//! each proof made over the Poseidon252 channel on the SIMD backend and
//! verified by `Wallet::verify_on_chain` (the transactions `bitsage-host
//! settle --onchain` sends), for the five workloads and MAC loops of 2^8 up
//! to 2^`--max-log` CPU rows (default 16; 20 needs a few minutes of proving
//! per size on two cores).
//!
//!     ./scripts/setup.sh && ./scripts/build-workloads.sh && ./scripts/build-contracts.sh
//!     BITSAGE_DEVNET=~/.cache/bitsage/tools/bin/starknet-devnet \
//!       cargo bench -p bitsage-tests --bench onchain_cost [-- --max-log 20]
//!
//! Gas and fees are the devnet's receipts at its default gas prices; the
//! limits are mainnet's (blockifier's versioned constants 0.14.4): 1.11
//! billion L2 gas per transaction's execution, 5,000 felts of calldata.
//! RPC 0.10 reports L2 (Sierra) gas, which is what Starknet meters, and no
//! Cairo step count.

use std::time::Instant;

use bitsage_air::{SecurityLevel, Statement};
use bitsage_prover::{prove_poseidon252, ProveOptions};
use bitsage_sandbox::{Sandbox, SandboxConfig};
use bitsage_settle::chain::{fmt_amount, Chain, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::onchain::Split;
use bitsage_settle::Felt;
use bitsage_tests::devnet::{contracts_dir, Devnet};
use bitsage_tests::guests::{self, WORKLOADS};
use obelysk_vm::exec::Trace;

const MAX_L2_GAS: u64 = 1_110_000_000;
const MAX_CALLDATA: usize = 5_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let max_log: u32 = args
        .iter()
        .position(|a| a == "--max-log")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let level = SecurityLevel::Bits96;

    let mut cases: Vec<(String, Statement, Trace)> = Vec::new();
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    for (name, input) in WORKLOADS {
        let module = sandbox.load(&guests::bytes(name)).expect("loads");
        let r = sandbox.run(&module, &guests::example(input)).expect("runs");
        let st = bitsage_tests::statement_of(&r.recorded);
        cases.push((name.into(), st, r.recorded.trace));
    }
    for log in (8..=max_log).step_by(2) {
        cases.push(bitsage_tests::mac_loop_case(log, level));
    }

    let devnet = Devnet::start(1);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let account = &devnet.accounts[0];
    let chain = Chain::new(&devnet.url, None).expect("chain");
    let key = WorkerKey::from_secret(Felt::from_hex(&account.private_key).expect("key"));
    let wallet =
        rt.block_on(Wallet::connect(chain, Felt::from_hex(&account.address).expect("address"), &key)).expect("wallet");
    let verifier = rt.block_on(wallet.deploy_verifier(&contracts_dir(), Felt::ONE)).expect("verifier deploys");

    println!(
        "{}-bit level; proofs over Poseidon252 on the SIMD backend; gas and fees from devnet receipts",
        level.bits()
    );
    println!(
        "| proof | CPU rows | transactions | L2 gas in all | most L2 gas in one tx (of mainnet's 1.11 G) | calldata felts in all | most in one tx (of 5,000) | fee (STRK) | prove s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, st, trace) in &cases {
        let t = Instant::now();
        let (proof, _) =
            prove_poseidon252(st, trace, &ProveOptions { security: level, ..ProveOptions::default() }).expect("proves");
        let prove = t.elapsed().as_secs_f64();
        let split = Split::new(st, &proof);
        let steps = rt.block_on(wallet.verify_on_chain(verifier, &split, |_| {})).expect("the chain verifies it");
        let gas: u64 = steps.iter().map(|s| s.l2_gas).sum();
        let max_gas = steps.iter().map(|s| s.l2_gas).max().unwrap_or(0);
        let felts: usize = steps.iter().map(|s| s.calldata).sum();
        let max_felts = steps.iter().map(|s| s.calldata).max().unwrap_or(0);
        let fee: u128 = steps.iter().map(|s| s.fee).sum();
        println!(
            "| {name} | 2^{} | {} | {:.2} G | {:.0} M ({:.0}%) | {felts} | {max_felts} ({:.0}%) | {} | {prove:.1} |",
            proof.claim.cpu_log_size,
            steps.len(),
            gas as f64 / 1e9,
            max_gas as f64 / 1e6,
            100.0 * max_gas as f64 / MAX_L2_GAS as f64,
            100.0 * max_felts as f64 / MAX_CALLDATA as f64,
            fmt_amount(fee),
        );
    }
}
