//! Kernel compilation. NVRTC turns each CUDA source into a CUBIN for the
//! device's own architecture, so loading a module runs no PTX JIT; many
//! sources compile at once, one NVRTC program per source on a pool of
//! threads; every image is kept in memory for the process and on disk keyed
//! by its source, so a worker compiles once per AIR version.
//!
//! [`prepare`] compiles every kernel one proof will need, before the proof
//! starts: on a new machine the first proof waits for the slowest single
//! kernel, not for the sum of them.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use cudarc::nvrtc::result::{self as nvrtc, NvrtcError};
use cudarc::nvrtc::sys::{self as nvrtc_sys, nvrtcResult};
use cudarc::nvrtc::CompileError;

use crate::{CudaError, Result, M31_H, QM31_H};

/// One CUDA source to compile as its own NVRTC program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Names the program in NVRTC's messages, the cache file, and errors.
    pub name: String,
    pub text: String,
    /// NVRTC options of this source (before `$BITSAGE_NVRTC_OPTIONS`).
    pub options: Vec<String>,
}

impl Source {
    /// Generated or shipped kernel code after the field headers it uses.
    pub fn with_headers(name: &str, body: &str) -> Source {
        Source { name: name.to_string(), text: format!("{M31_H}\n{QM31_H}\n{body}"), options: Vec::new() }
    }

    /// The same source compiled with these NVRTC options.
    pub fn with_options(mut self, options: &[&str]) -> Source {
        self.options = options.iter().map(|o| o.to_string()).collect();
        self
    }
}

/// A compiled module: a CUBIN for the device, or PTX where this NVRTC does
/// not know the device's architecture (the driver then compiles it).
#[derive(Clone, Debug)]
pub struct Image {
    pub bytes: Arc<Vec<u8>>,
    /// Whether it came from the process's memory or the disk cache.
    pub from_cache: bool,
}

/// One cell per cache key, so two threads asking for the same kernel
/// compile it once: the second waits on the cell.
type Cell = Arc<Mutex<Option<Arc<Vec<u8>>>>>;

fn memory() -> &'static Mutex<HashMap<String, Cell>> {
    static MEMORY: OnceLock<Mutex<HashMap<String, Cell>>> = OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

/// The process's cell for cache key `key`.
fn cell(key: &str) -> Cell {
    memory().lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone()
}

