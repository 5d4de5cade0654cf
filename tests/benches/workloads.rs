//! Per-workload costs, end to end: component instantiate + call latency
//! (pooling allocator, and on-demand for comparison), guest time and fuel,
//! VM rows, prove and verify time.
//!
//!     ./scripts/build-workloads.sh && cargo bench -p bitsage-tests --bench workloads [-- RUNS]

use std::time::{Duration, Instant};

use bitsage_prover::tracegen::log_size_for;
use bitsage_prover::{prove_trace, ProveOptions};
use bitsage_sandbox::{Sandbox, SandboxConfig};
use bitsage_tests::guests::{self, WORKLOADS};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    let pooled =
        Sandbox::new(SandboxConfig { pooling: Some(16), ..SandboxConfig::default() }).expect("pooling sandbox");
    let on_demand = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    println!("median of {runs} runs per cell; prove and verify: median of 3 and of 20");
    println!("| workload | compile ms | inst+call ms (pooling) | inst+call ms (on-demand) | guest call ms | fuel | VM steps | CPU rows | prove ms | verify ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, input) in WORKLOADS {
        let bytes = guests::bytes(name);
        let input = guests::example(input);
        let t = Instant::now();
        let module = pooled.load(&bytes).expect("loads");
        let compile = t.elapsed();
        let module_od = on_demand.load(&bytes).expect("loads");
        let (mut total, mut call, mut total_od) = (Vec::new(), Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..runs {
            let r = pooled.run(&module, &input).expect("runs");
            total.push(r.instantiate_time + r.call_time);
            call.push(r.call_time);
            let r2 = on_demand.run(&module_od, &input).expect("runs");
            total_od.push(r2.instantiate_time + r2.call_time);
            last = Some(r);
        }
        let r = last.expect("at least one run");
        let rec = &r.recorded;
        let st = bitsage_tests::statement_of(rec);
        let mut proofs = Vec::new();
        let mut prove_times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let (proof, _) = prove_trace(&st, &rec.trace, &ProveOptions::default()).expect("proves");
            prove_times.push(t.elapsed());
            proofs.push(proof);
        }
        let verify_times: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                bitsage_air::verify(&st, &proofs[0]).expect("verifies");
                t.elapsed()
            })
            .collect();
        println!(
            "| {name} | {:.1} | {:.3} | {:.3} | {:.3} | {} | {} | 2^{} | {:.0} | {:.2} |",
            ms(compile),
            ms(median(total)),
            ms(median(total_od)),
            ms(median(call)),
            r.fuel_used,
            rec.trace.steps.len(),
            log_size_for(rec.trace.steps.len()),
            ms(median(prove_times)),
            ms(median(verify_times)),
        );
    }
}
