//! Proof size and proving time under each candidate setting of the proof
//! parameters (blowup, queries, proof of work, FRI fold step), side by side
//! in one run on the SIMD backend, for the five workloads and a MAC loop.
//! The first row of each case is the setting the prover picks for it
//! (`SecurityLevel::pcs_config`); "blowup 2, pow 20, fold 1" was format 3's.
//!
//!     ./scripts/build-workloads.sh
//!     cargo bench -p bitsage-tests --bench proof_size [-- --big] [-- --bits 128]
//!
//! `--big` adds MAC loops of 2^16 and 2^20 CPU rows. Each proof is verified
//! under the setting it was made with; "receipt" is the zstd-compressed
//! receipt file (no attestation) that users store and send.

use std::time::{Duration, Instant};

use bitsage_air::shape::ProofParts;
use bitsage_air::{SecurityLevel, Statement};
use bitsage_prover::{prove_trace, ProveOptions, Receipt};
use bitsage_sandbox::{Sandbox, SandboxConfig};
use bitsage_tests::guests::{self, WORKLOADS};
use obelysk_vm::exec::Trace;
use stwo::core::fri::FriConfig;
use stwo::core::pcs::PcsConfig;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn kib(b: usize) -> String {
    format!("{:.1}", b as f64 / 1024.0)
}

/// `(log_blowup, pow_bits, fold_step)` candidates; the query count is the
/// fewest that reach `bits` (conjectured: `pow + log_blowup · queries`).
fn candidates(bits: u32) -> Vec<PcsConfig> {
    let mut out = Vec::new();
    for (log_blowup, pow_bits, fold_step) in [(1, 20, 1), (1, 20, 3), (2, 16, 3), (3, 16, 3), (4, 16, 3)] {
        let n_queries = (bits - pow_bits).div_ceil(log_blowup) as usize;
        out.push(PcsConfig {
            pow_bits,
            fri_config: FriConfig::new(0, log_blowup, n_queries, fold_step),
            lifting_log_size: None,
        });
    }
    out
}

fn describe(c: &PcsConfig) -> String {
    let f = &c.fri_config;
    format!("blowup {}, {} queries, pow {}, fold {}", 1u32 << f.log_blowup_factor, f.n_queries, c.pow_bits, f.fold_step)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let big = args.iter().any(|a| a == "--big");
    let level = if args.iter().any(|a| a == "128") { SecurityLevel::Bits128 } else { SecurityLevel::Bits96 };
    let candidates = candidates(level.bits());

    let mut cases: Vec<(String, Statement, Trace)> = Vec::new();
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    for (name, input) in WORKLOADS {
        let module = sandbox.load(&guests::bytes(name)).expect("loads");
        let r = sandbox.run(&module, &guests::example(input)).expect("runs");
        let mut st = bitsage_tests::statement_of(&r.recorded);
        st.security = level;
        cases.push((name.into(), st, r.recorded.trace));
    }
    let mac_rows: &[u32] = if big { &[12, 16, 20] } else { &[12] };
    for &log in mac_rows {
        cases.push(bitsage_tests::mac_loop_case(log, level));
    }

    println!("{}-bit level (conjectured); the prover's pick first in each case; SIMD backend", level.bits());
    println!("| case | setting | proof KiB | receipt KiB | queried | trace Merkle | FRI values | FRI Merkle | sampled | prove ms | verify ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, st, trace) in &cases {
        // The prover's own rule, from the claim (sizes only: the deferred
        // trace builds no CPU or hash rows).
        let claim = bitsage_prover::tracegen::build_main_trace_deferred(&st.program, trace).claim;
        let shipped = level.pcs_config(&claim);
        let configs = std::iter::once(shipped).chain(candidates.iter().copied().filter(|c| *c != shipped));
        for config in configs {
            // A 2^20-row trace at blowup 16 needs more memory than a
            // development machine has.
            if trace.steps.len() > 1 << 19 && config.fri_config.log_blowup_factor > 3 {
                continue;
            }
            let opts = ProveOptions { security: level, config: Some(config), ..ProveOptions::default() };
            let t = Instant::now();
            let (proof, _) = prove_trace(st, trace, &opts).expect("proves");
            let prove = t.elapsed();
            let t = Instant::now();
            bitsage_air::verify::verify_with_config(st, &proof, &config).expect("verifies");
            let verify = t.elapsed();
            let parts = ProofParts::of(&proof.stark);
            let receipt = Receipt::new(st.clone(), proof).expect("encodes");
            let file = receipt.to_bytes().expect("encodes").len();
            println!(
                "| {name} | {}{} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.1} |",
                describe(&config),
                if config == shipped { " (picked)" } else { "" },
                kib(receipt.proof_bytes()),
                kib(file),
                kib(parts.queried_values),
                kib(parts.trace_merkle),
                kib(parts.fri_values),
                kib(parts.fri_merkle),
                kib(parts.sampled_values),
                ms(prove),
                ms(verify),
            );
        }
    }
}
