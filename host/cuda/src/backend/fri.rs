//! `FriOps`: FRI folds.

use super::*;

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
        let mut folded: Option<[Buf; 4]> = None;
        let mut a = alpha;
        for _ in 0..fold_step {
            let log_dst = domain.log_size() - 1;
            let src = match &folded {
                Some(f) => [&*f[0], &*f[1], &*f[2], &*f[3]],
                None => coords(&eval.values),
            };
            folded = Some(ok(gpu().fri_fold(src, log_dst, alpha_words(a), false, itw)));
            domain = domain.double();
            a = a * a;
        }
        match folded {
            Some(f) => LineEvaluation::new(domain, from_coords(f, domain.size())),
            None => eval.clone(),
        }
    }

    fn fold_circle_into_line(
        src: &SecureEvaluation<Self, BitReversedOrder>,
        alpha: SecureField,
        twiddles: &TwiddleTree<Self>,
    ) -> LineEvaluation<Self> {
        let _s = tracing::debug_span!("cuda fri fold_circle_into_line").entered();
        let log = src.domain.log_size();
        let f = ok(gpu().fri_fold(coords(&src.values), log - 1, alpha_words(alpha), true, tw(&twiddles.itwiddles)));
        LineEvaluation::new(LineDomain::new(Coset::half_odds(log - 1)), from_coords(f, 1 << (log - 1)))
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
