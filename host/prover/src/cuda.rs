//! The ObelyskVM proof on the CUDA backend: traces are generated on the
//! CPU (SIMD) and uploaded once; everything after runs on the device.

use bitsage_air::statement::Components;
use bitsage_cuda::backend::{CudaBackend, DevCol};
use stwo::core::fields::m31::M31;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::poly::circle::CircleEvaluation;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::ComponentProver;

use crate::{Eval, ProverBackend};

pub use bitsage_cuda::backend::init;

impl ProverBackend for CudaBackend {
    fn convert(evals: Vec<Eval>) -> Vec<CircleEvaluation<Self, M31, BitReversedOrder>> {
        let _s = tracing::info_span!("upload").entered();
        let cols: Vec<&[M31]> = evals.iter().map(|e| e.values.as_slice()).collect();
        let dev = DevCol::<M31>::upload_many(&cols);
        evals.iter().zip(dev).map(|(e, d)| CircleEvaluation::new(e.domain, d)).collect()
    }

    fn convert_main(main: &crate::tracegen::MainTrace) -> Vec<CircleEvaluation<Self, M31, BitReversedOrder>> {
        let _s = tracing::info_span!("upload").entered();
        let mut cols = Vec::new();
        let mut domains = Vec::new();
        for c in main.components() {
            let domain = CanonicCoset::new(c.log_size).circle_domain();
            for col in &c.columns {
                cols.push(col.as_slice());
                domains.push(domain);
            }
        }
        let dev = DevCol::<M31>::upload_many(&cols);
        domains.into_iter().zip(dev).map(|(d, c)| CircleEvaluation::new(d, c)).collect()
    }

    fn provers(c: &Components) -> Vec<&dyn ComponentProver<Self>> {
        vec![&c.cpu, &c.rom, &c.mem, &c.range, &c.hash]
    }
}
