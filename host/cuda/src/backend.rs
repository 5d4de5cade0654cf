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
//! Still through the host, with a copy each way (correct, slow; each is a
//! named function here so it can be replaced one by one): evaluation on
//! non-canonic domains, point evaluation from coefficients, FRI
//! `decompose`, leaf packing for `fold_step > 1`, bit reversal of secure
//! and hash columns. GKR is not used by the ObelyskVM AIR and is refused.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

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

/// The devices `CudaBackend` operations run on, opened once per process.
/// A thread proves on the device it is bound to ([`bind_thread`]; GPU 0 when
/// unbound), so one process can run one prover per GPU: the device pool
/// gives each GPU a rayon pool whose threads are all bound to it. Open a
/// device (and handle a missing GPU) with [`open`] or [`init`] before
/// proving; operations panic with the driver's message on a device failure
/// mid-proof.
static GPUS: OnceLock<Vec<OnceLock<Gpu>>> = OnceLock::new();

thread_local! {
    static BOUND: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Makes `ordinal` the device that `CudaBackend` operations on this thread use.
pub fn bind_thread(ordinal: usize) {
    BOUND.with(|b| b.set(ordinal));
}

/// The device this thread is bound to.
pub fn bound_ordinal() -> usize {
    BOUND.with(|b| b.get())
}

/// Opens GPU `ordinal` (once; later calls return the same device).
pub fn open(ordinal: usize) -> crate::Result<&'static Gpu> {
    let slots = match GPUS.get() {
        Some(s) => s,
        None => {
            let n = crate::device_count()?;
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

/// Opens the device this thread is bound to.
pub fn init() -> crate::Result<&'static Gpu> {
    open(bound_ordinal())
}

pub(crate) fn gpu() -> &'static Gpu {
    match init() {
        Ok(g) => g,
        Err(e) => panic!("CudaBackend used without a usable GPU: {e}"),
    }
}

fn ok<T>(r: crate::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("CUDA: {e}"))
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

/// A device column: `len` values of `T`, `T::WORDS` words each, element-major.
pub struct DevCol<T: DeviceValue> {
    /// Freed in `Drop` (after the registry entry goes), so the free is timed.
    buf: std::mem::ManuallyDrop<CudaSlice<u32>>,
    len: usize,
    /// Single-value reads so far, and a host copy of the column once there
    /// have been enough of them (see [`Column::at`]). Every mutable access
    /// goes through [`DevCol::buf_mut`], which drops the copy.
    reads: AtomicU32,
    mirror: OnceLock<Vec<u32>>,
    /// The values at the query positions of the current decommitment.
    gathered: OnceLock<Arc<Gathered>>,
    /// Set while the column is a committed evaluation in [`committed`].
    id: Option<u64>,
    /// For a weights column: its dot products with every committed column
    /// of its length, by id (see `barycentric_eval_at_point`).
    dots: OnceLock<HashMap<u64, [u32; 4]>>,
    /// A Merkle layer, entered in [`merkle_links`].
    merkle: bool,
    _t: PhantomData<T>,
}

/// How the Merkle layers on the devices link up, by device address: the
/// layer built from each one, and what a decommitment read of a layer below
/// prefetched for it. Stwo reads a tree's layers one after another, each at
/// positions the layer below predicts, so the first read of a tree fetches
/// every layer above it in one launch instead of one round trip per layer.
#[derive(Default)]
struct MerkleLinks {
    /// Layer -> (the layer built from it, that layer's length).
    parent: HashMap<u64, (u64, usize)>,
    /// The reverse of `parent`.
    child: HashMap<u64, u64>,
    prefetched: HashMap<u64, Arc<Gathered>>,
}

fn merkle_links() -> &'static std::sync::Mutex<MerkleLinks> {
    static LINKS: OnceLock<std::sync::Mutex<MerkleLinks>> = OnceLock::new();
    LINKS.get_or_init(Default::default)
}

/// A column's words at a set of positions (sorted, distinct): what one
/// gather fetched. Shared between the registry and the column that reads it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Gathered {
    positions: Vec<usize>,
    /// `width` words per position, in position order.
    words: Vec<u32>,
    width: usize,
}

impl Gathered {
    /// The words at `index`, if it was gathered.
    fn get(&self, index: usize) -> Option<&[u32]> {
        let i = self.positions.binary_search(&index).ok()?;
        self.words.get(i * self.width..(i + 1) * self.width)
    }
}

/// A committed column's entry in [`committed`].
struct Committed {
    ordinal: usize,
    ptr: u64,
    len: usize,
    words: usize,
    /// What was last gathered for it.
    gathered: Option<Arc<Gathered>>,
}

/// The live committed evaluations (the columns the commitment trees hold),
/// so reads that Stwo makes one column at a time (out-of-domain samples,
/// decommitment values) can be made for all of them in one launch. An
/// entry lives as long as its column and its contents do not change.
fn committed() -> &'static std::sync::Mutex<HashMap<u64, Committed>> {
    static REG: OnceLock<std::sync::Mutex<HashMap<u64, Committed>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

