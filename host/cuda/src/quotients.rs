//! DEEP quotients: numerators per sample batch and their combination.

use super::*;

use crate::fri::QCol;

impl Gpu {
    /// FRI quotient numerators `Σ_k c_k · col_k[row] - b_k` over the first
    /// `n_rows` rows of `cols`; `bc` holds `(b_k, c_k)` as 8 words per term.
    /// Returns the four coordinate columns of `n_rows` QM31 values.
    pub fn quotient_numerators(&self, cols: &[&CudaSlice<u32>], bc: &[u32], n_rows: usize) -> Result<[Buf; 4]> {
        if bc.len() != 8 * cols.len() || cols.iter().any(|c| c.len() < n_rows) {
            return Err(CudaError::Unsupported("quotient_numerators: mismatched terms".into()));
        }
        let ptrs = self.addrs(cols.iter().copied());
        let a = self.arg_block(&[column::Words::U64(&ptrs), column::Words::U32(bc)])?;
        let (n_terms, rows) = (cols.len() as u32, n_rows as u32);
        // SAFETY: every row's 4 coordinates are written.
        let out = unsafe { self.alloc4(n_rows) }?;
        let q = QCol::of_bufs(&self.stream, &out, n_rows)?;
        let mut b = self.stream.launch_builder(self.k(Kernel::QuotientNumerators));
        b.arg(&a.at[0]).arg(&a.at[1]).arg(&n_terms).arg(&rows).arg(&q);
        // SAFETY: thread `row` reads row `row` of every column (each at least n_rows long) and writes
        // row `row` of the outputs, which live until after the launch is queued.
        unsafe { b.launch(launch_1d(n_rows as u64)) }?;
        Ok(out)
    }

    /// Stwo's quotient combination over a subdomain of `2^log_n` rows whose
    /// points (x, y), bit-reversed, are `pts`: `accs[k]` are batch k's four
    /// accumulated-numerator coordinate columns (`2^logs[k]` values each),
    /// `params` 12 words per batch (first linear term, then the sample
    /// point's Re x, Re y, Im x, Im y). Returns the 4 coordinate columns.
    pub fn quotient_combine(
        &self,
        pts: &CudaSlice<u32>,
        accs: &[[&CudaSlice<u32>; 4]],
        logs: &[u32],
        params: &[u32],
        log_n: u32,
    ) -> Result<[Buf; 4]> {
        let n = 1usize << log_n;
        if accs.len() != logs.len()
            || params.len() != 12 * accs.len()
            || pts.len() < 2 * n
            || logs.iter().zip(accs).any(|(&l, a)| l > log_n || a.iter().any(|c| c.len() < 1 << l))
        {
            return Err(CudaError::Unsupported("quotient_combine: mismatched batches".into()));
        }
        let ptrs = self.addrs(accs.iter().flat_map(|a| a.iter().copied()));
        let a = self.arg_block(&[column::Words::U64(&ptrs), column::Words::U32(logs), column::Words::U32(params)])?;
        let n_acc = accs.len() as u32;
        // SAFETY: every row's 4 coordinates are written.
        let out = unsafe { self.alloc4(n) }?;
        let q = QCol::of_bufs(&self.stream, &out, n)?;
        let mut b = self.stream.launch_builder(self.k(Kernel::QuotientCombine));
        b.arg(pts).arg(&a.at[0]).arg(&a.at[1]).arg(&a.at[2]).arg(&n_acc).arg(&log_n).arg(&q);
        // SAFETY: grid-stride over the rows; lifted indices stay below each batch's length.
        unsafe { b.launch(launch_1d(n as u64)) }?;
        Ok(out)
    }
}
