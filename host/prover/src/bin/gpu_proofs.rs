//! Proves the same traces on Stwo's SIMD backend and on the CUDA backend in
//! one process, checks the proofs are byte-identical and that the verifier
//! accepts the GPU proof, and prints both times (the CUDA time is the
//! median of five proofs, with the device not synchronised between phases).
//!
//! A second table breaks each CUDA proof down: main columns, rows/s, the
//! peak device memory in use, and time per phase, from Stwo's and our own
//! tracing spans.
//!
//! A third table does the same for proofs over the Poseidon252 channel
//! (the ones the on-chain verifier checks) of the MAC loops and the
//! hash and every-opcode loops (`--no-chain` leaves it out).
//!
//! With `BITSAGE_CUPTI=1`, one more proof of each trace runs under a CUPTI
//! trace ([`bitsage_cuda::profile`]): driver calls, kernels and copies.
//!
//! Built with the `host-profile` feature and run with
//! `BITSAGE_HOST_PROFILE=N`, N more proofs of each trace run while the
//! host's stacks are sampled (pprof's CPU-time timer, asked for 997 Hz;
//! every thread): the functions with the most samples are printed, and every
//! stack goes to `host-profile-<trace>.folded` (in `BITSAGE_HOST_PROFILE_DIR`,
//! default `.`), one `root;...;leaf count` line each, for a flame graph.
//!
//!     bitsage-gpu-proofs [MIN_LOG MAX_LOG] [--no-chain]    (CPU trace rows, default 10 16)

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bincode::Options;
use bitsage_air::{SecurityLevel, Statement};
use bitsage_cuda::backend::CudaBackend;
use bitsage_prover::{prove_poseidon252, prove_poseidon252_on_gpu, prove_trace_on, Forgery, ProveOptions};
use obelysk_vm::builder::{ProgramBuilder, Reg};
use obelysk_vm::exec::{execute, ExecLimits};
use obelysk_vm::samples::{self, mac_loop, mac_loop_iterations_for_rows};
use obelysk_vm::{Program, M31};
use stwo::prover::backend::simd::SimdBackend;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Wall time per span name, summed over every span that closes.
fn span_times() -> &'static Mutex<HashMap<&'static str, Duration>> {
    static T: OnceLock<Mutex<HashMap<&'static str, Duration>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// GPU work is asynchronous: without a barrier, a kernel's time lands in
/// whichever later span first waits for the device. So the layer waits for
/// the device when a span opens and when it closes (a few microseconds
/// each), and each phase gets the device time it launched. The barriers
/// take away the overlap of host and device work, so the headline times
/// come from a separate run with the layer off ([`PHASES_ON`]).
fn device_barrier() {
    if let Ok(g) = bitsage_cuda::backend::init() {
        let _ = g.synchronize();
    }
}

/// Whether [`PhaseLayer`] times spans (and synchronises at their edges).
static PHASES_ON: AtomicBool = AtomicBool::new(false);

struct PhaseLayer;

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for PhaseLayer {
    fn on_new_span(&self, _: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        if !PHASES_ON.load(Ordering::Relaxed) {
            return;
        }
        device_barrier();
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Instant::now());
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        if !PHASES_ON.load(Ordering::Relaxed) {
            return;
        }
        device_barrier();
        let Some(span) = ctx.span(&id) else { return };
        let Some(start) = span.extensions().get::<Instant>().copied() else { return };
        let mut t = span_times().lock().unwrap_or_else(|p| p.into_inner());
        *t.entry(span.metadata().name()).or_default() += start.elapsed();
    }
}

/// Proof phases and the spans that make them up (leaf spans, so none is
/// counted twice); `other` is the rest of the proof (decommitment, channel).
const PHASES: [(&str, &[&str]); 10] = [
    ("trace gen", &["main_trace", "cpu rows on the GPU", "hash rows on the GPU", "interaction_trace"]),
    ("upload", &["upload", "steps upload"]),
    ("IFFT", &["Interpolation for commitment"]),
    ("LDE", &["Extension"]),
    ("Merkle", &["Merkle"]),
    ("constraints", &["constraints on the GPU", "Constraint point-wise eval", "Constraints interpolation"]),
    ("OODS", &["Evaluate columns out of domain"]),
    ("quotients", &["Compute FRI quotients"]),
    ("FRI", &["commit"]),
    ("grinding", &["Grind"]),
];