impl<T: DeviceValue> Drop for DevCol<T> {
    fn drop(&mut self) {
        let t0 = std::time::Instant::now();
        self.unregister();
        if self.merkle {
            let me = self.ptr();
            let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
            links.prefetched.remove(&me);
            if let Some((parent, _)) = links.parent.remove(&me) {
                links.child.remove(&parent);
            }
            if let Some(child) = links.child.remove(&me) {
                links.parent.remove(&child);
            }
        }
        // SAFETY: `buf` is not used again; this is the only place it is dropped.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.buf) };
        record(6, 0, t0);
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

fn record(kind: usize, bytes: usize, since: std::time::Instant) {
    let t = &TRAFFIC[kind];
    t[0].fetch_add(1, Ordering::Relaxed);
    t[1].fetch_add(bytes as u64, Ordering::Relaxed);
    t[2].fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// Totals so far per [`TRAFFIC_KINDS`] entry: (calls, bytes, nanoseconds).
pub fn traffic() -> [(u64, u64, u64); 7] {
    std::array::from_fn(|k| {
        let t = &TRAFFIC[k];
        (t[0].load(Ordering::Relaxed), t[1].load(Ordering::Relaxed), t[2].load(Ordering::Relaxed))
    })
}

/// Single-value reads of one column after which the whole column is
/// downloaded once and later reads are served from the host copy (a
/// fallback for read patterns the query plan does not predict).
const READS_BEFORE_MIRROR: u32 = 1024;

impl<T: DeviceValue> DevCol<T> {
    pub fn from_words(buf: CudaSlice<u32>, len: usize) -> Self {
        DevCol {
            buf: std::mem::ManuallyDrop::new(buf),
            len,
            reads: AtomicU32::new(0),
            mirror: OnceLock::new(),
            gathered: OnceLock::new(),
            id: None,
            dots: OnceLock::new(),
            merkle: false,
            _t: PhantomData,
        }
    }

    /// The column's device address.
    fn ptr(&self) -> u64 {
        let (p, _sync) = cudarc::driver::DevicePtr::device_ptr(&*self.buf, &gpu().stream);
        p
    }

    /// Marks a new Merkle layer; `below`, when given, is the layer it was
    /// built from.
    fn link_merkle(mut self, below: Option<&Self>) -> Self {
        self.merkle = true;
        if let Some(b) = below {
            let (me, low) = (self.ptr(), b.ptr());
            let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
            links.parent.insert(low, (me, self.len));
            links.child.insert(me, low);
        }
        self
    }

    /// Enters the column in the registry of committed evaluations.
    fn register(&mut self) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        self.unregister();
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let (ptr, _sync) = cudarc::driver::DevicePtr::device_ptr(&*self.buf, &gpu().stream);
        let entry = Committed { ordinal: bound_ordinal(), ptr, len: self.len, words: T::WORDS, gathered: None };
        committed().lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry);
        self.id = Some(id);
    }

    fn unregister(&mut self) {
        if let Some(id) = self.id.take() {
            committed().lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }

    /// The words at `positions` (sorted, distinct) of this column, gathered
    /// in one launch for every committed column of the same shape on this
    /// device (kept in the registry for the columns read next); for a column
    /// not in the registry, for this column alone.
    fn gather_planned(&self, positions: &[usize]) -> Arc<Gathered> {
        let g = gpu();
        let pos32: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let wrap = |words: Vec<u32>| Arc::new(Gathered { positions: positions.to_vec(), words, width: T::WORDS });
        let Some(id) = self.id else {
            if self.merkle {
                return self.gather_merkle_chain(positions);
            }
            return wrap(ok(g.gather(&self.buf, T::WORDS as u32, &pos32)));
        };
        let mut reg = committed().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = reg.get(&id).and_then(|e| e.gathered.as_ref()) {
            if done.positions == positions {
                return done.clone();
            }
        }
        let ordinal = bound_ordinal();
        let shape = (self.len, T::WORDS);
        let ids: Vec<u64> = reg
            .iter()
            .filter(|(_, e)| e.ordinal == ordinal && (e.len, e.words) == shape)
            .filter(|(_, e)| e.gathered.as_ref().is_none_or(|d| d.positions != positions))
            .map(|(&i, _)| i)
            .collect();
        let ptrs: Vec<u64> = ids.iter().map(|i| reg[i].ptr).collect();
        let words = ok(g.gather_many(&ptrs, T::WORDS as u32, &pos32));
        let mut mine = None;
        for (i, w) in ids.into_iter().zip(words) {
            let got = wrap(w);
            if i == id {
                mine = Some(got.clone());
            }
            if let Some(e) = reg.get_mut(&i) {
                e.gathered = Some(got);
            }
        }
        mine.unwrap_or_else(|| wrap(ok(g.gather(&self.buf, T::WORDS as u32, &pos32))))
    }

    /// The words of this Merkle layer at `positions`, and, in the same
    /// launch, those of every layer above it at the positions Stwo's
    /// decommitment reads there (both children of each node on the path):
    /// kept in [`merkle_links`] (and the query plan) for their first reads.
    fn gather_merkle_chain(&self, positions: &[usize]) -> Arc<Gathered> {
        let mut layers: Vec<(u64, usize, Vec<usize>)> = vec![(self.ptr(), self.len, positions.to_vec())];
        {
            let links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
            while let Some(&(up, len)) = layers.last().and_then(|l| links.parent.get(&l.0)) {
                let below = &layers[layers.len() - 1].2;
                let mut next: Vec<usize> = below.iter().flat_map(|&p| [(p >> 1) & !1, (p >> 1) | 1]).collect();
                next.sort_unstable();
                next.dedup();
                if len < 2 || next.iter().any(|&p| p >= len) {
                    break;
                }
                layers.push((up, len, next));
            }
        }
        let pos32: Vec<Vec<u32>> = layers.iter().map(|l| l.2.iter().map(|&p| p as u32).collect()).collect();
        let lists: Vec<(u64, &[u32])> = layers.iter().zip(&pos32).map(|(l, p)| (l.0, &p[..])).collect();
        let words = ok(gpu().gather_lists(&lists, T::WORDS as u32));
        let mut got = layers
            .into_iter()
            .zip(words)
            .map(|((ptr, len, positions), words)| (ptr, len, Arc::new(Gathered { positions, words, width: T::WORDS })));
        let Some((_, _, mine)) = got.next() else {
            return Arc::new(Gathered { positions: Vec::new(), words: Vec::new(), width: T::WORDS });
        };
        let rest: Vec<_> = got.collect();
        {
            let mut plan = gpu().query_plan.lock().unwrap_or_else(|p| p.into_inner());
            for (_, len, g) in &rest {
                plan.insert((*len, T::WORDS), g.positions.clone());
            }
        }
        let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
        for (ptr, _, g) in rest {
            links.prefetched.insert(ptr, g);
        }
        mine
    }

    /// [`Column::at`] (see there).
    fn read_at(&self, index: usize) -> T {
        if let Some(m) = self.mirror.get() {
            return T::read(&m[index * T::WORDS..(index + 1) * T::WORDS]);
        }
        if let Some(w) = self.gathered.get().and_then(|g| g.get(index)) {
            return T::read(w);
        }
        if self.merkle && self.gathered.get().is_none() {
            let pre = merkle_links().lock().unwrap_or_else(|p| p.into_inner()).prefetched.remove(&self.ptr());
            if let Some(pre) = pre {
                let got = self.gathered.get_or_init(|| pre);
                if let Some(w) = got.get(index) {
                    return T::read(w);
                }
            }
        }
        let g = gpu();
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        if n >= READS_BEFORE_MIRROR {
            let m = self.mirror.get_or_init(|| {
                let t0 = std::time::Instant::now();
                let w = ok(g.download(&self.buf));
                record(2, 4 * w.len(), t0);
                w
            });
            return T::read(&m[index * T::WORDS..(index + 1) * T::WORDS]);
        }
        let planned = {
            let mut plan = g.query_plan.lock().unwrap_or_else(|p| p.into_inner());
            let predicted = if n == 0 && self.gathered.get().is_none() {
                let t0 = std::time::Instant::now();
                let p = predict_plan(&plan, self.len, T::WORDS, index);
                record(5, 0, t0);
                p
            } else {
                None
            };
            match predicted {
                Some(p) => {
                    plan.insert((self.len, T::WORDS), p.clone());
                    Some(p)
                }
                None => {
                    let seq = plan.entry((self.len, T::WORDS)).or_default();
                    if n == 0 {
                        // A new decommitment (or a new pattern): this column teaches it.
                        seq.clear();
                    }
                    if !seq.contains(&index) {
                        seq.push(index);
                    }
                    None
                }
            }
        };
        if let Some(positions) = planned {
            let map = self.gathered.get_or_init(|| {
                let _s = tracing::debug_span!("cuda planned gather").entered();
                let t0 = std::time::Instant::now();
                let m = self.gather_planned(&positions);
                record(1, 4 * T::WORDS * positions.len(), t0);
                m
            });
            if let Some(w) = map.get(index) {
                return T::read(w);
            }
        }
        let _s = tracing::debug_span!("cuda single read").entered();
        let t0 = std::time::Instant::now();
        let view = self.buf.slice(index * T::WORDS..(index + 1) * T::WORDS);
        let v = T::read(&ok(g.stream.clone_dtoh(&view).map_err(Into::into)));
        record(0, 4 * T::WORDS, t0);
        v
    }

    /// The device words.
    pub fn buf(&self) -> &CudaSlice<u32> {
        &self.buf
    }

    /// The device words, for a kernel that writes them; drops the host copy.
    pub fn buf_mut(&mut self) -> &mut CudaSlice<u32> {
        self.unregister();
        if self.merkle {
            // Words prefetched for this layer no longer hold.
            let me = self.ptr();
            merkle_links().lock().unwrap_or_else(|p| p.into_inner()).prefetched.remove(&me);
        }
        self.mirror = OnceLock::new();
        self.gathered = OnceLock::new();
        self.dots = OnceLock::new();
        *self.reads.get_mut() = 0;
        &mut self.buf
    }

    fn from_host(values: &[T]) -> Self {
        let t0 = std::time::Instant::now();
        let mut w = Vec::with_capacity(values.len() * T::WORDS);
        values.iter().for_each(|v| v.write(&mut w));
        let c = Self::from_words(ok(gpu().args(&w)), values.len());
        record(3, 4 * w.len(), t0);
        c
    }
}

impl DevCol<M31> {
    /// Uploads base-field values straight from a host slice (one copy, no
    /// per-value re-encoding).
    pub fn from_m31(values: &[M31]) -> Self {
        // SAFETY: M31 is `#[repr(transparent)]` over u32, so the slice is a valid &[u32].
        let words: &[u32] = unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u32>(), values.len()) };
        Self::from_words(ok(gpu().args(words)), values.len())
    }
}

