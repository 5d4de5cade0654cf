//! `CudaBackend`: Stwo 2.3's backend traits over device-resident columns.
//!
//! On the GPU: columns, bit reversal, interpolation and evaluation (LDE) on
//! canonic domains (batched per size), Merkle leaves and layers, grinding,
//! FRI folds, accumulation, barycentric weights and point evaluation,
//! quotient combination, and constraint evaluation (kernels generated from
//! the AIR, see [`crate::constraints`]). Reads Stwo makes one value or one
//! column at a time (out-of-domain samples, decommitment values) are
//! batched over the registry of committed columns.
//!
//! One trait to a file, as Stwo lays out its own backends: `column`
//! (`DevCol`, `ColumnOps`), `circle` (`PolyOps`), `blake2s`
//! (`MerkleOpsLifted`), `poseidon252` (`MerkleOpsLifted` and `GrindOps`
//! for the Poseidon252 channel, the proofs the chain verifies), `grind`, `quotients`, `accumulation`, `fri`, and
//! `gkr` (refused).
//!
//! Still through the host, with a copy each way (correct, slow; each is a
//! named function so it can be replaced one by one): evaluation on
//! non-canonic domains, point evaluation from coefficients, FRI
//! `decompose`, leaf packing for `fold_step > 1`, bit reversal of secure
//! and hash columns. GKR is not used by the ObelyskVM AIR and is refused.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::Buf;
use cudarc::driver::CudaSlice;
use num_traits::One;
use serde::{Deserialize, Serialize};
use stwo::core::channel::Blake2sChannel;
use stwo::core::circle::{CirclePoint, CirclePointIndex, Coset};
use stwo::core::constraints::{coset_vanishing, coset_vanishing_derivative};
use stwo::core::fields::m31::{BaseField, M31};
use stwo::core::fields::qm31::SecureField;
use stwo::core::pcs::quotients::ColumnSampleBatch;
use stwo::core::poly::circle::{CanonicCoset, CircleDomain};
use stwo::core::poly::line::LineDomain;
use stwo::core::proof_of_work::GrindOps;
use stwo::core::utils::bit_reverse_index;
use stwo::core::vcs::blake2_hash::{Blake2sHash, Blake2sHasher};
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::{Backend, BackendForChannel, Col, Column, ColumnOps, CpuBackend};
use stwo::prover::fri::FriOps;
use stwo::prover::line::LineEvaluation;
use stwo::prover::lookups::gkr_prover::{GkrMultivariatePolyOracle, GkrOps, Layer};
use stwo::prover::lookups::mle::{Mle, MleOps};
use stwo::prover::lookups::utils::UnivariatePoly;
use stwo::prover::mempool::BaseColumnPool;
use stwo::prover::pcs::quotient_ops::AccumulatedNumerators;
use stwo::prover::poly::circle::{CircleCoefficients, CircleEvaluation, PolyOps, SecureEvaluation};
use stwo::prover::poly::twiddles::{TwiddleBuffer, TwiddleTree};
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::secure_column::SecureColumnByCoords;
use stwo::prover::vcs_lifted::ops::{MerkleOpsLifted, PackLeavesOps};
use stwo::prover::{AccumulationOps, Poly, QuotientOps};

use crate::{Gpu, TwBuf};

mod accumulation;
mod blake2s;
mod circle;
mod column;
mod fri;
mod gkr;
mod grind;
mod poseidon252;
mod quotients;

use circle::tw;
pub use circle::DevTwiddles;
use column::committed;
pub use column::DevCol;
use quotients::{alpha_words, coords, from_coords};

/// The devices `CudaBackend` operations run on, opened once per process.
/// A thread proves on the device it is bound to ([`bind_thread`]; GPU 0 when
/// unbound), so one process can run one prover per GPU: the device pool
/// gives each GPU a rayon pool whose threads are all bound to it. Open a
/// device (and handle a missing GPU) with [`open`] or [`init`] before
/// proving; operations panic with the driver's message on a device failure
/// mid-proof.
static GPUS: OnceLock<Vec<OnceLock<Gpu>>> = OnceLock::new();

thread_local! {
    static BOUND: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
}

/// Makes `ordinal` the device that `CudaBackend` operations on this thread
/// use (its first lane).
pub fn bind_thread(ordinal: usize) {
    bind_lane(ordinal, 0);
}

/// Makes lane `lane` of GPU `ordinal` the one that `CudaBackend`
/// operations on this thread use. A lane is a stream of its own with its
/// own per-proof state ([`Gpu::lane`]): proofs on two lanes of one GPU run
/// at the same time, each in order on its stream.
pub fn bind_lane(ordinal: usize, lane: usize) {
    BOUND.with(|b| b.set((ordinal, lane)));
}

