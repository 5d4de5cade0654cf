//! The memory boundary: for every register and RAM word, the initial token
//! `(space, addr, 0, 0)` and the final token `(space, addr, value, ts)`.
//!
//! Addresses must be distinct, or a second initial token would let a read
//! return a stale value. The `MemChain` relation enumerates them: each row
//! consumes `(space, addr)` and produces `(space, addr + 1)`, and the
//! verifier supplies `(0, 0)`, `(1, 0)` and takes back `(0, 16)`,
//! `(1, ram_words)`. So the rows are exactly registers `0..16` and RAM words
//! `0..ram_words`, each once.

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

pub const SPACE_REG: u32 = 0;
pub const SPACE_RAM: u32 = 1;

columns!(MemCols { is_real, space, addr, value, ts } []);

impl<F: AirValue> MemCols<F> {
    pub fn lookups(&self) -> Vec<Lookup<F>> {
        let real = self.is_real.clone();
        let neg = c::<F>(0) - real.clone();
        vec![
            Lookup::new(Rel::Mem, real.clone(), vec![self.space.clone(), self.addr.clone(), c(0), c(0)]),
            Lookup::new(
                Rel::Mem,
                neg.clone(),
                vec![self.space.clone(), self.addr.clone(), self.value.clone(), self.ts.clone()],
            ),
            Lookup::new(Rel::MemChain, neg, vec![self.space.clone(), self.addr.clone()]),
            Lookup::new(Rel::MemChain, real, vec![self.space.clone(), self.addr.clone() + c(1)]),
        ]
    }
    pub fn air(&self, _name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        (self.constraints(), self.lookups())
    }

    pub fn constraints(&self) -> Vec<F> {
        vec![self.is_real.clone() * (self.is_real.clone() - c(1)), self.space.clone() * (self.space.clone() - c(1))]
    }
}

crate::component_eval!(
    /// Evaluator for the memory boundary.
    MemEval,
    MemCols
);
