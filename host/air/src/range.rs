//! The range table: `2^k` rows `v` with a lookup multiplicity each, `k` the
//! claim's `range_log_size` (at most 16). The `RangeChain` relation pins the
//! rows to exactly `0..2^k` (the verifier supplies `0` and takes back `2^k`),
//! so no preprocessed column is needed.
//!
//! The prover picks the smallest `k` that holds every value its run checks
//! (a short run's timestamp gaps are small). Any `k <= 16` is sound: a
//! smaller table accepts a subset of the values the 16-bit one does, and
//! every bound argued in [`crate::cpu`] holds for the 16-bit table.

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

/// The largest range table: the checks in [`crate::cpu`] and [`crate::hash`]
/// split values into 16-bit limbs.
pub const MAX_RANGE_LOG_SIZE: u32 = 16;

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
    /// Evaluator for the range table.
    RangeEval,
    RangeCols
);
