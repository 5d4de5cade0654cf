//! The hash (Poseidon2) component's main-trace rows built on the device:
//! the host uploads each call's given columns (`is_real`, `base`, `clk`, the
//! 16 input words and their timestamp gaps; 51 words, against the row's 335
//! columns), and a kernel generated from the AIR's own symbolic permutation
//! ([`crate::codegen::generate_hash_rows`]) computes every S-box column.
//! The values are those of the host's `HashCols::fill_permutation` (the
//! proof bytes match the SIMD backend's).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, PushKernelArg};
use stwo::core::fields::m31::M31;

use crate::backend::{gpu, DevCol};
use crate::codegen::{generate_hash_rows, HashRowsKernel};
use crate::compile::Source;
use crate::{launch_1d, CudaError, GeneratedModule, Memo, PerDevice, Result};

struct Compiled {
    kernel: Arc<HashRowsKernel>,
    module: GeneratedModule,
}

/// The kernel compiled for the bound device, for the process.
fn compiled() -> Result<Arc<Compiled>> {
    static CACHE: PerDevice<(), Compiled> = PerDevice::new();
    CACHE.get_or_try((), || {
        let kernel = kernel();
        let module = gpu().load(&[Source::with_headers(&kernel.name, &kernel.source)], [&kernel.name])?;
        Ok(Compiled { kernel, module })
    })
}

/// The generated kernel, generated once a process.
fn kernel() -> Arc<HashRowsKernel> {
    static MEMO: Memo<(), HashRowsKernel> = Memo::new();
    MEMO.get((), || generate_hash_rows("hash_rows"))
}

/// The kernel's source, as [`crate::compile::prepare`] compiles it.
pub(crate) fn kernel_source() -> Source {
    let kernel = kernel();
    Source::with_headers(&kernel.name, &kernel.source)
}

/// The hash component's `2^log_size` rows from `n_calls` uploaded calls of
/// `words` words each (the row's leading columns; the rest of the rows are
/// padding), as columns in the AIR's order.
pub fn hash_rows(given: &CudaSlice<u32>, words: usize, n_calls: usize, log_size: u32) -> Result<Vec<DevCol<M31>>> {
    let c = compiled()?;
    let k = &c.kernel;
    let n = 1usize << log_size;
    if words != k.given || n_calls > n || given.len() < n_calls * k.given {
        return Err(CudaError::Unsupported(format!(
            "hash_rows: {n_calls} calls of {words} words into 2^{log_size} rows (the kernel reads {} words a call)",
            k.given
        )));
    }
    let g = gpu();
    let cols = (0..k.n_columns)
        // SAFETY: the kernel writes every row of every column.
        .map(|_| unsafe { g.alloc::<u32>(n) })
        .collect::<Result<Vec<_>>>()?;
    let ptrs = g.device_ptrs(cols.iter())?;
    let (n_calls32, n32) = (n_calls as u32, n as u32);
    let mut b = g.stream.launch_builder(&c.module.f[0]);
    b.arg(given).arg(&n_calls32).arg(&n32).arg(&ptrs);
    // SAFETY: thread `r` reads call `r` (below n_calls) and writes row `r` of every column (below n).
    unsafe { b.launch(launch_1d(n as u64)) }?;
    Ok(cols.into_iter().map(|c| DevCol::from_words(c, n)).collect())
}