/// The device this thread is bound to.
pub fn bound_ordinal() -> usize {
    BOUND.with(|b| b.get().0)
}

/// The (device, lane) this thread is bound to.
pub fn bound_lane() -> (usize, usize) {
    BOUND.with(|b| b.get())
}

/// Lane `lane` of GPU `ordinal`, opened on first use (lane 0 is [`open`]'s
/// device; the others share its context and kernels).
pub fn open_lane(ordinal: usize, lane: usize) -> crate::Result<&'static Gpu> {
    type Lanes = std::sync::Mutex<std::collections::HashMap<(usize, usize), &'static Gpu>>;
    static LANES: OnceLock<Lanes> = OnceLock::new();
    let base = open(ordinal)?;
    if lane == 0 {
        return Ok(base);
    }
    let mut lanes = LANES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(g) = lanes.get(&(ordinal, lane)) {
        return Ok(g);
    }
    // Kept for the process, as lane 0 is: a handful per GPU at most.
    let g: &'static Gpu = Box::leak(Box::new(base.lane()?));
    lanes.insert((ordinal, lane), g);
    Ok(g)
}

/// Opens GPU `ordinal` (once; later calls return the same device). A
/// thread that asks while another is opening waits for that one (the CLI
/// opens the GPU on a thread of its own while the guest runs), so a device
/// is never opened twice.
pub fn open(ordinal: usize) -> crate::Result<&'static Gpu> {
    if let Some(g) = GPUS.get().and_then(|s| s.get(ordinal)).and_then(OnceLock::get) {
        return Ok(g);
    }
    static OPENING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = OPENING.lock().unwrap_or_else(|p| p.into_inner());
    let slots = match GPUS.get() {
        Some(s) => s,
        None => {
            let n = {
                let _s = tracing::debug_span!("cuda driver init").entered();
                crate::device_count()?
            };
            GPUS.get_or_init(|| (0..n).map(|_| OnceLock::new()).collect())
        }
    };
    let Some(slot) = slots.get(ordinal) else {
        return Err(crate::CudaError::NoDevice { ordinal, count: slots.len() });
    };
    if let Some(g) = slot.get() {
        return Ok(g);
    }
    let g = Gpu::open(ordinal)?;
    Ok(slot.get_or_init(|| g))
}

/// What a proof's FRI queries are drawn over: Stwo draws `n_queries`
/// positions in `2^lifting_log_size` from the channel right after the proof
/// of work, and the decommitment then reads every committed column at
/// positions derived from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecommitShape {
    pub lifting_log_size: u32,
    pub n_queries: usize,
    pub fold_step: u32,
}

/// Tells the lane this thread is bound to the shape of the queries of the
/// proof it is about to make, so its proof of work can work out the query
/// positions and plan the decommitment's reads (`column::seed_query_plan`):
/// a gather per column shape instead of learning each shape from a column
/// read one value at a time. Without it (or with a wrong shape) the reads
/// are still served, only slower.
pub fn expect_decommit(shape: DecommitShape) -> crate::Result<()> {
    *init()?.decommit.lock().unwrap_or_else(|p| p.into_inner()) = Some(shape);
    Ok(())
}

/// Opens the device (and lane) this thread is bound to.
pub fn init() -> crate::Result<&'static Gpu> {
    let (ordinal, lane) = bound_lane();
    open_lane(ordinal, lane)
}

pub(crate) fn gpu() -> &'static Gpu {
    match init() {
        Ok(g) => g,
        Err(e) => panic!("CudaBackend used without a usable GPU: {}", bitsage_air::verify::error_chain(&e)),
    }
}

/// The value, or a panic naming the error and its causes. Stwo's backend
/// traits cannot return errors, so a failed launch or a kernel that does not
/// compile panics here; the prover pool catches it and reports the message.
pub fn ok<T>(r: crate::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("CUDA: {}", bitsage_air::verify::error_chain(&e)))
}

/// The Stwo backend whose columns live in GPU memory.
#[derive(Copy, Clone, Debug, Default, Serialize, Deserialize)]
pub struct CudaBackend;

/// A value stored as a fixed number of u32 words on the device.
pub trait DeviceValue: Copy + fmt::Debug + Send + Sync + 'static {
    const WORDS: usize;
    fn write(&self, out: &mut Vec<u32>);
    fn read(w: &[u32]) -> Self;
}

impl DeviceValue for M31 {
    const WORDS: usize = 1;
    fn write(&self, out: &mut Vec<u32>) {
        out.push(self.0);
    }
    fn read(w: &[u32]) -> Self {
        M31(w[0])
    }
}

