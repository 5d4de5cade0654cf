//! Stwo 2.3 on NVIDIA GPUs, through cudarc: a backend that proves
//! byte-identically to the SIMD one.
//!
//! The kernels (`kernels/*.cu`, plus the code [`codegen`] generates from the
//! AIR) are embedded in the binary and compiled by NVRTC to CUBINs for the
//! device ([`compile`]): the fixed ones when a [`Gpu`] is opened, the
//! generated ones a proof needs all at once, in parallel, before it starts
//! ([`compile::prepare`]); both cached on disk. The driver and NVRTC
//! libraries are loaded at run time, so this crate builds and links on
//! machines without CUDA and [`Gpu::open`] reports [`CudaError::NoDriver`]
//! there.
//!
//! - [`Gpu`]: one device, its kernels, and the primitive operations, one
//!   concern to a file as Stwo lays out its own backends: `column` (uploads,
//!   downloads, gathers), `circle` (twiddle trees, the circle FFT
//!   ([`Gpu::interpolate`], [`Gpu::evaluate`]), evaluation at a point),
//!   `blake2s` (the lifted Merkle commitment, [`Gpu::merkle_root`]),
//!   [`poseidon252`] (the same tree and the proof of work over Starknet's
//!   Poseidon, for proofs the chain verifies), `grind`
//!   (the proof-of-work nonce in the SIMD backend's search order,
//!   [`Gpu::grind`]), `quotients`, `accumulation`, `fri`, and [`logup`];
//! - [`backend`]: `CudaBackend`, Stwo's backend traits over those columns;
//! - [`codegen`]: CUDA C for each component's constraints and LogUp
//!   fractions, generated from the component's own expression trees;
//! - [`constraints`]: `ComponentProver<CudaBackend>` for the AIR's
//!   components, running the generated constraint kernels;
//! - [`logup`]: the LogUp interaction trace on the device;
//! - [`cputrace`], [`hashtrace`]: the CPU and Poseidon2 components' rows
//!   built on the device from the steps and hash calls the VM recorded.
//!
//! - [`profile`]: a CUPTI trace (driver calls, kernels, copies) for the
//!   bench binaries, `BITSAGE_CUPTI=1`.
//!
//! `bitsage-cuda-check` compares each kernel against Stwo on random inputs
//! and times it against the SIMD backend; `bitsage-gpu-proofs` (in
//! `bitsage-prover`) compares whole proofs byte for byte.

mod accumulation;
pub mod backend;
mod blake2s;
mod circle;
pub mod codegen;
mod column;
pub mod compile;
pub mod constraints;
pub mod cputrace;
mod fri;
mod grind;
pub mod hashtrace;
pub mod logup;
pub mod pool;
pub mod poseidon252;
pub mod profile;
mod quotients;

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::cpu::CpuBackend;
use stwo::prover::poly::circle::PolyOps;

pub use circle::{DeviceTwiddles, TwBuf};
pub use cudarc::driver::DriverError;
pub use pool::{Buf, Pool};

/// The fixed kernels' sources, each compiled as its own program after the
/// field headers (`m31.cuh`, `qm31.cuh`).
pub const FIXED_SOURCES: [(&str, &str); 4] = [
    ("circle_fft", include_str!("../../../kernels/circle_fft.cu")),
    ("blake2s", include_str!("../../../kernels/blake2s.cu")),
    ("fri", include_str!("../../../kernels/fri.cu")),
    ("logup", include_str!("../../../kernels/logup.cu")),
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
    FftLineLayers = "fft_line_layers",
    FftLowLayers = "fft_low_layers",
    M31Scale = "m31_scale",
    FftReplicate = "fft_replicate",
    MerkleLeaves = "merkle_leaves",
    MerkleLayer = "merkle_layer",
    MerkleTop = "merkle_top",
    PackLeaves = "pack_leaves",
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
    PointWeights = "point_weights",
    GatherMany = "gather_many",
    GatherLists = "gather_lists",
    CopyColumns = "copy_columns",
}

/// Layers done in shared memory by `fft_low_layers` (`FFT_TILE_LOG`).
const FFT_TILE_LOG: u32 = 12;

