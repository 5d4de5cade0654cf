//! The sandbox: runs an untrusted workload component and records the one
//! ObelyskVM execution it asks for.
//!
//! - Component model only; core modules are refused.
//! - Every store gets a fuel budget (deterministic, reported back), an epoch
//!   deadline (wall clock), a linear-memory cap, and the engine's wasm stack
//!   cap. Output, log and VM trace sizes are capped by the host imports.
//! - Threads are off and NaNs are canonicalised, so runs are deterministic.
//! - WASI is the subset a `std` guest needs: stdio (stdin empty, stdout and
//!   stderr captured and truncated), an empty environment, exit, a fixed
//!   clock and fixed "random" bytes. No filesystem, no sockets. Any other
//!   import rejects the component before it runs, naming the import.
//! - Compiled components are cached on disk ([`cache`]).
//!
//! Every way a guest can fail maps to one [`SandboxError`] variant, and the
//! host survives all of them.

pub mod cache;
pub mod compile;
mod host;
pub mod imports;
pub mod modules;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use obelysk_vm::ExecError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;

use host::{CappedPipe, HostState, VmFailure, Workload, WorkloadPre};
pub use host::{LogLine, Recorded};

/// Per-job resource caps. Every field has its own error when exceeded.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Limits {
    /// Wasm fuel: roughly one unit per wasm instruction. Deterministic.
    pub fuel: u64,
    /// Wall-clock budget for instantiation plus the call.
    pub timeout: Duration,
    /// Bytes of all the job's memories and tables together, and of the VM
    /// trace its execution records (what the guest leaves of the cap).
    pub memory_bytes: usize,
    /// Native stack the guest's wasm frames may use.
    pub stack_bytes: usize,
    /// Size of the job input handed to the guest.
    pub input_bytes: usize,
    /// Size of the report the guest returns.
    pub output_bytes: usize,
    /// Total bytes of messages through the `log` import.
    pub log_bytes: usize,
    /// Bytes kept of stdout and of stderr each (the rest is dropped).
    pub stdio_bytes: usize,
    /// ObelyskVM steps (CPU trace rows) the one execution may take.
    pub trace_rows: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 10_000_000_000,
            timeout: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            stack_bytes: 1 << 20,
            input_bytes: 16 << 20,
            output_bytes: 1 << 20,
            log_bytes: 64 << 10,
            stdio_bytes: 64 << 10,
            trace_rows: 1 << 22,
        }
    }
}

/// Everything that can go wrong between bytes on disk and a recorded trace.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("not a WebAssembly binary: {0}")]
    Malformed(String),
    #[error("this is a core WebAssembly module; workloads must be components (build with --target wasm32-wasip2)")]
    NotAComponent,
    #[error("the component does not compile: {0}")]
    Compile(String),
    #[error("the component is over a compile limit: {0}")]
    CompileLimit(String),
    #[error("the component imports `{name}`, which the sandbox does not provide ({why}){}",
        if others.is_empty() { String::new() } else { format!("; also refused: {}", others.join(", ")) })]
    DisallowedImport { name: String, why: &'static str, others: Vec<String> },
    #[error("module {digest} is not on the approved list")]
    NotApproved { digest: String },
    #[error("the component cannot be instantiated: {0}")]
    Instantiate(String),
    #[error("input is {size} bytes, over the {limit}-byte cap")]
    InputTooLarge { size: usize, limit: usize },
    #[error("fuel budget of {budget} exhausted (the guest ran too long)")]
    FuelExhausted { budget: u64 },
    #[error("wall-clock deadline of {} ms passed", .timeout.as_millis())]
    Deadline { timeout: Duration },
    #[error("the guest tried to grow memory past the {limit}-byte cap")]
    MemoryLimit { limit: usize },
    #[error("the guest overflowed its {limit}-byte wasm stack")]
    StackOverflow { limit: usize },
    #[error("the guest's result is {size} bytes, over the {limit}-byte cap")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("the guest logged more than {limit} bytes")]
    LogLimit { limit: usize },
    #[error("the VM execution exceeded the cap of {limit} trace rows")]
    TraceLimit { limit: u64 },
    #[error("the guest panicked: {message}")]
    GuestPanic { message: String },
    #[error("the guest trapped: {message}")]
    GuestTrap { message: String },
    #[error("the workload failed: {message}")]
    GuestError { message: String },
    #[error("the VM refused the workload's program or input: {0}")]
    Vm(ExecError),
    #[error("the VM was given a word {0} that is not a field element")]
    NotAFieldElement(u32),
    #[error("the workload executed the VM twice; a job proves one execution")]
    ExecutedTwice,
    #[error("the workload finished without executing the VM, so there is nothing to prove")]
    NoExecution,
    #[error("sandbox set-up failed: {0}")]
    Setup(String),
}

