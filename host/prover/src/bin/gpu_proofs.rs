//! Proves the same traces on Stwo's SIMD backend and on the CUDA backend in
//! one process, checks the proofs are byte-identical and that the verifier
//! accepts the GPU proof, and prints both times.
//!
//!     bitsage-gpu-proofs [MIN_LOG MAX_LOG]     (CPU trace rows, default 10 16)

use std::time::Instant;

use bincode::Options;
use bitsage_air::{SecurityLevel, Statement};
use bitsage_cuda::backend::CudaBackend;
use bitsage_prover::{prove_trace_on, Forgery, ProveOptions};
use obelysk_vm::builder::{ProgramBuilder, Reg};
use obelysk_vm::exec::{execute, ExecLimits};
use obelysk_vm::samples::{mac_loop, mac_loop_iterations_for_rows};
use obelysk_vm::{Program, M31};
use stwo::prover::backend::simd::SimdBackend;

/// `n` Poseidon2 permutations of a RAM block, then the first word.
fn hash_loop() -> Program {
    let (n, v) = (Reg(1), Reg(2));
    let mut b = ProgramBuilder::new();
    b.read(n);
    let top = b.here();
    b.store(Reg(0), 3, n).hash(Reg(0), 0).sub(n, n, 1u32).jnz(n, top);
    b.load(v, Reg(0), 0).write(v).halt();
    b.build().expect("hash_loop is well formed")
}

fn main() {
    // `BITSAGE_LOG=info` prints every Stwo phase span with its time.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("BITSAGE_LOG"))
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (lo, hi) = (args.first().copied().unwrap_or(10), args.get(1).copied().unwrap_or(16));
    match bitsage_cuda::backend::init() {
        Ok(g) => println!("device: {}", g.name().unwrap_or_default()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let codec = bincode::DefaultOptions::new().with_fixint_encoding();
    let opts = ProveOptions::default();
    let mut failed = 0;
    println!(
        "| program | CPU rows | SIMD prove ms | CUDA prove ms | SIMD/CUDA | proof bytes equal | GPU proof verifies |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut cases: Vec<(String, Program, Vec<M31>)> = Vec::new();
    for log in lo..=hi {
        let n = mac_loop_iterations_for_rows(1 << log);
        cases.push((format!("mac_loop 2^{log}"), mac_loop(), vec![M31(n), M31(7)]));
    }
    cases.push(("hash_loop 300".into(), hash_loop(), vec![M31(300)]));
    for (name, program, input) in cases {
        let trace = match execute(&program, &input, &[], ExecLimits::default()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: {e}");
                failed += 1;
                continue;
            }
        };
        let st = Statement { program, input, output: trace.output.clone(), security: SecurityLevel::Bits96 };
        // Warm-up on the GPU (kernel compilation / cache load) is excluded from the timed run.
        let _ = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
        let t0 = Instant::now();
        let simd = prove_trace_on::<SimdBackend>(&st, &trace, &opts, &Forgery::None).map(|p| p.0);
        let simd_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let cuda = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
        let cuda_ms = t1.elapsed().as_secs_f64() * 1e3;
        if let Ok((_, stats)) = &cuda {
            let stages: Vec<String> =
                stats.stages.iter().map(|(s, d)| format!("{} {:.0} ms", s.name(), d.as_secs_f64() * 1e3)).collect();
            eprintln!("{name}: CUDA stages: {}", stages.join(", "));
        }
        let cuda = cuda.map(|p| p.0);
        let (Ok(simd), Ok(cuda)) = (simd, cuda) else {
            println!("| {name} | - | - | - | - | prover refused | - |");
            failed += 1;
            continue;
        };
        let equal = codec.serialize(&simd).ok() == codec.serialize(&cuda).ok();
        let verifies = bitsage_air::verify(&st, &cuda).is_ok();
        failed += usize::from(!equal || !verifies);
        println!(
            "| {name} | 2^{} | {simd_ms:.0} | {cuda_ms:.0} | {:.2}x | {equal} | {verifies} |",
            cuda.claim.cpu_log_size,
            simd_ms / cuda_ms
        );
    }
    if failed > 0 {
        eprintln!("{failed} case(s) failed");
        std::process::exit(1);
    }
}
