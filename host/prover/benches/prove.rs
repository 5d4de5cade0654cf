//! Proves MAC-loop programs from 2^14 to 2^22 executed rows on the CPU
//! (SIMD backend) and prints a table.
//!
//! `cargo bench -p bitsage-prover --bench prove -- [MIN_LOG] [MAX_LOG]`
//!
//! Peak RSS is the process high-water mark (VmHWM) after each size; sizes
//! run in increasing order, so each row's figure is that size's peak.

use std::time::Instant;

use bitsage_prover::{prove, ProveOptions, Receipt};
use obelysk_vm::{samples, M31};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let min = args.first().copied().unwrap_or(14);
    let max = args.get(1).copied().unwrap_or(22);
    let program = samples::mac_loop();
    println!(
        "| rows (CPU trace) | steps | main cols | prove (s) | steps/s | verify (ms) | proof (KiB) | peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for log in min..=max {
        let n = samples::mac_loop_iterations_for_rows(1 << log);
        let t0 = Instant::now();
        let (proof, statement, stats) =
            prove(&program, &[M31(n), M31(3)], &[], &ProveOptions::default()).expect("mac loop proves");
        let prove_s = t0.elapsed().as_secs_f64();
        let receipt = Receipt::new(statement, proof).expect("receipt encodes");
        // Verify a few times and keep the best, to damp scheduler noise.
        let verify_ms = (0..5)
            .map(|_| {
                let t = Instant::now();
                receipt.verify().expect("verifies");
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "| 2^{log} | {} | {} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} |",
            stats.steps,
            stats.main_columns,
            prove_s,
            stats.steps as f64 / prove_s,
            verify_ms,
            receipt.proof_bytes() as f64 / 1024.0,
            peak_rss_mb()
        );
        for (s, d) in &stats.stages {
            eprintln!("    2^{log} {:<40} {:>9.1} ms", s.name(), d.as_secs_f64() * 1e3);
        }
    }
}
