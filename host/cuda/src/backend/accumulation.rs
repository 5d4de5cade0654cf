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
        let bufs: Vec<(CudaSlice<u32>, u32)> = cols.iter().map(|c| (concat4(c), c.columns[0].len().ilog2())).collect();
        let refs: Vec<_> = bufs.iter().map(|(b, l)| (b, *l)).collect();
        let out = ok(gpu().lift_and_accumulate(&refs))?;
        let n = 1usize << refs.last()?.1;
        Some(split4(&out, n))
    }
}