impl SandboxError {
    /// A stable machine-readable name (CLI `--json`, HTTP error bodies).
    pub fn kind(&self) -> &'static str {
        match self {
            SandboxError::Malformed(_) => "malformed-wasm",
            SandboxError::NotAComponent => "not-a-component",
            SandboxError::Compile(_) => "compile",
            SandboxError::CompileLimit(_) => "compile-limit",
            SandboxError::DisallowedImport { .. } => "disallowed-import",
            SandboxError::NotApproved { .. } => "not-approved",
            SandboxError::Instantiate(_) => "instantiate",
            SandboxError::InputTooLarge { .. } => "input-too-large",
            SandboxError::FuelExhausted { .. } => "fuel-exhausted",
            SandboxError::Deadline { .. } => "deadline",
            SandboxError::MemoryLimit { .. } => "memory-limit",
            SandboxError::StackOverflow { .. } => "stack-overflow",
            SandboxError::OutputTooLarge { .. } => "output-too-large",
            SandboxError::LogLimit { .. } => "log-limit",
            SandboxError::TraceLimit { .. } => "trace-limit",
            SandboxError::GuestPanic { .. } => "guest-panic",
            SandboxError::GuestTrap { .. } => "guest-trap",
            SandboxError::GuestError { .. } => "guest-error",
            SandboxError::Vm(ExecError::UnreadInput { .. }) => "unread-input",
            SandboxError::Vm(_) => "vm-error",
            SandboxError::NotAFieldElement(_) => "not-a-field-element",
            SandboxError::ExecutedTwice => "executed-twice",
            SandboxError::NoExecution => "no-execution",
            SandboxError::Setup(_) => "setup",
        }
    }
}

/// How the sandbox is built.
#[derive(Clone, Debug, Default)]
pub struct SandboxConfig {
    pub limits: Limits,
    /// What compiling one component may cost.
    pub compile: compile::CompileLimits,
    /// Use the pooling instance allocator with this many instance slots
    /// (fast instantiation for a long-lived node), or on-demand allocation.
    pub pooling: Option<u32>,
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
}

/// How long an epoch tick is; the deadline is counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A compiled, import-checked workload.
#[derive(Clone)]
pub struct Module {
    component: Component,
    /// The component linked against the sandbox's imports once, so a job
    /// only instantiates it; `None` where linking failed (the job's
    /// instantiation then reports why, as without it).
    pre: Option<WorkloadPre<HostState>>,
    /// SHA-256 of the component bytes.
    pub digest: [u8; 32],
    /// Whether it came from the on-disk cache.
    pub from_cache: bool,
    pub compile_time: Duration,
}

impl Module {
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }
}

/// What one job did.
#[derive(Debug)]
pub struct Run {
    /// The guest's report (JSON by convention). Not proven.
    pub report: Vec<u8>,
    /// The VM execution to prove.
    pub recorded: Recorded,
    pub fuel_used: u64,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    /// Bytes of stdout + stderr dropped by the caps.
    pub stdio_dropped: u64,
    pub instantiate_time: Duration,
    pub call_time: Duration,
}

/// The engine, the linker with the allowed imports, and the epoch ticker.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    config: SandboxConfig,
    ticker_stop: Arc<AtomicBool>,
    /// Components already loaded, by the SHA-256 of their bytes: a node
    /// runs the same few approved modules again and again.
    loaded: std::sync::Mutex<std::collections::HashMap<[u8; 32], Module>>,
}

/// Loaded components a sandbox keeps (it forgets them all when full).
const LOADED_CAP: usize = 64;

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

