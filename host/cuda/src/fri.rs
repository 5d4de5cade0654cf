//! FRI folding.

use super::*;

impl Gpu {
    /// One FRI fold of a QM31 evaluation (4 coordinate columns of
    /// `2^(log_dst+1)` values, coordinate-major) into `2^log_dst` values.
    /// `circle`: fold a circle evaluation on `CanonicCoset(log_dst + 1)` into
    /// a line (Stwo's `fold_circle_into_line`); otherwise fold a line
    /// evaluation on a domain of log size `log_dst + 1` (one step of
    /// `fold_line`). `alpha` is the QM31 folding coefficient.
    pub fn fri_fold(
        &self,
        src: &CudaSlice<u32>,
        log_dst: u32,
        alpha: [u32; 4],
        circle: bool,
        itw: &TwBuf,
    ) -> Result<CudaSlice<u32>> {
        let log_src = log_dst + 1;
        if src.len() != 4 << log_src || log_src > itw.log_len + u32::from(circle) || (circle && log_src < 3) {
            return Err(CudaError::Unsupported(format!("fri_fold from 2^{log_src} values")));
        }
        // Circle domain of log L: its first line layer; line domain of log n: layer 0 of a coset of log n.
        let off = if circle { itw.line_offset(log_src, 0) } else { (1u32 << itw.log_len) - (1u32 << log_src) };
        let d_alpha = self.upload(&alpha)?;
        let circle_flag = circle as i32;
        // SAFETY: every output element is written.
        let mut dst = unsafe { self.stream.alloc::<u32>(4usize << log_dst) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::FriFold));
        b.arg(src).arg(&mut dst).arg(&itw.buf).arg(&off).arg(&log_dst).arg(&d_alpha).arg(&circle_flag);
        // SAFETY: thread i reads source pairs (2i, 2i+1) and twiddles inside the tree.
        unsafe { b.launch(launch_1d(1u64 << log_dst)) }?;
        Ok(dst)
    }
}
