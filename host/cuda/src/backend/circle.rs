//! `PolyOps`: twiddles, interpolation, evaluation (LDE) and evaluation at
//! a point, on the device.

use super::*;

/// Device twiddles: one direction of a Stwo twiddle tree.
#[derive(Clone)]
pub struct DevTwiddles(pub Option<TwBuf>);

impl TwiddleBuffer<BitReversedOrder> for DevTwiddles {
    fn empty() -> Self {
        DevTwiddles(None)
    }

    /// Every proof of a shape asks for the same subdomain of the same tree
    /// (the process keeps its trees, see [`PolyOps::precompute_twiddles`]):
    /// extracted on the host and uploaded once per tree and sizes, then kept.
    fn extract_subdomain_twiddles(&self, domain_log_size: u32, subdomain_log_size: u32) -> Self {
        // Keyed by the tree's device address; each entry holds the tree, so
        // that address is never freed and handed to another tree.
        type Key = (usize, u64, u32, u32);
        type Cache = std::sync::Mutex<HashMap<Key, (Arc<CudaSlice<u32>>, TwBuf)>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let t = tw(self);
        let g = gpu();
        let key = (bound_ordinal(), crate::addr(&*t.buf, &g.stream), domain_log_size, subdomain_log_size);
        let mut map = CACHE.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        let sub = map
            .entry(key)
            .or_insert_with(|| {
                let sub = TwiddleBuffer::<BitReversedOrder>::extract_subdomain_twiddles(
                    &*t.host,
                    domain_log_size,
                    subdomain_log_size,
                );
                let log = sub.len().max(1).ilog2();
                let sub = ok(g.tw_buf(sub, log));
                // Shared with the device's other lanes (other streams): complete before anyone reads it.
                ok(g.synchronize());
                (t.buf.clone(), sub)
            })
            .1
            .clone();
        DevTwiddles(Some(sub))
    }
}

/// The tables `point_weights` (kernels/fri.cu) expands into the weights of
/// 2^log_n coefficients at `p`, and the number of low bits (the first
/// table's log size). Stwo's coefficient basis (`CpuBackend::eval_at_point`,
/// a fold with the factors below): coefficient i is multiplied by the
/// product, over the bits b set in i, of g_0 = p.y, g_1 = p.x and
/// g_b = double_x(g_(b-1)).
pub(crate) fn point_weight_tables(log_n: u32, p: CirclePoint<SecureField>) -> (Vec<u32>, u32) {
    let mut factors = Vec::with_capacity(log_n as usize);
    let mut x = p.x;
    for b in 0..log_n {
        if b == 0 {
            factors.push(p.y);
        } else {
            factors.push(x);
            x = CirclePoint::double_x(x);
        }
    }
    // Every product of a subset of `fs`, subset j holding fs[b] for each bit b set in j.
    let products = |fs: &[SecureField]| {
        let mut t = vec![SecureField::one()];
        for &f in fs {
            let times: Vec<SecureField> = t.iter().map(|&v| v * f).collect();
            t.extend(times);
        }
        t
    };
    let log_lo = log_n / 2;
    let (lo, hi) = factors.split_at(log_lo as usize);
    let tab = products(lo).into_iter().chain(products(hi)).flat_map(|v| v.to_m31_array().map(|m| m.0)).collect();
    (tab, log_lo)
}

