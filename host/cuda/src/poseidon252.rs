//! The lifted Poseidon252 Merkle commitment (leaves, layers, root) and
//! Poseidon252 proof-of-work grinding: the proofs the on-chain verifier
//! checks, made on the device (`kernels/poseidon252.cu`).
//!
//! The kernels are compiled the first time a [`Gpu`] proves over this
//! channel (a Blake2s proof never pays for them), with a header of the
//! permutation's constants generated here: the compressed round constants
//! (`lambdaworks-crypto`'s `PoseidonCairoStark252`, the same ones
//! starknet-crypto's `poseidon_permute_comp` uses; a test checks the
//! permutation they define against it) and the Montgomery constants.

use starknet_ff::FieldElement as Felt252;

use super::*;

/// The compressed round constants: 3 per full round, 1 per partial round.
pub const N_ROUND_CONSTANTS: usize = 4 * 3 + 83 + 4 * 3;

/// Low bits of a grinding nonce searched per high word, as the SIMD backend
/// searches them (`GRIND_LOW_BITS` of its Poseidon252 grind).
pub const GRIND_LOW_BITS: u32 = 14;

/// High words of the nonce tried per grinding launch (2^20 candidates).
const GRIND_HI_PER_LAUNCH: u32 = 64;

/// The kernels, in the order [`Gpu::poseidon252`] loads them.
const FUNCTIONS: [&str; 3] = ["p252_merkle_leaves", "p252_merkle_layer", "p252_grind"];

/// Starknet Poseidon's compressed round constants, as field elements.
pub fn round_constants() -> Result<Vec<Felt252>> {
    use lambdaworks_crypto::hash::poseidon::starknet::PoseidonCairoStark252;
    let rc: Vec<Felt252> = PoseidonCairoStark252::OPTIMIZED_ROUND_CONSTANTS
        .iter()
        .map(|c| {
            // The representative's limbs are big-endian.
            let mut be = [0u8; 32];
            for (i, l) in c.representative().limbs.iter().enumerate() {
                be[8 * i..8 * i + 8].copy_from_slice(&l.to_be_bytes());
            }
            Felt252::from_bytes_be(&be).map_err(|_| CudaError::Unsupported("a Poseidon constant is not reduced".into()))
        })
        .collect::<Result<_>>()?;
    if rc.len() != N_ROUND_CONSTANTS {
        return Err(CudaError::Unsupported(format!(
            "{} Poseidon round constants, expected {N_ROUND_CONSTANTS}",
            rc.len()
        )));
    }
    Ok(rc)
}

/// A felt as the 8 little-endian u32 words the kernels read and write.
pub fn felt_words(f: &Felt252) -> [u32; 8] {
    let be = f.to_bytes_be();
    std::array::from_fn(|i| {
        let at = 32 - 4 * (i + 1);
        u32::from_be_bytes([be[at], be[at + 1], be[at + 2], be[at + 3]])
    })
}

/// The felt of 8 little-endian words, if they hold a reduced value.
pub fn words_felt(w: &[u32]) -> Option<Felt252> {
    let mut be = [0u8; 32];
    for (i, x) in w.iter().take(8).enumerate() {
        let at = 32 - 4 * (i + 1);
        be[at..at + 4].copy_from_slice(&x.to_be_bytes());
    }
    Felt252::from_bytes_be(&be).ok()
}

/// `2^512 mod p`: the Montgomery factor that takes a canonical value into
/// Montgomery form (`x * 2^512 / 2^256`).
fn montgomery_r2() -> Result<[u64; 4]> {
    // `ONE.into_mont()` is the integer 2^256 mod p; its own Montgomery form is 2^512 mod p.
    let r = Felt252::ONE.into_mont();
    let mut be = [0u8; 32];
    for (i, l) in r.iter().rev().enumerate() {
        be[8 * i..8 * i + 8].copy_from_slice(&l.to_be_bytes());
    }
    let r = Felt252::from_bytes_be(&be).map_err(|_| CudaError::Unsupported("2^256 mod p is not reduced".into()))?;
    Ok(r.into_mont())
}

