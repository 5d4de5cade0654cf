//! Stwo 2.3 on NVIDIA GPUs, through cudarc: a backend that proves
//! byte-identically to the SIMD one.
//!
//! The kernels (`kernels/*.cu`, plus the code [`codegen`] generates from the
//! AIR) are embedded in the binary and compiled by NVRTC when a [`Gpu`] is
//! opened; the driver and NVRTC libraries are loaded at run time, so this
//! crate builds and links on machines without CUDA and [`Gpu::open`]
//! reports [`CudaError::NoDriver`] there.
//!
//! - [`Gpu`] (this module): device columns and the primitive kernels: circle
//!   IFFT/FFT over batches of columns with Stwo's twiddle tree
//!   ([`Gpu::interpolate`], [`Gpu::evaluate`]), the lifted Blake2s Merkle
//!   commitment ([`Gpu::merkle_root`]), the proof-of-work nonce in the SIMD
//!   backend's search order ([`Gpu::grind`]), FRI folds and quotients;
//! - [`backend`]: `CudaBackend`, Stwo's backend traits over those columns;
//! - [`codegen`]: CUDA C for each component's constraints and LogUp
//!   fractions, generated from the component's own expression trees;
//! - [`constraints`]: `ComponentProver<CudaBackend>` for the AIR's
//!   components, running the generated constraint kernels;
//! - [`logup`]: the LogUp interaction trace on the device;
//! - [`cputrace`], [`hashtrace`]: the CPU and Poseidon2 components' rows
//!   built on the device from the steps and hash calls the VM recorded.
//!
//! `bitsage-cuda-check` compares each kernel against Stwo on random inputs
//! and times it against the SIMD backend; `bitsage-gpu-proofs` (in
//! `bitsage-prover`) compares whole proofs byte for byte.

pub mod backend;
pub mod codegen;
pub mod constraints;
pub mod cputrace;
pub mod hashtrace;
pub mod logup;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::CompileOptions;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::cpu::CpuBackend;
use stwo::prover::poly::circle::PolyOps;

pub use cudarc::driver::DriverError;

/// The CUDA sources, in compilation order.
pub const SOURCES: [(&str, &str); 6] = [
    ("m31.cuh", M31_H),
    ("qm31.cuh", QM31_H),
    ("circle_fft.cu", include_str!("../../../kernels/circle_fft.cu")),
    ("blake2s.cu", include_str!("../../../kernels/blake2s.cu")),
    ("fri.cu", include_str!("../../../kernels/fri.cu")),
    ("logup.cu", include_str!("../../../kernels/logup.cu")),
];

const M31_H: &str = include_str!("../../../kernels/m31.cuh");
const QM31_H: &str = include_str!("../../../kernels/qm31.cuh");

/// Declares the fixed kernels: an enum to launch them by, and their CUDA
/// names in the same order, so a launch cannot name the wrong function.
macro_rules! kernels {
    ($($variant:ident = $name:literal,)*) => {
        /// The hand-written kernels in `kernels/*.cu`, loaded when a [`Gpu`] opens.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Kernel {
            $($variant,)*
        }

        impl Kernel {
            /// Every kernel, in load order ([`Gpu`] indexes its functions by it).
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant,)*];

            /// The `extern "C"` name in the CUDA source.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kernel::$variant => $name,)*
                }
            }
        }
    };
}

kernels! {
    FftLineLayer = "fft_line_layer",
    FftLowLayers = "fft_low_layers",
    M31Scale = "m31_scale",
    FftReplicate = "fft_replicate",
    MerkleLeaves = "merkle_leaves",
    MerkleLayer = "merkle_layer",
    Grind = "grind",
    FriFold = "fri_fold",
    LiftAccumulate = "lift_accumulate",
    DotM31Qm31 = "dot_m31_qm31",
    M31AddInto = "m31_add_into",
    BitReverseM31 = "bit_reverse_m31",
    AccumulateQuotient = "accumulate_quotient",
    QuotientNumerators = "quotient_numerators",
    BarycentricWeights = "barycentric_weights",
    GatherWords = "gather_words",
    QuotientCombine = "quotient_combine",
    LogupToCoset = "logup_to_coset",
    ScanChunks = "scan_chunks",
    ScanAdd = "scan_add",
    LogupFromCoset = "logup_from_coset",
    DotMany = "dot_many",
    GatherMany = "gather_many",
    GatherLists = "gather_lists",
}

/// Layers done in shared memory by `fft_low_layers` (`FFT_TILE_LOG`).
const FFT_TILE_LOG: u32 = 11;

