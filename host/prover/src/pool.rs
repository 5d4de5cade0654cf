//! The device pool: every prover device of the machine in throughput mode.
//!
//! A pool holds one slot per device: each GPU (with the `cuda` feature), or
//! the CPU. [`DevicePool::prove`] takes the first idle slot, proves on it and
//! gives it back, so callers on many threads feed all devices from one queue
//! and a job never waits while another device is idle. Each GPU slot owns a
//! rayon pool whose threads are bound to that GPU, so Stwo's parallel code
//! and the CUDA backend's operations for one proof all stay on one device.
//! The CPU slot uses the global rayon pool (SIMD on all cores): one CPU
//! proof at a time is the fastest way to run several on one machine.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use bitsage_air::verify::Proof;
use bitsage_air::Statement;
use obelysk_vm::exec::Trace;
use serde::Serialize;

use crate::{BackendChoice, ProofStats, ProveError, ProveOptions};

/// One device of the pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Device {
    /// Stwo's SIMD backend on all cores.
    Cpu,
    /// A CUDA GPU.
    Cuda { ordinal: usize, name: String },
}

impl Device {
    /// How receipts and logs name the backend that ran.
    pub fn label(&self) -> String {
        match self {
            Device::Cpu => "cpu (SIMD)".to_string(),
            Device::Cuda { ordinal, name } => format!("cuda:{ordinal} ({name})"),
        }
    }
}

/// A device's state, for `/v1/gpu`, metrics and the dashboard.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceStatus {
    pub slot: usize,
    pub device: Device,
    /// The GPU's lane this slot proves on ([`gpu_lanes`]; 0 for the CPU).
    pub lane: usize,
    pub label: String,
    pub busy: bool,
    pub proofs: u64,
    pub failures: u64,
    /// Seconds spent proving since the pool opened.
    pub busy_seconds: f64,
    /// Fraction of the pool's lifetime this device spent proving.
    pub utilisation: f64,
    /// Free and total device memory in bytes (GPUs only).
    pub memory_free: Option<u64>,
    pub memory_total: Option<u64>,
}

struct Slot {
    device: Device,
    /// Which of the GPU's lanes (0 for the CPU).
    lane: usize,
    busy: AtomicBool,
    proofs: AtomicU64,
    failures: AtomicU64,
    busy_ns: AtomicU64,
    /// GPU slots: threads bound to this device.
    threads: Option<rayon::ThreadPool>,
}

/// A slot taken from the pool; given back (and its time and outcome
/// counted) when dropped, so no path out of a proof loses a device.
struct Held<'a> {
    pool: &'a DevicePool,
    slot: usize,
    started: Instant,
    ok: bool,
}

impl<'a> Held<'a> {
    fn take(pool: &'a DevicePool) -> Self {
        let slot = pool.acquire();
        pool.slots[slot].busy.store(true, Ordering::SeqCst);
        Held { pool, slot, started: Instant::now(), ok: false }
    }

    fn finish(mut self, ok: bool) {
        self.ok = ok;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let s = &self.pool.slots[self.slot];
        s.busy_ns.fetch_add(self.started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let counter = if self.ok { &s.proofs } else { &s.failures };
        counter.fetch_add(1, Ordering::Relaxed);
        s.busy.store(false, Ordering::SeqCst);
        self.pool.release(self.slot);
    }
}

/// Every prover device of the machine, fed from one queue.
pub struct DevicePool {
    slots: Vec<Slot>,
    idle: Mutex<VecDeque<usize>>,
    wake: Condvar,
    opened: Instant,
}

impl DevicePool {
    /// Opens the devices `choice` selects: `Cpu` one CPU slot, `Cuda` every
    /// GPU (an error when there is none), `Auto` every GPU or else the CPU.
    pub fn open(choice: BackendChoice) -> Result<Self, ProveError> {
        let devices = match choice {
            BackendChoice::Cpu => vec![Device::Cpu],
            BackendChoice::Cuda => gpus()?,
            BackendChoice::Auto => gpus().unwrap_or_else(|_| vec![Device::Cpu]),
        };
        Self::with_devices(devices)
    }