impl DevCol<M31> {
    /// Uploads many base-field columns at once through the device's pinned
    /// staging buffer (see `Gpu::upload_many`).
    pub fn upload_many(columns: &[&[M31]]) -> Vec<Self> {
        // SAFETY: M31 is `#[repr(transparent)]` over u32, so each slice is a valid &[u32].
        let words: Vec<&[u32]> =
            columns.iter().map(|c| unsafe { std::slice::from_raw_parts(c.as_ptr().cast::<u32>(), c.len()) }).collect();
        let bufs = ok(gpu().upload_many(&words));
        bufs.into_iter().zip(columns).map(|(b, c)| Self::from_words(b, c.len())).collect()
    }
}

impl<T: DeviceValue> Clone for DevCol<T> {
    fn clone(&self) -> Self {
        Self::from_words(ok(gpu().stream.clone_dtod(&*self.buf).map_err(Into::into)), self.len)
    }
}

impl<T: DeviceValue> fmt::Debug for DevCol<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevCol<{}>[{}]", std::any::type_name::<T>(), self.len)
    }
}

impl<T: DeviceValue> FromIterator<T> for DevCol<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let v: Vec<T> = iter.into_iter().collect();
        Self::from_host(&v)
    }
}

impl<T: DeviceValue> Column<T> for DevCol<T> {
    fn zeros(len: usize) -> Self {
        let buf = ok(gpu().stream.alloc_zeros::<u32>((len * T::WORDS).max(1)).map_err(Into::into));
        Self::from_words(buf, len)
    }

    unsafe fn uninitialized(len: usize) -> Self {
        Self::zeros(len)
    }

    fn to_cpu(&self) -> Vec<T> {
        let _s = tracing::debug_span!("cuda to_cpu").entered();
        let t0 = std::time::Instant::now();
        let w = ok(gpu().download(&self.buf));
        let v = w.chunks(T::WORDS).take(self.len).map(T::read).collect();
        record(2, 4 * w.len(), t0);
        v
    }

    fn len(&self) -> usize {
        self.len
    }

    /// One value. A device read costs a round trip (about 10 us), and Stwo
    /// reads committed columns one value at a time when it decommits: every
    /// query position of every column, column after column, the same
    /// positions for every column of one length. So the first column of a
    /// (length, value width) is read value by value and its positions are
    /// recorded in the device's query plan; each later column whose first
    /// read is the plan's first position fetches all the plan's positions
    /// with one gather kernel and serves its reads from them. Any other
    /// pattern falls back to single reads, then to one download of the
    /// whole column.
    fn at(&self, index: usize) -> T {
        TRAFFIC[4][0].fetch_add(1, Ordering::Relaxed);
        self.read_at(index)
    }

