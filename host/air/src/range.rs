//! The 16-bit range table: `2^16` rows `v` with a lookup multiplicity each.
//! The `RangeChain` relation pins the rows to exactly `0..2^16` (the verifier
//! supplies `0` and takes back `2^16`), so no preprocessed column is needed.

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

pub const RANGE_LOG_SIZE: u32 = 16;

columns!(RangeCols { v, mult } []);

impl<F: AirValue> RangeCols<F> {
    pub fn air(&self, _name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        (Vec::new(), self.lookups())
    }

    pub fn lookups(&self) -> Vec<Lookup<F>> {
        vec![
            Lookup::new(Rel::Range, self.mult.clone(), vec![self.v.clone()]),
            Lookup::new(Rel::RangeChain, c::<F>(0) - c::<F>(1), vec![self.v.clone()]),
            Lookup::new(Rel::RangeChain, c(1), vec![self.v.clone() + c(1)]),
        ]
    }
}

crate::component_eval!(
    /// Evaluator for the range table (log size is always `RANGE_LOG_SIZE`).
    RangeEval,
    RangeCols
);
