//! The ObelyskVM proof on the CUDA backend: the CPU and hash components'
//! rows are built on the device from the uploaded execution steps and hash
//! calls (`bitsage_cuda::cputrace`, `bitsage_cuda::hashtrace`), the smaller
//! components on the host and uploaded once; the LogUp interaction trace is
//! generated on the device (`bitsage_cuda::logup`), and everything after
//! runs on the device.

use bitsage_air::cpu::CpuCols;
use bitsage_air::hash::HashCols;
use bitsage_air::relations::Relations;
use bitsage_air::statement::Components;
use bitsage_cuda::backend::{CudaBackend, DevCol};
use bitsage_cuda::{cputrace, hashtrace, logup};
use obelysk_vm::exec::Trace;
use obelysk_vm::isa::Program;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::Column;
use stwo::prover::poly::circle::CircleEvaluation;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::ComponentProver;

use crate::tracegen::{build_main_trace, build_main_trace_deferred, hash_given, MainTrace, HASH_GIVEN};
use crate::{ProveError, ProverBackend};

pub use bitsage_cuda::backend::init;

impl ProverBackend for CudaBackend {
    /// Device copies of every component's main columns, with its log size.
    type MainCopy = Vec<logup::LogupInputs>;

    /// The out-of-domain samples come from the coefficients, batched over
    /// every column of a size (`eval_at_point` in the CUDA backend): a
    /// dot product over 2^n coefficients instead of over the 2^(n + blowup)
    /// evaluated points, and no barycentric weights to compute.
    const STORE_COEFFICIENTS: bool = true;

    /// Compiles (or loads from the caches) every kernel the proof will use,
    /// in parallel, so a new machine's first proof waits for its slowest
    /// kernel rather than for all of them in turn.
    fn prepare(main: &MainTrace, poseidon252: bool) -> Result<(), ProveError> {
        let needs = bitsage_cuda::compile::Needs { hash: main.claim.hash_log_size.is_some(), poseidon252 };
        bitsage_cuda::compile::prepare(needs)
            .map(|_| ())
            .map_err(|e| ProveError::backend_by("compiling the CUDA kernels", e))
    }

    fn expect_queries(lifting_log_size: u32, config: &stwo::core::pcs::PcsConfig) -> Result<(), ProveError> {
        let shape = bitsage_cuda::backend::DecommitShape {
            lifting_log_size,
            n_queries: config.fri_config.n_queries,
            fold_step: config.fri_config.fold_step,
        };
        bitsage_cuda::backend::expect_decommit(shape).map_err(|e| ProveError::backend_by("opening the GPU lane", e))
    }