    fn set(&mut self, index: usize, value: T) {
        let mut w = Vec::with_capacity(T::WORDS);
        value.write(&mut w);
        let mut view = self.buf_mut().slice_mut(index * T::WORDS..(index + 1) * T::WORDS);
        ok(gpu().stream.memcpy_htod(&w, &mut view).map_err(Into::into));
    }

    fn split_at_mid(self) -> (Self, Self) {
        let half = self.len / 2;
        let s = &gpu().stream;
        let lo = ok(s.clone_dtod(&self.buf.slice(..half * T::WORDS)).map_err(Into::into));
        let hi = ok(s.clone_dtod(&self.buf.slice(half * T::WORDS..self.len * T::WORDS)).map_err(Into::into));
        (Self::from_words(lo, half), Self::from_words(hi, self.len - half))
    }
}

/// The positions a column of `len` values of `words` words will be read at
/// in the current decommitment, if the query plan tells them and they
/// include `first` (the column's first read). Stwo's lifted Merkle
/// decommitment reads, for queries `q` at the tree's largest size `2^m`:
/// a column of `2^l` values at `((q >> (m - l + 1)) << 1) + (q & 1)`; the
/// leaf-hash layer (`2^m` hashes) at the pairs `2(q >> 1), 2(q >> 1) + 1`;
/// each next layer at the pairs above those of the layer before; a FRI
/// layer `k` folds below at the pairs of `q >> k`. So a plan learned from
/// one column (read value by value) predicts the rest; a prediction is used
/// only if it holds the column's first read, and a read outside it is still
/// served (from the device).
fn predict_plan(
    plan: &HashMap<(usize, usize), Vec<usize>>,
    len: usize,
    words: usize,
    first: usize,
) -> Option<Vec<usize>> {
    // Candidates are tried in order and built only when reached: this runs
    // on the first read of every column of every decommitment.
    let usable = |c: &[usize]| c.len() > 1 && c.contains(&first) && c.iter().all(|&p| p < len);
    let sorted = |mut v: Vec<usize>| {
        v.sort_unstable();
        v.dedup();
        v
    };
    let pairs = |it: &mut dyn Iterator<Item = usize>| sorted(it.flat_map(|p| [p & !1, p | 1]).collect());
    let accept = |c: Vec<usize>| usable(&c).then_some(c);
    if let Some(p) = plan.get(&(len, words)).filter(|p| usable(p)) {
        // Already sorted once a prediction has been stored; a plan learned
        // value by value is in read order.
        return Some(if p.windows(2).all(|w| w[0] < w[1]) { p.clone() } else { sorted(p.clone()) });
    }
    if words == 8 {
        // A Merkle layer: from the layer below it, or from the leaf columns.
        if let Some(c) = plan.get(&(2 * len, 8)).and_then(|b| accept(pairs(&mut b.iter().map(|&p| p >> 1)))) {
            return Some(c);
        }
        if let Some(c) = plan.get(&(len, 1)).and_then(|q| accept(pairs(&mut q.iter().copied()))) {
            return Some(c);
        }
    }
    if words == 1 && len.is_power_of_two() {
        // A smaller column of a tree whose largest columns' plan is known.
        let mut larger: Vec<(usize, &Vec<usize>)> = plan
            .iter()
            .filter(|((l, w), _)| *w == 1 && *l > len && l.is_power_of_two())
            .map(|((l, _), q)| (*l, q))
            .collect();
        larger.sort_by_key(|(l, _)| std::cmp::Reverse(*l));
        for (l, q) in larger {
            let shift = (l.ilog2() - len.ilog2()) as usize;
            if let Some(c) = accept(sorted(q.iter().map(|&q| ((q >> (shift + 1)) << 1) + (q & 1)).collect())) {
                return Some(c);
            }
            // A FRI layer: the sibling pairs of the queries folded down to it.
            if let Some(c) = accept(pairs(&mut q.iter().map(|&q| q >> shift))) {
                return Some(c);
            }
        }
    }
    None
}

impl ColumnOps<BaseField> for CudaBackend {
    type Column = DevCol<BaseField>;
    fn bit_reverse_column(column: &mut Self::Column) {
        let log = column.len.ilog2();
        ok(gpu().bit_reverse(column.buf_mut(), log));
    }
}

impl ColumnOps<SecureField> for CudaBackend {
    type Column = DevCol<SecureField>;
    fn bit_reverse_column(column: &mut Self::Column) {
        let mut v = column.to_cpu();
        stwo::core::utils::bit_reverse(&mut v);
        *column = DevCol::from_host(&v);
    }
}

impl ColumnOps<Blake2sHash> for CudaBackend {
    type Column = DevCol<Blake2sHash>;
    fn bit_reverse_column(column: &mut Self::Column) {
        let mut v = column.to_cpu();
        stwo::core::utils::bit_reverse(&mut v);
        *column = DevCol::from_host(&v);
    }
}

/// Device twiddles: one direction of a Stwo twiddle tree.
#[derive(Clone)]
pub struct DevTwiddles(pub Option<TwBuf>);

impl TwiddleBuffer<BitReversedOrder> for DevTwiddles {
    fn empty() -> Self {
        DevTwiddles(None)
    }

    fn extract_subdomain_twiddles(&self, domain_log_size: u32, subdomain_log_size: u32) -> Self {
        let host: Vec<u32> = self.0.as_ref().map(|t| t.host.clone()).unwrap_or_default();
        let sub =
            TwiddleBuffer::<BitReversedOrder>::extract_subdomain_twiddles(&host, domain_log_size, subdomain_log_size);
        let log = sub.len().max(1).ilog2();
        DevTwiddles(Some(ok(gpu().tw_buf(sub, log))))
    }
}

fn tw(t: &DevTwiddles) -> &TwBuf {
    t.0.as_ref().unwrap_or_else(|| panic!("CUDA: these twiddles are empty"))
}

// ---- conversions for the operations that still go through SIMD ----------

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
            std::sync::Arc::new(ok(gpu().args(&w)))
        })
        .clone()
}

fn is_canonic(domain: CircleDomain) -> bool {
    domain == CanonicCoset::new(domain.log_size()).circle_domain()
}

impl PolyOps for CudaBackend {
    type Twiddles = DevTwiddles;

