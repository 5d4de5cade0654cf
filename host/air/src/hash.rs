//! The Poseidon2 component: one row per `hash` instruction.
//!
//! A row consumes `(base, clk)` from `HashCall`, reads the 16 RAM words at
//! `base..base+16` through the memory argument (timestamp `4·clk + 2`, as the
//! CPU's RAM slot), applies the permutation, and writes the result back.
//! Each S-box `s^5` uses two columns, `x2 = s²` and `out = x2²·s` (degree 3).

use obelysk_vm::poseidon2::{permute_with, permute_with_layers, Sbox, FULL_ROUNDS, PARTIAL_ROUNDS, WIDTH};
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

impl<T> HashCols<T> {
    /// The `(x2, out)` columns of one S-box.
    pub fn sbox(&self, which: Sbox) -> (&T, &T) {
        match which {
            Sbox::Full { round, lane } => (&self.full_x2[round * WIDTH + lane], &self.full_out[round * WIDTH + lane]),
            Sbox::Partial { round } => (&self.partial_x2[round], &self.partial_out[round]),
        }
    }

    pub fn sbox_mut(&mut self, which: Sbox) -> (&mut T, &mut T) {
        match which {
            Sbox::Full { round, lane } => {
                (&mut self.full_x2[round * WIDTH + lane], &mut self.full_out[round * WIDTH + lane])
            }
            Sbox::Partial { round } => (&mut self.partial_x2[round], &mut self.partial_out[round]),
        }
    }
}

impl HashCols<M31> {
    /// Fills the S-box columns from `input` (the prover's side of
    /// [`HashCols::permutation`]).
    pub fn fill_permutation(&mut self) {
        let input = self.input;
        permute_with(&input, |s, which| {
            let (x2, out) = self.sbox_mut(which);
            *x2 = s * s;
            *out = *x2 * *x2 * s;
            *out
        });
    }
}

impl<F: AirValue> HashCols<F> {
    /// Runs the permutation symbolically. Returns the S-box constraints and
    /// the output state (linear in the columns).
    pub fn permutation(&self) -> (Vec<F>, [F; WIDTH]) {
        self.permutation_named(&mut |v| v)
    }

    /// [`Self::permutation`], passing the state after every linear layer
    /// through `name` (an evaluator's `add_intermediate`).
    pub fn permutation_named(&self, name: &mut dyn FnMut(F) -> F) -> (Vec<F>, [F; WIDTH]) {
        let mut cons = Vec::with_capacity(2 * (FULL_ROUNDS * WIDTH + PARTIAL_ROUNDS));
        let out = permute_with_layers(
            &self.input,
            |s, which| {
                let (x2, out) = self.sbox(which);
                cons.push(x2.clone() - s.clone() * s.clone());
                cons.push(out.clone() - x2.clone() * x2.clone() * s);
                out.clone()
            },
            |st| st.iter_mut().for_each(|v| *v = name(v.clone())),
        );
        (cons, out)
    }

    /// Constraints and lookups, running the permutation once.
    pub fn air(&self, name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        let (mut cons, out) = self.permutation_named(name);
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
            let prev_ts = ts.clone() - c(1) - self.ts_lo[i].clone() - self.ts_hi[i].clone() * M31(1 << 16);
            v.push(Lookup::new(
                Rel::Mem,
                neg.clone(),
                vec![c(SPACE_RAM), addr.clone(), self.input[i].clone(), prev_ts],
            ));
            v.push(Lookup::new(Rel::Mem, real.clone(), vec![c(SPACE_RAM), addr, out[i].clone(), ts.clone()]));
            v.push(Lookup::new(Rel::Range, neg.clone(), vec![self.ts_lo[i].clone()]));
            v.push(Lookup::new(Rel::Range, neg.clone(), vec![self.ts_hi[i].clone() * M31(TS_HI_SHIFT)]));
        }
        v
    }
}

crate::component_eval!(
    /// Evaluator for the Poseidon2 component.
    HashEval,
    HashCols
);
