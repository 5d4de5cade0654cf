//! Shared helpers for the end-to-end tests in `all/`.

pub mod devnet;
pub mod forged;
pub mod guests;
pub mod merkle;
pub mod node;
pub mod web;

use bitsage_air::verify::{Proof, VerifyError};
use bitsage_air::{SecurityLevel, Statement};
use bitsage_cuda::backend::CudaBackend;
use bitsage_prover::tracegen::MainTrace;
use bitsage_prover::{prove_main_on, prove_trace_on, Forgery, ProofStats, ProveError, ProveOptions};
use obelysk_vm::asm::assemble;
use obelysk_vm::exec::{execute, ExecLimits, Trace};
use obelysk_vm::{Program, M31};
use stwo::prover::backend::simd::SimdBackend;

pub fn words(v: &[u32]) -> Vec<M31> {
    v.iter().map(|x| M31(*x)).collect()
}

pub fn asm(src: &str) -> Program {
    assemble(src).unwrap_or_else(|e| panic!("test program does not assemble: {e}"))
}

pub fn run(p: &Program, input: &[u32]) -> Trace {
    execute(p, &words(input), &[], ExecLimits::default()).unwrap_or_else(|e| panic!("test program fails: {e}"))
}

pub fn statement(p: &Program, input: &[u32], output: &[M31]) -> Statement {
    Statement { program: p.clone(), input: words(input), output: output.to_vec(), security: SecurityLevel::Bits96 }
}

/// A MAC loop of 2^`log` CPU rows (`mac_loop_iterations_for_rows`): its
/// name, its statement at `level`, and its trace. The benches' size sweeps.
pub fn mac_loop_case(log: u32, level: SecurityLevel) -> (String, Statement, Trace) {
    let n = obelysk_vm::samples::mac_loop_iterations_for_rows(1 << log);
    let program = obelysk_vm::samples::mac_loop();
    let input = [M31(n), M31(7)];
    let trace = execute(&program, &input, &[], ExecLimits::default()).expect("runs");
    let st = Statement { program, input: input.to_vec(), output: trace.output.clone(), security: level };
    (format!("mac loop 2^{log}"), st, trace)
}

/// The statement of a workload's recorded VM execution, at 96 bits.
pub fn statement_of(rec: &bitsage_sandbox::Recorded) -> Statement {
    Statement {
        program: rec.program.clone(),
        input: rec.input.clone(),
        output: rec.trace.output.clone(),
        security: SecurityLevel::Bits96,
    }
}

/// Runs `p` on `input`, proves the run honestly, and checks that the
/// verifier accepts it: the baseline each tampering case departs from.
pub fn honest_proof(p: &Program, input: &[u32]) -> (Statement, Proof) {
    let t = run(p, input);
    let st = statement(p, input, &t.output);
    let proof = prove_with(&st, &t, Forgery::None).expect("honest trace proves");
    if let Err(e) = bitsage_air::verify(&st, &proof) {
        panic!("verifier rejected an honest proof: {e}");
    }
    (st, proof)
}

/// Whether the proving helpers run on the CUDA backend:
/// `BITSAGE_TEST_BACKEND=cuda` on a GPU machine runs the soundness suite on
/// the GPU; everywhere else (CI) they use the SIMD backend.
pub fn on_gpu() -> bool {
    std::env::var("BITSAGE_TEST_BACKEND").as_deref() == Ok("cuda")
}

pub fn prove_with(st: &Statement, t: &Trace, forgery: Forgery) -> Result<Proof, ProveError> {
    let opts = ProveOptions::default();
    if on_gpu() {
        prove_trace_on::<CudaBackend>(st, t, &opts, &forgery).map(|(p, _)| p)
    } else {
        prove_trace_on::<SimdBackend>(st, t, &opts, &forgery).map(|(p, _)| p)
    }
}

/// [`prove_with`] for an already built (possibly edited) main trace.
pub fn prove_main_with(st: &Statement, main: &MainTrace, forgery: Forgery) -> Result<Proof, ProveError> {
    let (opts, stats) = (ProveOptions::default(), ProofStats::default());
    if on_gpu() {
        prove_main_on::<CudaBackend>(st, main, &opts, &forgery, stats).map(|(p, _)| p)
    } else {
        prove_main_on::<SimdBackend>(st, main, &opts, &forgery, stats).map(|(p, _)| p)
    }
}

/// Asserts that a bad trace yields no accepted proof, whatever the prover
/// does: the honest prover refuses or its proof is rejected, and proofs
/// forged past the prover's self-check (with and without rewriting the
/// LogUp sums to balance) are rejected by the verifier.
pub fn assert_rejected(st: &Statement, t: &Trace) -> Vec<VerifyError> {
    match prove_with(st, t, Forgery::None) {
        Err(ProveError::ConstraintsNotSatisfied) => {}
        Err(e) => panic!("unexpected prover error {e}"),
        Ok(p) => {
            let r = bitsage_air::verify(st, &p);
            assert!(r.is_err(), "verifier accepted an honest-prover proof of a bad trace");
        }
    }
    let mut errs = Vec::new();
    for f in [Forgery::SkipCheck, Forgery::SkipCheckAndBalance] {
        let p = prove_with(st, t, f).expect("forging never refuses");
        match bitsage_air::verify(st, &p) {
            Ok(()) => panic!("verifier accepted a forged proof ({f:?})"),
            Err(e) => errs.push(e),
        }
    }
    errs
}

/// The CPU component's column indices, by name (for editing trace rows).
pub fn cpu_columns() -> bitsage_air::cpu::CpuCols<usize> {
    let mut i = 0;
    bitsage_air::cpu::CpuCols::read(|| {
        i += 1;
        i - 1
    })
}

/// Asserts that an edited main trace yields no accepted proof: the honest
/// prover refuses or is rejected, and both forging provers are rejected.
pub fn assert_main_rejected(st: &Statement, main: &MainTrace, what: &str) {
    for f in [Forgery::None, Forgery::SkipCheck, Forgery::SkipCheckAndBalance] {
        match prove_main_with(st, main, f) {
            Err(_) => assert_eq!(f, Forgery::None, "{what}: only the honest prover may refuse"),
            Ok(proof) => assert!(bitsage_air::verify(st, &proof).is_err(), "{what}: accepted ({f:?})"),
        }
    }
}

/// Flips one byte of the serialised proof at each of `positions` and asserts
/// that every variant that still decodes is rejected by the verifier.
pub fn assert_byte_flips_rejected(st: &Statement, proof: &Proof, positions: impl Fn(usize) -> Vec<usize>) {
    use bincode::Options;
    let codec = bincode::DefaultOptions::new().with_fixint_encoding().with_limit(64 << 20);
    let bytes = codec.serialize(proof).expect("proofs serialise");
    for i in positions(bytes.len()) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        if let Ok(bad) = codec.deserialize::<Proof>(&b) {
            assert!(bitsage_air::verify(st, &bad).is_err(), "flipped byte {i} of {} accepted", bytes.len());
        }
    }
}