    fn interpolate(
        eval: CircleEvaluation<Self, BaseField, BitReversedOrder>,
        itwiddles: &TwiddleTree<Self>,
    ) -> CircleCoefficients<Self> {
        let log = eval.domain.log_size();
        let itw = tw(&itwiddles.itwiddles);
        if log < 3 {
            let cpu =
                CircleEvaluation::<CpuBackend, BaseField, BitReversedOrder>::new(eval.domain, eval.values.to_cpu());
            let tree = CpuBackend::precompute_twiddles(itwiddles.root_coset);
            return CircleCoefficients::new(DevCol::from_host(&CpuBackend::interpolate(cpu, &tree).coeffs));
        }
        let mut values = eval.values;
        ok(gpu().interpolate(values.buf_mut(), log, itw));
        CircleCoefficients::new(values)
    }

    /// Columns of one size are interpolated together: one launch per FFT
    /// layer for all of them.
    fn interpolate_columns(
        columns: Vec<CircleEvaluation<Self, BaseField, BitReversedOrder>>,
        twiddles: &TwiddleTree<Self>,
    ) -> Vec<CircleCoefficients<Self>> {
        let itw = tw(&twiddles.itwiddles);
        let mut values: Vec<(u32, bool, DevCol<BaseField>)> = columns
            .into_iter()
            .map(|c| {
                let log = c.domain.log_size();
                (log, log >= 3 && is_canonic(c.domain), c.values)
            })
            .collect();
        let mut logs: Vec<u32> = values.iter().filter(|v| v.1).map(|v| v.0).collect();
        logs.sort_unstable();
        logs.dedup();
        for log in logs {
            let mut group: Vec<&mut CudaSlice<u32>> =
                values.iter_mut().filter(|v| v.1 && v.0 == log).map(|v| v.2.buf_mut()).collect();
            ok(gpu().interpolate_many(&mut group, log, itw));
        }
        values
            .into_iter()
            .map(|(log, batched, v)| {
                if batched {
                    CircleCoefficients::new(v)
                } else {
                    let domain = CanonicCoset::new(log).circle_domain();
                    Self::interpolate(CircleEvaluation::new(domain, v), twiddles)
                }
            })
            .collect()
    }

    fn eval_at_point(poly: &CircleCoefficients<Self>, point: CirclePoint<SecureField>) -> SecureField {
        CpuBackend::eval_at_point(&CircleCoefficients::<CpuBackend>::new(poly.coeffs.to_cpu()), point)
    }

    fn barycentric_weights(coset: CanonicCoset, p: CirclePoint<SecureField>) -> Col<Self, SecureField> {
        let domain = coset.circle_domain();
        if domain.size() <= 16 {
            return DevCol::from_host(&SimdBackend::barycentric_weights(coset, p).to_cpu());
        }
        // The per-domain factor as Stwo's SIMD backend computes it; the
        // per-point inversions run on the device.
        let log_size = domain.log_size();
        let p0 = domain.at(0).into_ef::<SecureField>();
        let generator = Coset::new(CirclePointIndex::generator(), log_size);
        let si_0 =
            SecureField::one() / ((p0.y * SecureField::from(-M31(2))) * coset_vanishing_derivative(generator, p0));
        let s = si_0 * coset_vanishing(CanonicCoset::new(log_size).coset, p);
        let mut ps = [0u32; 12];
        for (k, v) in [p.x, p.y, s].iter().enumerate() {
            ps[4 * k..4 * k + 4].copy_from_slice(&v.to_m31_array().map(|m| m.0));
        }
        let points = domain_points(domain);
        DevCol::from_words(ok(gpu().barycentric_weights(&points, &ps)), domain.size())
    }

    fn barycentric_eval_at_point(
        evals: &CircleEvaluation<Self, BaseField, BitReversedOrder>,
        weights: &Col<Self, SecureField>,
    ) -> SecureField {
        // Stwo samples every committed column this way, one at a time: the
        // first sample with these weights computes all committed columns of
        // this length at once and keeps them with the weights.
        if let Some(id) = evals.values.id {
            let n = evals.values.len();
            let dots = weights.dots.get_or_init(|| {
                let ordinal = bound_ordinal();
                let (ids, ptrs): (Vec<u64>, Vec<u64>) = committed()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter(|(_, e)| e.ordinal == ordinal && e.len == n && e.words == 1)
                    .map(|(&i, e)| (i, e.ptr))
                    .unzip();
                ids.into_iter().zip(ok(gpu().dot_many(&ptrs, weights.buf(), n))).collect()
            });
            if let Some(w) = dots.get(&id) {
                return SecureField::from_m31_array(w.map(M31));
            }
        }
        let w = ok(gpu().dot_strided(evals.values.buf(), weights.buf(), 1, 4));
        SecureField::from_m31_array(w.map(M31))
    }

    fn eval_at_point_by_folding(
        evals: &CircleEvaluation<Self, BaseField, BitReversedOrder>,
        point: CirclePoint<SecureField>,
        twiddles: &TwiddleTree<Self>,
    ) -> SecureField {
        let cpu = CircleEvaluation::<CpuBackend, BaseField, BitReversedOrder>::new(evals.domain, evals.values.to_cpu());
        CpuBackend::eval_at_point_by_folding(&cpu, point, &CpuBackend::precompute_twiddles(twiddles.root_coset))
    }

    fn extend(poly: &CircleCoefficients<Self>, log_size: u32) -> CircleCoefficients<Self> {
        let mut v = poly.coeffs.to_cpu();
        v.resize(1 << log_size, M31(0));
        CircleCoefficients::new(DevCol::from_host(&v))
    }

    fn evaluate(
        poly: &CircleCoefficients<Self>,
        domain: CircleDomain,
        twiddles: &TwiddleTree<Self>,
    ) -> CircleEvaluation<Self, BaseField, BitReversedOrder> {
        let log_c = poly.coeffs.len().ilog2();
        let log = domain.log_size();
        if log < 3 || !is_canonic(domain) {
            let cpu = CircleCoefficients::<CpuBackend>::new(poly.coeffs.to_cpu());
            let e = CpuBackend::evaluate(&cpu, domain, &CpuBackend::precompute_twiddles(twiddles.root_coset));
            return CircleEvaluation::new(domain, DevCol::from_host(&e.values));
        }
        let buf = ok(gpu().evaluate(poly.coeffs.buf(), log_c, log, tw(&twiddles.twiddles)));
        CircleEvaluation::new(domain, DevCol::from_words(buf, 1 << log))
    }

