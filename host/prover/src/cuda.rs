//! The ObelyskVM proof on the CUDA backend: the main trace is generated on
//! the CPU and uploaded once; the LogUp interaction trace is generated on
//! the device from it (`bitsage_cuda::logup`), and everything after runs on
//! the device.

use bitsage_air::relations::Relations;
use bitsage_air::statement::Components;
use bitsage_cuda::backend::{CudaBackend, DevCol};
use bitsage_cuda::logup;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::poly::circle::CircleEvaluation;
use stwo::prover::poly::BitReversedOrder;
use stwo::prover::ComponentProver;

use crate::ProverBackend;

pub use bitsage_cuda::backend::init;

impl ProverBackend for CudaBackend {
    /// Device copies of every component's main columns, with its log size.
    type MainCopy = Vec<(u32, Vec<DevCol<M31>>)>;

    fn convert_main(
        main: &crate::tracegen::MainTrace,
    ) -> (Vec<CircleEvaluation<Self, M31, BitReversedOrder>>, Self::MainCopy) {
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
        // The commitment interpolates its columns in place; the LogUp trace
        // reads copies (a device-to-device copy, well under a millisecond).
        let mut copies = Vec::new();
        let mut at = 0;
        for c in main.components() {
            let n = c.columns.len();
            copies.push((c.log_size, dev[at..at + n].to_vec()));
            at += n;
        }
        (domains.into_iter().zip(dev).map(|(d, c)| CircleEvaluation::new(d, c)).collect(), copies)
    }

    fn interaction_trace(
        _: &crate::tracegen::MainTrace,
        copy: Self::MainCopy,
        rels: &Relations,
    ) -> (Vec<CircleEvaluation<Self, M31, BitReversedOrder>>, [SecureField; 5]) {
        let mut evals = Vec::new();
        let mut sums = [SecureField::default(); 5];
        for (i, (log_size, cols)) in copy.iter().enumerate() {
            let (trace, sum) = logup::component_trace(i, cols, *log_size, rels).unwrap_or_else(|e| panic!("CUDA: {e}"));
            let domain = CanonicCoset::new(*log_size).circle_domain();
            evals.extend(trace.into_iter().map(|c| CircleEvaluation::new(domain, c)));
            sums[i] = sum;
        }
        (evals, sums)
    }

    fn provers(c: &Components) -> Vec<&dyn ComponentProver<Self>> {
        vec![&c.cpu, &c.rom, &c.mem, &c.range, &c.hash]
    }
}