impl DeviceValue for SecureField {
    const WORDS: usize = 4;
    fn write(&self, out: &mut Vec<u32>) {
        out.extend(self.to_m31_array().map(|v| v.0));
    }
    fn read(w: &[u32]) -> Self {
        SecureField::from_m31_array([M31(w[0]), M31(w[1]), M31(w[2]), M31(w[3])])
    }
}

impl DeviceValue for Blake2sHash {
    const WORDS: usize = 8;
    fn write(&self, out: &mut Vec<u32>) {
        out.extend(self.0.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
    }
    fn read(w: &[u32]) -> Self {
        let mut b = [0u8; 32];
        for (i, x) in w.iter().take(8).enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&x.to_le_bytes());
        }
        Blake2sHash(b)
    }
}

/// What moved between host and device through the generic column API, by
/// kind: calls, bytes and wall time, for the benchmark's breakdown; then
/// host work in the column API that is not a transfer: `at` calls (counted
/// only: timing each would cost more than most of them take), the plan
/// prediction, and dropping device columns (registry and free).
pub const TRAFFIC_KINDS: [&str; 7] =
    ["single reads", "gathers", "downloads", "uploads", "at() calls", "plan prediction", "column drops"];
static TRAFFIC: [[std::sync::atomic::AtomicU64; 3]; 7] =
    [const { [const { std::sync::atomic::AtomicU64::new(0) }; 3] }; 7];

/// Whether [`record`] counts (off unless a bench asks: the counters are
/// shared by every lane, and an atomic add on one cache line from every
/// lane's `Column::at`, thousands a proof, makes the lanes wait on each
/// other).
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Starts (or stops) counting the host traffic [`traffic`] reports.
pub fn count_traffic(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

fn counting() -> bool {
    COUNTING.load(Ordering::Relaxed)
}

fn record(kind: usize, bytes: usize, since: std::time::Instant) {
    if !counting() {
        return;
    }
    let t = &TRAFFIC[kind];
    t[0].fetch_add(1, Ordering::Relaxed);
    t[1].fetch_add(bytes as u64, Ordering::Relaxed);
    t[2].fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Totals so far per [`TRAFFIC_KINDS`] entry: (calls, bytes, nanoseconds),
/// while [`count_traffic`] is on.
pub fn traffic() -> [(u64, u64, u64); 7] {
    std::array::from_fn(|k| {
        let t = &TRAFFIC[k];
        (t[0].load(Ordering::Relaxed), t[1].load(Ordering::Relaxed), t[2].load(Ordering::Relaxed))
    })
}

fn to_simd(c: &DevCol<BaseField>) -> BaseColumn {
    c.to_cpu().into_iter().collect()
}

fn from_simd(c: &BaseColumn) -> DevCol<BaseField> {
    DevCol::from_host(&c.to_cpu())
}

fn secure_to_simd(c: &SecureColumnByCoords<CudaBackend>) -> SecureColumnByCoords<SimdBackend> {
    SecureColumnByCoords { columns: std::array::from_fn(|i| to_simd(&c.columns[i])) }
}

fn secure_from_simd(c: &SecureColumnByCoords<SimdBackend>) -> SecureColumnByCoords<CudaBackend> {
    SecureColumnByCoords { columns: std::array::from_fn(|i| from_simd(&c.columns[i])) }
}

fn simd_twiddles(t: &TwiddleTree<CudaBackend>) -> TwiddleTree<SimdBackend> {
    SimdBackend::precompute_twiddles(t.root_coset)
}

/// A circle domain's points as (x, y) word pairs in bit-reversed order, on
/// the bound device; built once per (device, domain) and kept for the
/// process.
fn domain_points(domain: CircleDomain) -> std::sync::Arc<CudaSlice<u32>> {
    type Key = (usize, usize, usize, u32);
    type Cache = std::sync::Mutex<std::collections::HashMap<Key, std::sync::Arc<CudaSlice<u32>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let log = domain.log_size();
    let key = (bound_ordinal(), domain.half_coset.initial_index.0, domain.half_coset.step_size.0, log);
    let mut map = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key)
        .or_insert_with(|| {
            let mut w = vec![0u32; 2 << log];
            for (j, pt) in domain.iter().enumerate() {
                let i = bit_reverse_index(j, log);
                w[2 * i] = pt.x.0;
                w[2 * i + 1] = pt.y.0;
            }
            let points = ok(gpu().args(&w));
            // Shared with the device's other lanes (other streams): complete before anyone reads it.
            ok(gpu().synchronize());
            std::sync::Arc::new(points.into_slice())
        })
        .clone()
}

fn is_canonic(domain: CircleDomain) -> bool {
    domain == CanonicCoset::new(domain.log_size()).circle_domain()
}

impl Backend for CudaBackend {}

impl BackendForChannel<Blake2sMerkleChannel> for CudaBackend {}