/// The generated header: the constants in Montgomery form.
fn header() -> Result<String> {
    let limbs = |l: [u64; 4]| format!("{{{:#x}ull, {:#x}ull, {:#x}ull, {:#x}ull}}", l[0], l[1], l[2], l[3]);
    let rc: Vec<String> = round_constants()?.into_iter().map(|c| format!("    {},", limbs(c.into_mont()))).collect();
    Ok(format!(
        "__constant__ u64 P252_RC[{N_ROUND_CONSTANTS}][4] = {{\n{}\n}};\n__constant__ u64 P252_R2[4] = {};\n__constant__ u64 P252_ONE[4] = {};\n__constant__ u64 P252_TWO[4] = {};\n",
        rc.join("\n"),
        limbs(montgomery_r2()?),
        limbs(Felt252::ONE.into_mont()),
        limbs(Felt252::TWO.into_mont()),
    ))
}

/// The kernel source with its constants.
fn source() -> Result<String> {
    let kernel = include_str!("../../../kernels/poseidon252.cu");
    Ok(kernel.replacen("// @POSEIDON252_CONSTANTS@", &header()?, 1))
}

/// The kernels' source, as [`crate::compile::prepare`] compiles it.
pub(crate) fn kernel_source() -> Result<crate::compile::Source> {
    Ok(crate::compile::Source::with_headers("poseidon252", &source()?))
}

impl Gpu {
    /// The Poseidon252 kernels, compiled for this device on first use.
    fn poseidon252(&self) -> Result<&GeneratedModule> {
        if let Some(m) = self.poseidon252.get() {
            return Ok(m);
        }
        let m = self.load(&[kernel_source()?], FUNCTIONS)?;
        Ok(self.poseidon252.get_or_init(|| m))
    }

    /// Leaf hashes (8 canonical words each) of the lifted Poseidon252 Merkle
    /// tree over `columns` (device column and log size, sorted ascending by
    /// size, each at least 2 values), lifted to `2^log_leaves` leaves.
    pub fn p252_merkle_leaves(&self, columns: &[(&CudaSlice<u32>, u32)], log_leaves: u32) -> Result<Buf> {
        let (a, n_cols) = self.lifted_columns(columns, log_leaves)?;
        let m = self.poseidon252()?;
        // SAFETY: `p252_merkle_leaves` writes all 8 words of every leaf.
        let mut leaves = unsafe { self.alloc::<u32>(8usize << log_leaves) }?;
        let mut b = self.stream.launch_builder(&m.f[0]);
        b.arg(&a.at[0]).arg(&a.at[1]).arg(&n_cols).arg(&log_leaves).arg(&mut leaves);
        // SAFETY: each thread reads in-bounds lifted indices of the columns and writes its own leaf.
        unsafe { b.launch(launch_1d(1u64 << log_leaves)) }?;
        Ok(leaves)
    }

    /// The next layer: `out[i] = poseidon_hash(prev[2i], prev[2i+1])`.
    pub fn p252_merkle_next_layer(&self, prev: &CudaSlice<u32>) -> Result<Buf> {
        let m = self.poseidon252()?;
        let n = (prev.len() / 16) as u64;
        // SAFETY: `p252_merkle_layer` writes all 8 words of every node.
        let mut next = unsafe { self.alloc::<u32>((8 * n.max(1)) as usize) }?;
        let mut b = self.stream.launch_builder(&m.f[1]);
        b.arg(prev).arg(&mut next).arg(&n);
        // SAFETY: node i reads children 2i and 2i+1 of the previous layer.
        unsafe { b.launch(launch_1d(n)) }?;
        Ok(next)
    }

    /// The lifted Poseidon252 tree of `columns` (sorted ascending by size):
    /// the leaf layer and the root.
    pub fn p252_merkle_root(&self, columns: &[(&CudaSlice<u32>, u32)]) -> Result<(Buf, Felt252)> {
        let (leaves, root) =
            self.lifted_root(columns, |c, l| self.p252_merkle_leaves(c, l), |p| self.p252_merkle_next_layer(p))?;
        let root = words_felt(&root).ok_or_else(|| CudaError::Unsupported("the root is not a reduced felt".into()))?;
        Ok((leaves, root))
    }