/// Where compiled kernels are cached: `$BITSAGE_KERNEL_CACHE`, else
/// `$XDG_CACHE_HOME/bitsage/kernels`, else `~/.cache/bitsage/kernels`.
fn cache_dir() -> Option<std::path::PathBuf> {
    if let Some(d) = std::env::var_os("BITSAGE_KERNEL_CACHE") {
        return Some(d.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("bitsage").join("kernels"))
}

/// Where the disk cache keeps the image of `key`.
fn cache_path(key: &str) -> Option<std::path::PathBuf> {
    Some(cache_dir()?.join(format!("{key}.bin")))
}

/// The cache key of `source` for architecture `arch`: the name, the
/// architecture, and a hash of the text and of this crate's version.
fn cache_key(source: &Source, arch: &str) -> String {
    let mut h = DefaultHasher::new();
    source.text.hash(&mut h);
    source.options.hash(&mut h);
    extra_options().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    format!("{}-{arch}-{:016x}", source.name, h.finish())
}

/// Threads that compile kernels: `$BITSAGE_KERNEL_THREADS`, else one per
/// core.
pub fn compile_threads() -> usize {
    std::env::var("BITSAGE_KERNEL_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `source` compiled for `arch` (`sm_90`): from memory, else from the disk
/// cache, else by NVRTC (then stored in both). A cache that cannot be
/// written only costs the next process a compile.
pub fn compile(source: &Source, arch: &str) -> Result<Image> {
    let key = cache_key(source, arch);
    let cell = cell(&key);
    let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(bytes) = cached(&key, &mut slot) {
        return Ok(Image { bytes, from_cache: true });
    }
    let path = cache_path(&key);
    let t0 = Instant::now();
    let bytes = Arc::new(nvrtc_image(source, arch)?);
    tracing::debug!(kernel = %source.name, ms = t0.elapsed().as_millis() as u64, bytes = bytes.len(), "NVRTC");
    if let Some(p) = path {
        let stored = p.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|()| {
            let tmp = p.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes.as_slice())?;
            std::fs::rename(&tmp, &p)
        });
        if let Err(e) = stored {
            tracing::warn!("could not cache kernel {}: {e}", source.name);
        }
    }
    *slot = Some(bytes.clone());
    Ok(Image { bytes, from_cache: false })
}

/// The image of `key` from the process's memory (`slot`), else from the
/// disk cache (then kept in `slot`).
fn cached(key: &str, slot: &mut Option<Arc<Vec<u8>>>) -> Option<Arc<Vec<u8>>> {
    if let Some(bytes) = slot.as_ref() {
        return Some(bytes.clone());
    }
    let bytes = Arc::new(std::fs::read(cache_path(key)?).ok().filter(|b| !b.is_empty())?);
    *slot = Some(bytes.clone());
    Some(bytes)
}

/// Readies what [`prepare`] will look for in a proof with `needs`, without
/// compiling anything: generates the kernel sources (the hash component's
/// take tens of milliseconds, and are kept for the process) and reads each
/// image the disk cache holds for the device into the process's memory.
/// For a thread of its own at the start of a process that will prove on
/// the GPU, beside the device's opening, so that the proof's `prepare` only
/// looks its kernels up. On a new machine nothing is compiled here: the
/// proof's `prepare` compiles what that proof needs, and only that. Returns
/// how many of the sources' images were found; where there is no device,
/// does nothing (an error where there is no driver).
pub fn warm(needs: Needs) -> Result<usize> {
    let _s = tracing::debug_span!("cuda warm kernels", hash = needs.hash, poseidon252 = needs.poseidon252).entered();
    // Where no GPU can prove, generating would only take CPU time from the CPU prover.
    if crate::device_count()? == 0 {
        return Ok(0);
    }
    let sources = sources(needs)?;
    let arch = crate::backend::init()?.arch.clone();
    let found = sources
        .iter()
        .filter(|s| {
            let key = cache_key(s, &arch);
            let cell = cell(&key);
            let mut slot = cell.lock().unwrap_or_else(|p| p.into_inner());
            cached(&key, &mut slot).is_some()
        })
        .count();
    tracing::debug!(sources = sources.len(), found, "kernels warmed");
    Ok(found)
}

/// Every source compiled for `arch`, in order, on up to
/// [`compile_threads`] threads (the longest sources first). The first error
/// in `sources`' order is returned.
pub fn compile_all(sources: &[Source], arch: &str) -> Result<Vec<Image>> {
    par_map(sources, compile_threads(), |s| compile(s, arch)).into_iter().collect()
}

/// NVRTC's CUBIN for each source with `options` (instead of the source's
/// own and `$BITSAGE_NVRTC_OPTIONS`; `None`: the source's own), bypassing
/// every cache, on `threads` threads: for benchmarks of compilation itself.
pub fn compile_uncached(
    sources: &[Source],
    arch: &str,
    options: Option<&[String]>,
    threads: usize,
) -> Vec<Result<Vec<u8>>> {
    par_map(sources, threads, |s| nvrtc_run(s, Some(arch), options.unwrap_or(&s.options)))
}

/// `f` of every source, in order, on up to `threads` threads taking the
/// longest sources first.
fn par_map<R: Send>(sources: &[Source], threads: usize, f: impl Fn(&Source) -> Result<R> + Sync) -> Vec<Result<R>> {
    let threads = threads.min(sources.len());
    if threads <= 1 {
        return sources.iter().map(f).collect();
    }
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sources[i].text.len()));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<R>>>> = sources.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let r = f(&sources[i]);
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .zip(sources)
        .map(|(r, s)| {
            r.into_inner().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(|| {
                Err(CudaError::Unsupported(format!("kernel `{}` was not compiled (a compile thread died)", s.name)))
            })
        })
        .collect()
}

/// Options added to every NVRTC compile: `$BITSAGE_NVRTC_OPTIONS`,
/// whitespace-separated (`-Xptxas -O1`, say). Part of the cache key.
fn extra_options() -> &'static [String] {
    static OPTIONS: OnceLock<Vec<String>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        std::env::var("BITSAGE_NVRTC_OPTIONS")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    })
}

