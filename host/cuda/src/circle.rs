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
        let blocks = (n as u64).div_ceil(256).clamp(1, 64) as u32;
        let n64 = n as u64;
        let n_cols = cols.len() as u32;
        let p = self.side_call(&[column::Words::U64(cols)], 4 * blocks as usize * cols.len(), |stream, at, out| {
            let mut b = stream.launch_builder(self.k(Kernel::DotMany));
            b.arg(&at[0]).arg(weights).arg(&n64).arg(&out);
            let cfg = LaunchConfig { grid_dim: (blocks, n_cols, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: every address is a live column of n values (the caller's registry), read below
            // n; the inputs were finished on the main stream, which the side stream joined, and the
            // copy back waits for the kernel. Each block writes its 4 words.
            unsafe { b.launch(cfg) }?;
            Ok(())
        })?;
        Ok(p.chunks(4 * blocks as usize)
            .map(|col| col.chunks(4).fold([0u32; 4], |acc, w| std::array::from_fn(|k| m31_add_host(acc[k], w[k]))))
            .collect())
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
        // Kept for the process and shared by every lane, so not the lane's pool's.
        let buf = self.args(&host)?.into_slice();
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

    /// Device addresses of the consecutive columns of `2^log_n` words in `data`.
    fn column_addrs(&self, data: &CudaSlice<u32>, log_n: u32) -> Vec<u64> {
        let p = addr(data, &self.stream);
        (0..data.len() >> log_n).map(|c| p + ((c << log_n) * 4) as u64).collect()
    }

    /// FFT layers `0..top` (circle layer 0, line layers above) over `n_cols`
    /// columns of `2^log_n` words whose addresses are the device array at
    /// `ptrs`: inverse in increasing
    /// order, forward in decreasing order. `scale` multiplies the outputs of
    /// the last inverse layer.
    #[allow(clippy::too_many_arguments)]
    fn fft_layers(
        &self,
        ptrs: u64,
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
            b.arg(&ptrs).arg(&tw.buf).arg(&tw.log_len).arg(&log_n).arg(&low).arg(&inv).arg(&scale);
            let cfg = LaunchConfig {
                grid_dim: (1 << (log_n - low), n_cols, 1),
                block_dim: (1 << (low - 1), 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: block (x, c) works on words [x 2^low, (x + 1) 2^low) of column c, inside its 2^log_n.
            unsafe { b.launch(cfg) }?;
            Ok(())
        };
        // Layers k0 .. k0 + r - 1 in one pass (one layer: `fft_line_layer`).
        let line_layers = |k0: u32, r: u32, scale: u32| -> Result<()> {
            if r == 1 {
                let mut b = self.stream.launch_builder(self.k(Kernel::FftLineLayer));
                b.arg(&ptrs).arg(&tw.buf).arg(&tw.log_len).arg(&log_n).arg(&k0).arg(&n_cols).arg(&inv).arg(&scale);
                // SAFETY: each thread updates one pair inside one column of 2^log_n words.
                unsafe { b.launch(launch_1d((n_cols as u64) << (log_n - 1))) }?;
            } else {
                let mut b = self.stream.launch_builder(self.k(Kernel::FftLineLayers));
                b.arg(&ptrs).arg(&tw.buf).arg(&tw.log_len).arg(&log_n).arg(&k0).arg(&r).arg(&n_cols).arg(&inv);
                b.arg(&scale);
                // SAFETY: each thread updates its 2^r words inside one column of 2^log_n words.
                unsafe { b.launch(launch_1d((n_cols as u64) << (log_n - r))) }?;
            }
            Ok(())
        };
        let chunks = register_chunks(low, top);
        if inverse {
            low_layers(if top == low { scale } else { 1 })?;
            for &(k0, r) in &chunks {
                line_layers(k0, r, if k0 + r == top { scale } else { 1 })?;
            }
        } else {
            for &(k0, r) in chunks.iter().rev() {
                line_layers(k0, r, 1)?;
            }
            low_layers(1)?;
        }
        Ok(())
    }

    /// In place: `n_cols` columns of bit-reversed evaluations on
    /// `CanonicCoset(log_n)` become their coefficients (natural order).
    pub fn interpolate(&self, data: &mut CudaSlice<u32>, log_n: u32, itw: &TwBuf) -> Result<()> {
        self.check_domain(itw, log_n)?;
        let a = self.arg_block(&[column::Words::U64(&self.column_addrs(data, log_n))])?;
        let n_cols = (data.len() >> log_n) as u32;
        // Divide by 2^log_n: 2^-L = 2^(31-L) mod 2^31 - 1.
        self.fft_layers(a.at[0], n_cols, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// [`Gpu::interpolate`] of separate columns of `2^log_n` words each,
    /// with one launch per layer for all of them.
    pub fn interpolate_many(&self, cols: &mut [&mut CudaSlice<u32>], log_n: u32, itw: &TwBuf) -> Result<()> {
        self.check_domain(itw, log_n)?;
        if cols.iter().any(|c| c.len() != 1 << log_n) {
            return Err(CudaError::Unsupported("interpolate_many: columns of 2^log_n words".into()));
        }
        let a = self.arg_block(&[column::Words::U64(&self.addrs(cols.iter().map(|c| &**c)))])?;
        self.fft_layers(a.at[0], cols.len() as u32, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// The low-degree extension: `n_cols` columns of `2^log_coeffs`
    /// coefficients evaluated on `CanonicCoset(log_n)` (bit-reversed).
    pub fn evaluate(&self, coeffs: &CudaSlice<u32>, log_coeffs: u32, log_n: u32, tw: &TwBuf) -> Result<Buf> {
        self.check_domain(tw, log_n)?;
        if log_coeffs > log_n {
            return Err(CudaError::Unsupported("more coefficients than domain points".into()));
        }
        let n_cols = coeffs.len() >> log_coeffs;
        // SAFETY: every element is written by `fft_replicate` before it is read.
        let data = unsafe { self.alloc::<u32>(n_cols << log_n) }?;
        let (src, dst) = (self.column_addrs(coeffs, log_coeffs), self.column_addrs(&data, log_n));
        let a = self.arg_block(&[column::Words::U64(&src), column::Words::U64(&dst)])?;
        self.evaluate_ptrs(a.at[0], a.at[1], n_cols as u32, log_coeffs, log_n, tw)?;
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
    ) -> Result<Vec<Buf>> {
        self.check_domain(tw, log_n)?;
        if log_coeffs > log_n || coeffs.iter().any(|c| c.len() != 1 << log_coeffs) {
            return Err(CudaError::Unsupported("evaluate_many: columns of 2^log_coeffs words".into()));
        }
        let out = (0..coeffs.len())
            // SAFETY: every element is written by `fft_replicate` before it is read.
            .map(|_| unsafe { self.alloc::<u32>(1 << log_n) })
            .collect::<Result<Vec<_>>>()?;
        let (src, dst) = (self.addrs(coeffs.iter().copied()), self.addrs(out.iter()));
        let a = self.arg_block(&[column::Words::U64(&src), column::Words::U64(&dst)])?;
        self.evaluate_ptrs(a.at[0], a.at[1], coeffs.len() as u32, log_coeffs, log_n, tw)?;
        Ok(out)
    }

    /// Zero-padding to `2^log_n` followed by the forward layers above
    /// `log_coeffs` is a replication of the coefficients (those layers' odd
    /// inputs are all zero); then the remaining layers.
    fn evaluate_ptrs(&self, src: u64, dst: u64, n_cols: u32, log_coeffs: u32, log_n: u32, tw: &TwBuf) -> Result<()> {
        if n_cols == 0 {
            return Ok(());
        }
        let mut b = self.stream.launch_builder(self.k(Kernel::FftReplicate));
        b.arg(&src).arg(&dst).arg(&log_coeffs).arg(&log_n).arg(&n_cols);
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
    pub fn barycentric_weights(&self, points: &CudaSlice<u32>, ps: &[u32; 12]) -> Result<Buf> {
        let n = (points.len() / 2) as u64;
        let d_ps = self.args(ps)?;
        // SAFETY: the kernel writes all 4 words of every point.
        let mut out = unsafe { self.alloc::<u32>(4 * n as usize) }?;
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
        let p = self.side_call(&[], 4 * blocks as usize, |stream, _, out| {
            let mut b = stream.launch_builder(self.k(Kernel::DotM31Qm31));
            b.arg(evals).arg(weights).arg(&n).arg(&cs).arg(&es).arg(&out);
            let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: grid-stride reads below n; shared memory is the static 256-entry array. The
            // inputs were finished on the main stream, which the side stream joined; the copy back
            // waits for the kernel, so the inputs are no longer read when this returns. Each block
            // writes its 4 words.
            unsafe { b.launch(cfg) }?;
            Ok(())
        })?;
        Ok(p.chunks(4).fold([0u32; 4], |acc, w| std::array::from_fn(|k| m31_add_host(acc[k], w[k]))))
    }
}

/// The line layers `low..top` split into runs of consecutive layers, each
/// one pass of `fft_line_layers` (at most [`FFT_REGISTER_LAYERS`] layers),
/// as few passes as possible and as even as possible, in increasing order.
fn register_chunks(low: u32, top: u32) -> Vec<(u32, u32)> {
    let n = top.saturating_sub(low);
    if n == 0 {
        return Vec::new();
    }
    let passes = n.div_ceil(FFT_REGISTER_LAYERS);
    let mut k0 = low;
    (0..passes)
        .map(|i| {
            let r = n / passes + u32::from(i < n % passes);
            let chunk = (k0, r);
            k0 += r;
            chunk
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::register_chunks;

    #[test]
    fn the_high_layers_split_into_few_even_passes_covering_each_layer_once() {
        assert_eq!(register_chunks(11, 11), vec![]);
        assert_eq!(register_chunks(11, 12), vec![(11, 1)]);
        assert_eq!(register_chunks(11, 20), vec![(11, 3), (14, 3), (17, 3)]);
        assert_eq!(register_chunks(11, 21), vec![(11, 4), (15, 3), (18, 3)]);
        for top in 11..=31 {
            let c = register_chunks(11, top);
            assert_eq!(c.len() as u32, (top - 11).div_ceil(super::FFT_REGISTER_LAYERS));
            let layers: Vec<u32> = c.iter().flat_map(|&(k0, r)| k0..k0 + r).collect();
            assert_eq!(layers, (11..top).collect::<Vec<_>>());
            assert!(c.iter().all(|&(_, r)| (1..=super::FFT_REGISTER_LAYERS).contains(&r)));
        }
    }

    /// `fft_line_layers` (2 to 4 layers a pass, in registers) against
    /// `fft_line_layer` (one layer a pass, the kernel `bitsage-cuda-check`
    /// compares with Stwo's FFT on a GPU), both compiled for the host by
    /// `c++` and run one "thread" at a time over random columns and
    /// twiddles: forward and inverse, with and without the final scale.
    #[test]
    fn line_layers_in_registers_equal_one_layer_at_a_time_on_the_host() {
        let src = format!(
            "{}{}\n{}\n{}",
            crate::codegen::HOST_SHIM,
            crate::M31_H,
            crate::FIXED_SOURCES[0].1,
            r#"
#include <cstdio>
#include <vector>
static u64 seed = 0x9e3779b97f4a7c15ull;
static u32 rnd() { seed = seed * 6364136223846793005ull + 1442695040888963407ull; return (u32)(seed >> 33) % M31_P; }
int main() {
  const u32 cases[][6] = {
    // log_n, n_cols, k0, r, inverse, scale
    {12, 3, 1, 2, 0, 1}, {12, 3, 1, 4, 1, 1}, {13, 2, 5, 3, 0, 1}, {13, 2, 5, 3, 1, 12345},
    {14, 2, 11, 3, 0, 1}, {14, 2, 10, 4, 1, 1u << 17}, {15, 1, 11, 4, 0, 1}, {15, 1, 3, 2, 1, 7},
  };
  for (auto& c : cases) {
    u32 log_n = c[0], n_cols = c[1], k0 = c[2], r = c[3], scale = c[5];
    int inv = (int)c[4];
    u32 log_len = log_n;
    std::vector<u32> tw(1u << log_len);
    for (auto& t : tw) t = rnd();
    std::vector<std::vector<u32>> a(n_cols, std::vector<u32>(1u << log_n)), b;
    for (auto& col : a) for (auto& v : col) v = rnd();
    b = a;
    std::vector<u64> pa(n_cols), pb(n_cols);
    for (u32 i = 0; i < n_cols; i++) { pa[i] = (u64)a[i].data(); pb[i] = (u64)b[i].data(); }
    blockIdx.x = 0; blockDim.x = 1;
    for (u32 t = 0; t < r; t++) {
      u32 k = inv ? k0 + t : k0 + r - 1 - t;
      u32 sc = t == r - 1 ? scale : 1;  // on the outputs of the pass's last layer
      for (u64 i = 0; i < ((u64)n_cols << (log_n - 1)); i++) {
        threadIdx.x = (u32)i;
        fft_line_layer(pa.data(), tw.data(), log_len, log_n, k, n_cols, inv, sc);
      }
    }
    for (u64 i = 0; i < ((u64)n_cols << (log_n - r)); i++) {
      threadIdx.x = (u32)i;
      fft_line_layers(pb.data(), tw.data(), log_len, log_n, k0, r, n_cols, inv, scale);
    }
    if (a != b) { printf("differs: log_n %u k0 %u r %u inverse %d\n", log_n, k0, r, inv); return 1; }
  }
  printf("equal\n");
  return 0;
}
"#
        );
        let program = crate::codegen::HostProgram::build("fft", &src, "-O1");
        let out = std::process::Command::new(&program.exe).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "equal");
    }
}
