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
                // The lane's registry stays locked until the dots are read,
                // so none of these columns is freed meanwhile.
                let registry = committed(bound_lane());
                let reg = registry.lock().unwrap_or_else(|p| p.into_inner());
                let (ids, ptrs): (Vec<u64>, Vec<u64>) =
                    reg.iter().filter(|(_, e)| e.len == n && e.words == 1).map(|(&i, e)| (i, e.ptr)).unzip();
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
