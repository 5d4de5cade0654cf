//! `AccumulationOps`.

use super::*;

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
        let mut cols = cols.into_iter();
        let mut acc = cols.next()?;
        for mut col in cols {
            let (log_n, log_prev) = (col.columns[0].len().ilog2(), acc.columns[0].len().ilog2());
            let [c0, c1, c2, c3] = &mut col.columns;
            let prev = [acc.columns[0].buf(), acc.columns[1].buf(), acc.columns[2].buf(), acc.columns[3].buf()];
            ok(gpu().lift_accumulate([c0.buf_mut(), c1.buf_mut(), c2.buf_mut(), c3.buf_mut()], log_n, prev, log_prev));
            acc = col;
        }
        Some(acc)
    }
}
