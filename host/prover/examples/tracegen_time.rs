//! Times the main-trace generation alone on a MAC loop of `2^LOG` rows,
//! five times: all of it (the SIMD backend's host work) and without the CPU
//! rows (the CUDA backend's host work).
//!
//!     cargo run --release -p bitsage-prover --example tracegen_time -- [LOG]

use bitsage_prover::tracegen::{build_main_trace, build_main_trace_deferred};
use obelysk_vm::exec::{execute, ExecLimits};
use obelysk_vm::{samples, M31};
fn main() {
    let log: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(18);
    let program = samples::mac_loop();
    let n = samples::mac_loop_iterations_for_rows(1 << log);
    let trace = execute(&program, &[M31(n), M31(3)], &[], ExecLimits::default()).expect("the MAC loop executes");
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let m = build_main_trace(&program, &trace);
        println!("main trace 2^{log}: {:.1} ms ({} cols)", t.elapsed().as_secs_f64() * 1e3, m.n_columns());
        let t = std::time::Instant::now();
        let _m = build_main_trace_deferred(&program, &trace);
        println!("  without the CPU rows (the CUDA backend builds those): {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    }
}
