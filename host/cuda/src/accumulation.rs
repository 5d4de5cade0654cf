//! Accumulating constraint quotients and lifted columns.

use super::*;

impl Gpu {
    /// `acc[c][r] += row_res[4r + c] · denom_inv[r >> trace_log]` for the
    /// four coordinate columns of a composition accumulator.
    pub fn accumulate_quotient(
        &self,
        row_res: &CudaSlice<u32>,
        denom_inv: &[u32],
        trace_log: u32,
        eval_log: u32,
        acc: [&mut CudaSlice<u32>; 4],
    ) -> Result<()> {
        let d = self.upload(denom_inv)?;
        let [a0, a1, a2, a3] = acc;
        let mut l = self.stream.launch_builder(self.k(Kernel::AccumulateQuotient));
        l.arg(row_res).arg(&d).arg(&trace_log).arg(&eval_log).arg(a0).arg(a1).arg(a2).arg(a3);
        // SAFETY: one thread per row below 2^eval_log; every column has that many words.
        unsafe { l.launch(launch_1d(1u64 << eval_log)) }?;
        Ok(())
    }

    /// Stwo's `lift_and_accumulate` over QM31 columns (coordinate-major),
    /// sorted strictly ascending by size, each at least 2 values.
    pub fn lift_and_accumulate(&self, cols: &[(&CudaSlice<u32>, u32)]) -> Result<Option<CudaSlice<u32>>> {
        let Some((first, rest)) = cols.split_first() else { return Ok(None) };
        if cols.iter().any(|c| c.1 == 0 || c.0.len() != 4 << c.1) || cols.windows(2).any(|w| w[0].1 >= w[1].1) {
            return Err(CudaError::Unsupported("columns must have 4 * 2^log values, sizes strictly ascending".into()));
        }
        let mut acc = self.stream.clone_dtod(first.0)?;
        let mut log_acc = first.1;
        for (col, log) in rest {
            // SAFETY: every output element is written.
            let mut next = unsafe { self.stream.alloc::<u32>(4usize << log) }?;
            let mut b = self.stream.launch_builder(self.k(Kernel::LiftAccumulate));
            b.arg(*col).arg(&acc).arg(&mut next).arg(log).arg(&log_acc);
            // SAFETY: lifted indices stay below the previous size.
            unsafe { b.launch(launch_1d(1u64 << log)) }?;
            acc = next;
            log_acc = *log;
        }
        Ok(Some(acc))
    }
}
