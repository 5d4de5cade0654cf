//! Circle polynomials on the device: Stwo's twiddle trees, the circle FFT
//! (interpolation, evaluation on canonic domains, batched per size), and
//! evaluation at a point (barycentric weights and dot products).

use super::*;

/// One direction of a twiddle tree on the device, in Stwo's layout
/// (x-coordinates of the first half of each doubled coset, bit-reversed,
/// padded to 2^log_len), with the host copy Stwo's generic code may ask for.
/// Both are shared: a clone (each proof takes one from the process's cache)
/// copies nothing. (A `CudaSlice`'s own clone is a device-to-device copy.)
#[derive(Clone)]
pub struct TwBuf {
    /// log2 of the buffer length (the root coset's log size).
    pub log_len: u32,
    pub buf: Arc<CudaSlice<u32>>,
    pub host: Arc<Vec<u32>>,
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
    /// (each block reads a weight once for [`DOT_COLS`] columns) and one
    /// read-back.
    pub fn dot_many(&self, cols: &[u64], weights: &CudaSlice<u32>, n: usize) -> Result<Vec<[u32; 4]>> {
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        if weights.len() != 4 * n || cols.len() > 65535 * DOT_COLS {
            return Err(CudaError::Unsupported("dot_many: weights must be 4 words per value".into()));
        }
        let blocks = (n as u64).div_ceil(256).clamp(1, 128) as u32;
        let n64 = n as u64;
        let n_cols = cols.len() as u32;
        let groups = cols.len().div_ceil(DOT_COLS) as u32;
        let p = self.side_call(&[column::Words::U64(cols)], 4 * blocks as usize * cols.len(), |stream, at, out| {
            let mut b = stream.launch_builder(self.k(Kernel::DotMany));
            b.arg(&at[0]).arg(&n_cols).arg(weights).arg(&n64).arg(&out);
            let cfg = LaunchConfig { grid_dim: (blocks, groups, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            // SAFETY: every address is a live column of n values (the caller's registry), read below
            // n; the inputs were finished on the main stream, which the side stream joined, and the
            // copy back waits for the kernel. Block (x, y) writes 4 words for each of its columns.
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
        Ok(TwBuf { log_len, buf: Arc::new(buf), host: Arc::new(host) })
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
    /// `ptrs`: inverse in increasing order, forward in decreasing order.
    /// `scale` multiplies the outputs of the last inverse layer. `src`, for
    /// a forward transform: the device array of the `n_cols` columns of
    /// `2^log_src` words the first pass reads instead, word `j` of column
    /// `c` being `src[c][j mod 2^log_src]` (see `kernels/circle_fft.cu`).
    #[allow(clippy::too_many_arguments)]
    fn fft_layers(
        &self,
        ptrs: u64,
        src: Option<(u64, u32)>,
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
        let low_layers = |src: (u64, u32), scale: u32| -> Result<()> {
            let mut b = self.stream.launch_builder(self.k(Kernel::FftLowLayers));
            b.arg(&ptrs).arg(&src.0).arg(&src.1).arg(&*tw.buf).arg(&tw.log_len).arg(&log_n).arg(&low).arg(&inv);
            b.arg(&scale);
            let cfg = LaunchConfig {
                grid_dim: (1 << (log_n - low), n_cols, 1),
                block_dim: ((1u32 << low >> FFT_ROUND_LAYERS).max(1), 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: block (x, c) works on words [x 2^low, (x + 1) 2^low) of column c, inside its
            // 2^log_n, and reads its source column below 2^log_src.
            unsafe { b.launch(cfg) }?;
            Ok(())
        };
        // Layers k0 .. k0 + r - 1 in one pass.
        let line_layers = |src: (u64, u32), k0: u32, r: u32, scale: u32| -> Result<()> {
            let mut b = self.stream.launch_builder(self.k(Kernel::FftLineLayers));
            b.arg(&ptrs).arg(&src.0).arg(&src.1).arg(&*tw.buf).arg(&tw.log_len).arg(&log_n).arg(&k0).arg(&r);
            b.arg(&n_cols).arg(&inv).arg(&scale);
            // SAFETY: each thread updates its 2^r words inside one column of 2^log_n words, and reads
            // its source column below 2^log_src.
            unsafe { b.launch(launch_1d((n_cols as u64) << (log_n - r))) }?;
            Ok(())
        };
        let chunks = register_chunks(low, top);
        let in_place = (0u64, 0u32);
        if inverse {
            low_layers(in_place, if top == low { scale } else { 1 })?;
            for &(k0, r) in &chunks {
                line_layers(in_place, k0, r, if k0 + r == top { scale } else { 1 })?;
            }
        } else {
            let mut first = src.unwrap_or(in_place);
            for &(k0, r) in chunks.iter().rev() {
                line_layers(first, k0, r, 1)?;
                first = in_place;
            }
            low_layers(first, 1)?;
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
        self.fft_layers(a.at[0], None, n_cols, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// [`Gpu::interpolate`] of separate columns of `2^log_n` words each,
    /// with one launch per layer for all of them.
    pub fn interpolate_many(&self, cols: &mut [&mut CudaSlice<u32>], log_n: u32, itw: &TwBuf) -> Result<()> {
        self.check_domain(itw, log_n)?;
        if cols.iter().any(|c| c.len() != 1 << log_n) {
            return Err(CudaError::Unsupported("interpolate_many: columns of 2^log_n words".into()));
        }
        let a = self.arg_block(&[column::Words::U64(&self.addrs(cols.iter().map(|c| &**c)))])?;
        self.fft_layers(a.at[0], None, cols.len() as u32, itw, log_n, log_n, true, 1u32 << (31 - log_n))
    }

    /// The low-degree extension: `n_cols` columns of `2^log_coeffs`
    /// coefficients evaluated on `CanonicCoset(log_n)` (bit-reversed).
    pub fn evaluate(&self, coeffs: &CudaSlice<u32>, log_coeffs: u32, log_n: u32, tw: &TwBuf) -> Result<Buf> {
        self.check_domain(tw, log_n)?;
        if log_coeffs > log_n {
            return Err(CudaError::Unsupported("more coefficients than domain points".into()));
        }
        let n_cols = coeffs.len() >> log_coeffs;
        // SAFETY: every element is written by the first pass (`evaluate_ptrs`) before it is read.
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
            // SAFETY: every element is written by the first pass (`evaluate_ptrs`) before it is read.
            .map(|_| unsafe { self.alloc::<u32>(1 << log_n) })
            .collect::<Result<Vec<_>>>()?;
        let (src, dst) = (self.addrs(coeffs.iter().copied()), self.addrs(out.iter()));
        let a = self.arg_block(&[column::Words::U64(&src), column::Words::U64(&dst)])?;
        self.evaluate_ptrs(a.at[0], a.at[1], coeffs.len() as u32, log_coeffs, log_n, tw)?;
        Ok(out)
    }

    /// Zero-padding to `2^log_n` followed by the forward layers above
    /// `log_coeffs` is a replication of the coefficients (those layers' odd
    /// inputs are all zero), which the first pass of the remaining layers
    /// does as it reads; with no layers left, a copy.
    fn evaluate_ptrs(&self, src: u64, dst: u64, n_cols: u32, log_coeffs: u32, log_n: u32, tw: &TwBuf) -> Result<()> {
        if n_cols == 0 {
            return Ok(());
        }
        if log_coeffs == 0 {
            let mut b = self.stream.launch_builder(self.k(Kernel::FftReplicate));
            b.arg(&src).arg(&dst).arg(&log_coeffs).arg(&log_n).arg(&n_cols);
            // SAFETY: one thread per destination word; sources are read below 2^log_coeffs.
            unsafe { b.launch(launch_1d((n_cols as u64) << log_n)) }?;
            return Ok(());
        }
        self.fft_layers(dst, Some((src, log_coeffs)), n_cols, tw, log_n, log_coeffs, false, 1)
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

    /// The weights of Stwo's coefficient basis at a point, `n` values
    /// (element-major QM31) from the tables `point_weights` in
    /// `kernels/fri.cu` describes: `tab` holds 2^`log_lo` low products
    /// then the high ones (4 words each), enough for `n`.
    pub fn point_weights(&self, tab: &[u32], log_lo: u32, n: usize) -> Result<Buf> {
        let lo = 1usize << log_lo;
        if n == 0 || !tab.len().is_multiple_of(4) || tab.len() / 4 < lo + ((n - 1) >> log_lo) + 1 {
            return Err(CudaError::Unsupported("point_weights: tables too short for n".into()));
        }
        let d_tab = self.args(tab)?;
        let n64 = n as u64;
        // SAFETY: the kernel writes all 4 words of every value below n.
        let mut out = unsafe { self.alloc::<u32>(4 * n) }?;
        let mut b = self.stream.launch_builder(self.k(Kernel::PointWeights));
        b.arg(&d_tab).arg(&log_lo).arg(&n64).arg(&mut out);
        // SAFETY: grid-stride loop below n; reads table entries below 2^log_lo + (n - 1) / 2^log_lo + 1, checked above.
        unsafe { b.launch(launch_1d(n64)) }?;
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
    use super::{register_chunks, FFT_REGISTER_LAYERS, FFT_TILE_LOG};

    #[test]
    fn the_high_layers_split_into_few_even_passes_covering_each_layer_once() {
        assert_eq!(register_chunks(11, 11), vec![]);
        assert_eq!(register_chunks(11, 12), vec![(11, 1)]);
        assert_eq!(register_chunks(11, 20), vec![(11, 3), (14, 3), (17, 3)]);
        assert_eq!(register_chunks(12, 20), vec![(12, 4), (16, 4)]);
        assert_eq!(register_chunks(12, 21), vec![(12, 3), (15, 3), (18, 3)]);
        for top in FFT_TILE_LOG..=31 {
            let c = register_chunks(FFT_TILE_LOG, top);
            assert_eq!(c.len() as u32, (top - FFT_TILE_LOG).div_ceil(FFT_REGISTER_LAYERS));
            let layers: Vec<u32> = c.iter().flat_map(|&(k0, r)| k0..k0 + r).collect();
            assert_eq!(layers, (FFT_TILE_LOG..top).collect::<Vec<_>>());
            assert!(c.iter().all(|&(_, r)| (1..=FFT_REGISTER_LAYERS).contains(&r)));
        }
    }

    /// `dot_many` (each block a group of eight columns, its threads striding
    /// over the values) against the dot products by their definition, on
    /// the host with `c++`: 1, 8 and 19 columns (a last group part full),
    /// three blocks of one thread each, the partial sums added per column
    /// as `Gpu::dot_many` adds them.
    #[test]
    fn dot_many_equals_each_columns_dot_product_on_the_host() {
        let src = crate::codegen::fri_host_source(
            r#"
#include <cstdio>
#include <vector>
static u64 seed = 0x2545f4914f6cdd1dull;
static u32 rnd() { seed = seed * 6364136223846793005ull + 1442695040888963407ull; return (u32)(seed >> 33) % M31_P; }
int main() {
  const u32 n = 37, blocks = 3;
  for (u32 n_cols : {1u, 8u, 19u}) {
    std::vector<u32> w(4 * n);
    for (auto& v : w) v = rnd();
    std::vector<std::vector<u32>> cols(n_cols, std::vector<u32>(n));
    std::vector<u64> ptrs;
    for (auto& c : cols) { for (auto& v : c) v = rnd(); ptrs.push_back((u64)c.data()); }
    std::vector<u32> partial(4 * blocks * n_cols, 0xdeadbeef);
    gridDim.x = blocks; gridDim.y = (n_cols + DOT_COLS - 1) / DOT_COLS; blockDim.x = 1; threadIdx.x = 0;
    for (u32 y = 0; y < gridDim.y; y++)
      for (u32 x = 0; x < blocks; x++) { blockIdx.x = x; blockIdx.y = y; dot_many(ptrs.data(), n_cols, w.data(), n, partial.data()); }
    for (u32 c = 0; c < n_cols; c++) {
      qm31 want = {0, 0, 0, 0}, got = {0, 0, 0, 0};
      for (u32 k = 0; k < n; k++) want = qm31_add(want, qm31_mul(qm31{w[4 * k], w[4 * k + 1], w[4 * k + 2], w[4 * k + 3]}, qm31_from_m31(cols[c][k])));
      for (u32 b = 0; b < blocks; b++) {
        const u32* p = &partial[4 * (c * blocks + b)];
        got = qm31_add(got, qm31{p[0], p[1], p[2], p[3]});
      }
      if (got.a != want.a || got.b != want.b || got.c != want.c || got.d != want.d) { printf("differs: %u columns, column %u\n", n_cols, c); return 1; }
    }
  }
  printf("equal\n");
  return 0;
}
"#,
        );
        let program = crate::codegen::HostProgram::build("dot-many", &src, "-O1");
        let out = std::process::Command::new(&program.exe).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "equal");
    }

    /// The FFT kernels as `fft_layers` launches them (the low layers in
    /// shared memory, in rounds of up to `FFT_ROUND_LAYERS`, then the line layers up to
    /// four a pass; forward from a smaller source column, the low-degree
    /// extension's zero-padding) against the transform by its definition,
    /// one layer at a time over the whole column. Both are compiled for the
    /// host by `c++`; each block and each thread of the kernels runs in turn
    /// (the shared-memory rounds one after the other, as the kernel's
    /// barriers order them). Random columns and twiddles; inverse with and
    /// without the final scale; tiles smaller and larger than a round.
    #[test]
    fn the_fft_passes_equal_the_transform_layer_by_layer_on_the_host() {
        // log_n, top, inverse, scale, log_src (0: in place), columns.
        let cases: [(u32, u32, u32, u32, u32, u32); 12] = [
            (3, 3, 1, 1, 0, 2),
            (4, 4, 0, 1, 4, 2),
            (5, 3, 0, 1, 3, 3),
            (8, 8, 1, 1 << 23, 0, 2),
            (11, 11, 1, 7, 0, 1),
            (12, 12, 0, 1, 12, 1),
            (13, 13, 1, 1 << 18, 0, 2),
            (14, 13, 0, 1, 13, 1),
            (15, 15, 1, 1, 0, 1),
            (16, 14, 0, 1, 14, 1),
            (17, 17, 0, 1, 0, 1),
            (17, 17, 1, 12345, 0, 1),
        ];
        let mut table = String::new();
        for (log_n, top, inv, scale, log_src, n_cols) in cases {
            let low = top.min(FFT_TILE_LOG);
            let chunks: Vec<String> =
                register_chunks(low, top).iter().map(|(k0, r)| format!("{{{k0}, {r}}}")).collect();
            table.push_str(&format!(
                "  {{{log_n}, {top}, {inv}, {scale}u, {log_src}, {n_cols}, {low}, {}, {{{}}}}},\n",
                chunks.len(),
                chunks.join(", ")
            ));
        }
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
struct Case { u32 log_n, top; int inv; u32 scale, log_src, n_cols, low, n_chunks; u32 chunks[8][2]; };
static const Case cases[] = {
@CASES@};
// The definition: every layer over the whole column, then the scale.
static void by_definition(std::vector<u32>& col, const std::vector<u32>& tw, u32 log_len, u32 log_n, u32 top, int inv, u32 scale) {
  for (u32 step = 0; step < top; step++) {
    u32 k = inv ? step : top - 1 - step;
    for (u32 p = 0; p < (1u << (log_n - 1)); p++) {
      u32 h = p >> k, l = p & ((1u << k) - 1);
      u32 i0 = (h << (k + 1)) + l, i1 = i0 + (1u << k);
      u32 t = k == 0 ? circle_twiddle(tw.data(), tw_off(log_len, log_n, 1), p) : tw[tw_off(log_len, log_n, k) + h];
      butterfly(col[i0], col[i1], t, inv);
    }
  }
  if (scale != 1) for (auto& v : col) v = m31_mul(v, scale);
}
int main() {
  for (const Case& c : cases) {
    u32 log_len = c.log_n - 1, n = 1u << c.log_n;
    std::vector<u32> tw(1u << log_len);
    for (auto& t : tw) t = rnd();
    u32 src_n = c.log_src ? 1u << c.log_src : n;
    std::vector<std::vector<u32>> input(c.n_cols, std::vector<u32>(src_n)), want, got(c.n_cols, std::vector<u32>(n));
    for (auto& col : input) for (auto& v : col) v = rnd();
    for (auto& col : input) {
      std::vector<u32> w(n);
      for (u32 j = 0; j < n; j++) w[j] = col[j & (src_n - 1)];
      by_definition(w, tw, log_len, c.log_n, c.top, c.inv, c.scale);
      want.push_back(w);
    }
    std::vector<u64> cols(c.n_cols), srcs(c.n_cols);
    for (u32 i = 0; i < c.n_cols; i++) {
      if (!c.log_src) got[i] = input[i];
      cols[i] = (u64)got[i].data();
      srcs[i] = (u64)input[i].data();
    }
    u64 first = c.log_src ? (u64)srcs.data() : 0;
    blockDim.x = 1; blockIdx.x = 0;
    auto line = [&](u64 from, u32 k0, u32 r, u32 scale) {
      for (u64 t = 0; t < ((u64)c.n_cols << (c.log_n - r)); t++) {
        threadIdx.x = (u32)t;
        fft_line_layers(cols.data(), (const u64*)from, c.log_src, tw.data(), log_len, c.log_n, k0, r, c.n_cols, c.inv, scale);
      }
    };
    auto low = [&](u64 from, u32 scale) {
      u32 threads = (1u << c.low >> FFT_ROUND_LAYERS) ? (1u << c.low >> FFT_ROUND_LAYERS) : 1, rounds = (c.low + FFT_ROUND_LAYERS - 1) / FFT_ROUND_LAYERS;
      static u32 s[FFT_TILE_WORDS];
      for (u32 y = 0; y < c.n_cols; y++) {
        u32* col = (u32*)cols[y];
        const u32* in = from ? (const u32*)((const u64*)from)[y] : col;
        u32 mask = from ? (1u << c.log_src) - 1 : 0xffffffffu;
        for (u32 x = 0; x < (1u << (c.log_n - c.low)); x++) {
          u32 base = x << c.low;
          for (u32 t = 0; t < threads; t++) tile_load(s, in, mask, base, 1u << c.low, t, threads);
          for (u32 i = 0; i < rounds; i++)
            for (u32 t = 0; t < threads; t++)
              tile_pass(s, tw.data(), log_len, c.log_n, c.low, c.inv ? i : rounds - 1 - i, c.inv, base, t, threads);
          for (u32 t = 0; t < threads; t++) tile_store(s, col, base, 1u << c.low, scale, t, threads);
        }
      }
    };
    if (c.inv) {
      low(0, c.n_chunks ? 1 : c.scale);
      for (u32 i = 0; i < c.n_chunks; i++) line(0, c.chunks[i][0], c.chunks[i][1], i + 1 == c.n_chunks ? c.scale : 1);
    } else {
      for (u32 i = c.n_chunks; i-- > 0;) { line(first, c.chunks[i][0], c.chunks[i][1], 1); first = 0; }
      low(first, 1);
    }
    if (got != want) { printf("differs: log_n %u top %u inverse %d log_src %u\n", c.log_n, c.top, c.inv, c.log_src); return 1; }
  }
  printf("equal\n");
  return 0;
}
"#
            .replace("@CASES@", &table)
        );
        let program = crate::codegen::HostProgram::build("fft", &src, "-O1");
        let out = std::process::Command::new(&program.exe).output().expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "equal");
    }
}