/// A registered coefficient column's value at `point`, from the values of
/// every coefficient column of its lane and size there, computed once (see
/// `eval_at_point`). None when the column left the registry meanwhile.
fn coefficient_sample(
    id: u64,
    lane: (usize, usize),
    n: usize,
    point: CirclePoint<SecureField>,
    weights: impl Fn() -> Buf,
) -> Option<[u32; 4]> {
    type Key = ((usize, usize), usize, [u32; 8]);
    type Samples = Arc<OnceLock<HashMap<u64, [u32; 4]>>>;
    static CACHE: OnceLock<std::sync::Mutex<HashMap<Key, Samples>>> = OnceLock::new();
    // A proof asks for a few dozen (size, point) pairs; past this many
    // entries a lane's older ones go.
    const ENTRIES: usize = 512;
    let mut words = [0u32; 8];
    words[..4].copy_from_slice(&point.x.to_m31_array().map(|m| m.0));
    words[4..].copy_from_slice(&point.y.to_m31_array().map(|m| m.0));
    let key = (lane, n, words);
    let cache = CACHE.get_or_init(Default::default);
    // Twice: an entry from an earlier proof at the same point (the same
    // statement proved again) lacks this proof's columns, and is replaced.
    for _ in 0..2 {
        let entry = {
            let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
            if !map.contains_key(&key) && map.len() >= ENTRIES {
                map.retain(|k, _| k.0 != lane);
            }
            map.entry(key).or_default().clone()
        };
        let values = entry.get_or_init(|| {
            // The lane's registry stays locked until the values are read, so none of these columns is freed meanwhile.
            let registry = committed(lane);
            let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
            let (ids, ptrs): (Vec<u64>, Vec<u64>) = reg
                .iter()
                .filter(|(_, e)| e.coefficients && e.len == n && e.words == 1)
                .map(|(&i, e)| (i, e.ptr))
                .unzip();
            if ids.is_empty() {
                return HashMap::new();
            }
            ids.into_iter().zip(ok(gpu().dot_many(&ptrs, &weights(), n))).collect()
        });
        if let Some(v) = values.get(&id) {
            return Some(*v);
        }
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(&key).is_some_and(|e| Arc::ptr_eq(e, &entry)) {
            map.remove(&key);
        }
    }
    None
}

pub(super) fn tw(t: &DevTwiddles) -> &TwBuf {
    t.0.as_ref().unwrap_or_else(|| panic!("CUDA: these twiddles are empty"))
}

