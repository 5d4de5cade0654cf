//! Poseidon2 over M31, width 16, S-box `x^5`, 8 full and 14 partial rounds
//! (the round numbers used for Mersenne-31 at this width in the Poseidon2
//! literature).
//!
//! Linear layers: the external layer is `circ(2·M4, M4, M4, M4)` with the
//! Poseidon2 `M4`; the internal layer is `1 + diag(D)` with the power-of-two
//! diagonal published for M31 width 16. Round constants are derived from
//! SHA-256 in counter mode over a fixed domain string, so anyone can
//! regenerate them (see [`round_constants`]).
//!
//! The AIR re-uses [`external_layer`], [`internal_layer`] and the constants
//! from here, so the executor and the constraints cannot drift apart. That
//! sharing is why this module works over Stwo's `M31` (the AIR applies the
//! layers to Stwo's packed and symbolic values) and why `obelysk-vm` depends
//! on Stwo at all; [`permute`] takes and returns VM words.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use stwo::core::fields::m31::{M31, P};

pub const WIDTH: usize = 16;
pub const FULL_ROUNDS: usize = 8;
pub const HALF_FULL_ROUNDS: usize = FULL_ROUNDS / 2;
pub const PARTIAL_ROUNDS: usize = 14;

/// Internal-layer diagonal `D`: the matrix is `J + diag(D)` (J all ones).
pub const INTERNAL_DIAG: [i64; WIDTH] = [-2, 1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 8192, 16384, 32768, 65536];

/// Round constants: `full[r][i]` for the 8 full rounds, `partial[r]` for the
/// 14 partial rounds (added to lane 0 only).
pub struct RoundConstants {
    pub full: [[M31; WIDTH]; FULL_ROUNDS],
    pub partial: [M31; PARTIAL_ROUNDS],
}

/// Draws field elements from SHA-256("obelysk/poseidon2-m31-w16/v1" || counter),
/// 31 bits at a time, rejecting the value `P`.
pub fn round_constants() -> &'static RoundConstants {
    static RC: OnceLock<RoundConstants> = OnceLock::new();
    RC.get_or_init(|| {
        let mut counter: u64 = 0;
        let mut pool: Vec<u32> = Vec::new();
        let mut next = || loop {
            if let Some(v) = pool.pop() {
                if v != P {
                    return M31(v);
                }
                continue;
            }
            let mut h = Sha256::new();
            h.update(b"obelysk/poseidon2-m31-w16/v1");
            h.update(counter.to_le_bytes());
            counter += 1;
            let out = h.finalize();
            for chunk in out.chunks_exact(4).rev() {
                let w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) & P;
                pool.push(w);
            }
        };
        let mut full = [[M31(0); WIDTH]; FULL_ROUNDS];
        for round in full.iter_mut() {
            for c in round.iter_mut() {
                *c = next();
            }
        }
        let mut partial = [M31(0); PARTIAL_ROUNDS];
        for c in partial.iter_mut() {
            *c = next();
        }
        RoundConstants { full, partial }
    })
}

/// Generic over the value type so the AIR can apply the same linear layers
/// to symbolic or packed values.
pub trait LinearLayerValue:
    Clone + std::ops::Add<Output = Self> + std::ops::Sub<Output = Self> + std::ops::Mul<M31, Output = Self>
{
}
impl<T> LinearLayerValue for T where
    T: Clone + std::ops::Add<Output = T> + std::ops::Sub<Output = T> + std::ops::Mul<M31, Output = T>
{
}

fn m31_from_i64(v: i64) -> M31 {
    let p = P as i64;
    M31((((v % p) + p) % p) as u32)
}

const M4: [[u32; 4]; 4] = [[5, 7, 1, 3], [4, 6, 1, 1], [1, 3, 5, 7], [1, 1, 4, 6]];

/// Applies `M4` to each block of four lanes.
fn apply_m4_blocks<T: LinearLayerValue>(x: &[T; WIDTH]) -> [T; WIDTH] {
    std::array::from_fn(|i| {
        let (block, row) = (i / 4, i % 4);
        let base = block * 4;
        let mut acc = x[base].clone() * M31(M4[row][0]);
        for col in 1..4 {
            acc = acc + x[base + col].clone() * M31(M4[row][col]);
        }
        acc
    })
}

/// External layer `circ(2·M4, M4, M4, M4)`: `y_i = M4 x_block(i) + Σ_blocks M4 x_block`.
pub fn external_layer<T: LinearLayerValue>(x: &[T; WIDTH]) -> [T; WIDTH] {
    let m = apply_m4_blocks(x);
    let sums: [T; 4] = std::array::from_fn(|r| m[r].clone() + m[4 + r].clone() + m[8 + r].clone() + m[12 + r].clone());
    std::array::from_fn(|i| m[i].clone() + sums[i % 4].clone())
}

