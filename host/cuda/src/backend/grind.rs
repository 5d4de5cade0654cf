//! `GrindOps`: the proof-of-work nonce on the device.

use super::*;

impl GrindOps<Blake2sChannel> for CudaBackend {
    fn grind(channel: &Blake2sChannel, pow_bits: u32) -> u64 {
        let _s = tracing::debug_span!("cuda grind").entered();
        let mut h = Blake2sHasher::new();
        h.update(&Blake2sChannel::POW_PREFIX.to_le_bytes());
        h.update(&[0u8; 12]);
        h.update(&channel.digest().0);
        h.update(&pow_bits.to_le_bytes());
        let d = h.finalize().0;
        let prefixed: [u32; 8] =
            std::array::from_fn(|i| u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]]));
        let nonce = ok(gpu().grind(&prefixed, pow_bits));
        column::seed_query_plan(channel, nonce);
        nonce
    }
}