// ---- conversions for the operations that still go through SIMD ----------

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

    /// Out-of-domain samples from the coefficients the commitment keeps
    /// (`ProverBackend::STORE_COEFFICIENTS`): Stwo asks for one column at one
    /// point at a time, from many threads. The first ask for a (lane, size,
    /// point) computes the value there of every coefficient column of that
    /// size in the lane's registry, with one weights launch and one
    /// `dot_many`; the others read it. A 2^20-row column costs 2^20
    /// products, a quarter of what the barycentric formula costs over its
    /// blown-up evaluation.
    fn eval_at_point(poly: &CircleCoefficients<Self>, point: CirclePoint<SecureField>) -> SecureField {
        let n = poly.coeffs.len();
        let weights = || {
            let (tab, log_lo) = point_weight_tables(n.ilog2(), point);
            ok(gpu().point_weights(&tab, log_lo, n))
        };
        // Batched only from a thread of the column's own lane: the batch runs on
        // this thread's stream, which is ordered after that lane's writes.
        let value = match poly.coeffs.registered() {
            Some((id, lane)) if lane == bound_lane() => coefficient_sample(id, lane, n, point, weights),
            _ => None,
        };
        let value = value.unwrap_or_else(|| {
            let w = weights();
            let dots = ok(gpu().dot_many(&[poly.coeffs.ptr()], &w, n));
            *dots.first().unwrap_or_else(|| panic!("CUDA: dot_many gave no value for one column"))
        });
        SecureField::from_m31_array(value.map(M31))
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
                // The lane's registry stays locked until the dots are read,
                // so none of these columns is freed meanwhile.
                let registry = committed(bound_lane());
                let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
                let (ids, ptrs): (Vec<u64>, Vec<u64>) = reg
                    .iter()
                    .filter(|(_, e)| e.len == n && e.words == 1 && !e.coefficients)
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
            .map(|(mut p, e)| {
                let e = e.unwrap_or_else(|| {
                    Self::evaluate(&p, CanonicCoset::new(p.log_size() + log_blowup_factor).circle_domain(), twiddles)
                });
                if store_polynomials_coefficients {
                    // Kept for the out-of-domain samples (`eval_at_point`), which batch over the registry.
                    p.coeffs.register_coefficients();
                }
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
                let trees = (up(&t.twiddles), up(&t.itwiddles));
                // Shared with the device's other lanes (other streams): complete before anyone reads it.
                ok(gpu().synchronize());
                trees
            })
            .clone();
        TwiddleTree { root_coset: coset, twiddles: DevTwiddles(Some(tw)), itwiddles: DevTwiddles(Some(itw)) }
    }

    fn split_at_mid(poly: CircleCoefficients<Self>) -> (CircleCoefficients<Self>, CircleCoefficients<Self>) {
        let (l, r) = poly.coeffs.split_at_mid();
        (CircleCoefficients::new(l), CircleCoefficients::new(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weights `point_weights` expands from `point_weight_tables`,
    /// dotted with coefficient columns by `dot_many` (both kernels compiled
    /// for the host by `c++`), against Stwo's `CpuBackend::eval_at_point`:
    /// 2^0 to 2^11 coefficients (odd and even splits of the bits), at
    /// random points of the secure-field circle.
    #[test]
    fn samples_from_point_weights_equal_stwos_fold_on_the_host() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rnd = move || {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut cases = String::new();
        let mut want = Vec::new();
        for log_n in [0u32, 1, 2, 3, 6, 7, 11] {
            let k = (u128::from(rnd()) << 64) | u128::from(rnd());
            let p = stwo::core::circle::SECURE_FIELD_CIRCLE_GEN.mul(k);
            let (tab, log_lo) = point_weight_tables(log_n, p);
            let coeffs: Vec<M31> = (0..1u64 << log_n).map(|_| M31((rnd() % ((1 << 31) - 1)) as u32)).collect();
            want.push(CpuBackend::eval_at_point(&CircleCoefficients::<CpuBackend>::new(coeffs.clone()), p));
            let list = |v: &mut dyn Iterator<Item = u32>| v.map(|x| format!("{x}u")).collect::<Vec<_>>().join(", ");
            cases.push_str(&format!(
                "  {{ std::vector<u32> tab = {{{}}}; std::vector<u32> c = {{{}}}; run({log_lo}, tab, c); }}\n",
                list(&mut tab.iter().copied()),
                list(&mut coeffs.iter().map(|m| m.0)),
            ));
        }
        let src = crate::codegen::fri_host_source(&format!(
            "{}{}{}",
            r#"
#include <cstdio>
#include <vector>
static void run(u32 log_lo, const std::vector<u32>& tab, const std::vector<u32>& c) {
  u64 n = c.size();
  std::vector<u32> w(4 * n, 0xdeadbeef);
  gridDim.x = 2; blockDim.x = 1; threadIdx.x = 0; blockIdx.y = 0;
  for (u32 b = 0; b < 2; b++) { blockIdx.x = b; point_weights(tab.data(), log_lo, n, w.data()); }
  u64 ptr = (u64)c.data();
  std::vector<u32> partial(4 * 3);
  gridDim.x = 3; gridDim.y = 1;
  for (u32 b = 0; b < 3; b++) { blockIdx.x = b; dot_many(&ptr, 1, w.data(), n, partial.data()); }
  qm31 sum = {0, 0, 0, 0};
  for (u32 b = 0; b < 3; b++) sum = qm31_add(sum, qm31{partial[4 * b], partial[4 * b + 1], partial[4 * b + 2], partial[4 * b + 3]});
  printf("%u %u %u %u\n", sum.a, sum.b, sum.c, sum.d);
}
int main() {
"#,
            cases,
            "  return 0;\n}\n"
        ));
        let program = crate::codegen::HostProgram::build("point-weights", &src, "-O1");
        let out = std::process::Command::new(&program.exe).output().expect("runs");
        assert!(out.status.success());
        let got: Vec<SecureField> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let w: Vec<u32> = l.split(' ').map(|x| x.parse().expect("a word")).collect();
                SecureField::from_m31_array(std::array::from_fn(|i| M31(w[i])))
            })
            .collect();
        assert_eq!(got, want);
    }
}