/// Words per chunk of `scan_chunks` (`SCAN_CHUNK` in `kernels/logup.cu`).
const SCAN_CHUNK: u32 = 4096;
const SCAN_THREADS: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum CudaError {
    #[error("no CUDA driver on this machine (libcuda could not be loaded)")]
    NoDriver,
    #[error("NVRTC could not be loaded, so the kernels cannot be compiled")]
    NoNvrtc,
    #[error("no CUDA device with ordinal {ordinal} (found {count})")]
    NoDevice { ordinal: usize, count: usize },
    #[error("CUDA driver error: {0}")]
    Driver(#[from] DriverError),
    #[error("kernel compilation failed: {0}")]
    Compile(String),
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, CudaError>;

/// Number of CUDA devices, or why there are none.
pub fn device_count() -> Result<usize> {
    // SAFETY: only probes whether the shared library can be opened.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(CudaError::NoDriver);
    }
    Ok(CudaContext::device_count()? as usize)
}

/// One GPU: a context, a stream, and the compiled kernels.
pub struct Gpu {
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    f: Vec<CudaFunction>,
    /// Decommitment query positions learned from the first column of each
    /// (length, words per value) read one value at a time; see
    /// `backend::DevCol::at`.
    pub query_plan: std::sync::Mutex<std::collections::HashMap<(usize, usize), Vec<usize>>>,
    /// A page-locked host buffer that trace uploads are staged through.
    staging: std::sync::Mutex<Option<cudarc::driver::PinnedHostSlice<u32>>>,
    /// Per-thread side streams for short synchronous reads (see `dot_strided`).
    side: std::sync::Mutex<std::collections::HashMap<std::thread::ThreadId, Arc<CudaStream>>>,
}

/// Values built once per key and device for the life of the process: a
/// compiled module belongs to one device's context, and compiling (NVRTC,
/// or loading from the disk cache) is worth doing once.
pub(crate) struct PerDevice<K, V>(std::sync::OnceLock<std::sync::Mutex<ByDevice<K, V>>>);

/// Values by (key, device ordinal).
type ByDevice<K, V> = std::collections::HashMap<(K, usize), Arc<V>>;

impl<K: std::hash::Hash + Eq, V> PerDevice<K, V> {
    pub(crate) const fn new() -> Self {
        PerDevice(std::sync::OnceLock::new())
    }

    /// The value for `key` on the bound device, built by `build` the first time.
    pub(crate) fn get_or_try(&self, key: K, build: impl FnOnce() -> Result<V>) -> Result<Arc<V>> {
        let mut map = self.0.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let key = (key, backend::bound_ordinal());
        if let Some(v) = map.get(&key) {
            return Ok(v.clone());
        }
        let v = Arc::new(build()?);
        map.insert(key, v.clone());
        Ok(v)
    }
}

impl Gpu {
    /// The loaded function of a fixed kernel.
    fn k(&self, kernel: Kernel) -> &CudaFunction {
        &self.f[kernel as usize]
    }
}

/// Words in the pinned staging buffer (128 MiB).
const STAGING_WORDS: usize = 32 << 20;

/// Generated kernels compiled for one device.
pub struct GeneratedModule {
    _module: Arc<CudaModule>,
    pub(crate) f: Vec<CudaFunction>,
    /// Whether the PTX came from the on-disk cache.
    pub from_cache: bool,
}

/// A component's generated constraint kernels, compiled for one device.
pub struct CompiledConstraints {
    pub kernel: codegen::ConstraintKernel,
    _module: GeneratedModule,
    f: Vec<CudaFunction>,
    /// Whether the PTX came from the on-disk cache.
    pub from_cache: bool,
}

/// Where compiled kernel PTX is cached: `$BITSAGE_KERNEL_CACHE`, else
/// `$XDG_CACHE_HOME/bitsage/kernels`, else `~/.cache/bitsage/kernels`.
fn kernel_cache_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("BITSAGE_KERNEL_CACHE") {
        return Some(d.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("bitsage").join("kernels"))
}

/// NVRTC output for `src`, from the cache when this exact source (and this
/// crate version) was compiled before. A cache that cannot be written only
/// costs the next process a compile.
fn compile_cached(name: &str, src: &str) -> Result<(cudarc::nvrtc::Ptx, bool)> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    src.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let path = kernel_cache_dir().map(|d| d.join(format!("{name}-{:016x}.ptx", h.finish())));
    if let Some(text) = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) {
        return Ok((cudarc::nvrtc::Ptx::from_src(text), true));
    }
    let opts = CompileOptions { name: Some(format!("{name}.cu")), ..Default::default() };
    let ptx =
        cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| CudaError::Compile(format!("{name}: {e:?}")))?;
    if let Some(p) = path {
        let stored = p.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|()| {
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, ptx.to_src())?;
            std::fs::rename(&tmp, &p)
        });
        if let Err(e) = stored {
            eprintln!("warning: could not cache kernel {name}: {e}");
        }
    }
    Ok((ptx, false))
}

/// `x + y mod 2^31 - 1` for reduced words.
fn m31_add_host(x: u32, y: u32) -> u32 {
    let r = x + y;
    if r >= (1 << 31) - 1 {
        r - ((1 << 31) - 1)
    } else {
        r
    }
}

fn launch_1d(n: u64) -> LaunchConfig {
    let block = 256u32;
    LaunchConfig {
        grid_dim: (n.div_ceil(block as u64).max(1) as u32, 1, 1),
        block_dim: (block, 1, 1),
        shared_mem_bytes: 0,
    }
}

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
    fn line_offset(&self, log_n: u32, i: u32) -> u32 {
        let m = log_n - 1;
        (1u32 << self.log_len) - (1u32 << (m - i))
    }
}