    /// The CPU rows are left to the device (see [`ProverBackend::convert_main`]):
    /// the steps are packed and uploaded to this thread's lane while the
    /// host builds the other components (at 2^20 steps, about 100 MB over
    /// PCIe beside 6 ms of host work).
    fn main_trace<'t>(program: &Program, trace: &'t Trace) -> MainTrace<'t> {
        let Ok(g) = bitsage_cuda::backend::init() else {
            // No device: `convert_main` reports it.
            return build_main_trace_deferred(program, trace);
        };
        let (steps, mut main) = rayon::join(
            || {
                let _s = tracing::info_span!("steps upload").entered();
                cputrace::upload_steps(g, &trace.steps)
            },
            || build_main_trace_deferred(program, trace),
        );
        // An upload that failed is retried, and reported, where the rows are built.
        main.staged = steps.ok().map(|b| Box::new(b) as Box<dyn std::any::Any + Send + Sync>);
        main
    }

    fn convert_main(main: &MainTrace) -> (Vec<CircleEvaluation<Self, M31, BitReversedOrder>>, Self::MainCopy) {
        let components = main.components();
        let mut dev = {
            let _s = tracing::info_span!("upload").entered();
            let cols: Vec<&[M31]> = components.iter().flat_map(|c| c.columns.iter().map(|c| c.as_slice())).collect();
            DevCol::<M31>::upload_many(&cols)
        };
        if let Some(steps) = main.cpu_steps {
            let g = bitsage_cuda::backend::init()
                .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
            // Steps staged by `main_trace` on this lane's stream (so the rows' kernel runs after them).
            let staged = main.staged.as_ref().and_then(|s| s.downcast_ref::<bitsage_cuda::Buf>()).filter(|b| {
                b.len() == (steps.len() * cputrace::STEP_WORDS).max(1) && std::sync::Arc::ptr_eq(b.stream(), &g.stream)
            });
            let uploaded;
            let packed = match staged {
                Some(b) => b,
                None => {
                    let _s = tracing::info_span!("steps upload").entered();
                    uploaded = cputrace::upload_steps(g, steps)
                        .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
                    &uploaded
                }
            };
            let _s = tracing::info_span!("cpu rows on the GPU").entered();
            // The range table's multiplicity columns (all but its first) get the CPU rows' range checks.
            let range = main.rom.columns.len() + main.mem.columns.len();
            let mut lanes: Vec<_> =
                dev[range + 1..range + main.range.columns.len()].iter_mut().map(|c| c.buf_mut()).collect();
            let claim = &main.claim;
            let cpu = cputrace::cpu_rows(packed, steps.len(), claim.cpu_log_size, &mut lanes, claim.range_log_size)
                .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
            dev.splice(0..0, cpu);
        }
        if let (Some(calls), Some(log_size)) = (main.hash_calls, main.claim.hash_log_size) {
            let given = {
                let _s = tracing::info_span!("steps upload").entered();
                let g = bitsage_cuda::backend::init()
                    .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
                g.upload_rows(calls.len(), HASH_GIVEN, |first, out| {
                    for (row, call) in out.chunks_exact_mut(HASH_GIVEN).zip(&calls[first..]) {
                        row.iter_mut().zip(hash_given(call)).for_each(|(o, v)| *o = v.0);
                    }
                })
                .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)))
            };
            let _s = tracing::info_span!("hash rows on the GPU").entered();
            let hash = hashtrace::hash_rows(&given, HASH_GIVEN, calls.len(), log_size)
                .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
            dev.extend(hash);
        }
        // The commitment interpolates its columns in place; the LogUp trace
        // reads a copy of the columns it needs (one launch per component).
        let mut copies = Vec::new();
        let mut evals = Vec::with_capacity(dev.len());
        let mut dev = dev.into_iter();
        for (i, c) in components.iter().enumerate() {
            let n = match i {
                0 if main.cpu_steps.is_some() => CpuCols::<M31>::N_COLUMNS,
                4 if main.hash_calls.is_some() => HashCols::<M31>::N_COLUMNS,
                _ => c.columns.len(),
            };
            let cols: Vec<DevCol<M31>> = dev.by_ref().take(n).collect();
            copies.push(
                logup::LogupInputs::save(i, &cols, c.log_size)
                    .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e))),
            );
            let domain = CanonicCoset::new(c.log_size).circle_domain();
            evals.extend(cols.into_iter().map(|col| CircleEvaluation::new(domain, col)));
        }
        (evals, copies)
    }

    fn interaction_trace(
        _: &MainTrace,
        copy: Self::MainCopy,
        rels: &Relations,
    ) -> (Vec<CircleEvaluation<Self, M31, BitReversedOrder>>, [SecureField; 5]) {
        let mut evals = Vec::new();
        let mut sums = [SecureField::default(); 5];
        for (i, inputs) in copy.iter().enumerate() {
            let (trace, sum) = logup::component_trace(inputs, rels)
                .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
            let domain = CanonicCoset::new(inputs.log_size()).circle_domain();
            evals.extend(trace.into_iter().map(|c| CircleEvaluation::new(domain, c)));
            sums[i] = sum;
        }
        (evals, sums)
    }

    fn provers(c: &Components) -> Vec<&dyn ComponentProver<Self>> {
        crate::component_provers(c)
    }
}

/// Builds the main trace of `trace` as the CUDA backend does (CPU and hash
/// rows on the device) and on the host, and compares every column cell by
/// cell, the range multiplicities included: the kernel-level check of
/// `cputrace` and `hashtrace` (the proof's commitment would differ, too).
/// Returns the first difference.
pub fn check_device_rows(program: &Program, trace: &Trace) -> Result<(), String> {
    let host = build_main_trace(program, trace);
    let deferred = build_main_trace_deferred(program, trace);
    let (evals, _) = CudaBackend::convert_main(&deferred);
    let host_cols = host.components().into_iter().flat_map(|c| c.columns.iter().map(|c| c.as_slice().to_vec()));
    let names = ["cpu", "rom", "memory", "range", "hash"];
    let owner = |i: usize| {
        let mut at = i;
        for (c, n) in host.components().iter().zip(names) {
            if at < c.columns.len() {
                return format!("{n} column {at}");
            }
            at -= c.columns.len();
        }
        format!("column {i}")
    };
    let mut n = 0;
    for (i, (h, d)) in host_cols.zip(&evals).enumerate() {
        let d = d.values.to_cpu();
        if let Some(r) = (0..h.len().max(d.len())).find(|&r| h.get(r) != d.get(r)) {
            return Err(format!("{} row {r}: host {:?}, device {:?}", owner(i), h.get(r), d.get(r)));
        }
        n += 1;
    }
    if n != evals.len() || n != host.n_columns() {
        return Err(format!("{} columns on the device, {} on the host", evals.len(), host.n_columns()));
    }
    Ok(())
}
