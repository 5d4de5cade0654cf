//! `QuotientOps`: the DEEP quotients' combination.

use super::*;

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
                partial_numerators_acc: from_coords(out, n_rows),
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
        // The four coordinates interpolated on the subdomain together, then
        // evaluated on the lifting domain together.
        let mut quotients = from_coords(out, 1 << log_n);
        let itw = twiddles.itwiddles.extract_subdomain_twiddles(eval_domain.log_size(), log_n);
        let mut bufs: Vec<&mut CudaSlice<u32>> = quotients.columns.iter_mut().map(|c| c.buf_mut()).collect();
        ok(gpu().interpolate_many(&mut bufs, log_n, tw(&itw)));
        let coeffs: Vec<&CudaSlice<u32>> = quotients.columns.iter().map(|c| c.buf()).collect();
        let evals: [Buf; 4] = ok(gpu().evaluate_many(&coeffs, log_n, eval_domain.log_size(), tw(&twiddles.twiddles)))
            .try_into()
            .unwrap_or_else(|_| panic!("CUDA: one evaluation per coordinate"));
        SecureEvaluation::new(eval_domain, from_coords(evals, eval_domain.size()))
    }
}

/// The quotient combination through the SIMD backend (small domains).
pub(super) fn compute_quotients_on_simd(
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

/// A secure column's four coordinate columns, as `Gpu` takes them.
pub(super) fn coords(c: &SecureColumnByCoords<CudaBackend>) -> [&CudaSlice<u32>; 4] {
    [c.columns[0].buf(), c.columns[1].buf(), c.columns[2].buf(), c.columns[3].buf()]
}

/// A secure column of `n` values from four coordinate columns.
pub(super) fn from_coords(cols: [Buf; 4], n: usize) -> SecureColumnByCoords<CudaBackend> {
    SecureColumnByCoords { columns: cols.map(|c| DevCol::from_words(c, n)) }
}

pub(super) fn alpha_words(a: SecureField) -> [u32; 4] {
    a.to_m31_array().map(|v| v.0)
}