fn setup<E: std::fmt::Display>(e: E) -> SandboxError {
    SandboxError::Setup(e.to_string())
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        // Threads are off: wasmtime is built without its `threads` feature,
        // so shared memories and atomics-wait do not exist in this engine.
        let mut c = Config::new();
        c.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.limits.stack_bytes)
            .cranelift_nan_canonicalization(true);
        if let Some(slots) = config.pooling {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(slots)
                .total_core_instances(slots * 4)
                .total_memories(slots * 2)
                .total_tables(slots * 4)
                .max_memory_size(config.limits.memory_bytes)
                .max_memories_per_component(4)
                .max_tables_per_component(8)
                .max_core_instances_per_component(16);
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&c).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        imports::link_allowed(&mut linker).map_err(setup)?;
        Workload::add_to_linker::<_, wasmtime::component::HasSelf<HostState>>(&mut linker, |s| s).map_err(setup)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (e, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("bitsage-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    e.increment_epoch();
                }
            })
            .map_err(setup)?;
        Ok(Sandbox { engine, linker, config, ticker_stop, loaded: Default::default() })
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Validates, compiles (or loads from the cache), import-checks and
    /// links. The same bytes again (same SHA-256) return the module this
    /// sandbox already loaded, with `from_cache` set.
    pub fn load(&self, bytes: &[u8]) -> Result<Module, SandboxError> {
        let start = Instant::now();
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(m) = self.loaded(&digest) {
            return Ok(Module { compile_time: start.elapsed(), ..m });
        }
        imports::check_encoding(bytes)?;
        let limits = self.config.compile;
        compile::check(bytes, &limits)?;
        let (engine, dir, owned) = (self.engine.clone(), self.config.cache_dir.clone(), bytes.to_vec());
        let (component, from_cache) = compile::within(limits.timeout, move || match &dir {
            Some(dir) => cache::load_or_compile(&engine, dir, &digest, &owned),
            None => Ok((Component::new(&engine, &owned).map_err(|e| SandboxError::Compile(format!("{e:#}")))?, false)),
        })?;
        imports::check_imports(&self.engine, &component)?;
        let pre = self.linker.instantiate_pre(&component).ok().and_then(|p| WorkloadPre::new(p).ok());
        let module = Module { component, pre, digest, from_cache, compile_time: start.elapsed() };
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.len() >= LOADED_CAP {
            loaded.clear();
        }
        loaded.insert(digest, Module { from_cache: true, ..module.clone() });
        Ok(module)
    }

    /// The module with this digest, if this sandbox has loaded it: a caller
    /// holding only the digest need not read or hash the bytes again.
    pub fn loaded(&self, digest: &[u8; 32]) -> Option<Module> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(digest).cloned()
    }

    /// Runs one job under the sandbox's limits.
    pub fn run(&self, module: &Module, input: &[u8]) -> Result<Run, SandboxError> {
        self.run_with(module, input, self.config.limits)
    }

    /// Runs one job under `limits`: instantiate, call `run(input)`, collect
    /// the execution. The wasm stack cap is the engine's (set at
    /// [`Sandbox::new`]); with pooling, memory is also capped by the pool.
    pub fn run_with(&self, module: &Module, input: &[u8], mut limits: Limits) -> Result<Run, SandboxError> {
        limits.stack_bytes = self.config.limits.stack_bytes;
        if input.len() > limits.input_bytes {
            return Err(SandboxError::InputTooLarge { size: input.len(), limit: limits.input_bytes });
        }
        let stdout = CappedPipe::new(limits.stdio_bytes);
        let stderr = CappedPipe::new(limits.stdio_bytes);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(imports::FixedClock)
            .monotonic_clock(imports::FixedClock)
            .secure_random(imports::fixed_random())
            .insecure_random(imports::fixed_random())
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(&self.engine, HostState::new(wasi, limits));
        store.limiter(|s| &mut s.limiter);
        store.set_fuel(limits.fuel).map_err(setup)?;
        let ticks = (limits.timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();

        let start = Instant::now();
        let instance = match &module.pre {
            Some(pre) => pre.instantiate(&mut store),
            None => Workload::instantiate(&mut store, &module.component, &self.linker),
        };
        let outcome = instance.map_err(|e| classify(&store, e, &stderr, true)).and_then(|w| {
            let instantiate_time = start.elapsed();
            let call = Instant::now();
            let r = w.call_run(&mut store, input).map_err(|e| classify(&store, e, &stderr, false))?;
            Ok((r, instantiate_time, call.elapsed()))
        });
        let fuel_used = limits.fuel - store.get_fuel().unwrap_or(0);
        let (result, instantiate_time, call_time) = outcome?;
        let state = store.into_data();
        let report = match result {
            Ok(report) => report,
            Err(message) => {
                return Err(vm_failure(state.vm_failure, &limits)
                    .unwrap_or(SandboxError::GuestError { message: cap_text(message, GUEST_TEXT_BYTES) }))
            }
        };
        if report.len() > limits.output_bytes {
            return Err(SandboxError::OutputTooLarge { size: report.len(), limit: limits.output_bytes });
        }
        let recorded = match state.recorded {
            Some(r) => r,
            None => return Err(vm_failure(state.vm_failure, &limits).unwrap_or(SandboxError::NoExecution)),
        };
        let (out, d1) = stdout.contents();
        let (err, d2) = stderr.contents();
        Ok(Run {
            report,
            recorded,
            fuel_used,
            logs: state.logs,
            stdout: out,
            stderr: err,
            stdio_dropped: d1 + d2,
            instantiate_time,
            call_time,
        })
    }
}

