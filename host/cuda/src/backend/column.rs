//! Device columns (`DevCol`): Stwo's `Column` over device memory, the
//! registry of committed columns that batches Stwo's one-at-a-time reads,
//! and the query plan that predicts decommitment reads.

use super::*;
use rustc_hash::FxHashMap;

/// A device column: `len` values of `T`, `T::WORDS` words each, element-major.
pub struct DevCol<T: DeviceValue> {
    /// Given back to the lane's pool in `Drop`, after the registry entry goes.
    pub(super) buf: std::mem::ManuallyDrop<Buf>,
    pub(super) len: usize,
    /// Single-value reads so far, and a host copy of the column once there
    /// have been enough of them (see [`Column::at`]). Every mutable access
    /// goes through [`DevCol::buf_mut`], which drops the copy.
    pub(super) reads: AtomicU32,
    pub(super) mirror: OnceLock<Vec<u32>>,
    /// The values at the query positions of the current decommitment.
    pub(super) gathered: OnceLock<Arc<Gathered>>,
    /// Set while the column is a committed evaluation in [`committed`].
    pub(super) id: Option<u64>,
    /// The lane whose registry holds it (while `id` is set).
    lane: (usize, usize),
    /// For a weights column: its dot products with every committed column
    /// of its length, by id (see `barycentric_eval_at_point`).
    pub(super) dots: OnceLock<HashMap<u64, [u32; 4]>>,
    /// A Merkle layer, entered in [`merkle_links`].
    pub(super) merkle: bool,
    pub(super) _t: PhantomData<T>,
}

/// How the Merkle layers on the devices link up, by device address: the
/// layer built from each one, and what a decommitment read of a layer below
/// prefetched for it. Stwo reads a tree's layers one after another, each at
/// positions the layer below predicts, so the first read of a tree fetches
/// every layer above it in one launch instead of one round trip per layer.
#[derive(Default)]
pub(super) struct MerkleLinks {
    /// Layer -> (the layer built from it, that layer's length).
    parent: FxHashMap<u64, (u64, usize)>,
    /// The reverse of `parent`.
    child: FxHashMap<u64, u64>,
    prefetched: FxHashMap<u64, Arc<Gathered>>,
    /// Layer -> the layer above it and its length, built ahead by
    /// [`crate::Gpu::merkle_top`] and not yet asked for.
    above: FxHashMap<u64, (Buf, usize)>,
}

impl MerkleLinks {
    /// The layer built ahead from layer `below`, if it has `len` nodes.
    pub(super) fn take_above(&mut self, below: u64, len: usize) -> Option<Buf> {
        match self.above.remove(&below) {
            Some((buf, n)) if n == len => Some(buf),
            Some((buf, _)) => {
                self.drop_above(buf);
                None
            }
            None => None,
        }
    }

    /// Keeps `layer` (of `len` nodes) until layer `below` asks for it.
    pub(super) fn put_above(&mut self, below: u64, layer: Buf, len: usize) {
        if let Some((old, _)) = self.above.insert(below, (layer, len)) {
            self.drop_above(old);
        }
    }

    /// Lets go of a layer built ahead and of every layer built ahead above
    /// it (whose addresses would otherwise stay keys after the pool hands
    /// them out again).
    fn drop_above(&mut self, layer: Buf) {
        let mut next = Some(layer);
        while let Some(buf) = next.take() {
            next = self.above.remove(&crate::addr(&buf, &gpu().stream)).map(|(b, _)| b);
        }
    }
}

pub(super) fn merkle_links() -> &'static std::sync::Mutex<MerkleLinks> {
    static LINKS: OnceLock<std::sync::Mutex<MerkleLinks>> = OnceLock::new();
    LINKS.get_or_init(Default::default)
}