/// Layers a round of `fft_low_layers` runs in registers at most
/// (`FFT_ROUND_LAYERS`): a block has a thread for every 2^this words.
const FFT_ROUND_LAYERS: u32 = 4;

/// Columns a block of `dot_many` takes (`DOT_COLS` in `kernels/fri.cu`).
const DOT_COLS: usize = 8;

/// Line layers `fft_line_layers` runs at most in one pass.
const FFT_REGISTER_LAYERS: u32 = 4;

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
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// NVRTC refused a generated or shipped kernel; its log is in the source.
    #[error("kernel `{kernel}` did not compile")]
    Compile {
        kernel: String,
        #[source]
        source: cudarc::nvrtc::CompileError,
    },
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
    /// NVRTC's name for the device's architecture (`sm_90`).
    pub arch: String,
    _modules: Vec<Arc<CudaModule>>,
    f: Vec<CudaFunction>,
    /// Decommitment query positions learned from the first column of each
    /// (length, words per value) read one value at a time; see
    /// `backend::DevCol::at`.
    pub query_plan: std::sync::Mutex<std::collections::HashMap<(usize, usize), Vec<usize>>>,
    /// The shape of the current proof's FRI queries, given before it starts
    /// ([`backend::expect_decommit`]) and taken at its proof of work, which
    /// is when the queries become known (see `backend::seed_query_plan`).
    pub(crate) decommit: std::sync::Mutex<Option<backend::DecommitShape>>,
    /// A page-locked host buffer that trace uploads are staged through.
    staging: std::sync::Mutex<Option<cudarc::driver::PinnedHostSlice<u32>>>,
    /// Per-thread side streams for short synchronous reads (see `dot_strided`).
    side: std::sync::Mutex<std::collections::HashMap<std::thread::ThreadId, Arc<column::Side>>>,
    /// The page-locked buffer that reads on the main stream land in.
    reads: std::sync::Mutex<Option<column::HostBuf>>,
    /// The Poseidon252 Merkle and grinding kernels, compiled when this
    /// device first proves over that channel ([`poseidon252`]).
    poseidon252: std::sync::OnceLock<GeneratedModule>,
    /// This lane's freed buffers, kept for reuse ([`pool`]).
    pub pool: Arc<Pool>,
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

/// Values generated once per key for the life of the process: generated
/// kernel code, which is the same for every proof and every device. Two
/// threads asking for one key build it once (the second waits for the
/// first); a thread asking for another key does not wait.
pub(crate) struct Memo<K, V>(std::sync::OnceLock<std::sync::Mutex<MemoCells<K, V>>>);

type MemoCells<K, V> = std::collections::HashMap<K, Arc<std::sync::OnceLock<Arc<V>>>>;

impl<K: std::hash::Hash + Eq, V> Memo<K, V> {
    pub(crate) const fn new() -> Self {
        Memo(std::sync::OnceLock::new())
    }

    /// The value for `key`, built by `build` the first time.
    pub(crate) fn get(&self, key: K, build: impl FnOnce() -> V) -> Arc<V> {
        let cell = self
            .0
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| Arc::new(build())).clone()
    }
}

impl Gpu {
    /// The loaded function of a fixed kernel.
    fn k(&self, kernel: Kernel) -> &CudaFunction {
        &self.f[kernel as usize]
    }
}

/// Words in the pinned staging buffer at most (128 MiB).
const STAGING_WORDS: usize = 32 << 20;
/// Words in the pinned staging buffer at least (4 MiB).
const MIN_STAGING_WORDS: usize = 1 << 20;