    /// A pool over the given devices (GPU ordinals must exist), with
    /// [`gpu_lanes`] slots per GPU.
    pub fn with_devices(devices: Vec<Device>) -> Result<Self, ProveError> {
        Self::with_lanes(devices, gpu_lanes())
    }

    /// A pool over the given devices with `lanes` slots (proofs at once) per GPU.
    pub fn with_lanes(devices: Vec<Device>, lanes: usize) -> Result<Self, ProveError> {
        if devices.is_empty() {
            return Err(ProveError::backend("a device pool needs at least one device"));
        }
        let gpus = devices.iter().filter(|d| matches!(d, Device::Cuda { .. })).count().max(1);
        let lanes = lanes.max(1);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let per_lane = lane_threads(cores, gpus, lanes);
        // Lane-major: every GPU's first lane before any second one, so a
        // light load spreads over the GPUs (idle slots are taken lowest first).
        let slots = (0..lanes)
            .flat_map(|lane| {
                devices
                    .iter()
                    .filter(move |d| lane == 0 || matches!(d, Device::Cuda { .. }))
                    .map(move |d| (d.clone(), lane))
            })
            .map(|(device, lane)| {
                let threads = match &device {
                    Device::Cpu => None,
                    Device::Cuda { ordinal, .. } => Some(bound_threads(*ordinal, lane, per_lane)?),
                };
                Ok(Slot {
                    device,
                    lane,
                    busy: AtomicBool::new(false),
                    proofs: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                    busy_ns: AtomicU64::new(0),
                    threads,
                })
            })
            .collect::<Result<Vec<_>, ProveError>>()?;
        let idle = Mutex::new((0..slots.len()).collect());
        Ok(DevicePool { slots, idle, wake: Condvar::new(), opened: Instant::now() })
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// True when every slot is a GPU.
    pub fn is_gpu(&self) -> bool {
        self.slots.iter().all(|s| matches!(s.device, Device::Cuda { .. }))
    }

    /// Proves `trace` on the first idle device, waiting for one if all are
    /// busy. Returns the proof, its stats and the label of the device.
    pub fn prove(
        &self,
        statement: &Statement,
        trace: &Trace,
        opts: &ProveOptions<'_>,
    ) -> Result<(Proof, ProofStats, String), ProveError> {
        let held = Held::take(self);
        let slot = &self.slots[held.slot];
        // A device failure mid-proof panics inside the backend; it becomes
        // this job's error, and the device goes back to the pool either way.
        let run = || match (&slot.device, &slot.threads) {
            (Device::Cuda { .. }, Some(threads)) => threads.install(|| {
                check_fits(trace)?;
                crate::prove_on_gpu(statement, trace, opts)
            }),
            _ => crate::prove_trace(statement, trace, opts),
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(ProveError::backend(format!("{} failed mid-proof: {msg}", slot.device.label())))
        });
        held.finish(result.is_ok());
        result.map(|(p, s)| (p, s, slot.device.label()))
    }

    fn acquire(&self) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(i) = idle.pop_front() {
                return i;
            }
            idle = self.wake.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn release(&self, slot: usize) {
        // Lowest-numbered idle device first keeps a lightly loaded pool on one GPU.
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = idle.iter().position(|&i| i > slot).unwrap_or(idle.len());
        idle.insert(at, slot);
        drop(idle);
        self.wake.notify_one();
    }

    /// The state of every device.
    pub fn status(&self) -> Vec<DeviceStatus> {
        let alive = self.opened.elapsed().as_secs_f64().max(1e-9);
        self.slots
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let busy_seconds = s.busy_ns.load(Ordering::Relaxed) as f64 / 1e9;
                let (memory_free, memory_total) = match &s.device {
                    Device::Cuda { ordinal, .. } => {
                        gpu_memory(*ordinal).map_or((None, None), |(f, t)| (Some(f), Some(t)))
                    }
                    Device::Cpu => (None, None),
                };
                DeviceStatus {
                    slot: i,
                    device: s.device.clone(),
                    lane: s.lane,
                    label: s.device.label(),
                    busy: s.busy.load(Ordering::SeqCst),
                    proofs: s.proofs.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                    busy_seconds,
                    utilisation: (busy_seconds / alive).min(1.0),
                    memory_free,
                    memory_total,
                }
            })
            .collect()
    }
}