/// A column's words at a set of positions (sorted, distinct): what one
/// gather fetched. Shared between the registry and the column that reads it.
#[derive(Debug)]
pub(crate) struct Gathered {
    positions: Vec<usize>,
    /// `width` words per position, in position order.
    words: Vec<u32>,
    width: usize,
    /// Where the last lookup found its position. Stwo reads a column at
    /// sorted positions (each position once or twice in a row), so the next
    /// lookup is almost always here or one further: no search.
    cursor: AtomicUsize,
}

impl Gathered {
    pub(crate) fn new(positions: Vec<usize>, words: Vec<u32>, width: usize) -> Self {
        Self { positions, words, width, cursor: AtomicUsize::new(0) }
    }

    /// The words at `index`, if it was gathered.
    fn get(&self, index: usize) -> Option<&[u32]> {
        let at = self.cursor.load(Ordering::Relaxed);
        let i = if self.positions.get(at) == Some(&index) {
            at
        } else if self.positions.get(at + 1) == Some(&index) {
            at + 1
        } else {
            self.positions.binary_search(&index).ok()?
        };
        self.cursor.store(i, Ordering::Relaxed);
        self.words.get(i * self.width..(i + 1) * self.width)
    }
}

/// A committed column's entry in [`committed`].
pub(super) struct Committed {
    pub(super) ptr: u64,
    pub(super) len: usize,
    pub(super) words: usize,
    /// A polynomial's coefficients (kept for its out-of-domain samples), not
    /// an evaluation.
    pub(super) coefficients: bool,
    /// What was last gathered for it.
    pub(super) gathered: Option<Arc<Gathered>>,
}

/// The live committed evaluations of one lane (the columns its proof's
/// commitment trees hold), so reads that Stwo makes one column at a time
/// (out-of-domain samples, decommitment values) can be made for all of them
/// in one launch. An entry lives as long as its column and its contents do
/// not change. Each lane has its own, held across that lane's device reads
/// (so no column in it is freed meanwhile) without stopping other lanes.
pub(super) type Registry = std::sync::Mutex<FxHashMap<u64, Committed>>;

/// Every lane's registry, by (device, lane).
type Registries = std::sync::Mutex<HashMap<(usize, usize), Arc<Registry>>>;

pub(super) fn committed(lane: (usize, usize)) -> Arc<Registry> {
    static LANES: OnceLock<Registries> = OnceLock::new();
    LANES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner()).entry(lane).or_default().clone()
}

