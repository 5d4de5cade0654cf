//! Reusable program fragments built on the VM's Poseidon2 `hash`.
//!
//! Conventions: register `r0` is never written, so it is always 0 and serves
//! as the base for absolute RAM addresses. A digest is [`DIGEST_WORDS`] field
//! elements (124 bits). The sponge has rate [`RATE`] and capacity 8 words.

use crate::builder::{ProgramBuilder, Reg, R0};

/// Words in a digest.
pub const DIGEST_WORDS: usize = 4;
/// Words absorbed per permutation.
pub const RATE: u32 = 8;
/// Width of the permutation state.
pub const WIDTH: u32 = 16;

/// A Poseidon2 sponge whose 16-word state lives at `ram[base .. base + 16]`.
#[derive(Clone, Copy, Debug)]
pub struct Sponge {
    pub base: u32,
}

impl Sponge {
    pub const fn at(base: u32) -> Sponge {
        Sponge { base }
    }

    /// Zeroes the state, then writes `domain` into the first capacity word so
    /// that different uses of the hash never collide.
    pub fn reset(&self, p: &mut ProgramBuilder, domain: u32, tmp: Reg) {
        for i in 0..WIDTH {
            p.store(R0, self.base + i, R0);
        }
        p.mov(tmp, domain).store(R0, self.base + RATE, tmp);
    }

    /// `state[i] = v` (overwrite; for fixed-size inputs).
    pub fn set(&self, p: &mut ProgramBuilder, i: u32, v: Reg) {
        p.store(R0, self.base + i, v);
    }

    /// `state[i] += v` (absorb into the rate).
    pub fn absorb(&self, p: &mut ProgramBuilder, i: u32, v: Reg, tmp: Reg) {
        p.load(tmp, R0, self.base + i).add(tmp, tmp, v).store(R0, self.base + i, tmp);
    }

    /// Applies the permutation.
    pub fn permute(&self, p: &mut ProgramBuilder) {
        p.hash(R0, self.base);
    }

    /// Loads the first [`DIGEST_WORDS`] words of the state into `out`.
    pub fn squeeze(&self, p: &mut ProgramBuilder, out: [Reg; DIGEST_WORDS]) {
        for (i, r) in out.into_iter().enumerate() {
            p.load(r, R0, self.base + i as u32);
        }
    }

    /// `out = H(domain; words)` for a fixed list of up to [`RATE`] registers.
    pub fn hash_words(&self, p: &mut ProgramBuilder, domain: u32, words: &[Reg], out: [Reg; DIGEST_WORDS], tmp: Reg) {
        assert!(words.len() <= RATE as usize, "hash_words takes at most {RATE} words");
        self.reset(p, domain, tmp);
        for (i, &w) in words.iter().enumerate() {
            self.set(p, i as u32, w);
        }
        self.permute(p);
        self.squeeze(p, out);
    }

    /// Merkle compression: `out = H(domain; left || right)`.
    pub fn compress(
        &self,
        p: &mut ProgramBuilder,
        domain: u32,
        left: [Reg; DIGEST_WORDS],
        right: [Reg; DIGEST_WORDS],
        out: [Reg; DIGEST_WORDS],
        tmp: Reg,
    ) {
        let words: Vec<Reg> = left.into_iter().chain(right).collect();
        self.hash_words(p, domain, &words, out, tmp);
    }
}

/// Writes each register to the public output.
pub fn write_all(p: &mut ProgramBuilder, regs: &[Reg]) {
    for &r in regs {
        p.write(r);
    }
}

/// `d = if c { a } else { b }` for a bit `c` (which the caller has checked):
/// `d = b + c * (a - b)`. `d` must differ from `c` and `b`.
pub fn select(p: &mut ProgramBuilder, d: Reg, c: Reg, a: Reg, b: Reg) {
    p.sub(d, a, b).mul(d, d, c).add(d, d, b);
}
