//! The Poseidon2 component: one row per `hash` instruction.
//!
//! A row consumes `(base, clk)` from `HashCall`, reads the 16 RAM words at
//! `base..base+16` through the memory argument (timestamp `4·clk + 2`, as the
//! CPU's RAM slot), applies the permutation, and writes the result back.
//! Each S-box `s^5` uses two columns, `x2 = s²` and `out = x2²·s` (degree 3).

use obelysk_vm::poseidon2::{
    external_layer, internal_layer, round_constants, FULL_ROUNDS, HALF_FULL_ROUNDS, PARTIAL_ROUNDS, WIDTH,
};
use stwo::core::fields::m31::M31;

use crate::cpu::TS_HI_SHIFT;
use crate::memory::SPACE_RAM;
use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

columns!(HashCols { is_real, base, clk } [
    input: WIDTH,
    ts_lo: WIDTH,
    ts_hi: WIDTH,
    full_x2: FULL_ROUNDS * WIDTH,
    full_out: FULL_ROUNDS * WIDTH,
    partial_x2: PARTIAL_ROUNDS,
    partial_out: PARTIAL_ROUNDS,
]);

impl<F: AirValue> HashCols<F> {
    /// Runs the permutation symbolically. Returns the S-box constraints and
    /// the output state (linear in the columns).
    pub fn permutation(&self) -> (Vec<F>, [F; WIDTH]) {
        let rc = round_constants();
        let mut cons = Vec::with_capacity(2 * (FULL_ROUNDS * WIDTH + PARTIAL_ROUNDS));
        let mut sbox = |s: F, x2: &F, out: &F, cons: &mut Vec<F>| {
            cons.push(x2.clone() - s.clone() * s.clone());
            cons.push(out.clone() - x2.clone() * x2.clone() * s);
            out.clone()
        };
        let mut st: [F; WIDTH] = external_layer(&self.input);
        let full = |r: usize, st: &[F; WIDTH], cons: &mut Vec<F>, sbox: &mut dyn FnMut(F, &F, &F, &mut Vec<F>) -> F| {
            let outs: [F; WIDTH] = std::array::from_fn(|i| {
                let k = r * WIDTH + i;
                sbox(st[i].clone() + F::from(rc.full[r][i]), &self.full_x2[k], &self.full_out[k], cons)
            });
            external_layer(&outs)
        };
        for r in 0..HALF_FULL_ROUNDS {
            st = full(r, &st, &mut cons, &mut sbox);
        }
        for r in 0..PARTIAL_ROUNDS {
            st[0] = sbox(st[0].clone() + F::from(rc.partial[r]), &self.partial_x2[r], &self.partial_out[r], &mut cons);
            st = internal_layer(&st);
        }
        for r in HALF_FULL_ROUNDS..FULL_ROUNDS {
            st = full(r, &st, &mut cons, &mut sbox);
        }
        (cons, st)
    }

    /// Constraints and lookups, running the permutation once.
    pub fn air(&self) -> (Vec<F>, Vec<Lookup<F>>) {
        let (mut cons, out) = self.permutation();
        cons.push(self.is_real.clone() * (self.is_real.clone() - c(1)));
        (cons, self.lookups_for_output(&out))
    }

    pub fn lookups(&self) -> Vec<Lookup<F>> {
        self.lookups_for_output(&self.permutation().1)
    }

    /// The LogUp entries, given the permutation output from [`Self::permutation`].
    pub fn lookups_for_output(&self, out: &[F; WIDTH]) -> Vec<Lookup<F>> {
        let real = self.is_real.clone();
        let neg = c::<F>(0) - real.clone();
        let ts = self.clk.clone() * M31(4) + c(2);
        let mut v = vec![Lookup::new(Rel::HashCall, neg.clone(), vec![self.base.clone(), self.clk.clone()])];
        for i in 0..WIDTH {
            let addr = self.base.clone() + c(i as u32);
            let prev_ts =
                ts.clone() - c(1) - self.ts_lo[i].clone() - self.ts_hi[i].clone() * M31(1 << 16);
            v.push(Lookup::new(Rel::Mem, neg.clone(), vec![c(SPACE_RAM), addr.clone(), self.input[i].clone(), prev_ts]));
            v.push(Lookup::new(Rel::Mem, real.clone(), vec![c(SPACE_RAM), addr, out[i].clone(), ts.clone()]));
            v.push(Lookup::new(Rel::Range, neg.clone(), vec![self.ts_lo[i].clone()]));
            v.push(Lookup::new(Rel::Range, neg.clone(), vec![self.ts_hi[i].clone() * M31(TS_HI_SHIFT)]));
        }
        v
    }
}

/// Fills the permutation columns for `input` (the prover's side of
/// [`HashCols::permutation`]).
pub fn fill_permutation(input: [M31; WIDTH], x2: &mut [M31], out: &mut [M31], px2: &mut [M31], pout: &mut [M31]) {
    let rc = round_constants();
    let mut st = external_layer(&input);
    let mut full = |r: usize, st: &mut [M31; WIDTH]| {
        for i in 0..WIDTH {
            let s = st[i] + rc.full[r][i];
            let k = r * WIDTH + i;
            x2[k] = s * s;
            out[k] = x2[k] * x2[k] * s;
            st[i] = out[k];
        }
        *st = external_layer(st);
    };
    for r in 0..HALF_FULL_ROUNDS {
        full(r, &mut st);
    }
    for r in 0..PARTIAL_ROUNDS {
        let s = st[0] + rc.partial[r];
        px2[r] = s * s;
        pout[r] = px2[r] * px2[r] * s;
        st[0] = pout[r];
        st = internal_layer(&st);
    }
    for r in HALF_FULL_ROUNDS..FULL_ROUNDS {
        full(r, &mut st);
    }
}

crate::component_eval!(
    /// Evaluator for the Poseidon2 component.
    HashEval,
    HashCols
);
