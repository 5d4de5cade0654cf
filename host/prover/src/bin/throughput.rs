//! Throughput mode: a stream of independent proving jobs fed from one queue
//! to every device of the pool. Runs the same jobs on pools of 1, 2, …, N
//! GPUs (the first k of the machine) and on the CPU, in one process, verifies
//! every proof, and prints proofs/s and the scaling efficiency.
//!
//!     bitsage-throughput [LOG_ROWS] [JOBS_PER_GPU] [CPU_JOBS] [MAX_LANES]   (defaults 18 8 4 1)
//!
//! With MAX_LANES above 1, one GPU also runs with 2, 4, .. MAX_LANES lanes
//! (proofs at once on one GPU, each on its own stream). With
//! `BITSAGE_CUPTI=1` each batch runs again under a CUPTI trace (driver calls,
//! kernels, copies; [`bitsage_cuda::profile`]).

use std::sync::Arc;
use std::time::Instant;

use bitsage_air::Statement;
use bitsage_prover::pool::{Device, DevicePool};
use bitsage_prover::{BackendChoice, ProveOptions};
use obelysk_vm::exec::{execute, ExecLimits, Trace};
use obelysk_vm::samples::{mac_loop, mac_loop_iterations_for_rows};
use obelysk_vm::M31;

struct Job {
    statement: Statement,
    trace: Trace,
}

fn jobs(log_rows: u32, n: usize) -> Vec<Arc<Job>> {
    let iters = mac_loop_iterations_for_rows(1 << log_rows);
    (0..n)
        .map(|i| {
            let program = mac_loop();
            let input = vec![M31(iters), M31(7 + i as u32)];
            let trace = execute(&program, &input, &[], ExecLimits::default()).expect("the MAC loop runs");
            let statement = Statement { program, input, output: trace.output.clone(), security: Default::default() };
            Arc::new(Job { statement, trace })
        })
        .collect()
}

/// Proves every job through the pool from one thread per job (the queue is
/// the pool's); returns wall seconds. Every proof is verified afterwards.
fn stream(pool: &Arc<DevicePool>, jobs: &[Arc<Job>]) -> f64 {
    let t0 = Instant::now();
    let handles: Vec<_> = jobs
        .iter()
        .map(|j| {
            let (pool, j) = (pool.clone(), j.clone());
            std::thread::spawn(move || {
                let (proof, _, _) = pool.prove(&j.statement, &j.trace, &ProveOptions::default()).expect("proves");
                (j, proof)
            })
        })
        .collect();
    let proofs: Vec<_> = handles.into_iter().map(|h| h.join().expect("prover thread")).collect();
    let wall = t0.elapsed().as_secs_f64();
    for (j, proof) in proofs {
        bitsage_air::verify::verify(&j.statement, &proof).expect("every proof verifies");
    }
    wall
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let log_rows = args.first().copied().unwrap_or(18) as u32;
    let per_gpu = args.get(1).copied().unwrap_or(8);
    let cpu_jobs = args.get(2).copied().unwrap_or(4);
    let max_lanes = args.get(3).copied().unwrap_or(1).max(1);
    let all = match DevicePool::open(BackendChoice::Cuda) {
        Ok(p) => p.status().into_iter().filter(|d| d.lane == 0).map(|d| d.device).collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "{} GPU(s): {}; {cores} CPU threads",
        all.len(),
        all.iter().map(Device::label).collect::<Vec<_>>().join(", ")
    );
    println!("jobs: MAC loop, 2^{log_rows} CPU rows each, {per_gpu} per GPU in the pool; every proof verified\n");
    println!("| devices | jobs | wall s | proofs/s | vs 1 GPU | efficiency |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut one_gpu = None;
    let mut runs: Vec<(usize, usize)> = (1..=all.len()).map(|k| (k, 1)).collect();
    runs.extend(std::iter::successors(Some(2), |l| Some(l * 2)).take_while(|&l| l <= max_lanes).map(|l| (1, l)));
    for (k, lanes) in runs {
        let pool = Arc::new(DevicePool::with_lanes(all[..k].to_vec(), lanes).expect("pool"));
        // Warm every device (kernel compilation, first allocations) outside the timing.
        let warm = jobs(log_rows, k);
        stream(&pool, &warm);
        let batch = jobs(log_rows, per_gpu * k);
        let wall = stream(&pool, &batch);
        let rate = batch.len() as f64 / wall;
        let base = *one_gpu.get_or_insert(rate);
        let what = if lanes > 1 { format!("{k} GPU, {lanes} lanes") } else { format!("{k} GPU") };
        println!(
            "| {what} | {} | {wall:.2} | {rate:.2} | {:.2}x | {} |",
            batch.len(),
            rate / base,
            if lanes > 1 { String::new() } else { format!("{:.0}%", 100.0 * rate / base / k as f64) }
        );
        for d in pool.status() {
            eprintln!("  {}: {} proofs, {:.0}% busy", d.label, d.proofs, d.utilisation * 100.0);
        }
        if bitsage_cuda::profile::wanted() {
            // The same batch again under CUPTI (slower: every call is recorded), after the timed one.
            let traced = bitsage_cuda::profile::start().and_then(|()| {
                let wall = stream(&pool, &batch);
                bitsage_cuda::profile::stop().map(|t| (wall, t))
            });
            match traced {
                Ok((wall, t)) => println!(
                    "\nCUPTI trace of {what}, the batch again ({} proofs, {wall:.2} s traced):\n\n{}",
                    batch.len(),
                    t.markdown(25)
                ),
                Err(e) => eprintln!("{e}"),
            }
        }
    }
    if cpu_jobs > 0 {
        let pool = Arc::new(DevicePool::with_devices(vec![Device::Cpu]).expect("cpu pool"));
        let batch = jobs(log_rows, cpu_jobs);
        let wall = stream(&pool, &batch);
        let rate = batch.len() as f64 / wall;
        println!(
            "| CPU (SIMD, {cores} threads) | {} | {wall:.2} | {rate:.2} | {:.2}x | |",
            batch.len(),
            rate / one_gpu.unwrap_or(rate)
        );
    }
}
