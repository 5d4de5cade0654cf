//! `MerkleOpsLifted` for Blake2s: leaves and layers of the lifted Merkle
//! tree on the device.

use super::*;

use super::column::merkle_links;

impl PackLeavesOps for CudaBackend {
    fn pack_leaves_input(values: &[&Col<Self, BaseField>; 4]) -> [Col<Self, BaseField>; 16] {
        let _s = tracing::debug_span!("cuda pack leaves").entered();
        let len = values[0].len();
        // Stwo's contract: four columns of one length, a multiple of four.
        assert!(values.iter().all(|c| c.len() == len) && len.is_multiple_of(4), "pack_leaves_input of unequal columns");
        match gpu().pack_leaves(values.map(|c| c.buf()), len) {
            Ok(cols) => cols.map(|c| DevCol::from_words(c, len / 4)),
            // The device could not (its sixteen columns did not fit): the same packing on the host.
            Err(e) => {
                tracing::warn!("packing FRI leaves on the host: {e}");
                let cpu: [Vec<BaseField>; 4] = std::array::from_fn(|i| values[i].to_cpu());
                pack_leaves_host(&cpu).map(|c| DevCol::from_host(&c))
            }
        }
    }
}

/// Stwo's leaf packing for `fold_step > 1` (`CpuBackend::pack_leaves_input`)
/// on the host, for when the device cannot: output column `coord + 4 *
/// offset` holds `values[coord][4 * row + offset]` at `row`, built a column
/// per task on every core (Stwo's loop, one element at a time on one thread,
/// took about 124 ms of a 2^20-row proof).
pub(crate) fn pack_leaves_host(values: &[Vec<BaseField>; 4]) -> [Vec<BaseField>; 16] {
    use rayon::prelude::*;
    let rows = values[0].len() / 4;
    let mut out: [Vec<BaseField>; 16] = std::array::from_fn(|_| Vec::new());
    out.par_iter_mut().enumerate().for_each(|(k, col)| {
        let (coord, offset) = (k % 4, k / 4);
        *col = values[coord][offset..].iter().step_by(4).take(rows).copied().collect();
    });
    out
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

    /// A layer of up to 2^[`crate::blake2s::MERKLE_TOP_LOG`] nodes has
    /// every layer above it built in one launch ([`crate::Gpu::merkle_top`]);
    /// Stwo then asks for them one at a time, and gets them without a launch.
    fn build_next_layer(prev_layer: &Col<Self, Blake2sHash>) -> Col<Self, Blake2sHash> {
        let _s = tracing::debug_span!("cuda merkle layer").entered();
        let (below, len) = (prev_layer.ptr(), prev_layer.len() / 2);
        let ahead = merkle_links().lock().unwrap_or_else(|p| p.into_inner()).take_above(below, len);
        if let Some(layer) = ahead {
            return DevCol::from_words(layer, len).link_merkle(Some(prev_layer));
        }
        if !(2..=1 << crate::blake2s::MERKLE_TOP_LOG).contains(&prev_layer.len()) {
            return DevCol::from_words(ok(gpu().merkle_next_layer(prev_layer.buf())), len)
                .link_merkle(Some(prev_layer));
        }
        let mut layers = ok(gpu().merkle_top(prev_layer.buf())).into_iter();
        let first = match layers.next() {
            Some(l) => DevCol::from_words(l, len).link_merkle(Some(prev_layer)),
            None => ok(Err(crate::CudaError::Unsupported("merkle_top built no layer".into()))),
        };
        let (mut below, mut len) = (first.ptr(), len);
        let mut links = merkle_links().lock().unwrap_or_else(|p| p.into_inner());
        for layer in layers {
            len /= 2;
            let at = crate::addr(&layer, &gpu().stream);
            links.put_above(below, layer, len);
            below = at;
        }
        drop(links);
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_leaf_packing_equals_stwo_s() {
        let mut state = 0x9e37_79b9u32;
        for log in [2u32, 4, 9, 12] {
            let values: [Vec<BaseField>; 4] = std::array::from_fn(|_| {
                (0..1usize << log)
                    .map(|_| {
                        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        M31::from(state >> 1)
                    })
                    .collect()
            });
            let refs: [&Vec<BaseField>; 4] = std::array::from_fn(|i| &values[i]);
            assert_eq!(pack_leaves_host(&values), CpuBackend::pack_leaves_input(&refs), "2^{log} values");
        }
    }
}