    fn evaluate_into(
        poly: &CircleCoefficients<Self>,
        domain: CircleDomain,
        twiddles: &TwiddleTree<Self>,
        _buffer: Col<Self, BaseField>,
    ) -> CircleEvaluation<Self, BaseField, BitReversedOrder> {
        Self::evaluate(poly, domain, twiddles)
    }

    /// The commitment's low-degree extensions, polynomials of one size
    /// together: one launch per FFT layer for all of them (Stwo's default
    /// evaluates them one by one from parallel host threads).
    fn evaluate_polynomials(
        polynomials: Vec<CircleCoefficients<Self>>,
        log_blowup_factor: u32,
        twiddles: &TwiddleTree<Self>,
        store_polynomials_coefficients: bool,
        _pool: &BaseColumnPool<Self>,
    ) -> Vec<Poly<Self>> {
        let twb = tw(&twiddles.twiddles);
        let mut evals: Vec<Option<CircleEvaluation<Self, BaseField, BitReversedOrder>>> =
            polynomials.iter().map(|_| None).collect();
        let mut logs: Vec<u32> = polynomials.iter().map(|p| p.log_size()).filter(|&l| l >= 3).collect();
        logs.sort_unstable();
        logs.dedup();
        for log in logs {
            let idx: Vec<usize> = (0..polynomials.len()).filter(|&i| polynomials[i].log_size() == log).collect();
            let domain = CanonicCoset::new(log + log_blowup_factor).circle_domain();
            let coeffs: Vec<&CudaSlice<u32>> = idx.iter().map(|&i| polynomials[i].coeffs.buf()).collect();
            let out = ok(gpu().evaluate_many(&coeffs, log, domain.log_size(), twb));
            for (i, buf) in idx.into_iter().zip(out) {
                let mut col = DevCol::from_words(buf, domain.size());
                col.register();
                evals[i] = Some(CircleEvaluation::new(domain, col));
            }
        }
        polynomials
            .into_iter()
            .zip(evals)
            .map(|(p, e)| {
                let e = e.unwrap_or_else(|| {
                    Self::evaluate(&p, CanonicCoset::new(p.log_size() + log_blowup_factor).circle_domain(), twiddles)
                });
                Poly::new(store_polynomials_coefficients.then_some(p), e)
            })
            .collect()
    }

    /// Twiddles for `coset`, computed once per (device, coset) and kept for
    /// the process: every proof of one size uses the same tree, and building
    /// it on the host is tens of milliseconds at 2^21.
    fn precompute_twiddles(coset: Coset) -> TwiddleTree<Self> {
        type Key = (usize, usize, usize, u32);
        type Cache = std::sync::Mutex<HashMap<Key, (TwBuf, TwBuf)>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let log = coset.log_size();
        let key = (bound_ordinal(), coset.initial_index.0, coset.step_size.0, log);
        let mut map = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let (tw, itw) = map
            .entry(key)
            .or_insert_with(|| {
                let t = CpuBackend::precompute_twiddles(coset);
                let up = |v: &[M31]| ok(gpu().tw_buf(v.iter().map(|x| x.0).collect(), log));
                (up(&t.twiddles), up(&t.itwiddles))
            })
            .clone();
        TwiddleTree { root_coset: coset, twiddles: DevTwiddles(Some(tw)), itwiddles: DevTwiddles(Some(itw)) }
    }

    fn split_at_mid(poly: CircleCoefficients<Self>) -> (CircleCoefficients<Self>, CircleCoefficients<Self>) {
        let (l, r) = poly.coeffs.split_at_mid();
        (CircleCoefficients::new(l), CircleCoefficients::new(r))
    }
}

impl QuotientOps for CudaBackend {
    fn accumulate_numerators(
        columns: &[&CircleEvaluation<Self, BaseField, BitReversedOrder>],
        sample_batches: &[ColumnSampleBatch],
        accumulated_numerators_vec: &mut Vec<AccumulatedNumerators<Self>>,
        log_blowup_factor: u32,
    ) {
        let Some(first) = columns.first() else { return };
        let _s = tracing::debug_span!("cuda quotient numerators").entered();
        let n_rows = first.domain.split(log_blowup_factor).0.size();
        let constants = stwo::core::pcs::quotients::quotient_constants(sample_batches);
        for (batch, coeffs) in sample_batches.iter().zip(constants.line_coeffs) {
            let cols: Vec<&CudaSlice<u32>> =
                batch.cols_vals_randpows.iter().map(|d| columns[d.column_index].values.buf()).collect();
            let mut bc = Vec::with_capacity(8 * coeffs.len());
            for (_, b, c) in &coeffs {
                bc.extend(alpha_words(*b));
                bc.extend(alpha_words(*c));
            }
            let out = ok(gpu().quotient_numerators(&cols, &bc, n_rows));
            accumulated_numerators_vec.push(AccumulatedNumerators {
                sample_point: batch.point,
                partial_numerators_acc: split4(&out, n_rows),
                first_linear_term_acc: coeffs.iter().map(|(a, ..)| *a).sum(),
            });
        }
    }

