//! Constraint evaluation on the GPU: `ComponentProver<CudaBackend>` for
//! framework components, running the kernels [`crate::codegen`] generates
//! from the component's own AIR description.

use std::sync::Arc;

use bitsage_air::cpu::CpuEval;
use bitsage_air::hash::HashEval;
use bitsage_air::memory::MemEval;
use bitsage_air::range::RangeEval;
use bitsage_air::relations::Relations;
use bitsage_air::rom::RomEval;
use cudarc::driver::CudaSlice;
use stwo::core::constraints::coset_vanishing;
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::Column;
use stwo::prover::{ComponentProver, DomainEvaluationAccumulator, EvaluationMode, Trace};
use stwo_constraint_framework::expr::ExprEvaluator;
use stwo_constraint_framework::{FrameworkComponent, FrameworkEval};

use crate::backend::{gpu, CudaBackend};
use crate::codegen::{self, bind_params};
use crate::compile::Source;
use crate::{CompiledConstraints, Memo, PerDevice};

/// A component whose relation elements the GPU kernel needs as parameters.
pub trait GpuRelations {
    /// `(relation name, z, α^i)` for every relation the component uses.
    fn relation_elements(&self) -> Vec<(String, SecureField, Vec<SecureField>)>;
}

macro_rules! gpu_relations {
    ($($t:ty),*) => {$(
        impl GpuRelations for $t {
            fn relation_elements(&self) -> Vec<(String, SecureField, Vec<SecureField>)> {
                self.rels.elements()
            }
        }
    )*};
}

gpu_relations!(CpuEval, RomEval, MemEval, RangeEval, HashEval);

pub use bitsage_air::expr::expressions as obelysk_expressions;

/// Compiled kernels per component type, for the life of the process.
fn compiled<E: FrameworkEval>(eval: &E) -> Arc<CompiledConstraints> {
    static CACHE: PerDevice<String, CompiledConstraints> = PerDevice::new();
    CACHE
        .get_or_try(component_key::<E>(), || gpu().compile_constraints((*kernel_of(eval)).clone()))
        .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)))
}

/// The generated constraint kernels of a component type (named after it),
/// generated once a process: they depend on neither the log size nor the
/// relation draw (a test holds this), and the hash component's take tens of
/// milliseconds to generate, which [`crate::compile::prepare`] (or
/// [`crate::compile::warm`]) has then already spent.
fn kernel_of<E: FrameworkEval>(eval: &E) -> Arc<codegen::ConstraintKernel> {
    static MEMO: Memo<String, codegen::ConstraintKernel> = Memo::new();
    MEMO.get(component_key::<E>(), || generate(eval))
}

/// [`kernel_of`], generated anew.
fn generate<E: FrameworkEval>(eval: &E) -> codegen::ConstraintKernel {
    codegen::generate(&format!("constraints_{}", component_key::<E>()), &eval.evaluate(ExprEvaluator::new()))
}

/// A component type's name in its kernels and caches: `cpueval` for `CpuEval`.
fn component_key<E>() -> String {
    std::any::type_name::<E>().rsplit("::").next().unwrap_or("component").to_lowercase()
}

/// The hash component's constraint kernels (`kernel_of(&HashEval ..)`).
pub const HASH_CONSTRAINTS: &str = "constraints_hasheval";

/// NVRTC options of the hash component's constraint kernels. ptxas at its
/// default level (`-O3`) took 104 s on one of their parts (the partial
/// rounds' chain of states) on an H100, and 7.7 s at `-O1`. The other
/// components' kernels keep `-O3`: they compile in a few seconds, and at
/// `-O1` a 2^20-row proof's constraint phase took 9 ms instead of 7
/// (host/benches/RESULTS.md, "ptxas -O1 for the hash constraints").
pub const HASH_CONSTRAINT_NVRTC_OPTIONS: &[&str] = &["-Xptxas", "-O1"];

/// One NVRTC program per part of `kernel`, so the parts compile side by side.
pub fn part_sources(kernel: &codegen::ConstraintKernel) -> Vec<Source> {
    let options: &[&str] = if kernel.name == HASH_CONSTRAINTS { HASH_CONSTRAINT_NVRTC_OPTIONS } else { &[] };
    kernel.parts.iter().map(|(name, body)| Source::with_headers(name, body).with_options(options)).collect()
}

/// The constraint kernels' sources of the four always-present components
/// and, with `hash`, the hash component's, as [`crate::compile::prepare`]
/// compiles them. Relation elements and sizes are kernel parameters, so any
/// log size and relation draw give the same sources.
pub(crate) fn kernel_sources(hash: bool) -> Vec<Source> {
    let rels = Relations::draw(&mut stwo::core::channel::Blake2sChannel::default());
    let r = || rels.clone();
    let log_size = 4;
    let mut kernels = vec![
        kernel_of(&CpuEval { log_size, rels: r() }),
        kernel_of(&RomEval { log_size, rels: r() }),
        kernel_of(&MemEval { log_size, rels: r() }),
        kernel_of(&RangeEval { log_size, rels: r() }),
    ];
    if hash {
        kernels.push(kernel_of(&HashEval { log_size, rels: r() }));
    }
    kernels.iter().flat_map(|k| part_sources(k)).collect()
}