fn vm_failure(f: Option<VmFailure>, limits: &Limits) -> Option<SandboxError> {
    Some(match f? {
        VmFailure::Exec(ExecError::DeadlinePassed { .. }) => SandboxError::Deadline { timeout: limits.timeout },
        VmFailure::Exec(ExecError::TraceTooLarge { .. }) => SandboxError::MemoryLimit { limit: limits.memory_bytes },
        VmFailure::Exec(e) => SandboxError::Vm(e),
        VmFailure::TraceLimit(limit) => SandboxError::TraceLimit { limit },
        VmFailure::NotAFieldElement(v) => SandboxError::NotAFieldElement(v),
        VmFailure::AlreadyExecuted => SandboxError::ExecutedTwice,
    })
}

/// The most bytes of guest-supplied text (an error message) that leave the
/// sandbox; the rest is cut and the cut is said.
pub const GUEST_TEXT_BYTES: usize = 4 << 10;

/// `text` cut to at most `cap` bytes (on a character boundary), marked as
/// truncated when it was.
pub fn cap_text(mut text: String, cap: usize) -> String {
    if text.len() <= cap {
        return text;
    }
    let total = text.len();
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [truncated: {total} bytes]"));
    text
}

/// Turns a wasmtime error from instantiation or the call into the typed
/// error for what actually stopped the guest.
fn classify(store: &Store<HostState>, e: wasmtime::Error, stderr: &CappedPipe, instantiating: bool) -> SandboxError {
    let limits = store.data().limits();
    if store.data().limiter.hit.is_some() {
        return SandboxError::MemoryLimit { limit: limits.memory_bytes };
    }
    if let Some(ours) = e.downcast_ref::<SandboxError>() {
        return match ours {
            SandboxError::LogLimit { limit } => SandboxError::LogLimit { limit: *limit },
            SandboxError::MemoryLimit { limit } => SandboxError::MemoryLimit { limit: *limit },
            other => SandboxError::GuestTrap { message: other.to_string() },
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => SandboxError::FuelExhausted { budget: limits.fuel },
        Some(Trap::Interrupt) => SandboxError::Deadline { timeout: limits.timeout },
        Some(Trap::StackOverflow) => SandboxError::StackOverflow { limit: limits.stack_bytes },
        Some(trap) => {
            let (text, _) = stderr.contents();
            match panic_message(&text) {
                Some(message) => SandboxError::GuestPanic { message },
                None => SandboxError::GuestTrap { message: trap.to_string() },
            }
        }
        None if instantiating => SandboxError::Instantiate(format!("{e:#}")),
        None => SandboxError::GuestTrap { message: format!("{e:#}") },
    }
}

/// The message of a Rust panic as the std panic hook printed it to stderr.
fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.find("panicked at ")?;
    let rest = &stderr[start..];
    // "panicked at src/lib.rs:10:5:\nmessage\nnote: ..."
    let mut lines = rest.lines();
    let location = lines.next()?.trim_start_matches("panicked at ").trim_end_matches(':').to_string();
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note:")).collect();
    Some(format!("{} (at {location})", message.join("\n").trim()))
}