/// An NVRTC program, destroyed when dropped.
struct Program(nvrtc_sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by `create_program` and is destroyed once, here.
        let _ = unsafe { nvrtc::destroy_program(self.0) };
    }
}

/// NVRTC's output for `source`: a CUBIN for `arch`, or PTX for NVRTC's
/// default architecture when this NVRTC does not know `arch` (a GPU newer
/// than the toolkit).
fn nvrtc_image(source: &Source, arch: &str) -> Result<Vec<u8>> {
    let options: Vec<String> = source.options.iter().chain(extra_options()).cloned().collect();
    match nvrtc_run(source, Some(arch), &options) {
        Err(CudaError::Compile {
            source: CompileError::CompileError { nvrtc: NvrtcError(nvrtcResult::NVRTC_ERROR_INVALID_OPTION), .. },
            ..
        }) => {
            tracing::warn!("NVRTC does not know {arch}; {} compiled to PTX for the driver", source.name);
            nvrtc_run(source, None, &options)
        }
        r => r,
    }
}

fn nvrtc_run(source: &Source, arch: Option<&str>, extra: &[String]) -> Result<Vec<u8>> {
    let err = |source_err: CompileError| CudaError::Compile { kernel: source.name.clone(), source: source_err };
    let text = CString::new(source.text.as_bytes())
        .map_err(|_| CudaError::Unsupported(format!("kernel `{}` contains a NUL byte", source.name)))?;
    let name = CString::new(format!("{}.cu", source.name))
        .map_err(|_| CudaError::Unsupported(format!("kernel name `{}` contains a NUL byte", source.name)))?;
    // The program refers to `text` and `name`, which outlive it.
    let prog = Program(nvrtc::create_program(&text, Some(&name)).map_err(|e| err(CompileError::CreationError(e)))?);
    let mut options: Vec<String> = arch.map(|a| format!("--gpu-architecture={a}")).into_iter().collect();
    options.extend(extra.iter().cloned());
    // SAFETY: `prog` is a live program.
    if let Err(e) = unsafe { nvrtc::compile_program(prog.0, &options) } {
        // SAFETY: as above.
        let log = unsafe { nvrtc::get_program_log(prog.0) }.unwrap_or_default();
        let log: Vec<u8> = log.iter().map(|&c| c as u8).take_while(|&c| c != 0).collect();
        let log = CString::new(log).unwrap_or_default();
        return Err(err(CompileError::CompileError { nvrtc: e, options, log }));
    }
    let mut size = 0usize;
    // A real architecture (`sm_90`) gives a CUBIN; a virtual one (`compute_90`) or none, PTX.
    if arch.is_some_and(|a| a.starts_with("sm_")) {
        // SAFETY: `prog` compiled; `size` then `out` are valid for the sizes NVRTC reports.
        unsafe { nvrtc_sys::nvrtcGetCUBINSize(prog.0, &mut size).result() }
            .map_err(|e| err(CompileError::GetPtxError(e)))?;
        let mut out = vec![0u8; size];
        unsafe { nvrtc_sys::nvrtcGetCUBIN(prog.0, out.as_mut_ptr().cast()).result() }
            .map_err(|e| err(CompileError::GetPtxError(e)))?;
        Ok(out)
    } else {
        // SAFETY: as above; the PTX keeps its terminating NUL, which the driver needs.
        let ptx = unsafe { nvrtc::get_ptx(prog.0) }.map_err(|e| err(CompileError::GetPtxError(e)))?;
        Ok(ptx.into_iter().map(|c| c as u8).collect())
    }
}

/// What a proof needs beyond the fixed kernels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Needs {
    /// The proof has the Poseidon2 hash component.
    pub hash: bool,
    /// The proof commits over Stwo's Poseidon252 Merkle channel.
    pub poseidon252: bool,
}

/// What [`prepare`] did.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    /// Kernel sources the proof needs (each its own NVRTC program).
    pub sources: usize,
    /// Of those, compiled now (the rest came from a cache).
    pub compiled: usize,
    /// Wall time, milliseconds.
    pub ms: u64,
}

/// The fixed kernels' sources ([`crate::FIXED_SOURCES`]), one program each.
pub fn fixed_sources() -> Vec<Source> {
    crate::FIXED_SOURCES.iter().map(|(name, text)| Source::with_headers(name, text)).collect()
}

