//! `MleOps` and `GkrOps`: the ObelyskVM AIR uses no GKR, so these refuse.

use super::*;

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