/// Generated kernels compiled for one device.
pub struct GeneratedModule {
    _modules: Vec<Arc<CudaModule>>,
    pub(crate) f: Vec<CudaFunction>,
    /// Whether every module came from a cache (the process's or the disk's).
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

/// Loads compiled `images` into `ctx`, and `functions` from whichever
/// module defines each.
fn load_modules(
    ctx: &Arc<CudaContext>,
    images: &[compile::Image],
    functions: impl IntoIterator<Item = impl AsRef<str>>,
) -> Result<(Vec<Arc<CudaModule>>, Vec<CudaFunction>)> {
    let modules = images
        .iter()
        .map(|i| ctx.load_module(cudarc::nvrtc::Ptx::from_binary(i.bytes.to_vec())))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let f = functions
        .into_iter()
        .map(|name| {
            let name = name.as_ref();
            modules
                .iter()
                .find_map(|m| m.load_function(name).ok())
                .ok_or_else(|| CudaError::Unsupported(format!("no compiled module defines the kernel `{name}`")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((modules, f))
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
        let nvrtc = {
            let _s = tracing::debug_span!("nvrtc probe").entered();
            // SAFETY: only probes whether the shared library can be opened.
            unsafe { cudarc::nvrtc::sys::is_culib_present() }
        };
        if !nvrtc {
            return Err(CudaError::NoNvrtc);
        }
        let _open = tracing::debug_span!("cuda open", ordinal).entered();
        let ctx = {
            let _s = tracing::debug_span!("cuda context").entered();
            CudaContext::new(ordinal)?
        };
        // SAFETY: no buffer exists yet. Buffers are used on the main stream,
        // in order, except the side-stream reads of `dot_strided`, which join
        // the main stream first and finish before they return; so cudarc's
        // per-buffer events (a cost on every launch once a second stream
        // exists) are not needed.
        unsafe { ctx.disable_event_tracking() };
        keep_pool_memory(&ctx)?;
        let stream = ctx.default_stream();
        let cap = Pool::default_cap(ctx.total_mem()?);
        let (major, minor) = ctx.compute_capability()?;
        let arch = format!("sm_{major}{minor}");
        let (modules, f) = {
            let _s = tracing::debug_span!("cuda fixed kernels").entered();
            let images = compile::compile_all(&compile::fixed_sources(), &arch)?;
            load_modules(&ctx, &images, Kernel::ALL.iter().map(|k| k.name()))?
        };
        Ok(Gpu {
            ctx,
            arch,
            _modules: modules,
            f,
            query_plan: Default::default(),
            decommit: Default::default(),
            staging: Default::default(),
            side: Default::default(),
            reads: Default::default(),
            poseidon252: Default::default(),
            pool: Pool::new(stream.clone(), cap),
            stream,
        })
    }

    /// Another lane of this GPU: the same context and kernels, a stream of
    /// its own (non-blocking, so it runs beside this one), and its own
    /// per-proof state (query plan, staging buffer, side streams).
    pub fn lane(&self) -> Result<Gpu> {
        let stream = self.ctx.new_stream()?;
        Ok(Gpu {
            ctx: self.ctx.clone(),
            pool: Pool::new(stream.clone(), Pool::default_cap(self.ctx.total_mem()?)),
            stream,
            arch: self.arch.clone(),
            _modules: self._modules.clone(),
            f: self.f.clone(),
            query_plan: Default::default(),
            decommit: Default::default(),
            staging: Default::default(),
            side: Default::default(),
            reads: Default::default(),
            poseidon252: Default::default(),
        })
    }

    /// Compiles `sources` (each its own NVRTC program, in parallel, cached)
    /// and loads the kernels `functions` from them.
    pub fn load(
        &self,
        sources: &[compile::Source],
        functions: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<GeneratedModule> {
        let images = compile::compile_all(sources, &self.arch)?;
        let from_cache = images.iter().all(|i| i.from_cache);
        let _s = tracing::debug_span!("cuda load modules", n = images.len()).entered();
        let (modules, f) = load_modules(&self.ctx, &images, functions)?;
        Ok(GeneratedModule { _modules: modules, f, from_cache })
    }

    /// Compiles a component's generated constraint kernels, one NVRTC
    /// program per part.
    pub fn compile_constraints(&self, kernel: codegen::ConstraintKernel) -> Result<CompiledConstraints> {
        let m = self.load(&constraints::part_sources(&kernel), kernel.parts.iter().map(|(n, _)| n))?;
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
    ) -> Result<Buf> {
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
        use column::Words;
        let ptrs = self.addrs(columns.iter().copied());
        let a =
            self.arg_block(&[Words::U64(&ptrs), Words::U32(base_params), Words::U32(ext_params), Words::U32(powers)])?;
        // SAFETY: the kernel writes all 4 words of every row.
        let mut out = unsafe { self.alloc::<u32>(4usize << eval_log) }?;
        for f in &c.f {
            let mut b = self.stream.launch_builder(f);
            b.arg(&a.at[0]).arg(&a.at[1]).arg(&a.at[2]).arg(&a.at[3]).arg(&trace_log).arg(&eval_log).arg(&mut *out);
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
    pub(crate) fn args<T: cudarc::driver::DeviceRepr + Default + Copy>(&self, values: &[T]) -> Result<Buf<T>> {
        let one = [T::default()];
        self.pool.htod(if values.is_empty() { &one[..] } else { values })
    }

    /// `len` values of `T` from this lane's [`Pool`], contents unspecified.
    ///
    /// # Safety
    /// The caller writes the buffer before reading it.
    pub unsafe fn alloc<T: cudarc::driver::DeviceRepr>(&self, len: usize) -> Result<Buf<T>> {
        // SAFETY: passed on to the caller.
        unsafe { self.pool.alloc(len) }
    }

    /// `len` zeros from this lane's [`Pool`].
    pub fn zeros(&self, len: usize) -> Result<Buf> {
        self.pool.zeros(len)
    }

    /// The device addresses of `cols`, as a device array for a kernel.
    fn device_ptrs<'a, C: cudarc::driver::DevicePtr<u32> + 'a>(
        &self,
        cols: impl IntoIterator<Item = &'a C>,
    ) -> Result<Buf<u64>> {
        self.args(&self.addrs(cols))
    }

    pub fn synchronize(&self) -> Result<()> {
        Ok(self.stream.synchronize()?)
    }
}

/// The device address of `c`, for a kernel argument or a key (the buffers
/// here carry no events, so there is nothing to wait on).
pub(crate) fn addr<T>(c: &impl cudarc::driver::DevicePtr<T>, stream: &CudaStream) -> u64 {
    let (p, _sync) = c.device_ptr(stream);
    p
}

#[cfg(test)]
mod tests {
    use super::{CudaError, Kernel, FIXED_SOURCES};

    #[test]
    fn a_compile_error_names_the_kernel_and_keeps_nvrtc_s_error() {
        use cudarc::nvrtc::result::NvrtcError;
        use cudarc::nvrtc::sys::nvrtcResult;
        let nvrtc = cudarc::nvrtc::CompileError::CreationError(NvrtcError(nvrtcResult::NVRTC_ERROR_OUT_OF_MEMORY));
        let e = CudaError::Compile { kernel: "logup".into(), source: nvrtc };
        assert_eq!(e.to_string(), "kernel `logup` did not compile");
        let cause = std::error::Error::source(&e).expect("NVRTC's error is the source").to_string();
        assert!(cause.contains("NVRTC_ERROR_OUT_OF_MEMORY"), "{cause}");
        assert!(!e.to_string().contains(&cause), "the cause is printed once, by the chain");
    }

    /// The host's copies of the kernels' shape constants (grids, blocks and
    /// passes are planned from them) equal the `#define`s in `kernels/`.
    #[test]
    fn the_hosts_kernel_constants_equal_the_sources_defines() {
        let src: String = FIXED_SOURCES.iter().map(|(_, text)| *text).collect();
        for (name, value) in [
            ("FFT_TILE_LOG", super::FFT_TILE_LOG as usize),
            ("FFT_ROUND_LAYERS", super::FFT_ROUND_LAYERS as usize),
            ("DOT_COLS", super::DOT_COLS),
        ] {
            assert!(src.contains(&format!("#define {name} {value}\n")), "{name} is not {value} in kernels/");
        }
    }

    #[test]
    fn every_kernel_is_defined_once_in_the_sources_and_named_once() {
        let src: String = FIXED_SOURCES.iter().map(|(_, text)| *text).collect();
        for (i, k) in Kernel::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{k:?} is out of load order");
            let defined = src.matches(&format!("void {}(", k.name())).count();
            assert_eq!(defined, 1, "{} is defined {defined} times in kernels/*.cu", k.name());
            assert_eq!(Kernel::ALL.iter().filter(|o| o.name() == k.name()).count(), 1);
        }
    }
}