/// The generated kernel sources a proof with `needs` loads, exactly as the
/// loaders in [`crate::cputrace`], [`crate::logup`], [`crate::constraints`],
/// [`crate::hashtrace`] and [`crate::poseidon252`] build them.
pub fn sources(needs: Needs) -> Result<Vec<Source>> {
    let mut s = vec![crate::cputrace::kernel_source()];
    s.extend(crate::logup::kernel_sources(needs.hash));
    s.extend(crate::constraints::kernel_sources(needs.hash));
    if needs.hash {
        s.push(crate::hashtrace::kernel_source());
    }
    if needs.poseidon252 {
        s.push(crate::poseidon252::kernel_source()?);
    }
    Ok(s)
}

/// Compiles every kernel a proof with `needs` uses on the bound device, in
/// parallel, into the process's cache (and the disk cache), so the proof
/// then only loads them. Done once per process, device and `needs`.
pub fn prepare(needs: Needs) -> Result<Prepared> {
    static DONE: OnceLock<Mutex<HashSet<(usize, Needs)>>> = OnceLock::new();
    let ordinal = crate::backend::bound_ordinal();
    let done = DONE.get_or_init(Default::default);
    if done.lock().unwrap_or_else(|p| p.into_inner()).contains(&(ordinal, needs)) {
        return Ok(Prepared::default());
    }
    let _s = tracing::debug_span!("cuda prepare kernels", hash = needs.hash, poseidon252 = needs.poseidon252).entered();
    let t0 = Instant::now();
    let arch = crate::backend::init()?.arch.clone();
    let sources = sources(needs)?;
    let images = compile_all(&sources, &arch)?;
    let compiled = images.iter().filter(|i| !i.from_cache).count();
    done.lock().unwrap_or_else(|p| p.into_inner()).insert((ordinal, needs));
    let p = Prepared { sources: sources.len(), compiled, ms: t0.elapsed().as_millis() as u64 };
    if p.compiled > 0 {
        tracing::info!(sources = p.sources, compiled = p.compiled, ms = p.ms, "compiled the proof's CUDA kernels");
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_s_cache_key_follows_its_text_name_and_architecture() {
        let a = Source::with_headers("k", "extern \"C\" __global__ void k() {}");
        let mut b = a.clone();
        b.text.push(' ');
        assert_eq!(cache_key(&a, "sm_90"), cache_key(&a.clone(), "sm_90"));
        assert_ne!(cache_key(&a, "sm_90"), cache_key(&b, "sm_90"));
        // Another NVRTC option is another image.
        assert_ne!(cache_key(&a, "sm_90"), cache_key(&a.clone().with_options(&["-Xptxas", "-O1"]), "sm_90"));
        assert_ne!(cache_key(&a, "sm_90"), cache_key(&a, "sm_89"));
        assert!(cache_key(&a, "sm_90").starts_with("k-sm_90-"));
    }

    #[test]
    fn every_generated_source_is_its_own_program_and_the_hash_ones_only_when_needed() {
        let plain = sources(Needs::default()).unwrap();
        let hash = sources(Needs { hash: true, poseidon252: false }).unwrap();
        let both = sources(Needs { hash: true, poseidon252: true }).unwrap();
        assert!(plain.len() < hash.len() && hash.len() < both.len());
        let names: HashSet<&str> = both.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), both.len(), "two sources share a name");
        assert!(plain.iter().all(|s| !s.name.contains("hash")));
        // The hash component's constraints come as several programs, so they compile side by side.
        assert!(hash.iter().filter(|s| s.name.starts_with("constraints_hasheval_")).count() > 1);
        // Those, and only those, go through ptxas at -O1 (at -O3 one part took 104 s).
        for s in &both {
            let fast = s.name.starts_with(&format!("{}_", crate::constraints::HASH_CONSTRAINTS));
            let want: &[&str] = if fast { crate::constraints::HASH_CONSTRAINT_NVRTC_OPTIONS } else { &[] };
            assert_eq!(s.options, want, "{}", s.name);
        }
        // Sources are the same in every process: what `prepare` compiles is what the loaders load.
        assert_eq!(sources(Needs { hash: true, poseidon252: true }).unwrap(), both);
    }
}
