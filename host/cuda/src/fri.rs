//! FRI folding, and the QM31 column arguments its kernels take.

use super::*;

use cudarc::driver::DeviceRepr;

/// A QM31 column as a kernel argument: the device addresses of its four
/// coordinate columns (`qcol` in `kernels/fri.cu`), which need not be
/// contiguous, so Stwo's `SecureColumnByCoords` goes in without a copy.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct QCol([u64; 4]);

// SAFETY: four 64-bit addresses, laid out as the kernels' `qcol` and `qcol_mut`.
unsafe impl DeviceRepr for QCol {}

impl QCol {
    /// `cols`' addresses, each checked to hold at least `len` words.
    pub(crate) fn of(stream: &CudaStream, cols: [&CudaSlice<u32>; 4], len: usize) -> Result<QCol> {
        if cols.iter().any(|c| c.len() < len) {
            return Err(CudaError::Unsupported(format!("a QM31 column of {len} values has a short coordinate")));
        }
        Ok(QCol(cols.map(|c| crate::addr(c, stream))))
    }

    pub(crate) fn of_bufs(stream: &CudaStream, cols: &[Buf; 4], len: usize) -> Result<QCol> {
        QCol::of(stream, [&*cols[0], &*cols[1], &*cols[2], &*cols[3]], len)
    }
}

/// A QM31 value as a kernel argument (`qm31` in `kernels/qm31.cuh`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Qm31Arg([u32; 4]);

// SAFETY: four 32-bit words, laid out as the kernels' `qm31`.
unsafe impl DeviceRepr for Qm31Arg {}

impl Gpu {
    /// Four coordinate columns of `n` values each, contents unspecified.
    ///
    /// # Safety
    /// The caller writes them before reading them.
    pub unsafe fn alloc4(&self, n: usize) -> Result<[Buf; 4]> {
        // SAFETY: passed on to the caller.
        unsafe { Ok([self.alloc(n)?, self.alloc(n)?, self.alloc(n)?, self.alloc(n)?]) }
    }

    /// One FRI fold of a QM31 evaluation of `2^(log_dst+1)` values into
    /// `2^log_dst` values (four new coordinate columns). `circle`: fold a
    /// circle evaluation on `CanonicCoset(log_dst + 1)` into a line (Stwo's
    /// `fold_circle_into_line`); otherwise fold a line evaluation on a
    /// domain of log size `log_dst + 1` (one step of `fold_line`). `alpha`
    /// is the QM31 folding coefficient.
    pub fn fri_fold(
        &self,
        src: [&CudaSlice<u32>; 4],
        log_dst: u32,
        alpha: [u32; 4],
        circle: bool,
        itw: &TwBuf,
    ) -> Result<[Buf; 4]> {
        let log_src = log_dst + 1;
        if log_src > itw.log_len + u32::from(circle) || (circle && log_src < 3) {
            return Err(CudaError::Unsupported(format!("fri_fold from 2^{log_src} values")));
        }
        let src = QCol::of(&self.stream, src, 1 << log_src)?;
        // Circle domain of log L: its first line layer; line domain of log n: layer 0 of a coset of log n.
        let off = if circle { itw.line_offset(log_src, 0) } else { (1u32 << itw.log_len) - (1u32 << log_src) };
        let circle_flag = circle as i32;
        let n = 1usize << log_dst;
        // SAFETY: every value of every output coordinate is written.
        let dst = unsafe { self.alloc4(n) }?;
        let out = QCol::of_bufs(&self.stream, &dst, n)?;
        let mut b = self.stream.launch_builder(self.k(Kernel::FriFold));
        let a = Qm31Arg(alpha);
        b.arg(&src).arg(&out).arg(&*itw.buf).arg(&off).arg(&log_dst).arg(&a).arg(&circle_flag);
        // SAFETY: thread i reads source pairs (2i, 2i+1) and twiddles inside the tree, and writes value i
        // of each output coordinate; the outputs live until after the launch is queued (`dst`).
        unsafe { b.launch(launch_1d(1u64 << log_dst)) }?;
        Ok(dst)
    }
}