/// Internal layer `J + diag(D)`: `y_i = Σ x + D_i x_i`.
pub fn internal_layer<T: LinearLayerValue>(x: &[T; WIDTH]) -> [T; WIDTH] {
    let mut sum = x[0].clone();
    for v in &x[1..] {
        sum = sum + v.clone();
    }
    std::array::from_fn(|i| sum.clone() + x[i].clone() * m31_from_i64(INTERNAL_DIAG[i]))
}

fn pow5(x: M31) -> M31 {
    let x2 = x * x;
    x2 * x2 * x
}

/// Which S-box of the permutation is being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sbox {
    Full { round: usize, lane: usize },
    Partial { round: usize },
}

/// The round structure of the permutation, generic over the value type, so
/// the executor, the AIR and the prover's trace filler share it. `sbox` gets
/// the S-box input (round constant already added) and returns `input^5`.
pub fn permute_with<T>(input: &[T; WIDTH], sbox: impl FnMut(T, Sbox) -> T) -> [T; WIDTH]
where
    T: LinearLayerValue + From<M31>,
{
    permute_with_layers(input, sbox, |_| {})
}

/// [`permute_with`], calling `after_layer` on the state after every linear
/// layer. A symbolic caller uses it to name the state (an AIR intermediate),
/// so expressions stay linear in the previous layer instead of growing with
/// every round.
pub fn permute_with_layers<T>(
    input: &[T; WIDTH],
    mut sbox: impl FnMut(T, Sbox) -> T,
    mut after_layer: impl FnMut(&mut [T; WIDTH]),
) -> [T; WIDTH]
where
    T: LinearLayerValue + From<M31>,
{
    let rc = round_constants();
    let mut st = external_layer(input);
    after_layer(&mut st);
    for round in 0..HALF_FULL_ROUNDS {
        st = full_round(&st, round, &mut sbox);
        after_layer(&mut st);
    }
    for round in 0..PARTIAL_ROUNDS {
        st[0] = sbox(st[0].clone() + T::from(rc.partial[round]), Sbox::Partial { round });
        st = internal_layer(&st);
        after_layer(&mut st);
    }
    for round in HALF_FULL_ROUNDS..FULL_ROUNDS {
        st = full_round(&st, round, &mut sbox);
        after_layer(&mut st);
    }
    st
}

fn full_round<T>(st: &[T; WIDTH], round: usize, sbox: &mut impl FnMut(T, Sbox) -> T) -> [T; WIDTH]
where
    T: LinearLayerValue + From<M31>,
{
    let rc = &round_constants().full[round];
    let out: [T; WIDTH] =
        std::array::from_fn(|lane| sbox(st[lane].clone() + T::from(rc[lane]), Sbox::Full { round, lane }));
    external_layer(&out)
}

/// The Poseidon2 permutation on VM words (the `hash` instruction).
pub fn permute(state: &mut [obelysk_isa::M31; WIDTH]) {
    let felts = state.map(|w| M31::from_u32_unchecked(w.0));
    *state = permute_with(&felts, |s, _| pow5(s)).map(|f| obelysk_isa::M31(f.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_external(i: usize, j: usize) -> u32 {
        let m = M4[i % 4][j % 4];
        if i / 4 == j / 4 {
            2 * m
        } else {
            m
        }
    }

    #[test]
    fn external_layer_matches_dense_matrix() {
        let x: [M31; WIDTH] = std::array::from_fn(|i| M31(1000 + 37 * i as u32));
        let y = external_layer(&x);
        for i in 0..WIDTH {
            let mut acc = M31(0);
            for j in 0..WIDTH {
                acc += M31(dense_external(i, j)) * x[j];
            }
            assert_eq!(y[i], acc, "row {i}");
        }
    }

    #[test]
    fn internal_layer_matches_dense_matrix() {
        let x: [M31; WIDTH] = std::array::from_fn(|i| M31(5 + 11 * i as u32));
        let y = internal_layer(&x);
        for i in 0..WIDTH {
            let mut acc = M31(0);
            for j in 0..WIDTH {
                let d = if i == j { m31_from_i64(INTERNAL_DIAG[i] + 1) } else { M31(1) };
                acc += d * x[j];
            }
            assert_eq!(y[i], acc);
        }
    }

    #[test]
    fn permutation_diffuses_and_is_deterministic() {
        use obelysk_isa::M31 as Word;
        let mut a = [Word(0); WIDTH];
        let mut b = [Word(0); WIDTH];
        b[15] = Word(1);
        permute(&mut a);
        permute(&mut b);
        assert_ne!(a, [Word(0); WIDTH]);
        // A one-lane change reaches every output lane.
        for i in 0..WIDTH {
            assert_ne!(a[i], b[i], "lane {i} unaffected");
        }
        let mut a2 = [Word(0); WIDTH];
        permute(&mut a2);
        assert_eq!(a, a2);
    }

    #[test]
    fn constants_are_reduced_and_distinct() {
        let rc = round_constants();
        let mut all: Vec<u32> = rc.full.iter().flatten().map(|c| c.0).collect();
        all.extend(rc.partial.iter().map(|c| c.0));
        assert!(all.iter().all(|&c| c < P));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