impl<E: FrameworkEval + GpuRelations + Sync> ComponentProver<CudaBackend> for FrameworkComponent<E> {
    fn evaluate_constraint_quotients_on_domain(
        &self,
        trace: &Trace<'_, CudaBackend>,
        evaluation_accumulator: &mut DomainEvaluationAccumulator<CudaBackend>,
    ) {
        let n = stwo::core::air::Component::n_constraints(self);
        if n == 0 {
            return;
        }
        if self.is_disabled() {
            evaluation_accumulator.skip_coeffs(n);
            return;
        }
        let EvaluationMode::SubDomain { log_expansion } = evaluation_accumulator.evaluation_mode() else {
            panic!("CUDA: constraint evaluation needs the committed evaluations (EvaluationMode::SubDomain)");
        };
        assert!(self.preprocessed_column_indices().is_empty(), "CUDA: preprocessed columns are not supported yet");
        let _span = tracing::info_span!("constraints on the GPU").entered();
        let trace_log = self.log_size();
        let eval_domain = CanonicCoset::new(self.max_constraint_log_degree_bound() + log_expansion)
            .circle_domain()
            .split(log_expansion)
            .0;
        let eval_log = eval_domain.log_size();

        let c = compiled(&**self);
        let k = &c.kernel;
        // Kernel column (interaction, expression index) -> committed column:
        // per interaction, expression indices increase in declaration order.
        let mut cols: Vec<&CudaSlice<u32>> = Vec::with_capacity(k.columns.len());
        for span in self.trace_locations() {
            let polys = &trace.polys[span.tree_index][span.col_start..span.col_end];
            let read: Vec<usize> = k.columns.iter().filter(|c| c.0 == span.tree_index).map(|c| c.1).collect();
            assert_eq!(
                read.len(),
                polys.len(),
                "CUDA: the kernel for {} reads {} of the {} columns of interaction {}",
                k.name,
                read.len(),
                polys.len(),
                span.tree_index
            );
            cols.extend(polys.iter().map(|p| p.evals.values.buf()));
        }

        let (base, ext) = bind_params(k, &self.relation_elements(), self.claimed_sum(), trace_log)
            .unwrap_or_else(|p| panic!("CUDA: cannot bind parameter {p} of {}", k.name));
        let [accum] = evaluation_accumulator.columns([(eval_log, n)]);
        let powers: Vec<u32> =
            accum.random_coeff_powers.iter().rev().flat_map(|p| p.to_m31_array().map(|w| w.0)).collect();
        let row_res = gpu()
            .eval_constraints(&c, &cols, &base, &ext, &powers, trace_log, eval_log)
            .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));

        let trace_coset = CanonicCoset::new(trace_log).coset();
        let mut denom_inv: Vec<BaseField> = (0..1 << (eval_log - trace_log))
            .map(|i| coset_vanishing(trace_coset, eval_domain.at(i)).inverse())
            .collect();
        stwo::core::utils::bit_reverse(&mut denom_inv);
        let denom: Vec<u32> = denom_inv.iter().map(|d| d.0).collect();
        let [a0, a1, a2, a3] = &mut accum.col.columns;
        debug_assert_eq!(a0.len(), 1 << eval_log);
        gpu()
            .accumulate_quotient(
                &row_res,
                &denom,
                trace_log,
                eval_log,
                [a0.buf_mut(), a1.buf_mut(), a2.buf_mut(), a3.buf_mut()],
            )
            .unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)));
    }
}

#[cfg(test)]
mod tests {
    use stwo::core::channel::{Blake2sChannel, Channel};

    use super::*;

    #[test]
    fn constraint_sources_depend_on_neither_the_log_size_nor_the_relation_draw() {
        // `prepare` compiles sources made at one size with one draw; a proof at another size,
        // with its own draw, must load exactly those.
        let a = Relations::draw(&mut Blake2sChannel::default());
        let mut ch = Blake2sChannel::default();
        ch.mix_u64(7);
        let b = Relations::draw(&mut ch);
        assert_ne!(format!("{:?}", a.elements()), format!("{:?}", b.elements()));
        let pairs = [
            (generate(&CpuEval { log_size: 4, rels: a.clone() }), generate(&CpuEval { log_size: 13, rels: b.clone() })),
            (
                generate(&RangeEval { log_size: 4, rels: a.clone() }),
                generate(&RangeEval { log_size: 9, rels: b.clone() }),
            ),
            (generate(&HashEval { log_size: 4, rels: a }), generate(&HashEval { log_size: 11, rels: b })),
        ];
        for (x, y) in pairs {
            assert_eq!(part_sources(&x), part_sources(&y), "{}", x.name);
            // The whole kernel (columns, masks, parameters), as the process keeps one per component.
            assert_eq!(format!("{x:?}"), format!("{y:?}"), "{}", x.name);
        }
        assert_eq!(kernel_sources(true).iter().filter(|s| s.name.starts_with("constraints_cpueval_")).count(), 2);
    }
}
