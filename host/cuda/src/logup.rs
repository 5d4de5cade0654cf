//! The LogUp interaction trace on the GPU, from the main trace already on
//! the device.
//!
//! Each component's fraction kernel is generated from the same `lookups()`
//! the CPU trace generator and the constraints use (evaluated over symbolic
//! columns), so there is no second copy of the lookups to keep in step. The
//! last column's running sum is Stwo's `finalize_last` (`kernels/logup.cu`).
//! The result is the same field elements the SIMD generator writes, so the
//! proof bytes are the same.

use std::sync::Arc;

use bitsage_air::cpu::CpuCols;
use bitsage_air::hash::HashCols;
use bitsage_air::memory::MemCols;
use bitsage_air::range::RangeCols;
use bitsage_air::relations::{Lookup, Relations};
use bitsage_air::rom::RomCols;
use cudarc::driver::CudaSlice;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo_constraint_framework::expr::BaseExpr;

use crate::backend::{gpu, DevCol};
use crate::codegen::{bind_ext, generate_logup, LogupKernel};
use crate::{CudaError, GeneratedModule, PerDevice, Result};

/// The component's main-trace columns as symbolic expressions, in order.
fn columns() -> impl FnMut() -> BaseExpr {
    let mut i = 0;
    move || {
        let e = BaseExpr::Col((1, i, 0).into());
        i += 1;
        e
    }
}

/// The ObelyskVM components, named as their kernels are, in the AIR's order.
pub const COMPONENTS: [&str; 5] = ["cpu", "rom", "memory", "range", "hash"];

/// A component's lookups over symbolic main-trace columns. Values that
/// would repeat a large subexpression (the Poseidon2 state after each linear
/// layer) are named intermediates, computed once per row in order.
pub struct SymbolicLookups {
    pub intermediates: Vec<(String, BaseExpr)>,
    pub lookups: Vec<Lookup<BaseExpr>>,
}

/// The lookups of component `COMPONENTS[i]` (none for an index past them).
pub fn lookups_of(i: usize) -> SymbolicLookups {
    let plain = |lookups| SymbolicLookups { intermediates: Vec::new(), lookups };
    match i {
        0 => plain(CpuCols::read(columns()).lookups()),
        1 => plain(RomCols::read(columns()).lookups()),
        2 => plain(MemCols::read(columns()).lookups()),
        3 => plain(RangeCols::read(columns()).lookups()),
        4 => {
            // The output state is linear in the columns but, expanded, far
            // too large: name the state after every linear layer, as the
            // constraint evaluator does.
            let mut intermediates = Vec::new();
            let (_, lookups) = HashCols::read(columns()).air(&mut |v| {
                let name = format!("t{}", intermediates.len());
                intermediates.push((name.clone(), v));
                BaseExpr::Param(name)
            });
            SymbolicLookups { intermediates, lookups }
        }
        _ => plain(Vec::new()),
    }
}

struct Compiled {
    kernel: LogupKernel,
    module: GeneratedModule,
}

/// Compiled fraction kernels per (component, device), for the process.
fn compiled(component: usize, rels: &Relations) -> Result<Arc<Compiled>> {
    static CACHE: PerDevice<usize, Compiled> = PerDevice::new();
    CACHE.get_or_try(component, || {
        let names: Vec<String> = rels.elements().into_iter().map(|e| e.0).collect();
        let name = COMPONENTS.get(component).copied().unwrap_or("component");
        let kernel = generate_logup(&format!("logup_{name}"), &lookups_of(component), &names);
        let module = gpu().compile_generated(&kernel.name, &kernel.source, [&kernel.name])?;
        Ok(Compiled { kernel, module })
    })
}

/// Component `COMPONENTS[component]`'s interaction trace, computed on the
/// device from its main-trace columns (`main`, `2^log_size` values each,
/// bit-reversed): 4 coordinate columns per pair of lookups (each the sum of
/// the row's pairs so far), the last one then the running sum over rows,
/// and the component's claimed sum. The same values as
/// the CPU generator (`bitsage_prover::tracegen::interaction_trace`).
pub fn component_trace(
    component: usize,
    main: &[DevCol<M31>],
    log_size: u32,
    rels: &Relations,
) -> Result<(Vec<DevCol<M31>>, SecureField)> {
    if component >= COMPONENTS.len() {
        return Err(CudaError::Unsupported(format!("no component {component}")));
    }
    let c = compiled(component, rels)?;
    let k = &c.kernel;
    let n = 1usize << log_size;
    let cols: Vec<&CudaSlice<u32>> = k
        .columns
        .iter()
        .map(|&i| {
            main.get(i)
                .map(DevCol::buf)
                .ok_or_else(|| CudaError::Unsupported(format!("{}: no main column {i}", k.name)))
        })
        .collect::<Result<_>>()?;
    if k.n_batches == 0 {
        return Err(CudaError::Unsupported(format!("{}: a component without lookups", k.name)));
    }
    let params = bind_ext(&k.ext_params, &rels.elements(), SecureField::default())
        .map_err(|p| CudaError::Unsupported(format!("{}: cannot bind parameter {p}", k.name)))?;
    let g = gpu();
    let mut outs = (0..4 * k.n_batches)
        // SAFETY: the fraction kernel writes every row of every output column.
        .map(|_| unsafe { g.stream.alloc::<u32>(n) }.map_err(CudaError::from))
        .collect::<Result<Vec<_>>>()?;
    g.logup_fractions(&c.module, &cols, &params, log_size, &mut outs)?;
    let last = outs.len() - 4;
    let sum = g.logup_running_sum(&mut outs[last..], log_size)?;
    let claimed = SecureField::from_m31_array(sum.map(M31));
    Ok((outs.into_iter().map(|b| DevCol::from_words(b, n)).collect(), claimed))
}