/// A twiddle tree on the device: forward and inverse.
pub struct DeviceTwiddles {
    pub tw: TwBuf,
    pub itw: TwBuf,
}

/// Memory freed to the device's stream-ordered pool (where cudarc's
/// allocations come from) goes back to the driver at the next
/// synchronisation unless the pool's release threshold says to keep it; the
/// default threshold is 0, so every proof would unmap and remap its working
/// set many times over. Keep up to `BITSAGE_CUDA_POOL_RELEASE_BYTES`
/// (default: all of it; the pool still gives memory back when another
/// allocation on the device needs it).
fn keep_pool_memory(ctx: &CudaContext) -> Result<()> {
    use cudarc::driver::sys;
    let mut threshold: u64 =
        std::env::var("BITSAGE_CUDA_POOL_RELEASE_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: `pool` is a valid out-pointer; the device handle is the context's own.
    let r = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) };
    if r != sys::CUresult::CUDA_SUCCESS {
        // No memory pools on this device: allocations are synchronous and nothing to keep.
        return Ok(());
    }
    // SAFETY: the attribute takes a pointer to a u64, which lives across the call.
    let r = unsafe {
        sys::cuMemPoolSetAttribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            (&mut threshold as *mut u64).cast(),
        )
    };
    match r {
        sys::CUresult::CUDA_SUCCESS => Ok(()),
        e => Err(CudaError::Unsupported(format!("setting the memory pool's release threshold: {e:?}"))),
    }
}