    /// The combination runs on the device (`quotient_combine`), then the
    /// result is interpolated on the subdomain and evaluated on the lifting
    /// domain with the device FFTs, as Stwo's backends do.
    fn compute_quotients_and_combine(
        accs: Vec<AccumulatedNumerators<Self>>,
        lifting_log_size: u32,
        log_blowup_factor: u32,
        twiddles: &TwiddleTree<Self>,
    ) -> SecureEvaluation<Self, BitReversedOrder> {
        let _s = tracing::debug_span!("cuda quotient combine").entered();
        let eval_domain = CanonicCoset::new(lifting_log_size).circle_domain();
        let (sub, _) = eval_domain.split(log_blowup_factor);
        if sub.log_size() < 4 || accs.is_empty() {
            return compute_quotients_on_simd(accs, lifting_log_size, log_blowup_factor, twiddles);
        }
        let log_n = sub.log_size();
        let cols: Vec<[&CudaSlice<u32>; 4]> =
            accs.iter().map(|a| std::array::from_fn(|c| a.partial_numerators_acc.columns[c].buf())).collect();
        let logs: Vec<u32> = accs.iter().map(|a| a.partial_numerators_acc.len().ilog2()).collect();
        let mut params = Vec::with_capacity(12 * accs.len());
        for a in &accs {
            let p = a.sample_point;
            params.extend(alpha_words(a.first_linear_term_acc));
            params.extend([
                p.x.0 .0 .0,
                p.x.0 .1 .0,
                p.y.0 .0 .0,
                p.y.0 .1 .0,
                p.x.1 .0 .0,
                p.x.1 .1 .0,
                p.y.1 .0 .0,
                p.y.1 .1 .0,
            ]);
        }
        let pts = domain_points(sub);
        let out = ok(gpu().quotient_combine(&pts, &cols, &logs, &params, log_n));
        let quotients = split4(&out, 1 << log_n);
        let subdomain_twiddles = TwiddleTree {
            root_coset: sub.half_coset,
            twiddles: DevTwiddles::empty(),
            itwiddles: twiddles.itwiddles.extract_subdomain_twiddles(eval_domain.log_size(), log_n),
        };
        let columns = quotients.columns.map(|col| {
            CircleEvaluation::<CudaBackend, BaseField, BitReversedOrder>::new(sub, col)
                .interpolate_with_twiddles(&subdomain_twiddles)
                .evaluate_with_twiddles(eval_domain, twiddles)
                .values
        });
        SecureEvaluation::new(eval_domain, SecureColumnByCoords { columns })
    }
}

/// The quotient combination through the SIMD backend (small domains).
fn compute_quotients_on_simd(
    accs: Vec<AccumulatedNumerators<CudaBackend>>,
    lifting_log_size: u32,
    log_blowup_factor: u32,
    twiddles: &TwiddleTree<CudaBackend>,
) -> SecureEvaluation<CudaBackend, BitReversedOrder> {
    let simd: Vec<AccumulatedNumerators<SimdBackend>> = accs
        .iter()
        .map(|a| AccumulatedNumerators {
            sample_point: a.sample_point,
            partial_numerators_acc: secure_to_simd(&a.partial_numerators_acc),
            first_linear_term_acc: a.first_linear_term_acc,
        })
        .collect();
    let r =
        SimdBackend::compute_quotients_and_combine(simd, lifting_log_size, log_blowup_factor, &simd_twiddles(twiddles));
    SecureEvaluation::new(r.domain, secure_from_simd(&r.values))
}

/// The 4 coordinate columns of a secure column as one coordinate-major buffer.
fn concat4(c: &SecureColumnByCoords<CudaBackend>) -> CudaSlice<u32> {
    let n = c.columns[0].len();
    let mut out = ok(gpu().stream.alloc_zeros::<u32>(4 * n).map_err(Into::into));
    for (i, col) in c.columns.iter().enumerate() {
        let mut view = out.slice_mut(i * n..(i + 1) * n);
        ok(gpu().stream.memcpy_dtod(&col.buf().slice(..n), &mut view).map_err(Into::into));
    }
    out
}

fn split4(buf: &CudaSlice<u32>, n: usize) -> SecureColumnByCoords<CudaBackend> {
    SecureColumnByCoords {
        columns: std::array::from_fn(|i| {
            DevCol::from_words(ok(gpu().stream.clone_dtod(&buf.slice(i * n..(i + 1) * n)).map_err(Into::into)), n)
        }),
    }
}

fn alpha_words(a: SecureField) -> [u32; 4] {
    a.to_m31_array().map(|v| v.0)
}

impl FriOps for CudaBackend {
    fn fold_line(
        eval: &LineEvaluation<Self>,
        alpha: SecureField,
        twiddles: &TwiddleTree<Self>,
        fold_step: u32,
    ) -> LineEvaluation<Self> {
        let _s = tracing::debug_span!("cuda fri fold_line").entered();
        let itw = tw(&twiddles.itwiddles);
        let mut domain = eval.domain();
        let mut buf = concat4(&eval.values);
        let mut a = alpha;
        for _ in 0..fold_step {
            let log_dst = domain.log_size() - 1;
            buf = ok(gpu().fri_fold(&buf, log_dst, alpha_words(a), false, itw));
            domain = domain.double();
            a = a * a;
        }
        LineEvaluation::new(domain, split4(&buf, domain.size()))
    }

    fn fold_circle_into_line(
        src: &SecureEvaluation<Self, BitReversedOrder>,
        alpha: SecureField,
        twiddles: &TwiddleTree<Self>,
    ) -> LineEvaluation<Self> {
        let _s = tracing::debug_span!("cuda fri fold_circle_into_line").entered();
        let log = src.domain.log_size();
        let buf = ok(gpu().fri_fold(&concat4(&src.values), log - 1, alpha_words(alpha), true, tw(&twiddles.itwiddles)));
        LineEvaluation::new(LineDomain::new(Coset::half_odds(log - 1)), split4(&buf, 1 << (log - 1)))
    }

    fn decompose(
        eval: &SecureEvaluation<Self, BitReversedOrder>,
    ) -> (SecureEvaluation<Self, BitReversedOrder>, SecureField) {
        let cpu = SecureEvaluation::<CpuBackend, BitReversedOrder>::new(eval.domain, eval.values.to_cpu());
        let (g, lambda) = CpuBackend::decompose(&cpu);
        let cols = SecureColumnByCoords { columns: std::array::from_fn(|i| DevCol::from_host(&g.values.columns[i])) };
        (SecureEvaluation::new(g.domain, cols), lambda)
    }
}

impl AccumulationOps for CudaBackend {
    fn accumulate(column: &mut SecureColumnByCoords<Self>, other: &SecureColumnByCoords<Self>) {
        let _s = tracing::debug_span!("cuda accumulate").entered();
        for (a, b) in column.columns.iter_mut().zip(&other.columns) {
            ok(gpu().add_into(a.buf_mut(), b.buf()));
        }
    }

    fn generate_secure_powers(felt: SecureField, n_powers: usize) -> Vec<SecureField> {
        CpuBackend::generate_secure_powers(felt, n_powers)
    }