    /// The proof-of-work nonce for a Poseidon252 channel whose prefixed
    /// digest (`poseidon_hash_many([POW_PREFIX, digest, pow_bits])`) is
    /// given: the smallest `(hi << 32) | low` with `low < 2^14` whose
    /// `poseidon_hash(prefixed, nonce)` has `pow_bits` trailing zero bits,
    /// which is the nonce the SIMD backend finds.
    pub fn p252_grind(&self, prefixed: &Felt252, pow_bits: u32) -> Result<u64> {
        if pow_bits > 128 {
            return Err(CudaError::Unsupported(format!("{pow_bits} bits of proof of work (at most 128)")));
        }
        let m = self.poseidon252()?;
        let d_prefix = self.upload(&felt_words(prefixed))?;
        let mut hi0 = 0u32;
        while hi0 < stwo::core::fields::m31::P {
            let n_hi = GRIND_HI_PER_LAUNCH.min(stwo::core::fields::m31::P - hi0);
            let mut found = self.pool.htod(&[u64::MAX])?;
            let mut b = self.stream.launch_builder(&m.f[2]);
            b.arg(&d_prefix).arg(&pow_bits).arg(&hi0).arg(&n_hi).arg(&GRIND_LOW_BITS).arg(&mut found);
            // SAFETY: threads read the 8-word prefix and atomically lower one word.
            unsafe { b.launch(launch_1d((n_hi as u64) << GRIND_LOW_BITS)) }?;
            let t = self.stream.clone_dtoh(&found)?[0];
            if t != u64::MAX {
                let hi = hi0 as u64 + (t >> GRIND_LOW_BITS);
                return Ok((hi << 32) | (t & ((1 << GRIND_LOW_BITS) - 1)));
            }
            hi0 += n_hi;
        }
        Err(CudaError::Unsupported("no nonce found".into()))
    }
}

#[cfg(test)]
mod tests {
    use starknet_crypto_06::poseidon_permute_comp;

    use super::*;

    /// The permutation the kernel runs, in Rust over the same constants.
    fn permute(s: &mut [Felt252; 3], rc: &[Felt252]) {
        let mix = |s: &mut [Felt252; 3]| {
            let t = s[0] + s[1] + s[2];
            *s = [t + s[0] + s[0], t - s[1] - s[1], t - s[2] - s[2] - s[2]];
        };
        let cube = |x: Felt252| x * x * x;
        let mut idx = 0;
        for round in 0..91 {
            if (4..87).contains(&round) {
                s[2] = cube(s[2] + rc[idx]);
                idx += 1;
            } else {
                for k in 0..3 {
                    s[k] = cube(s[k] + rc[idx + k]);
                }
                idx += 3;
            }
            mix(s);
        }
        assert_eq!(idx, N_ROUND_CONSTANTS);
    }

    #[test]
    fn the_kernel_s_constants_define_starknet_s_poseidon() {
        let rc = round_constants().expect("the constants");
        let mut x = Felt252::from(0x1234_5678_9abc_def0u64);
        for _ in 0..8 {
            let mut a = [x, x * x + Felt252::ONE, Felt252::MAX - x];
            let mut b = a;
            permute(&mut a, &rc);
            poseidon_permute_comp(&mut b);
            assert_eq!(a, b);
            x = a[0];
        }
        // One constant off changes the permutation, so the check above can fail.
        let mut bad = rc.clone();
        bad[50] += Felt252::ONE;
        let (mut a, mut b) = ([Felt252::ONE; 3], [Felt252::ONE; 3]);
        permute(&mut a, &bad);
        poseidon_permute_comp(&mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn montgomery_constants_and_words_round_trip() {
        let r2 = montgomery_r2().expect("2^512 mod p");
        // from_mont reads Montgomery limbs: the limbs 2^512 mod p are the element 2^256 mod p.
        let two_256 = (0..256).fold(Felt252::ONE, |a, _| a.double());
        assert_eq!(Felt252::from_mont(r2), two_256);
        for f in [Felt252::ZERO, Felt252::ONE, Felt252::MAX, Felt252::from(0xdead_beefu64) * two_256] {
            assert_eq!(words_felt(&felt_words(&f)), Some(f));
        }
        assert_eq!(felt_words(&Felt252::from(0x1_0000_0002u64))[..3], [2, 1, 0]);
        assert_eq!(words_felt(&[u32::MAX; 8]), None, "2^256 - 1 is not a reduced felt");
    }

    #[test]
    fn the_kernel_source_carries_the_generated_constants_once() {
        let src = source().expect("the source");
        assert!(!src.contains("@POSEIDON252_CONSTANTS@"));
        assert_eq!(src.matches("__constant__ u64 P252_RC[107][4]").count(), 1);
        for f in FUNCTIONS {
            assert_eq!(src.matches(&format!("void {f}(")).count(), 1, "{f}");
        }
    }
}