impl Gpu {
    /// Opens device `ordinal` and compiles the kernels.
    pub fn open(ordinal: usize) -> Result<Gpu> {
        let count = device_count()?;
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        // SAFETY: only probes whether the shared library can be opened.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(CudaError::NoNvrtc);
        }
        let ctx = CudaContext::new(ordinal)?;
        // SAFETY: no buffer exists yet. Buffers are used on the main stream,
        // in order, except the side-stream reads of `dot_strided`, which join
        // the main stream first and finish before they return; so cudarc's
        // per-buffer events (a cost on every launch once a second stream
        // exists) are not needed.
        unsafe { ctx.disable_event_tracking() };
        keep_pool_memory(&ctx)?;
        let stream = ctx.default_stream();
        let src: String = SOURCES.iter().map(|(name, text)| format!("// ---- {name}\n{text}\n")).collect();
        let (ptx, _) = compile_cached("bitsage_kernels", &src)?;
        let module = ctx.load_module(ptx)?;
        let f =
            Kernel::ALL.iter().map(|k| module.load_function(k.name())).collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Gpu {
            ctx,
            stream,
            _module: module,
            f,
            query_plan: Default::default(),
            staging: Default::default(),
            side: Default::default(),
        })
    }

    /// Compiles generated CUDA `source` (with the field headers) and loads
    /// the kernels `functions` from it (NVRTC, cached on disk by source).
    pub fn compile_generated(
        &self,
        name: &str,
        source: &str,
        functions: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<GeneratedModule> {
        let src = format!("{M31_H}\n{QM31_H}\n{source}");
        let (ptx, from_cache) = compile_cached(name, &src)?;
        let module = self.ctx.load_module(ptx)?;
        let f = functions
            .into_iter()
            .map(|n| module.load_function(n.as_ref()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(GeneratedModule { _module: module, f, from_cache })
    }

    /// Compiles a component's generated constraint kernels.
    pub fn compile_constraints(&self, kernel: codegen::ConstraintKernel) -> Result<CompiledConstraints> {
        let m = self.compile_generated(&kernel.name, &kernel.source(), kernel.parts.iter().map(|(n, _)| n))?;
        Ok(CompiledConstraints { kernel, f: m.f.clone(), from_cache: m.from_cache, _module: m })
    }

    /// Runs a constraint kernel over a bit-reversed evaluation domain of
    /// `2^eval_log` rows: `columns[k]` is the kernel's column `k`, `powers`
    /// holds one QM31 (4 words) per constraint. Returns 4 words per row.
    #[allow(clippy::too_many_arguments)]
    pub fn eval_constraints(
        &self,
        c: &CompiledConstraints,
        columns: &[&CudaSlice<u32>],
        base_params: &[u32],
        ext_params: &[u32],
        powers: &[u32],
        trace_log: u32,
        eval_log: u32,
    ) -> Result<CudaSlice<u32>> {
        let k = &c.kernel;
        let ok = columns.len() == k.columns.len()
            && base_params.len() == k.base_params.len()
            && ext_params.len() == 4 * k.ext_params.len()
            && powers.len() == 4 * k.n_constraints
            && columns.iter().all(|col| col.len() >= 1 << eval_log)
            && eval_log > trace_log;
        if !ok {
            return Err(CudaError::Unsupported(format!("arguments do not match constraint kernel {}", k.name)));
        }
        let d_ptrs = self.device_ptrs(columns.iter().copied())?;
        let d_base = self.args(base_params)?;
        let d_ext = self.args(ext_params)?;
        let d_pow = self.args(powers)?;
        // SAFETY: the kernel writes all 4 words of every row.
        let mut out = unsafe { self.stream.alloc::<u32>(4usize << eval_log) }?;
        for f in &c.f {
            let mut b = self.stream.launch_builder(f);
            b.arg(&d_ptrs).arg(&d_base).arg(&d_ext).arg(&d_pow).arg(&trace_log).arg(&eval_log).arg(&mut out);
            // SAFETY: every column has 2^eval_log values and offsets stay inside the domain;
            // the first part writes every row, later parts add to it (same stream, in order).
            unsafe { b.launch(launch_1d(1u64 << eval_log)) }?;
        }
        Ok(out)
    }

    pub fn name(&self) -> Result<String> {
        Ok(self.ctx.name()?)
    }

    /// Free and total device memory, in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        Ok(self.ctx.mem_get_info()?)
    }

    /// A kernel argument array; an empty one becomes a single zero so the
    /// kernel still gets a valid pointer.
    pub(crate) fn args<T: cudarc::driver::DeviceRepr + Default + Copy>(&self, values: &[T]) -> Result<CudaSlice<T>> {
        let one = [T::default()];
        Ok(self.stream.clone_htod(if values.is_empty() { &one[..] } else { values })?)
    }

    /// The device addresses of `cols`, as a device array for a kernel.
    fn device_ptrs<'a>(&self, cols: impl IntoIterator<Item = &'a CudaSlice<u32>>) -> Result<CudaSlice<u64>> {
        let ptrs: Vec<u64> = cols
            .into_iter()
            .map(|c| {
                let (p, _sync) = cudarc::driver::DevicePtr::device_ptr(c, &self.stream);
                p
            })
            .collect();
        self.args(&ptrs)
    }

    pub fn upload(&self, values: &[u32]) -> Result<CudaSlice<u32>> {
        Ok(self.stream.clone_htod(values)?)
    }

    /// The pinned staging buffer (allocated on first use), locked. Its users
    /// synchronise the stream before writing it, since the previous user's
    /// transfers may still be reading it.
    fn staging(&self) -> Result<std::sync::MutexGuard<'_, Option<cudarc::driver::PinnedHostSlice<u32>>>> {
        let mut guard = self.staging.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            // SAFETY: the buffer is read only by copies its users issue after writing it.
            *guard = Some(unsafe { self.ctx.alloc_pinned::<u32>(STAGING_WORDS) }?);
        }
        Ok(guard)
    }

    /// Uploads many columns through a pinned staging buffer: a group of
    /// columns is copied into it on all host threads, then transferred by
    /// DMA at full PCIe speed (a pageable copy goes through the driver's
    /// bounce buffer at a fraction of it). Columns larger than the buffer go
    /// the ordinary way.
    pub fn upload_many(&self, cols: &[&[u32]]) -> Result<Vec<CudaSlice<u32>>> {
        use rayon::prelude::*;
        let mut guard = self.staging()?;
        let Some(staging) = guard.as_mut() else { return Err(CudaError::Unsupported("no staging buffer".into())) };
        let mut out = Vec::with_capacity(cols.len());
        let mut i = 0;
        while i < cols.len() {
            if cols[i].len() > STAGING_WORDS {
                out.push(self.upload(cols[i])?);
                i += 1;
                continue;
            }
            let (mut j, mut words) = (i, 0);
            while j < cols.len() && words + cols[j].len() <= STAGING_WORDS {
                words += cols[j].len();
                j += 1;
            }
            // The previous group's transfers read the buffer until they finish.
            self.stream.synchronize()?;
            let host = staging.as_mut_slice()?;
            let mut parts = Vec::with_capacity(j - i);
            let mut rest = &mut host[..words];
            for c in &cols[i..j] {
                let (head, tail) = rest.split_at_mut(c.len());
                parts.push(head);
                rest = tail;
            }
            parts.par_iter_mut().zip(&cols[i..j]).for_each(|(dst, src)| dst.copy_from_slice(src));
            let host: &[u32] = &staging.as_slice()?[..words];
            let mut at = 0;
            for c in &cols[i..j] {
                // SAFETY: every word of the allocation is written by the copy below.
                let mut dst = unsafe { self.stream.alloc::<u32>(c.len().max(1)) }?;
                self.stream.memcpy_htod(&host[at..at + c.len()], &mut dst)?;
                at += c.len();
                out.push(dst);
            }
            i = j;
        }
        self.stream.synchronize()?;
        Ok(out)
    }

    /// Uploads `n_rows` rows of `row_words` words that `fill(first_row,
    /// out)` writes straight into the pinned staging buffer (on all host
    /// threads, a block of rows per call), so the rows never exist anywhere
    /// else on the host. Returns once the last transfer is queued.
    pub fn upload_rows(
        &self,
        n_rows: usize,
        row_words: usize,
        fill: impl Fn(usize, &mut [u32]) + Sync,
    ) -> Result<CudaSlice<u32>> {
        use rayon::prelude::*;
        const ROWS_PER_TASK: usize = 1 << 12;
        if row_words == 0 || row_words > STAGING_WORDS {
            return Err(CudaError::Unsupported(format!("upload_rows: rows of {row_words} words")));
        }
        // SAFETY: every word is written by the copies below.
        let mut dst = unsafe { self.stream.alloc::<u32>((n_rows * row_words).max(1)) }?;
        let mut guard = self.staging()?;
        let Some(staging) = guard.as_mut() else { return Err(CudaError::Unsupported("no staging buffer".into())) };
        let group = STAGING_WORDS / row_words;
        let mut first = 0;
        while first < n_rows {
            let rows = group.min(n_rows - first);
            let words = rows * row_words;
            // The previous group's transfer reads the buffer until it finishes.
            self.stream.synchronize()?;
            let host = staging.as_mut_slice()?;
            host[..words]
                .par_chunks_mut(ROWS_PER_TASK * row_words)
                .enumerate()
                .for_each(|(t, out)| fill(first + t * ROWS_PER_TASK, out));
            let mut view = dst.slice_mut(first * row_words..first * row_words + words);
            self.stream.memcpy_htod(&staging.as_slice()?[..words], &mut view)?;
            first += rows;
        }
        // The next user of the staging buffer synchronises before writing it.
        Ok(dst)
    }

    pub fn download(&self, values: &CudaSlice<u32>) -> Result<Vec<u32>> {
        Ok(self.stream.clone_dtoh(values)?)
    }

    /// The values at `positions` of a column of `words`-word values, in
    /// order (one kernel, one small copy).
    pub fn gather(&self, col: &CudaSlice<u32>, words: u32, positions: &[u32]) -> Result<Vec<u32>> {
        let n = positions.len() as u32;
        if n == 0 {
            return Ok(Vec::new());
        }
        let pos = self.upload(positions)?;
        let mut out = self.stream.alloc_zeros::<u32>((n * words) as usize)?;
        let mut l = self.stream.launch_builder(&self.k(Kernel::GatherWords));
        l.arg(col).arg(&pos).arg(&n).arg(&words).arg(&mut out);
        // SAFETY: the caller's positions are below the column's length; one thread per output word.
        unsafe { l.launch(launch_1d((n * words) as u64)) }?;
        self.download(&out)
    }

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
        let mut b = side.launch_builder(&self.k(Kernel::DotMany));
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

    /// [`Gpu::gather`] of every column in `cols` (device addresses of
    /// columns of `words`-word values) at the same positions: one launch and
    /// one read-back. Returns each column's words, in position order.
    pub fn gather_many(&self, cols: &[u64], words: u32, positions: &[u32]) -> Result<Vec<Vec<u32>>> {
        let (n, n_cols) = (positions.len() as u32, cols.len() as u32);
        if n == 0 || n_cols == 0 {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        let side = self.side_stream()?;
        let d_cols = side.clone_htod(cols)?;
        let d_pos = side.clone_htod(positions)?;
        let total = n as u64 * words as u64 * n_cols as u64;
        // SAFETY: every word is written below.
        let mut out = unsafe { side.alloc::<u32>(total as usize) }?;
        let mut b = side.launch_builder(&self.k(Kernel::GatherMany));
        b.arg(&d_cols).arg(&n_cols).arg(&d_pos).arg(&n).arg(&words).arg(&mut out);
        // SAFETY: positions are below every column's length (the caller's plan); one thread per word.
        unsafe { b.launch(launch_1d(total)) }?;
        let w = side.clone_dtoh(&out)?;
        Ok(w.chunks((n * words) as usize).map(<[u32]>::to_vec).collect())
    }

    /// [`Gpu::gather`] of several columns (device addresses) of `words`-word
    /// values, each at its own positions: one launch and one read-back.
    /// Returns each column's words, in its positions' order.
    pub fn gather_lists(&self, cols: &[(u64, &[u32])], words: u32) -> Result<Vec<Vec<u32>>> {
        let ptrs: Vec<u64> = cols.iter().map(|c| c.0).collect();
        let mut offs = Vec::with_capacity(cols.len() + 1);
        offs.push(0u32);
        let mut pos = Vec::new();
        for (_, p) in cols {
            pos.extend_from_slice(p);
            offs.push(pos.len() as u32);
        }
        if pos.is_empty() {
            return Ok(vec![Vec::new(); cols.len()]);
        }
        let side = self.side_stream()?;
        let d_cols = side.clone_htod(&ptrs)?;
        let d_offs = side.clone_htod(&offs)?;
        let d_pos = side.clone_htod(&pos)?;
        let total = pos.len() as u64 * words as u64;
        // SAFETY: every word is written below.
        let mut out = unsafe { side.alloc::<u32>(total as usize) }?;
        let n_cols = cols.len() as u32;
        let mut b = side.launch_builder(&self.k(Kernel::GatherLists));
        b.arg(&d_cols).arg(&d_offs).arg(&n_cols).arg(&d_pos).arg(&words).arg(&mut out);
        // SAFETY: each column's positions are below its length (the caller's plan); one thread per word.
        unsafe { b.launch(launch_1d(total)) }?;
        let w = side.clone_dtoh(&out)?;
        Ok(offs.windows(2).map(|o| w[(o[0] * words) as usize..(o[1] * words) as usize].to_vec()).collect())
    }

    /// This thread's side stream on this device (made on first use), made
    /// to wait for the work queued on the main stream so far.
    fn side_stream(&self) -> Result<Arc<CudaStream>> {
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

    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
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
            let mut b = self.stream.launch_builder(&self.k(Kernel::FftLowLayers));
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
            let mut b = self.stream.launch_builder(&self.k(Kernel::FftLineLayer));
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
        let mut b = self.stream.launch_builder(&self.k(Kernel::FftReplicate));
        b.arg(src).arg(dst).arg(&log_coeffs).arg(&log_n).arg(&n_cols);
        // SAFETY: one thread per destination word; sources are read below 2^log_coeffs.
        unsafe { b.launch(launch_1d((n_cols as u64) << log_n)) }?;
        self.fft_layers(dst, n_cols, tw, log_n, log_coeffs, false, 1)
    }

    /// Leaf hashes (8 words each) of the lifted Blake2s Merkle tree over
    /// `columns` (device column and log size, sorted ascending by size, each
    /// at least 2 values), lifted to `2^log_leaves` leaves.
    pub fn merkle_leaves(&self, columns: &[(&CudaSlice<u32>, u32)], log_leaves: u32) -> Result<CudaSlice<u32>> {
        if columns.iter().any(|c| c.1 == 0 || c.1 > log_leaves) || columns.windows(2).any(|w| w[0].1 > w[1].1) {
            return Err(CudaError::Unsupported("columns must be sorted by size, 2 <= size <= leaves".into()));
        }
        let logs: Vec<u32> = columns.iter().map(|c| c.1).collect();
        let d_ptrs = self.device_ptrs(columns.iter().map(|c| c.0))?;
        let d_logs = self.args(&logs)?;
        let n_cols = columns.len() as u32;
        // SAFETY: `merkle_leaves` writes all 8 words of every leaf.
        let mut leaves = unsafe { self.stream.alloc::<u32>(8usize << log_leaves) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::MerkleLeaves));
        b.arg(&d_ptrs).arg(&d_logs).arg(&n_cols).arg(&log_leaves).arg(&mut leaves);
        // SAFETY: each thread reads in-bounds lifted indices of the columns and writes its own leaf.
        unsafe { b.launch(launch_1d(1u64 << log_leaves)) }?;
        Ok(leaves)
    }

    /// The next Merkle layer: `out[i] = H(prev[2i] || prev[2i+1])`.
    pub fn merkle_next_layer(&self, prev: &CudaSlice<u32>) -> Result<CudaSlice<u32>> {
        let n = (prev.len() / 16) as u64;
        // SAFETY: `merkle_layer` writes all 8 words of every node.
        let mut next = unsafe { self.stream.alloc::<u32>((8 * n.max(1)) as usize) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::MerkleLayer));
        b.arg(prev).arg(&mut next).arg(&n);
        // SAFETY: node i reads children 2i and 2i+1 of the previous layer.
        unsafe { b.launch(launch_1d(n)) }?;
        Ok(next)
    }

    /// The lifted Blake2s Merkle tree of `columns` (sorted ascending by
    /// size): returns the leaf layer and the root.
    pub fn merkle_root(&self, columns: &[(&CudaSlice<u32>, u32)]) -> Result<(CudaSlice<u32>, [u32; 8])> {
        let log_leaves = columns.iter().map(|c| c.1).max().unwrap_or(0);
        let leaves = self.merkle_leaves(columns, log_leaves)?;
        let mut layer = leaves.clone();
        for _ in 0..log_leaves {
            layer = self.merkle_next_layer(&layer)?;
        }
        let root = self.download(&layer)?;
        let root: [u32; 8] = root.try_into().map_err(|_| CudaError::Unsupported("root is not 8 words".into()))?;
        Ok((leaves, root))
    }

    /// `a[i] += b[i]` over M31 words.
    pub fn add_into(&self, a: &mut CudaSlice<u32>, b: &CudaSlice<u32>) -> Result<()> {
        let n = a.len().min(b.len()) as u64;
        let mut l = self.stream.launch_builder(&self.k(Kernel::M31AddInto));
        l.arg(a).arg(b).arg(&n);
        // SAFETY: one thread per word below the shorter length.
        unsafe { l.launch(launch_1d(n)) }?;
        Ok(())
    }

    /// In-place bit-reversal permutation of a column of 2^log_n words.
    pub fn bit_reverse(&self, a: &mut CudaSlice<u32>, log_n: u32) -> Result<()> {
        let mut l = self.stream.launch_builder(&self.k(Kernel::BitReverseM31));
        l.arg(a).arg(&log_n);
        // SAFETY: threads swap pairs (i, rev(i)) with i < rev(i), all below 2^log_n.
        unsafe { l.launch(launch_1d(1u64 << log_n)) }?;
        Ok(())
    }

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
        let mut l = self.stream.launch_builder(&self.k(Kernel::AccumulateQuotient));
        l.arg(row_res).arg(&d).arg(&trace_log).arg(&eval_log).arg(a0).arg(a1).arg(a2).arg(a3);
        // SAFETY: one thread per row below 2^eval_log; every column has that many words.
        unsafe { l.launch(launch_1d(1u64 << eval_log)) }?;
        Ok(())
    }

    /// FRI quotient numerators `Σ_k c_k · col_k[row] - b_k` over the first
    /// `n_rows` rows of `cols`; `bc` holds `(b_k, c_k)` as 8 words per term.
    /// Returns a coordinate-major QM31 column of `n_rows` values.
    pub fn quotient_numerators(&self, cols: &[&CudaSlice<u32>], bc: &[u32], n_rows: usize) -> Result<CudaSlice<u32>> {
        if bc.len() != 8 * cols.len() || cols.iter().any(|c| c.len() < n_rows) {
            return Err(CudaError::Unsupported("quotient_numerators: mismatched terms".into()));
        }
        let d_ptrs = self.device_ptrs(cols.iter().copied())?;
        let d_bc = self.args(bc)?;
        let (n_terms, rows) = (cols.len() as u32, n_rows as u32);
        // SAFETY: every row's 4 coordinates are written.
        let mut out = unsafe { self.stream.alloc::<u32>(4 * n_rows) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::QuotientNumerators));
        b.arg(&d_ptrs).arg(&d_bc).arg(&n_terms).arg(&rows).arg(&mut out);
        // SAFETY: thread `row` reads row `row` of every column (each at least n_rows long).
        unsafe { b.launch(launch_1d(n_rows as u64)) }?;
        Ok(out)
    }

    /// Stwo's quotient combination over a subdomain of `2^log_n` rows whose
    /// points (x, y), bit-reversed, are `pts`: `accs[k]` are batch k's four
    /// accumulated-numerator coordinate columns (`2^logs[k]` values each),
    /// `params` 12 words per batch (first linear term, then the sample
    /// point's Re x, Re y, Im x, Im y). Returns 4 coordinate columns.
    pub fn quotient_combine(
        &self,
        pts: &CudaSlice<u32>,
        accs: &[[&CudaSlice<u32>; 4]],
        logs: &[u32],
        params: &[u32],
        log_n: u32,
    ) -> Result<CudaSlice<u32>> {
        let n = 1usize << log_n;
        if accs.len() != logs.len()
            || params.len() != 12 * accs.len()
            || pts.len() < 2 * n
            || logs.iter().zip(accs).any(|(&l, a)| l > log_n || a.iter().any(|c| c.len() < 1 << l))
        {
            return Err(CudaError::Unsupported("quotient_combine: mismatched batches".into()));
        }
        let d_accs = self.device_ptrs(accs.iter().flat_map(|a| a.iter().copied()))?;
        let d_logs = self.args(logs)?;
        let d_params = self.args(params)?;
        let n_acc = accs.len() as u32;
        // SAFETY: every row's 4 coordinates are written.
        let mut out = unsafe { self.stream.alloc::<u32>(4 * n) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::QuotientCombine));
        b.arg(pts).arg(&d_accs).arg(&d_logs).arg(&d_params).arg(&n_acc).arg(&log_n).arg(&mut out);
        // SAFETY: grid-stride over the rows; lifted indices stay below each batch's length.
        unsafe { b.launch(launch_1d(n as u64)) }?;
        Ok(out)
    }

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
        let mut b = self.stream.launch_builder(&self.k(Kernel::FriFold));
        b.arg(src).arg(&mut dst).arg(&itw.buf).arg(&off).arg(&log_dst).arg(&d_alpha).arg(&circle_flag);
        // SAFETY: thread i reads source pairs (2i, 2i+1) and twiddles inside the tree.
        unsafe { b.launch(launch_1d(1u64 << log_dst)) }?;
        Ok(dst)
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
            let mut b = self.stream.launch_builder(&self.k(Kernel::LiftAccumulate));
            b.arg(*col).arg(&acc).arg(&mut next).arg(log).arg(&log_acc);
            // SAFETY: lifted indices stay below the previous size.
            unsafe { b.launch(launch_1d(1u64 << log)) }?;
            acc = next;
            log_acc = *log;
        }
        Ok(Some(acc))
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
        let mut b = self.stream.launch_builder(&self.k(Kernel::BarycentricWeights));
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
        let mut b = side.launch_builder(&self.k(Kernel::DotM31Qm31));
        b.arg(evals).arg(weights).arg(&n).arg(&cs).arg(&es).arg(&mut partial);
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: grid-stride reads below n; shared memory is the static 256-entry array. The
        // inputs were finished on the main stream, which the side stream joined; the copy below
        // waits for the kernel, so the inputs are no longer read when this returns.
        unsafe { b.launch(cfg) }?;
        let p = side.clone_dtoh(&partial)?;
        Ok(p.chunks(4).fold([0u32; 4], |acc, w| std::array::from_fn(|k| m31_add_host(acc[k], w[k]))))
    }

    /// The proof-of-work nonce for a Blake2s channel whose prefixed digest
    /// (`H(0x12345678 || 0^12 || digest || pow_bits)`, 8 LE words) is given:
    /// the smallest `(hi << 32) | low` with `low < 2^20`, searched by `hi`.
    pub fn grind(&self, prefixed: &[u32; 8], pow_bits: u32) -> Result<u64> {
        const LOW: u32 = 1 << 20;
        let d_prefix = self.upload(prefixed)?;
        for hi in 0..u32::MAX {
            let mut found = self.upload(&[u32::MAX])?;
            let mut b = self.stream.launch_builder(&self.k(Kernel::Grind));
            b.arg(&d_prefix).arg(&pow_bits).arg(&hi).arg(&LOW).arg(&mut found);
            // SAFETY: threads read the 8-word prefix and atomically update one word.
            unsafe { b.launch(launch_1d(LOW as u64)) }?;
            let low = self.download(&found)?[0];
            if low != u32::MAX {
                return Ok(((hi as u64) << 32) | low as u64);
            }
        }
        Err(CudaError::Unsupported("no nonce found".into()))
    }

    /// Runs a generated LogUp fraction kernel (see
    /// [`codegen::generate_logup`]) over `2^log_n` rows: reads `cols`, writes
    /// 4 coordinate columns per batch into `outs`.
    pub fn logup_fractions(
        &self,
        m: &GeneratedModule,
        cols: &[&CudaSlice<u32>],
        ext_params: &[u32],
        log_n: u32,
        outs: &mut [CudaSlice<u32>],
    ) -> Result<()> {
        let n = 1usize << log_n;
        if m.f.len() != 1 || cols.iter().any(|c| c.len() < n) || outs.iter().any(|c| c.len() < n) {
            return Err(CudaError::Unsupported("logup_fractions: mismatched columns".into()));
        }
        let d_cols = self.device_ptrs(cols.iter().copied())?;
        let d_outs = self.device_ptrs(outs.iter())?;
        let d_params = self.args(ext_params)?;
        let mut b = self.stream.launch_builder(&m.f[0]);
        b.arg(&d_cols).arg(&d_params).arg(&log_n).arg(&d_outs);
        // SAFETY: thread `row` reads row `row` of every column and writes row `row` of every output.
        unsafe { b.launch(launch_1d(n as u64)) }?;
        Ok(())
    }

    /// In place: `rows` rows of `n` words each become their inclusive prefix
    /// sums mod p (a chunked scan, recursing on the chunk totals).
    fn scan_rows(&self, data: &mut CudaSlice<u32>, rows: u32, n: u32) -> Result<()> {
        let chunks = n.div_ceil(SCAN_CHUNK);
        // SAFETY: `scan_chunks` writes every chunk's total.
        let mut sums = unsafe { self.stream.alloc::<u32>((rows * chunks) as usize) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::ScanChunks));
        b.arg(&mut *data).arg(&n).arg(&mut sums);
        let cfg = LaunchConfig { grid_dim: (chunks, rows, 1), block_dim: (SCAN_THREADS, 1, 1), shared_mem_bytes: 0 };
        // SAFETY: each block scans its chunk of its row (bounds-checked against n).
        unsafe { b.launch(cfg) }?;
        if chunks > 1 {
            self.scan_rows(&mut sums, rows, chunks)?;
            let mut b = self.stream.launch_builder(&self.k(Kernel::ScanAdd));
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
    pub fn logup_running_sum(&self, cols: &mut [CudaSlice<u32>], log_n: u32) -> Result<[u32; 4]> {
        let n = 1u32 << log_n;
        if cols.len() != 4 || cols.iter().any(|c| c.len() != n as usize) || log_n > 28 {
            return Err(CudaError::Unsupported("logup_running_sum: 4 columns of 2^log_n values".into()));
        }
        let d_cols = self.device_ptrs(cols.iter())?;
        // SAFETY: `logup_to_coset` writes all 4n words.
        let mut tmp = unsafe { self.stream.alloc::<u32>(4 * n as usize) }?;
        let mut b = self.stream.launch_builder(&self.k(Kernel::LogupToCoset));
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
        let mut b = self.stream.launch_builder(&self.k(Kernel::LogupFromCoset));
        b.arg(&tmp).arg(&d_shift).arg(&log_n).arg(&d_cols);
        // SAFETY: one thread per word; each writes one row of one of the 4 columns.
        unsafe { b.launch(launch_1d(4 * n as u64)) }?;
        total.try_into().map_err(|_| CudaError::Unsupported("logup_running_sum: short read".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::{Kernel, SOURCES};

    #[test]
    fn every_kernel_is_defined_once_in_the_sources_and_named_once() {
        let src: String = SOURCES.iter().map(|(_, text)| *text).collect();
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?} is out of load order");
            let defined = src.matches(&format!("void {}(", k.name())).count();
            assert_eq!(defined, 1, "{} is defined {defined} times in kernels/*.cu", k.name());
            assert_eq!(Kernel::ALL.iter().filter(|o| o.name() == k.name()).count(), 1);
        }
    }
}