/// Instructions in the loop body of the random programs.
const RANDOM_BODY: usize = 32;

/// Timed CUDA proofs per trace; the table gives their median.
const TIMED_RUNS: usize = 5;

/// Device memory in use right after the device was opened (the context and
/// the kernels), before any proof.
static IDLE_USED: OnceLock<usize> = OnceLock::new();

/// Samples device memory in use every millisecond while `f` runs; returns
/// `f`'s result and the peak over the idle level. Memory the stream's pool
/// keeps from an earlier proof counts, so this is what the proof needs
/// resident, not what it newly allocates.
fn with_memory_peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let gpu = match bitsage_cuda::backend::init() {
        Ok(g) => g,
        Err(_) => return (f(), 0),
    };
    let used = move || gpu.memory().map(|(free, total)| total - free).unwrap_or(0);
    let base = *IDLE_USED.get_or_init(used);
    let (stop, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(base)));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(used(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let out = f();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, peak.load(Ordering::Relaxed).saturating_sub(base))
}

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
    let fmt = tracing_subscriber::fmt::layer()
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::EnvFilter::from_env("BITSAGE_LOG"));
    // Every INFO span (Stwo's phases and ours), and the CUDA backend's DEBUG
    // spans around its operations (FRI folds, Merkle layers, ...), only
    // while an instrumented proof runs: a span the timed proofs made would
    // cost them the registry's bookkeeping (3-5 % of a 2^12-row proof's
    // host samples, in the host profile), which a node without a
    // debug subscriber never pays.
    // The switch is a dynamic filter: a plain `filter_fn` caches its first
    // answer per callsite, and the first proofs run with the layer off.
    let phases = PhaseLayer.with_filter(tracing_subscriber::filter::FilterExt::and(
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::INFO)
            .with_target("bitsage_cuda", tracing_subscriber::filter::LevelFilter::DEBUG),
        tracing_subscriber::filter::dynamic_filter_fn(|_, _| PHASES_ON.load(Ordering::Relaxed)),
    ));
    tracing_subscriber::registry().with(fmt).with(phases).init();
    let args: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (lo, hi) = (args.first().copied().unwrap_or(10), args.get(1).copied().unwrap_or(16));
    bitsage_cuda::backend::count_traffic(true);
    match bitsage_cuda::backend::init() {
        Ok(g) => {
            println!("device: {}", g.name().unwrap_or_default());
            IDLE_USED.get_or_init(|| g.memory().map(|(free, total)| total - free).unwrap_or(0));
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let codec = bincode::DefaultOptions::new().with_fixint_encoding();
    let opts = ProveOptions::default();
    let mut failed = 0;
    println!(
        "| program | CPU rows | SIMD prove ms | CUDA prove ms (median of {TIMED_RUNS}) | CUDA min-max | SIMD/CUDA | proof bytes equal | GPU proof verifies | GPU-built rows = host's |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut cases: Vec<(String, Program, Vec<M31>, Vec<M31>)> = Vec::new();
    for log in lo..=hi {
        let n = mac_loop_iterations_for_rows(1 << log);
        cases.push((format!("mac_loop 2^{log}"), mac_loop(), vec![M31(n), M31(7)], vec![]));
    }
    // A different random program (seeded by the size) at every size.
    for log in lo..=hi {
        let random = samples::random_program(u64::from(log), RANDOM_BODY);
        let iters = random.iterations_for_rows(1 << log);
        cases.push((format!("random_program #{log} 2^{log}"), random.program, vec![M31(iters)], vec![M31(5)]));
    }
    cases.push(("hash_loop 300".into(), hash_loop(), vec![M31(300)], vec![]));
    cases.push(("every_opcode_loop 3000".into(), samples::every_opcode_loop(), vec![M31(3000)], vec![M31(11)]));
    let mut breakdown = Vec::new();
    let mut chain_cases = Vec::new();
    let mut traffic_lines = Vec::new();
    let mut all_spans: Vec<(String, Vec<(&'static str, Duration)>)> = Vec::new();
    let mut traces: Vec<String> = Vec::new();
    for (name, program, input, advice) in cases {
        let trace = match execute(&program, &input, &advice, ExecLimits::default()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: {e}");
                failed += 1;
                continue;
            }
        };
        let rows_equal = bitsage_prover::cuda::check_device_rows(&program, &trace);
        if let Err(e) = &rows_equal {
            eprintln!("{name}: the GPU-built rows differ from the host's: {e}");
        }
        let st = Statement { program, input, output: trace.output.clone(), security: SecurityLevel::Bits96 };
        if !name.starts_with("random_program") {
            chain_cases.push((name.clone(), st.clone(), trace.clone()));
        }
        // Warm-up on the GPU (kernel compilation / cache load) is excluded from the timed run.
        let _ = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
        let t0 = Instant::now();
        let simd = prove_trace_on::<SimdBackend>(&st, &trace, &opts, &Forgery::None).map(|p| p.0);
        let simd_ms = t0.elapsed().as_secs_f64() * 1e3;
        // The timed runs: no span barriers, no memory sampling; the median
        // of TIMED_RUNS proofs (one proof's time varies by tens of percent
        // with what the host's cores were doing just before).
        let mut cuda = None;
        let mut times_ms = Vec::with_capacity(TIMED_RUNS);
        for _ in 0..TIMED_RUNS {
            let t1 = Instant::now();
            let p = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
            times_ms.push(t1.elapsed().as_secs_f64() * 1e3);
            cuda.get_or_insert(p);
        }
        let Some(cuda) = cuda else { continue };
        times_ms.sort_by(f64::total_cmp);
        let cuda_ms = times_ms[TIMED_RUNS / 2];
        let (cuda_min, cuda_max) = (times_ms[0], times_ms[TIMED_RUNS - 1]);
        // The instrumented run: phases (device synchronised at every span
        // edge), memory peak, host traffic.
        span_times().lock().unwrap_or_else(|p| p.into_inner()).clear();
        let traffic0 = bitsage_cuda::backend::traffic();
        PHASES_ON.store(true, Ordering::Relaxed);
        let t2 = Instant::now();
        let (instrumented, mem_peak) =
            with_memory_peak(|| prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None));
        let instrumented_ms = t2.elapsed().as_secs_f64() * 1e3;
        PHASES_ON.store(false, Ordering::Relaxed);
        let times = span_times().lock().unwrap_or_else(|p| p.into_inner()).clone();
        let traffic1 = bitsage_cuda::backend::traffic();
        let host_io: Vec<String> = bitsage_cuda::backend::TRAFFIC_KINDS
            .iter()
            .zip(traffic0.iter().zip(&traffic1))
            .map(|(k, (a, b))| {
                format!("{k} {} ({:.1} MB, {:.1} ms)", b.0 - a.0, (b.1 - a.1) as f64 / 1e6, (b.2 - a.2) as f64 / 1e6)
            })
            .collect();
        traffic_lines.push(format!("- {name}: {}", host_io.join("; ")));
        let mut spans: Vec<(&'static str, Duration)> = times.iter().map(|(k, v)| (*k, *v)).collect();
        spans.sort_by_key(|s| std::cmp::Reverse(s.1));
        all_spans.push((name.clone(), spans));
        if bitsage_cuda::profile::wanted() {
            let traced = bitsage_cuda::profile::start().and_then(|()| {
                let t = Instant::now();
                let _ = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                bitsage_cuda::profile::stop().map(|trace| (ms, trace))
            });
            match traced {
                Ok((ms, t)) => traces
                    .push(format!("\nCUPTI trace of one proof of {name} ({ms:.1} ms traced):\n\n{}", t.markdown(30))),
                Err(e) => eprintln!("{e}"),
            }
        }
        #[cfg(feature = "host-profile")]
        if let Some(runs) = host_profile::runs() {
            host_profile::sample(&name, runs, || {
                let _ = prove_trace_on::<CudaBackend>(&st, &trace, &opts, &Forgery::None);
            });
        }
        if let Ok((_, stats)) = &instrumented {
            let ms = |names: &[&str]| -> f64 {
                names.iter().map(|n| times.get(n).map_or(0.0, |d| d.as_secs_f64() * 1e3)).sum()
            };
            let phase_ms: Vec<f64> = PHASES.iter().map(|(_, spans)| ms(spans)).collect();
            let other = instrumented_ms - phase_ms.iter().sum::<f64>();
            let cells: Vec<String> = phase_ms.iter().chain([other].iter()).map(|v| format!("{v:.0}")).collect();
            breakdown.push(format!(
                "| {name} | {instrumented_ms:.0} | {} | {:.2e} | {:.0} | {} |",
                stats.main_columns,
                stats.cpu_rows as f64 / (cuda_ms / 1e3),
                mem_peak as f64 / (1 << 20) as f64,
                cells.join(" | ")
            ));
        }
        let cuda = cuda.map(|p| p.0);
        let (Ok(simd), Ok(cuda)) = (simd, cuda) else {
            println!("| {name} | - | - | - | - | - | prover refused | - | - |");
            failed += 1;
            continue;
        };
        let equal = codec.serialize(&simd).ok() == codec.serialize(&cuda).ok();
        let verifies = bitsage_air::verify(&st, &cuda).is_ok();
        failed += usize::from(!equal || !verifies || rows_equal.is_err());
        println!(
            "| {name} | 2^{} | {simd_ms:.0} | {cuda_ms:.0} | {cuda_min:.0}-{cuda_max:.0} | {:.2}x | {equal} | {verifies} | {} |",
            cuda.claim.cpu_log_size,
            simd_ms / cuda_ms,
            rows_equal.is_ok()
        );
    }
    let names: Vec<&str> = PHASES.iter().map(|(n, _)| *n).collect();
    println!("\nCUDA proofs by phase, from a second, instrumented proof of each trace (ms; the device is synchronised at every span edge, so the total is above the timed run's; `other` is the rest: decommitment, channel, small host work):\n");
    println!(
        "| program | instrumented ms | main cols | CPU rows/s | GPU mem peak MiB | {} | other |",
        names.join(" | ")
    );
    println!("|---|---|---|---|---|{}---|", "---|".repeat(names.len()));
    for row in breakdown {
        println!("{row}");
    }
    println!("\nHost traffic and host time of each CUDA proof in the generic column API (calls, bytes, wall time):\n");
    for line in traffic_lines {
        println!("{line}");
    }
    // Every span (nested ones too, so they overlap), for locating what
    // `other` holds.
    for (name, spans) in all_spans {
        let cells: Vec<String> = spans.iter().map(|(k, d)| format!("{k} {:.1}", d.as_secs_f64() * 1e3)).collect();
        println!("\nAll spans of {name} (ms, inclusive): {}", cells.join("; "));
    }
    for t in traces {
        println!("{t}");
    }
    if !std::env::args().any(|a| a == "--no-chain") {
        failed += chain_proofs(&chain_cases);
    }
    if failed > 0 {
        eprintln!("{failed} case(s) failed");
        std::process::exit(1);
    }
}

/// The Poseidon252 table: SIMD and CUDA proofs of each case over the chain's
/// channel, byte for byte, and the Rust verifier of chain proofs on the GPU
/// one. Returns the number of cases that failed.
fn chain_proofs(cases: &[(String, Statement, obelysk_vm::exec::Trace)]) -> usize {
    let codec = bincode::DefaultOptions::new().with_fixint_encoding();
    let opts = ProveOptions::default();
    let mut failed = 0;
    println!("\nProofs over the Poseidon252 channel (what the on-chain verifier checks):\n");
    println!(
        "| program | CPU rows | SIMD prove ms | CUDA prove ms (median of {TIMED_RUNS}) | SIMD/CUDA | proof bytes equal | GPU proof verifies |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, st, trace) in cases {
        // Warm-up: the Poseidon252 kernels compile on the first proof.
        let _ = prove_poseidon252_on_gpu(st, trace, &opts);
        let t0 = Instant::now();
        let simd = prove_poseidon252(st, trace, &opts).map(|p| p.0);
        let simd_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut times_ms = Vec::with_capacity(TIMED_RUNS);
        let mut cuda = None;
        for _ in 0..TIMED_RUNS {
            let t1 = Instant::now();
            let p = prove_poseidon252_on_gpu(st, trace, &opts).map(|p| p.0);
            times_ms.push(t1.elapsed().as_secs_f64() * 1e3);
            cuda.get_or_insert(p);
        }
        times_ms.sort_by(f64::total_cmp);
        let cuda_ms = times_ms[TIMED_RUNS / 2];
        let (Ok(simd), Some(Ok(cuda))) = (simd, cuda) else {
            println!("| {name} | - | - | - | - | prover refused | - |");
            failed += 1;
            continue;
        };
        let equal = codec.serialize(&simd).ok() == codec.serialize(&cuda).ok();
        let verifies = bitsage_air::verify::verify_poseidon252(st, &cuda).is_ok();
        failed += usize::from(!equal || !verifies);
        println!(
            "| {name} | 2^{} | {simd_ms:.0} | {cuda_ms:.0} | {:.1}x | {equal} | {verifies} |",
            cuda.claim.cpu_log_size,
            simd_ms / cuda_ms
        );
    }
    failed
}

/// Host stacks of CUDA proofs, sampled in process: the GPU machine has no
/// `perf`, and a small proof's time is the host's (driver calls, Stwo's
/// work between them), not the GPU's.
#[cfg(feature = "host-profile")]
mod host_profile {
    use std::collections::HashMap;
    use std::fmt::Write as _;
    use std::time::Instant;

    /// Proofs to sample per trace, from `BITSAGE_HOST_PROFILE`.
    pub fn runs() -> Option<usize> {
        std::env::var("BITSAGE_HOST_PROFILE").ok()?.parse().ok().filter(|n| *n > 0)
    }

    /// Runs `prove` `runs` times under the sampler; prints the top
    /// functions by inclusive and by self samples and writes the folded
    /// stacks.
    pub fn sample(name: &str, runs: usize, mut prove: impl FnMut()) {
        let guard = match pprof::ProfilerGuardBuilder::default()
            .frequency(997)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(g) => g,
            Err(e) => {
                eprintln!("host profile of {name}: {e}");
                return;
            }
        };
        let t = Instant::now();
        for _ in 0..runs {
            prove();
        }
        let wall_ms = t.elapsed().as_secs_f64() * 1e3;
        let report = match guard.report().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("host profile of {name}: {e}");
                return;
            }
        };
        drop(guard);
        // Root first; a frame's inlined functions outermost first.
        let mut folded = String::new();
        let (mut inclusive, mut own): (HashMap<String, isize>, HashMap<String, isize>) = Default::default();
        let mut total = 0isize;
        for (frames, &count) in &report.data {
            let stack: Vec<String> =
                frames.frames.iter().rev().flat_map(|f| f.iter().rev().map(|s| short(&s.name()))).collect();
            total += count;
            let mut seen = std::collections::HashSet::new();
            for f in &stack {
                if seen.insert(f.as_str()) {
                    *inclusive.entry(f.clone()).or_default() += count;
                }
            }
            if let Some(leaf) = stack.last() {
                *own.entry(leaf.clone()).or_default() += count;
            }
            let _ = writeln!(folded, "{};{} {count}", frames.thread_name, stack.join(";"));
        }
        let dir = std::env::var("BITSAGE_HOST_PROFILE_DIR").unwrap_or_else(|_| ".".into());
        let file: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        let path = std::path::Path::new(&dir).join(format!("host-profile-{file}.folded"));
        if let Err(e) = std::fs::write(&path, folded) {
            eprintln!("writing {}: {e}", path.display());
        }
        println!(
            "\nHost profile of {name}: {runs} proofs in {wall_ms:.0} ms ({:.2} ms a proof), {total} samples of CPU time at 997 Hz, stacks in {}:\n",
            wall_ms / runs as f64,
            path.display()
        );
        for (title, table) in [("inclusive", &inclusive), ("self", &own)] {
            let mut rows: Vec<(&String, &isize)> = table.iter().collect();
            rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            println!("| {title} samples | % | function |\n|---:|---:|---|");
            for (f, c) in rows.into_iter().take(40) {
                println!("| {c} | {:.1} | `{f}` |", 100.0 * *c as f64 / total.max(1) as f64);
            }
            println!();
        }
    }

    /// A symbol without its hash suffix and generic arguments, so that one
    /// function's instances add up.
    fn short(name: &str) -> String {
        let name = name.rsplit_once("::h").filter(|(_, h)| h.len() == 16).map_or(name, |(n, _)| n);
        // `<A as B>::f` keeps its qualified-path brackets; every other
        // `<...>` (generic arguments) goes.
        let mut out = String::with_capacity(name.len());
        let (mut depth, mut qualified) = (0usize, false);
        for (i, c) in name.char_indices() {
            match c {
                '<' => {
                    qualified |= i == 0;
                    depth += 1;
                    if i == 0 {
                        out.push(c);
                    }
                }
                '>' => {
                    depth = depth.saturating_sub(1);
                    if qualified && depth == 0 {
                        out.push(c);
                        qualified = false;
                    }
                }
                _ if depth == 0 || (qualified && depth == 1) => out.push(c),
                _ => {}
            }
        }
        out.replace(";", ",")
    }
}
