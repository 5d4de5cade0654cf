//! `MerkleOpsLifted` for Blake2s: leaves and layers of the lifted Merkle
//! tree on the device.

use super::*;

impl PackLeavesOps for CudaBackend {
    fn pack_leaves_input(values: &[&Col<Self, BaseField>; 4]) -> [Col<Self, BaseField>; 16] {
        let cpu: [Vec<BaseField>; 4] = std::array::from_fn(|i| values[i].to_cpu());
        let refs: [&Vec<BaseField>; 4] = std::array::from_fn(|i| &cpu[i]);
        CpuBackend::pack_leaves_input(&refs).map(|c| DevCol::from_host(&c))
    }
}

impl MerkleOpsLifted<Blake2sMerkleHasher> for CudaBackend {
    fn build_leaves(columns: &[&Col<Self, BaseField>], lifting_log_size: u32) -> Col<Self, Blake2sHash> {
        let _s = tracing::debug_span!("cuda merkle leaves").entered();
        if columns.is_empty() {
            return DevCol::from_host(&[Blake2sHasher::hash(&[])]);
        }
        let cols: Vec<(&CudaSlice<u32>, u32)> = columns.iter().map(|c| (c.buf(), c.len().ilog2())).collect();
        DevCol::from_words(ok(gpu().merkle_leaves(&cols, lifting_log_size)), 1 << lifting_log_size).link_merkle(None)
    }

    fn build_next_layer(prev_layer: &Col<Self, Blake2sHash>) -> Col<Self, Blake2sHash> {
        let _s = tracing::debug_span!("cuda merkle layer").entered();
        DevCol::from_words(ok(gpu().merkle_next_layer(prev_layer.buf())), prev_layer.len() / 2)
            .link_merkle(Some(prev_layer))
    }
}
