//! Circle polynomials on the device: Stwo's twiddle trees, the circle FFT
//! (interpolation, evaluation on canonic domains, batched per size), and
//! evaluation at a point (barycentric weights and dot products).

use super::*;

/// One direction of a twiddle tree on the device, in Stwo's layout
/// (x-coordinates of the first half of each doubled coset, bit-reversed,
/// padded to 2^log_len), with the host copy Stwo's generic code may ask for.
#[derive(Clone)]
pub struct TwBuf {
    /// log2 of the buffer length (the root coset's log size).
    pub log_len: u32,
    pub buf: CudaSlice<u32>,
    pub host: Vec<u32>,
}

impl TwBuf {
    /// Offset of line layer `i` (0-based) for a circle domain of log size `log_n`.
    pub(crate) fn line_offset(&self, log_n: u32, i: u32) -> u32 {
        let m = log_n - 1;
        (1u32 << self.log_len) - (1u32 << (m - i))
    }
}

/// A twiddle tree on the device: forward and inverse.
pub struct DeviceTwiddles {
    pub tw: TwBuf,
    pub itw: TwBuf,
}

impl Gpu {
    /// [`Gpu::dot_strided`] (element-major weights) of every column in
    /// `cols` (device addresses of `n`-value columns) at once: one launch
    /// and one read-back.
    pub fn dot_many(&self, cols: &[u64], weights: &CudaSlice<u32>, n: usize) -> Result<Vec<[u32; 4]>> {
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        if weights.len() != 4 * n || cols.len() > 65535 {
            return Err(CudaError::Unsupported("dot_many: weights must be 4 words per value".into()));
        }
        let side = self.side_stream()?;
        let d_cols = side.clone_htod(cols)?;
        let blocks = (n as u64).div_ceil(256).clamp(1, 64) as u32;
        // SAFETY: each block writes its 4 words.
        let mut partial = unsafe { side.alloc::<u32>(4 * blocks as usize * cols.len()) }?;
        let n64 = n as u64;
        let mut b = side.launch_builder(self.k(Kernel::DotMany));
        b.arg(&d_cols).arg(weights).arg(&n64).arg(&mut partial);
        let cfg =
            LaunchConfig { grid_dim: (blocks, cols.len() as u32, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: every address is a live column of n values (the caller's registry), read below n;
        // the inputs were finished on the main stream, which the side stream joined, and the copy
        // below waits for the kernel.
        unsafe { b.launch(cfg) }?;
        let p = side.clone_dtoh(&partial)?;
        Ok(p.chunks(4 * blocks as usize)
            .map(|col| col.chunks(4).fold([0u32; 4], |acc, w| std::array::from_fn(|k| m31_add_host(acc[k], w[k]))))
            .collect())
    }

    /// This thread's side stream on this device (made on first use), made
    /// to wait for the work queued on the main stream so far.
    pub(crate) fn side_stream(&self) -> Result<Arc<CudaStream>> {
        let id = std::thread::current().id();
        let mut map = self.side.lock().unwrap_or_else(|p| p.into_inner());
        let s = match map.get(&id) {
            Some(s) => s.clone(),
            None => {
                let s = self.stream.fork()?;
                map.insert(id, s.clone());
                s
            }
        };
        drop(map);
        s.join(&self.stream)?;
        Ok(s)
    }

    /// Uploads Stwo's twiddle tree for domains up to `CanonicCoset(max_log)`.
    pub fn twiddles(&self, max_log: u32) -> Result<DeviceTwiddles> {
        let coset = CanonicCoset::new(max_log).circle_domain().half_coset;
        let tree = CpuBackend::precompute_twiddles(coset);
        let tw: Vec<u32> = tree.twiddles.iter().map(|v| v.0).collect();
        let itw: Vec<u32> = tree.itwiddles.iter().map(|v| v.0).collect();
        Ok(DeviceTwiddles { tw: self.tw_buf(tw, coset.log_size())?, itw: self.tw_buf(itw, coset.log_size())? })
    }

    /// A twiddle buffer of 2^log_len words (Stwo's layout) on the device.
    pub fn tw_buf(&self, host: Vec<u32>, log_len: u32) -> Result<TwBuf> {
        let buf = self.args(&host)?;
        Ok(TwBuf { log_len, buf, host })
    }

    fn check_domain(&self, tw: &TwBuf, log_n: u32) -> Result<()> {
        if log_n < 3 || log_n - 1 > tw.log_len {
            return Err(CudaError::Unsupported(format!(
                "circle FFT of log size {log_n} needs 3 <= log size <= {} for these twiddles",
                tw.log_len + 1
            )));
        }
        Ok(())
    }

    /// Device pointers of the consecutive columns of `2^log_n` words in `data`.
    fn column_ptrs(&self, data: &CudaSlice<u32>, log_n: u32) -> Result<CudaSlice<u64>> {
        let (p, _sync) = cudarc::driver::DevicePtr::device_ptr(data, &self.stream);
        let ptrs: Vec<u64> = (0..data.len() >> log_n).map(|c| p + ((c << log_n) * 4) as u64).collect();
        self.args(&ptrs)
    }

    /// FFT layers `0..top` (circle layer 0, line layers above) over `n_cols`
    /// columns of `2^log_n` words given by `ptrs`: inverse in increasing
    /// order, forward in decreasing order. `scale` multiplies the outputs of
    /// the last inverse layer.
    #[allow(clippy::too_many_arguments)]
    fn fft_layers(
        &self,
        ptrs: &CudaSlice<u64>,
        n_cols: u32,
        tw: &TwBuf,
        log_n: u32,
        top: u32,
        inverse: bool,
        scale: u32,
    ) -> Result<()> {
        if n_cols == 0 || top == 0 {
            return Ok(());
        }
        let low = top.min(FFT_TILE_LOG);
        let inv = inverse as i32;
        let low_layers = |scale: u32| -> Result<()> {
            let mut b = self.stream.launch_builder(self.k(Kernel::FftLowLayers));
            b.arg(ptrs).arg(&tw.buf).arg(&tw.log_len).arg(&log_n).arg(&low).arg(&inv).arg(&scale);
            let cfg = LaunchConfig {
                grid_dim: (1 << (log_n - low), n_cols, 1),
                block_dim: (1 << (low - 1), 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: block (x, c) works on words [x 2^low, (x + 1) 2^low) of column c, inside its 2^log_n.
            unsafe { b.launch(cfg) }?;
            Ok(())
        };
        let line_layer = |k: u32, scale: u32| -> Result<()> {
            let mut b = self.stream.launch_builder(self.k(Kernel::FftLineLayer));
            b.arg(ptrs).arg(&tw.buf).arg(&tw.log_len).arg(&log_n).arg(&k).arg(&n_cols).arg(&inv).arg(&scale);
            // SAFETY: each thread updates one pair inside one column of 2^log_n words.
            unsafe { b.launch(launch_1d((n_cols as u64) << (log_n - 1))) }?;
            Ok(())
        };
        if inverse {
            low_layers(if top == low { scale } else { 1 })?;
            for k in low..top {
                line_layer(k, if k + 1 == top { scale } else { 1 })?;
            }
        } else {
            for k in (low..top).rev() {
                line_layer(k, 1)?;
            }
            low_layers(1)?;
        }
        Ok(())
    }

    /// In place: `n_cols` columns of bit-reversed evaluations on
    /// `CanonicCoset(log_n)` become their coefficients (natural order).
    pub fn interpolate(&self, data: &mut CudaSlice<u32>, log_n: u32, itw: &TwBuf) -> Result<()> {
        self.check_domain(itw, log_n)?;
        let ptrs = self.column_ptrs(data, log_n)?;
        let n_cols = (data.len() >> log_n) as u32;
        // Divide by 2^log_n: 2^-L = 2^(31-L) mod 2^31 - 1.
        self.fft_layers(&ptrs, n_cols, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// [`Gpu::interpolate`] of separate columns of `2^log_n` words each,
    /// with one launch per layer for all of them.
    pub fn interpolate_many(&self, cols: &mut [&mut CudaSlice<u32>], log_n: u32, itw: &TwBuf) -> Result<()> {
        self.check_domain(itw, log_n)?;
        if cols.iter().any(|c| c.len() != 1 << log_n) {
            return Err(CudaError::Unsupported("interpolate_many: columns of 2^log_n words".into()));
        }
        let ptrs = self.device_ptrs(cols.iter().map(|c| &**c))?;
        self.fft_layers(&ptrs, cols.len() as u32, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// The low-degree extension: `n_cols` columns of `2^log_coeffs`
    /// coefficients evaluated on `CanonicCoset(log_n)` (bit-reversed).
    pub fn evaluate(&self, coeffs: &CudaSlice<u32>, log_coeffs: u32, log_n: u32, tw: &TwBuf) -> Result<CudaSlice<u32>> {
        self.check_domain(tw, log_n)?;
        if log_coeffs > log_n {
            return Err(CudaError::Unsupported("more coefficients than domain points".into()));
        }
        let n_cols = coeffs.len() >> log_coeffs;
        // SAFETY: every element is written by `fft_replicate` before it is read.
        let data = unsafe { self.stream.alloc::<u32>(n_cols << log_n) }?;
        let src = self.column_ptrs(coeffs, log_coeffs)?;
        let dst = self.column_ptrs(&data, log_n)?;
        self.evaluate_ptrs(&src, &dst, n_cols as u32, log_coeffs, log_n, tw)?;
        Ok(data)
    }

    /// [`Gpu::evaluate`] of separate columns of `2^log_coeffs` coefficients
    /// each, with one launch per layer for all of them.
    pub fn evaluate_many(
        &self,
        coeffs: &[&CudaSlice<u32>],
        log_coeffs: u32,
        log_n: u32,
        tw: &TwBuf,
    ) -> Result<Vec<CudaSlice<u32>>> {
        self.check_domain(tw, log_n)?;
        if log_coeffs > log_n || coeffs.iter().any(|c| c.len() != 1 << log_coeffs) {
            return Err(CudaError::Unsupported("evaluate_many: columns of 2^log_coeffs words".into()));
        }
        let out = (0..coeffs.len())
            // SAFETY: every element is written by `fft_replicate` before it is read.
            .map(|_| unsafe { self.stream.alloc::<u32>(1 << log_n) }.map_err(CudaError::from))
            .collect::<Result<Vec<_>>>()?;
        let src = self.device_ptrs(coeffs.iter().copied())?;
        let dst = self.device_ptrs(out.iter())?;
        self.evaluate_ptrs(&src, &dst, coeffs.len() as u32, log_coeffs, log_n, tw)?;
        Ok(out)
    }

    /// Zero-padding to `2^log_n` followed by the forward layers above
    /// `log_coeffs` is a replication of the coefficients (those layers' odd
    /// inputs are all zero); then the remaining layers.
    fn evaluate_ptrs(
        &self,
        src: &CudaSlice<u64>,
        dst: &CudaSlice<u64>,
        n_cols: u32,
        log_coeffs: u32,
        log_n: u32,
        tw: &TwBuf,
    ) -> Result<()> {
        if n_cols == 0 {
            return Ok(());
        }
        let mut b = self.stream.launch_builder(self.k(Kernel::FftReplicate));
        b.arg(src).arg(dst).arg(&log_coeffs).arg(&log_n).arg(&n_cols);
        // SAFETY: one thread per destination word; sources are read below 2^log_coeffs.
        unsafe { b.launch(launch_1d((n_cols as u64) << log_n)) }?;
        self.fft_layers(dst, n_cols, tw, log_n, log_coeffs, false, 1)
    }

    /// `Σ evals[i] · weights[i]` for an M31 column and a QM31 column
    /// (coordinate-major) of equal length: Stwo's `barycentric_eval_at_point`.
    pub fn dot_m31_qm31(&self, evals: &CudaSlice<u32>, weights: &CudaSlice<u32>) -> Result<[u32; 4]> {
        let n = evals.len() as u64;
        self.dot_strided(evals, weights, n, 1)
    }

    /// Barycentric weights for the bit-reversed domain whose points (x, y
    /// pairs, bit-reversed order) are `points`, at the point `(px, py)`, with
    /// the per-domain factor `s`: `ps` = px, py, s (4 words each). Returns 4
    /// words per point.
    pub fn barycentric_weights(&self, points: &CudaSlice<u32>, ps: &[u32; 12]) -> Result<CudaSlice<u32>> {
        let n = (points.len() / 2) as u64;
        let d_ps = self.args(ps)?;
        // SAFETY: the kernel writes all 4 words of every point.
        let mut out = unsafe { self.stream.alloc::<u32>(4 * n as usize) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::BarycentricWeights));
        b.arg(points).arg(&d_ps).arg(&n).arg(&mut out);
        // SAFETY: grid-stride loop below n over arrays of 2n and 4n words.
        unsafe { b.launch(launch_1d(n)) }?;
        Ok(out)
    }

    /// `Σ evals[i] · weights[i]` with coordinate `c` of weight `k` at
    /// `weights[c * cs + k * es]`.
    pub fn dot_strided(&self, evals: &CudaSlice<u32>, weights: &CudaSlice<u32>, cs: u64, es: u64) -> Result<[u32; 4]> {
        let n = evals.len() as u64;
        if weights.len() as u64 != 4 * n {
            return Err(CudaError::Unsupported("weights must be 4 words per value".into()));
        }
        let blocks = n.div_ceil(256).clamp(1, 1024) as u32;
        // Stwo asks for these one column at a time from many host threads;
        // each thread runs its own on a side stream that first waits for
        // the main stream, so they do not queue behind one another.
        let side = self.side_stream()?;
        // SAFETY: each block writes its 4 words.
        let mut partial = unsafe { side.alloc::<u32>(4 * blocks as usize) }?;
        let mut b = side.launch_builder(self.k(Kernel::DotM31Qm31));
        b.arg(evals).arg(weights).arg(&n).arg(&cs).arg(&es).arg(&mut partial);
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: grid-stride reads below n; shared memory is the static 256-entry array. The
        // inputs were finished on the main stream, which the side stream joined; the copy below
        // waits for the kernel, so the inputs are no longer read when this returns.
        unsafe { b.launch(cfg) }?;
        let p = side.clone_dtoh(&partial)?;
        Ok(p.chunks(4).fold([0u32; 4], |acc, w| std::array::from_fn(|k| m31_add_host(acc[k], w[k]))))
    }
}
