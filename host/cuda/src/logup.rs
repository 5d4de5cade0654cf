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
use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::prover::backend::Column;
use stwo_constraint_framework::expr::BaseExpr;

use crate::backend::{gpu, DevCol};
use crate::codegen::{bind_ext, generate_logup, LogupKernel};
use crate::compile::Source;
use crate::{
    launch_1d, Buf, CudaError, GeneratedModule, Gpu, Kernel, Memo, PerDevice, Result, SCAN_CHUNK, SCAN_THREADS,
};

/// The component's main-trace columns as symbolic expressions, in order.
pub(crate) fn columns() -> impl FnMut() -> BaseExpr {
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
    kernel: Arc<LogupKernel>,
    module: GeneratedModule,
}

/// Compiled fraction kernels per (component, device), for the process.
fn compiled(component: usize) -> Result<Arc<Compiled>> {
    static CACHE: PerDevice<usize, Compiled> = PerDevice::new();
    CACHE.get_or_try(component, || {
        let kernel = kernel_of(component);
        let module = gpu().load(&[Source::with_headers(&kernel.name, &kernel.source)], [&kernel.name])?;
        Ok(Compiled { kernel, module })
    })
}

/// Component `component`'s fraction kernel, generated once a process: the
/// relations give only the parameter names, so it is the same for every
/// proof (a test holds this).
fn kernel_of(component: usize) -> Arc<LogupKernel> {
    static MEMO: Memo<usize, LogupKernel> = Memo::new();
    MEMO.get(component, || generate(component, &Relations::draw(&mut stwo::core::channel::Blake2sChannel::default())))
}

/// [`kernel_of`] generated anew, with the parameter names of `rels`.
fn generate(component: usize, rels: &Relations) -> LogupKernel {
    let names: Vec<String> = rels.elements().into_iter().map(|e| e.0).collect();
    let name = COMPONENTS.get(component).copied().unwrap_or("component");
    generate_logup(&format!("logup_{name}"), &lookups_of(component), &names)
}

/// The fraction kernels' sources of the four always-present components and,
/// with `hash`, the hash component's, as [`crate::compile::prepare`]
/// compiles them.
pub(crate) fn kernel_sources(hash: bool) -> Vec<Source> {
    let n = if hash { COMPONENTS.len() } else { COMPONENTS.len() - 1 };
    (0..n)
        .map(|c| {
            let k = kernel_of(c);
            Source::with_headers(&k.name, &k.source)
        })
        .collect()
}

/// The main-trace columns a component's fraction kernel reads, in the
/// kernel's order (the same for every proof: the relations only name the
/// kernel's parameters); none for a component that does not exist.
fn columns_read(component: usize) -> Vec<usize> {
    match component < COMPONENTS.len() {
        true => kernel_of(component).columns.clone(),
        false => Vec::new(),
    }
}

/// A copy of the main-trace columns a component's fraction kernel reads,
/// taken before the commitment interpolates the columns in place: one
/// launch, one buffer, column after column.
pub struct LogupInputs {
    component: usize,
    log_size: u32,
    /// `columns_read(component).len()` columns of `2^log_size` words.
    words: Buf,
}