impl<T: DeviceValue> Drop for DevCol<T> {
    fn drop(&mut self) {
        let t0 = std::time::Instant::now();
        self.unregister();
        if self.merkle {
            let me = self.ptr();
            let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
            links.prefetched.remove(&me);
            if let Some((up, _)) = links.above.remove(&me) {
                links.drop_above(up);
            }
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

/// Single-value reads of one column after which the whole column is
/// downloaded once and later reads are served from the host copy (a
/// fallback for read patterns the query plan does not predict).
const READS_BEFORE_MIRROR: u32 = 1024;

impl<T: DeviceValue> DevCol<T> {
    pub fn from_words(buf: Buf, len: usize) -> Self {
        DevCol {
            buf: std::mem::ManuallyDrop::new(buf),
            len,
            reads: AtomicU32::new(0),
            mirror: OnceLock::new(),
            gathered: OnceLock::new(),
            id: None,
            lane: (0, 0),
            dots: OnceLock::new(),
            merkle: false,
            _t: PhantomData,
        }
    }

    /// The column's device address.
    pub(super) fn ptr(&self) -> u64 {
        crate::addr(&**self.buf, &gpu().stream)
    }

    /// Marks a new Merkle layer; `below`, when given, is the layer it was
    /// built from.
    pub(super) fn link_merkle(mut self, below: Option<&Self>) -> Self {
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
    pub(super) fn register(&mut self) {
        self.register_as(false);
    }

    /// Enters the column in the registry as a committed polynomial's
    /// coefficients (see `eval_at_point`).
    pub(super) fn register_coefficients(&mut self) {
        self.register_as(true);
    }

    fn register_as(&mut self, coefficients: bool) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        self.unregister();
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let ptr = self.ptr();
        let lane = bound_lane();
        let entry = Committed { ptr, len: self.len, words: T::WORDS, coefficients, gathered: None };
        committed(lane).lock().unwrap_or_else(|p| p.into_inner()).insert(id, entry);
        self.id = Some(id);
        self.lane = lane;
    }

    /// The column's registry id and lane, while it is registered.
    pub(super) fn registered(&self) -> Option<(u64, (usize, usize))> {
        self.id.map(|id| (id, self.lane))
    }

    fn unregister(&mut self) {
        if let Some(id) = self.id.take() {
            committed(self.lane).lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }

    /// The words at `positions` (sorted, distinct) of this column, gathered
    /// in one launch for every committed column of the same shape on this
    /// device (kept in the registry for the columns read next); for a column
    /// not in the registry, for this column alone.
    fn gather_planned(&self, positions: &[usize]) -> Arc<Gathered> {
        let g = gpu();
        let pos32: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let wrap = |words: Vec<u32>| Arc::new(Gathered::new(positions.to_vec(), words, T::WORDS));
        let Some(id) = self.id else {
            if self.merkle {
                return self.gather_merkle_chain(positions);
            }
            return wrap(ok(g.gather(&self.buf, T::WORDS as u32, &pos32)));
        };
        let registry = committed(self.lane);
        let mut reg = registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = reg.get(&id).and_then(|e| e.gathered.as_ref()) {
            if done.positions == positions {
                return done.clone();
            }
        }
        let shape = (self.len, T::WORDS);
        let ids: Vec<u64> = reg
            .iter()
            .filter(|(_, e)| (e.len, e.words) == shape && !e.coefficients)
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
            .map(|((ptr, len, positions), words)| (ptr, len, Arc::new(Gathered::new(positions, words, T::WORDS))));
        let Some((_, _, mine)) = got.next() else {
            return Arc::new(Gathered::new(Vec::new(), Vec::new(), T::WORDS));
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
                let w = ok(g.download(&**self.buf));
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
        let v = T::read(&ok(g.read(&view)));
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
            // Words prefetched for this layer, and layers built above it, no longer hold.
            let me = self.ptr();
            let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
            links.prefetched.remove(&me);
            if let Some((up, _)) = links.above.remove(&me) {
                links.drop_above(up);
            }
        }
        self.mirror = OnceLock::new();
        self.gathered = OnceLock::new();
        self.dots = OnceLock::new();
        *self.reads.get_mut() = 0;
        &mut self.buf
    }

    pub(super) fn from_host(values: &[T]) -> Self {
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
        Self::from_words(ok(gpu().pool.dtod(&**self.buf)), self.len)
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
        let buf = ok(gpu().zeros((len * T::WORDS).max(1)));
        Self::from_words(buf, len)
    }

    unsafe fn uninitialized(len: usize) -> Self {
        Self::zeros(len)
    }

    fn to_cpu(&self) -> Vec<T> {
        let _s = tracing::debug_span!("cuda to_cpu").entered();
        let t0 = std::time::Instant::now();
        let w = ok(gpu().download(&**self.buf));
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
        if counting() {
            TRAFFIC[4][0].fetch_add(1, Ordering::Relaxed);
        }
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
        let s = &gpu().pool;
        let lo = ok(s.dtod(&self.buf.slice(..half * T::WORDS)));
        let hi = ok(s.dtod(&self.buf.slice(half * T::WORDS..self.len * T::WORDS)));
        (Self::from_words(lo, half), Self::from_words(hi, self.len - half))
    }
}

/// Replaces this lane's query plan with the positions the decommitment that
/// follows a proof of work will read, when the proof gave its query shape
/// ([`super::expect_decommit`]): Stwo mixes the nonce into the channel and
/// draws the queries from it (`draw_queries`), so a copy of the channel
/// draws the same ones here.
pub(super) fn seed_query_plan<C: stwo::core::channel::Channel>(channel: &C, nonce: u64) {
    let g = gpu();
    let Some(shape) = g.decommit.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    let mut channel = channel.clone();
    channel.mix_u64(nonce);
    let raw = stwo::core::queries::draw_queries(&mut channel, shape.lifting_log_size, shape.n_queries);
    let queries = stwo::core::queries::Queries::new(&raw, shape.lifting_log_size);
    let seeded = seeded_plan(&queries.positions, shape.lifting_log_size, shape.fold_step);
    let mut plan = g.query_plan.lock().unwrap_or_else(|p| p.into_inner());
    *plan = seeded;
}

/// The positions Stwo's decommitment reads, by column shape (length, one
/// word a value), for sorted distinct `queries` in `2^log`: a committed
/// column of `2^l` values lifted to `2^log` at `((q >> (log - l + 1)) << 1)
/// + (q & 1)`; FRI layer `j` (`2^(log - j * fold_step)` values, the
/// coordinates of its secure column) at the aligned cosets of
/// `2^fold_step` around `q >> (j * fold_step)` (the last layer folds by at
/// most `fold_step`, so its cosets lie inside those). Where two of these
/// share a length the plan holds both. Merkle layers are derived from these
/// when read ([`predict_plan`]).
pub(crate) fn seeded_plan(queries: &[usize], log: u32, fold_step: u32) -> HashMap<(usize, usize), Vec<usize>> {
    let mut plan: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for l in 1..=log {
        let shift = log - l;
        plan.entry((1 << l, 1)).or_default().extend(queries.iter().map(|&q| ((q >> (shift + 1)) << 1) + (q & 1)));
    }
    let mut folded = 0;
    while folded < log && fold_step > 0 {
        let l = log - folded;
        let coset = 1usize << fold_step.min(l);
        plan.entry((1 << l, 1)).or_default().extend(queries.iter().flat_map(|&q| {
            let start = (q >> folded) & !(coset - 1);
            start..start + coset
        }));
        folded += fold_step;
    }
    for positions in plan.values_mut() {
        positions.sort_unstable();
        positions.dedup();
    }
    plan
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
pub(super) fn predict_plan(
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

/// Bit reversal through the host (one copy each way), for the secure and
/// hash columns Stwo rarely reverses.
pub(super) fn bit_reverse_on_host<T: DeviceValue>(column: &mut DevCol<T>) {
    let mut v = column.to_cpu();
    stwo::core::utils::bit_reverse(&mut v);
    *column = DevCol::from_host(&v);
}

impl ColumnOps<SecureField> for CudaBackend {
    type Column = DevCol<SecureField>;
    fn bit_reverse_column(column: &mut Self::Column) {
        bit_reverse_on_host(column);
    }
}

impl ColumnOps<Blake2sHash> for CudaBackend {
    type Column = DevCol<Blake2sHash>;
    fn bit_reverse_column(column: &mut Self::Column) {
        bit_reverse_on_host(column);
    }
}

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

    /// Every position Stwo 2.3's decommitment reads, as its code does:
    /// `MerkleProverLifted::decommit` reads a column of `2^l` in a tree
    /// lifted to `2^log` at `((q >> (log - l + 1)) << 1) + (q & 1)`;
    /// `compute_decommitment_positions_and_witness_evals` reads each FRI
    /// layer at the whole fold coset of every query, the first layer and
    /// every inner one folding by `fold_step` (`Queries::fold`), the last by
    /// what is left above the last layer's domain.
    fn stwo_reads(queries: &[usize], log: u32, fold_step: u32, last_log: u32) -> Vec<(usize, usize)> {
        use stwo::core::queries::Queries;
        let mut reads = Vec::new();
        for l in 1..=log {
            let shift = log - l;
            reads.extend(queries.iter().map(|&q| (1usize << l, ((q >> (shift + 1)) << 1) + (q & 1))));
        }
        let coset_reads = |q: &Queries, fold: u32, reads: &mut Vec<(usize, usize)>| {
            for &p in &q.positions {
                let start = (p >> fold) << fold;
                reads.extend((start..start + (1 << fold)).map(|i| (1usize << q.log_domain_size, i)));
            }
        };
        let mut q = Queries { positions: queries.to_vec(), log_domain_size: log };
        coset_reads(&q, fold_step, &mut reads);
        q = q.fold(fold_step);
        let mut line = log - fold_step;
        while line > last_log + fold_step {
            coset_reads(&q, fold_step, &mut reads);
            q = q.fold(fold_step);
            line -= fold_step;
        }
        coset_reads(&q, line - last_log, &mut reads);
        reads
    }

    #[test]
    fn the_seeded_plan_holds_every_read_of_the_decommitment() {
        // Pseudo-random sorted distinct queries, for several domain sizes and fold steps.
        let mut x = 0x9e37_79b9u64;
        for (log, fold_step, last_log, n) in
            [(15, 3, 0, 40), (22, 3, 0, 40), (12, 1, 0, 76), (16, 2, 3, 27), (9, 3, 0, 70)]
        {
            let mut queries: Vec<usize> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (x >> 33) as usize & ((1 << log) - 1)
                })
                .collect();
            queries.sort_unstable();
            queries.dedup();
            let plan = seeded_plan(&queries, log, fold_step);
            for (len, at) in stwo_reads(&queries, log, fold_step, last_log) {
                let p = plan.get(&(len, 1)).unwrap_or_else(|| panic!("no plan for length {len}"));
                assert!(
                    p.binary_search(&at).is_ok(),
                    "log {log}, fold {fold_step}: {at} of a column of {len} not planned"
                );
                assert!(p.iter().all(|&i| i < len));
                // Each column's first read finds its plan, so the gather is used.
                assert_eq!(predict_plan(&plan, len, 1, at).as_deref(), Some(&p[..]));
            }
            // The Merkle layers above the leaves are derived from the plan, as read.
            let leaves = plan[&(1 << log, 1)].clone();
            let pairs = predict_plan(&plan, 1 << log, 8, queries[0] & !1).expect("the leaf hashes are predicted");
            assert!(queries
                .iter()
                .all(|q| pairs.binary_search(&(q & !1)).is_ok() && pairs.binary_search(&(q | 1)).is_ok()));
            assert!(pairs.len() <= 2 * leaves.len());
        }
    }

    #[test]
    fn gathered_words_are_found_by_position() {
        let g = Gathered::new(vec![2, 7, 9], (0..12).collect(), 4);
        assert_eq!(g.get(7), Some(&[4, 5, 6, 7][..]));
        assert_eq!(g.get(9), Some(&[8, 9, 10, 11][..]));
        assert_eq!(g.get(3), None);
    }

    /// The cursor only saves a search: any order of lookups (Stwo's sorted
    /// reads with repeats, backwards, misses between hits) finds the same
    /// words as a search would.
    #[test]
    fn gathered_lookups_in_any_order_find_their_own_words() {
        let positions: Vec<usize> = (0..40).map(|i| 3 * i + (i % 3)).collect();
        let words: Vec<u32> = positions.iter().flat_map(|&p| [p as u32, !(p as u32)]).collect();
        let g = Gathered::new(positions.clone(), words, 2);
        let mut order: Vec<usize> = positions.iter().flat_map(|&p| [p, p]).collect();
        order.extend(positions.iter().rev());
        order.extend((0..130).map(|i| (i * 37) % 130));
        for index in order {
            let want = positions.contains(&index).then(|| vec![index as u32, !(index as u32)]);
            assert_eq!(g.get(index).map(<[u32]>::to_vec), want, "position {index}");
        }
    }
}