/// Bytes of device memory a proof of `trace` needs, estimated from the
/// trace shape and the AIR's column counts: every main column, plus LogUp
/// columns at half as many again, each held as its blown-up evaluation (2x),
/// its coefficients (1x) and the Merkle hashing buffers (1x), at 4 bytes a
/// value; plus the copy of the main columns the LogUp trace is generated
/// from, and the composition and FRI columns (secure field).
pub fn estimate_device_bytes(trace: &Trace) -> u64 {
    use crate::tracegen::log_size_for;
    use bitsage_air::{cpu::CpuCols, hash::HashCols, memory::MemCols, range::RangeCols, rom::RomCols};
    let rows = |log: u32| 1u64 << log;
    let cpu_log = log_size_for(trace.steps.len());
    let hash_log = log_size_for(trace.hashes.len().max(1));
    // Memory rows: one per access plus the boundary, at most a few per step.
    let mem_log = log_size_for(trace.ram.len() + 3 * trace.steps.len());
    let main = rows(cpu_log) * CpuCols::<u8>::N_COLUMNS as u64
        + rows(hash_log) * HashCols::<u8>::N_COLUMNS as u64
        + rows(mem_log) * MemCols::<u8>::N_COLUMNS as u64
        + rows(bitsage_air::range::rows_log_size(bitsage_air::range::MAX_RANGE_LOG_SIZE))
            * RangeCols::<u8>::N_COLUMNS as u64
        + rows(log_size_for(1)) * RomCols::<u8>::N_COLUMNS as u64;
    let cells = main + main / 2;
    let secure = rows(cpu_log.max(hash_log).max(mem_log) + 1) * 16 * 4;
    cells * 4 * 4 + main * 4 + secure
}

fn check_fits(trace: &Trace) -> Result<(), ProveError> {
    #[cfg(feature = "cuda")]
    {
        let need = estimate_device_bytes(trace);
        let ordinal = bitsage_cuda::backend::bound_ordinal();
        if let Some((_, total)) = gpu_memory(ordinal) {
            if need > total {
                return Err(ProveError::TooLarge { need, have: total, device: format!("cuda:{ordinal}") });
            }
        }
    }
    let _ = trace;
    Ok(())
}

#[cfg(feature = "cuda")]
fn gpus() -> Result<Vec<Device>, ProveError> {
    let n = bitsage_cuda::device_count().map_err(|e| ProveError::backend_by("counting CUDA devices", e))?;
    if n == 0 {
        return Err(ProveError::backend("no CUDA device found"));
    }
    crate::warm_kernels_in_background();
    (0..n)
        .map(|ordinal| {
            let g = bitsage_cuda::backend::open(ordinal)
                .map_err(|e| ProveError::backend_by(format!("opening GPU {ordinal}"), e))?;
            let name = g.name().map_err(|e| ProveError::backend_by(format!("reading GPU {ordinal}'s name"), e))?;
            Ok(Device::Cuda { ordinal, name })
        })
        .collect()
}

#[cfg(not(feature = "cuda"))]
fn gpus() -> Result<Vec<Device>, ProveError> {
    Err(ProveError::backend("this build has no CUDA support (build bitsage-prover with the `cuda` feature)"))
}

/// Proofs one GPU runs at once: `$BITSAGE_GPU_LANES` (1 to 16, default 1).
/// Each lane is a slot of the pool with its own CUDA stream and threads, so
/// small proofs, which leave a GPU idle while the host works, overlap.
pub fn gpu_lanes() -> usize {
    std::env::var("BITSAGE_GPU_LANES").ok().and_then(|v| v.parse::<usize>().ok()).map_or(1, |n| n.clamp(1, 16))
}