impl LogupInputs {
    /// Copies component `component`'s columns that its fraction kernel
    /// reads out of `main` (its main-trace columns, `2^log_size` values each).
    pub fn save(component: usize, main: &[DevCol<M31>], log_size: u32) -> Result<LogupInputs> {
        let read = columns_read(component);
        let n = 1usize << log_size;
        let name = COMPONENTS.get(component).copied().unwrap_or("component");
        let cols: Vec<&CudaSlice<u32>> = read
            .iter()
            .map(|&i| match main.get(i) {
                Some(c) if c.len() == n => Ok(c.buf()),
                _ => Err(CudaError::Unsupported(format!("logup_{name}: no main column {i} of 2^{log_size} values"))),
            })
            .collect::<Result<_>>()?;
        let g = gpu();
        // SAFETY: the copy writes every column.
        let mut words = unsafe { g.alloc::<u32>((cols.len() * n).max(1)) }?;
        if !cols.is_empty() {
            let src = g.device_ptrs(cols.iter().copied())?;
            let n64 = n as u64;
            let mut b = g.stream.launch_builder(g.k(Kernel::CopyColumns));
            b.arg(&src).arg(&n64).arg(&mut words);
            let blocks = (n as u64).div_ceil(256).clamp(1, 1024) as u32;
            let cfg =
                LaunchConfig { grid_dim: (blocks, cols.len() as u32, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: column c (of n words, checked above) goes to words c*n.. of `words`, which holds them all.
            unsafe { b.launch(cfg) }?;
        }
        Ok(LogupInputs { component, log_size, words })
    }

    /// The component's log size.
    pub fn log_size(&self) -> u32 {
        self.log_size
    }
}

/// A component's interaction trace, computed on the device from the
/// main-trace columns `inputs` saved (`2^log_size` values each,
/// bit-reversed): 4 coordinate columns per pair of lookups (each the sum of
/// the row's pairs so far), the last one then the running sum over rows,
/// and the component's claimed sum. The same values as the CPU generator
/// (`bitsage_prover::tracegen::interaction_trace`).
pub fn component_trace(inputs: &LogupInputs, rels: &Relations) -> Result<(Vec<DevCol<M31>>, SecureField)> {
    let (component, log_size) = (inputs.component, inputs.log_size);
    if component >= COMPONENTS.len() {
        return Err(CudaError::Unsupported(format!("no component {component}")));
    }
    let c = compiled(component)?;
    let k = &c.kernel;
    let n = 1usize << log_size;
    // The inputs were saved for this same kernel (`columns_read`), so only their size can be off.
    if inputs.words.len() < k.columns.len() * n {
        return Err(CudaError::Unsupported(format!("{}: the saved columns do not match the kernel", k.name)));
    }
    let cols: Vec<_> = (0..k.columns.len()).map(|i| inputs.words.slice(i * n..(i + 1) * n)).collect();
    if k.n_batches == 0 {
        return Err(CudaError::Unsupported(format!("{}: a component without lookups", k.name)));
    }
    let params = bind_ext(&k.ext_params, &rels.elements(), SecureField::default())
        .map_err(|p| CudaError::Unsupported(format!("{}: cannot bind parameter {p}", k.name)))?;
    let g = gpu();
    let mut outs = (0..4 * k.n_batches)
        // SAFETY: the fraction kernel writes every row of every output column.
        .map(|_| unsafe { g.alloc::<u32>(n) })
        .collect::<Result<Vec<_>>>()?;
    g.logup_fractions(&c.module, &cols, &params, log_size, &mut outs)?;
    let last = outs.len() - 4;
    let sum = g.logup_running_sum(&mut outs[last..], log_size)?;
    let claimed = SecureField::from_m31_array(sum.map(M31));
    Ok((outs.into_iter().map(|b| DevCol::from_words(b, n)).collect(), claimed))
}

/// The device side of the LogUp trace: fractions, and running sums over
/// rows (a chunked scan).
impl Gpu {
    /// Runs a generated LogUp fraction kernel (see
    /// [`codegen::generate_logup`]) over `2^log_n` rows: reads `cols`, writes
    /// 4 coordinate columns per batch into `outs`.
    pub fn logup_fractions(
        &self,
        m: &GeneratedModule,
        cols: &[impl cudarc::driver::DevicePtr<u32>],
        ext_params: &[u32],
        log_n: u32,
        outs: &mut [Buf],
    ) -> Result<()> {
        let n = 1usize << log_n;
        if m.f.len() != 1 || cols.iter().any(|c| c.len() < n) || outs.iter().any(|c| c.len() < n) {
            return Err(CudaError::Unsupported("logup_fractions: mismatched columns".into()));
        }
        use crate::column::Words;
        let (ins, outs) = (self.addrs(cols.iter()), self.addrs(outs.iter()));
        let a = self.arg_block(&[Words::U64(&ins), Words::U64(&outs), Words::U32(ext_params)])?;
        let mut b = self.stream.launch_builder(&m.f[0]);
        b.arg(&a.at[0]).arg(&a.at[2]).arg(&log_n).arg(&a.at[1]);
        // SAFETY: thread `row` reads row `row` of every column and writes row `row` of every output.
        unsafe { b.launch(launch_1d(n as u64)) }?;
        Ok(())
    }

    /// In place: `rows` rows of `n` words each become their inclusive prefix
    /// sums mod p (a chunked scan, recursing on the chunk totals).
    fn scan_rows(&self, data: &mut CudaSlice<u32>, rows: u32, n: u32) -> Result<()> {
        let chunks = n.div_ceil(SCAN_CHUNK);
        // SAFETY: `scan_chunks` writes every chunk's total.
        let mut sums = unsafe { self.alloc::<u32>((rows * chunks) as usize) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::ScanChunks));
        b.arg(&mut *data).arg(&n).arg(&mut sums);
        let cfg = LaunchConfig { grid_dim: (chunks, rows, 1), block_dim: (SCAN_THREADS, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: each block scans its chunk of its row (bounds-checked against n).
        unsafe { b.launch(cfg) }?;
        if chunks > 1 {
            self.scan_rows(&mut sums, rows, chunks)?;
            let mut b = self.stream.launch_builder(self.k(Kernel::ScanAdd));
            b.arg(&mut *data).arg(&n).arg(&sums).arg(&chunks);
            let cfg =
                LaunchConfig { grid_dim: (n.div_ceil(256), rows, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: thread j of row y adds a scanned chunk total to word j < n of that row.
            unsafe { b.launch(cfg) }?;
        }
        Ok(())
    }

    /// Stwo's `LogupTraceGenerator::finalize_last` on the device: `cols`, the
    /// 4 coordinate columns of the last LogUp column (bit-reversed circle
    /// domain, `2^log_n` fractions), become the running sum in coset order of
    /// the fractions shifted by `claimed_sum / 2^log_n`. Returns claimed_sum,
    /// the sum of all the fractions.
    pub fn logup_running_sum(&self, cols: &mut [Buf], log_n: u32) -> Result<[u32; 4]> {
        let n = 1u32 << log_n;
        if cols.len() != 4 || cols.iter().any(|c| c.len() != n as usize) || log_n > 28 {
            return Err(CudaError::Unsupported("logup_running_sum: 4 columns of 2^log_n values".into()));
        }
        let d_cols = self.device_ptrs(cols.iter())?;
        // SAFETY: `logup_to_coset` writes all 4n words.
        let mut tmp = unsafe { self.alloc::<u32>(4 * n as usize) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::LogupToCoset));
        b.arg(&d_cols).arg(&log_n).arg(&mut tmp);
        // SAFETY: one thread per word of tmp; coset_row(j) < n.
        unsafe { b.launch(launch_1d(4 * n as u64)) }?;
        self.scan_rows(&mut tmp, 4, n)?;
        let total = self.gather(&tmp, 1, &[n - 1, 2 * n - 1, 3 * n - 1, 4 * n - 1])?;
        let claimed = stwo::core::fields::qm31::SecureField::from_m31_array(std::array::from_fn(|c| {
            stwo::core::fields::m31::M31(total[c])
        }));
        let shift = claimed / stwo::core::fields::m31::M31::from_u32_unchecked(n);
        let d_shift = self.upload(&shift.to_m31_array().map(|v| v.0))?;
        let mut b = self.stream.launch_builder(self.k(Kernel::LogupFromCoset));
        b.arg(&tmp).arg(&d_shift).arg(&log_n).arg(&d_cols);
        // SAFETY: one thread per word; each writes one row of one of the 4 columns.
        unsafe { b.launch(launch_1d(4 * n as u64)) }?;
        total.try_into().map_err(|_| CudaError::Unsupported("logup_running_sum: short read".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stwo::core::channel::{Blake2sChannel, Channel};

    /// `LogupInputs::save` copies the columns a component's kernel reads
    /// before the relations are drawn: the set must not depend on them, and
    /// must name columns the component has.
    #[test]
    fn the_columns_a_fraction_kernel_reads_do_not_depend_on_the_relations() {
        let mut channel = Blake2sChannel::default();
        channel.mix_u64(0x5eed);
        let other = Relations::draw(&mut channel);
        let widths = [
            CpuCols::<M31>::N_COLUMNS,
            RomCols::<M31>::N_COLUMNS,
            MemCols::<M31>::N_COLUMNS,
            RangeCols::<M31>::N_COLUMNS,
            HashCols::<M31>::N_COLUMNS,
        ];
        for (c, &width) in widths.iter().enumerate() {
            let read = columns_read(c);
            assert!(!read.is_empty(), "{} reads no column", COMPONENTS[c]);
            assert!(read.iter().all(|&i| i < width), "{} reads past its {width} columns", COMPONENTS[c]);
            let fresh = generate(c, &other);
            assert_eq!(fresh.columns, read, "{}", COMPONENTS[c]);
            assert_eq!(fresh.source, kernel_of(c).source, "{}: the source depends on the draw", COMPONENTS[c]);
        }
        assert!(columns_read(COMPONENTS.len()).is_empty());
    }
}
