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