/// Host threads of each GPU lane: `$BITSAGE_LANE_THREADS`, else the
/// machine's cores divided among its GPUs and their lanes (at least two).
/// Lanes that each had all of a GPU's cores oversubscribed them, and small
/// proofs gain little from many threads: on one H100 with 16 cores,
/// 2^12-row proofs ran at 118 a second on one lane of 16 threads, 144 on
/// one lane of 4, 125 and 131 on four lanes (host/benches/RESULTS.md).
fn lane_threads(cores: usize, gpus: usize, lanes: usize) -> usize {
    std::env::var("BITSAGE_LANE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| default_lane_threads(cores, gpus, lanes))
}

fn default_lane_threads(cores: usize, gpus: usize, lanes: usize) -> usize {
    let per_gpu = (cores / gpus.max(1)).max(1);
    (per_gpu / lanes.max(1)).max(2.min(per_gpu))
}

fn bound_threads(ordinal: usize, lane: usize, n: usize) -> Result<rayon::ThreadPool, ProveError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(move |i| format!("prover-gpu{ordinal}.{lane}-{i}"))
        .start_handler(move |_| bind(ordinal, lane))
        .build()
        .map_err(|e| ProveError::backend_by(format!("starting the threads for GPU {ordinal}"), e))
}

#[cfg(feature = "cuda")]
fn bind(ordinal: usize, lane: usize) {
    bitsage_cuda::backend::bind_lane(ordinal, lane);
}

#[cfg(not(feature = "cuda"))]
fn bind(_: usize, _: usize) {}

#[cfg(feature = "cuda")]
fn gpu_memory(ordinal: usize) -> Option<(u64, u64)> {
    let (free, total) = bitsage_cuda::backend::open(ordinal).ok()?.memory().ok()?;
    Some((free as u64, total as u64))
}

#[cfg(not(feature = "cuda"))]
fn gpu_memory(_: usize) -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lanes_share_their_gpu_s_cores_and_get_at_least_two_threads() {
        assert_eq!(default_lane_threads(16, 1, 1), 16);
        assert_eq!(default_lane_threads(16, 1, 4), 4);
        assert_eq!(default_lane_threads(16, 2, 4), 2);
        assert_eq!(default_lane_threads(16, 1, 16), 2);
        assert_eq!(default_lane_threads(1, 1, 4), 1);
        assert_eq!(default_lane_threads(0, 0, 0), 1);
    }

    #[test]
    fn cpu_pool_serves_many_callers_one_at_a_time() {
        let pool = Arc::new(DevicePool::open(BackendChoice::Cpu).expect("cpu pool"));
        let program = obelysk_vm::samples::mac_loop();
        let input = [obelysk_vm::M31(40), obelysk_vm::M31(3)];
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                let program = program.clone();
                std::thread::spawn(move || {
                    let trace = obelysk_vm::exec::execute(&program, &input, &[], Default::default()).expect("runs");
                    let st = Statement {
                        program,
                        input: input.to_vec(),
                        output: trace.output.clone(),
                        security: Default::default(),
                    };
                    let (proof, _, label) = pool.prove(&st, &trace, &ProveOptions::default()).expect("proves");
                    bitsage_air::verify::verify(&st, &proof).expect("verifies");
                    label
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().expect("thread"), "cpu (SIMD)");
        }
        let s = pool.status();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].proofs, 3);
        assert!(!s[0].busy);
    }

    #[test]
    fn lanes_multiply_gpu_slots_only() {
        // The CPU slot already proves on every core: lanes never split it.
        let pool = DevicePool::with_lanes(vec![Device::Cpu], 4).expect("cpu pool");
        let s = pool.status();
        assert_eq!((s.len(), s[0].lane), (1, 0));
        assert!(DevicePool::with_lanes(Vec::new(), 2).is_err(), "an empty pool is refused");
    }

    #[test]
    fn a_panic_while_holding_a_device_gives_it_back() {
        let pool = Arc::new(DevicePool::open(BackendChoice::Cpu).expect("cpu pool"));
        let p = pool.clone();
        let crashed = std::thread::spawn(move || {
            let _held = Held::take(&p);
            panic!("a device failure mid-proof");
        })
        .join();
        assert!(crashed.is_err());
        let s = pool.status();
        assert_eq!((s[0].busy, s[0].failures, s[0].proofs), (false, 1, 0));
        // The slot is free again: this would wait forever otherwise.
        let held = Held::take(&pool);
        held.finish(true);
        assert_eq!(pool.status()[0].proofs, 1);
    }
}