    fn lift_and_accumulate(cols: Vec<SecureColumnByCoords<Self>>) -> Option<SecureColumnByCoords<Self>> {
        let _s = tracing::debug_span!("cuda lift_and_accumulate").entered();
        let bufs: Vec<(CudaSlice<u32>, u32)> = cols.iter().map(|c| (concat4(c), c.columns[0].len().ilog2())).collect();
        let refs: Vec<_> = bufs.iter().map(|(b, l)| (b, *l)).collect();
        let out = ok(gpu().lift_and_accumulate(&refs))?;
        let n = 1usize << refs.last()?.1;
        Some(split4(&out, n))
    }
}

impl<F: stwo::core::fields::Field + DeviceValue> MleOps<F> for CudaBackend
where
    CudaBackend: ColumnOps<F, Column = DevCol<F>>,
    CpuBackend: MleOps<F> + ColumnOps<F, Column = Vec<F>>,
{
    fn fix_first_variable(mle: Mle<Self, F>, assignment: SecureField) -> Mle<Self, SecureField>
    where
        Self: MleOps<SecureField>,
    {
        let cpu = Mle::<CpuBackend, F>::new(mle.into_evals().to_cpu());
        Mle::new(DevCol::from_host(&CpuBackend::fix_first_variable(cpu, assignment).into_evals()))
    }
}

impl GkrOps for CudaBackend {
    fn gen_eq_evals(y: &[SecureField], v: SecureField) -> Mle<Self, SecureField> {
        Mle::new(DevCol::from_host(&stwo::prover::backend::cpu::lookups::gkr::gen_eq_evals(y, v)))
    }

    fn next_layer(_layer: &Layer<Self>) -> Layer<Self> {
        panic!("GKR lookups are not used by the ObelyskVM AIR and are not supported on the CUDA backend")
    }

    fn sum_as_poly_in_first_variable(
        _h: &GkrMultivariatePolyOracle<'_, Self>,
        _claim: SecureField,
    ) -> UnivariatePoly<SecureField> {
        panic!("GKR lookups are not used by the ObelyskVM AIR and are not supported on the CUDA backend")
    }
}

impl Backend for CudaBackend {}

impl PackLeavesOps for CudaBackend {
    fn pack_leaves_input(values: &[&Col<Self, BaseField>; 4]) -> [Col<Self, BaseField>; 16] {
        let cpu: [Vec<BaseField>; 4] = std::array::from_fn(|i| values[i].to_cpu());
        let refs: [&Vec<BaseField>; 4] = std::array::from_fn(|i| &cpu[i]);
        CpuBackend::pack_leaves_input(&refs).map(|c| DevCol::from_host(&c))
    }
}

impl MerkleOpsLifted<Blake2sMerkleHasher> for CudaBackend {
    fn build_leaves(columns: &[&Col<Self, BaseField>], lifting_log_size: u32) -> Col<Self, Blake2sHash> {
        let _s = tracing::debug_span!("cuda merkle leaves").entered();
        if columns.is_empty() {
            return DevCol::from_host(&[Blake2sHasher::hash(&[])]);
        }
        let cols: Vec<(&CudaSlice<u32>, u32)> = columns.iter().map(|c| (c.buf(), c.len().ilog2())).collect();
        DevCol::from_words(ok(gpu().merkle_leaves(&cols, lifting_log_size)), 1 << lifting_log_size).link_merkle(None)
    }

    fn build_next_layer(prev_layer: &Col<Self, Blake2sHash>) -> Col<Self, Blake2sHash> {
        let _s = tracing::debug_span!("cuda merkle layer").entered();
        DevCol::from_words(ok(gpu().merkle_next_layer(prev_layer.buf())), prev_layer.len() / 2)
            .link_merkle(Some(prev_layer))
    }
}

impl GrindOps<Blake2sChannel> for CudaBackend {
    fn grind(channel: &Blake2sChannel, pow_bits: u32) -> u64 {
        let _s = tracing::debug_span!("cuda grind").entered();
        let mut h = Blake2sHasher::new();
        h.update(&Blake2sChannel::POW_PREFIX.to_le_bytes());
        h.update(&[0u8; 12]);
        h.update(&channel.digest().0);
        h.update(&pow_bits.to_le_bytes());
        let d = h.finalize().0;
        let prefixed: [u32; 8] =
            std::array::from_fn(|i| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]));
        ok(gpu().grind(&prefixed, pow_bits))
    }
}

impl BackendForChannel<Blake2sMerkleChannel> for CudaBackend {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_plan_is_reused_sorted_for_the_same_shape() {
        let plan = HashMap::from([((1024, 1), vec![700, 3, 512, 3, 9])]);
        assert_eq!(predict_plan(&plan, 1024, 1, 700), Some(vec![3, 9, 512, 700]));
        // A first read outside the plan is not predicted.
        assert_eq!(predict_plan(&plan, 1024, 1, 4), None);
    }

    #[test]
    fn smaller_columns_and_merkle_layers_are_predicted_as_stwo_reads_them() {
        let queries = vec![5usize, 100, 1023];
        let plan = HashMap::from([((1024, 1), queries.clone())]);
        // A column of 2^8 in a tree of 2^10: Stwo reads ((q >> 3) << 1) + (q & 1).
        let lifted: Vec<usize> = {
            let mut v: Vec<usize> = queries.iter().map(|&q| ((q >> 3) << 1) + (q & 1)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        assert_eq!(predict_plan(&plan, 256, 1, lifted[0]), Some(lifted));
        // The leaf-hash layer: both siblings of every query.
        assert_eq!(predict_plan(&plan, 1024, 8, 4), Some(vec![4, 5, 100, 101, 1022, 1023]));
        // The layer above it, from that layer's plan.
        let plan = HashMap::from([((1024, 8), vec![4, 5, 100, 101, 1022, 1023])]);
        assert_eq!(predict_plan(&plan, 512, 8, 2), Some(vec![2, 3, 50, 51, 510, 511]));
        // Nothing known about this shape or its neighbours.
        assert_eq!(predict_plan(&plan, 64, 4, 0), None);
    }

    #[test]
    fn gathered_words_are_found_by_position() {
        let g = Gathered { positions: vec![2, 7, 9], words: (0..12).collect(), width: 4 };
        assert_eq!(g.get(7), Some(&[4, 5, 6, 7][..]));
        assert_eq!(g.get(9), Some(&[8, 9, 10, 11][..]));
        assert_eq!(g.get(3), None);
    }
}
