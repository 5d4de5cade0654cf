//! Accumulating constraint quotients and lifted columns.

use super::*;

use crate::fri::QCol;

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

    /// One step of Stwo's `lift_and_accumulate`, in place: `acc` (a QM31
    /// column of `2^log_n` values) becomes `acc[i] + prev[lift(i)]` for the
    /// smaller column `prev` of `2^log_prev` values.
    pub fn lift_accumulate(
        &self,
        acc: [&mut CudaSlice<u32>; 4],
        log_n: u32,
        prev: [&CudaSlice<u32>; 4],
        log_prev: u32,
    ) -> Result<()> {
        if log_prev == 0 || log_prev >= log_n {
            return Err(CudaError::Unsupported("lift_accumulate: sizes must be strictly ascending, from 2".into()));
        }
        let prev = QCol::of(&self.stream, prev, 1 << log_prev)?;
        let [a0, a1, a2, a3] = acc;
        let acc = QCol::of(&self.stream, [&*a0, &*a1, &*a2, &*a3], 1 << log_n)?;
        let mut b = self.stream.launch_builder(self.k(Kernel::LiftAccumulate));
        b.arg(&acc).arg(&prev).arg(&log_n).arg(&log_prev);
        // SAFETY: thread i reads and writes value i of `acc` (the `&mut` borrows keep it alive and
        // unshared) and reads a lifted index below 2^log_prev of `prev`.
        unsafe { b.launch(launch_1d(1u64 << log_n)) }?;
        Ok(())
    }
}
