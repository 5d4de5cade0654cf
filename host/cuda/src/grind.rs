//! Proof-of-work grinding, in the SIMD backend's search order.

use super::*;

impl Gpu {
    /// The proof-of-work nonce for a Blake2s channel whose prefixed digest
    /// (`H(0x12345678 || 0^12 || digest || pow_bits)`, 8 LE words) is given:
    /// the smallest `(hi << 32) | low` with `low < 2^20`, searched by `hi`.
    pub fn grind(&self, prefixed: &[u32; 8], pow_bits: u32) -> Result<u64> {
        const LOW: u32 = 1 << 20;
        let d_prefix = self.upload(prefixed)?;
        for hi in 0..u32::MAX {
            let mut found = self.upload(&[u32::MAX])?;
            let mut b = self.stream.launch_builder(self.k(Kernel::Grind));
            b.arg(&d_prefix).arg(&pow_bits).arg(&hi).arg(&LOW).arg(&mut found);
            // SAFETY: threads read the 8-word prefix and atomically update one word.
            unsafe { b.launch(launch_1d(LOW as u64)) }?;
            let low = self.download(&found)?[0];
            if low != u32::MAX {
                return Ok(((hi as u64) << 32) | low as u64);
            }
        }
        Err(CudaError::Unsupported("no nonce found".into()))
    }
}
