//! The 16-bit range table: `2^16` rows `v` with a lookup multiplicity each.
//! The `RangeChain` relation pins the rows to exactly `0..2^16` (the verifier
//! supplies `0` and takes back `2^16`), so no preprocessed column is needed.

use stwo_constraint_framework::{EvalAtRow, FrameworkEval};

use crate::relations::{add_lookups, Lookup, Rel, Relations};
use crate::{c, columns, AirValue, LOG_CONSTRAINT_EXPAND};

pub const RANGE_LOG_SIZE: u32 = 16;

columns!(RangeCols { v, mult } []);

impl<F: AirValue> RangeCols<F> {
    pub fn lookups(&self) -> Vec<Lookup<F>> {
        vec![
            Lookup::new(Rel::Range, self.mult.clone(), vec![self.v.clone()]),
            Lookup::new(Rel::RangeChain, c::<F>(0) - c::<F>(1), vec![self.v.clone()]),
            Lookup::new(Rel::RangeChain, c(1), vec![self.v.clone() + c(1)]),
        ]
    }
}

#[derive(Clone)]
pub struct RangeEval {
    pub rels: Relations,
}

impl FrameworkEval for RangeEval {
    fn log_size(&self) -> u32 {
        RANGE_LOG_SIZE
    }
    fn max_constraint_log_degree_bound(&self) -> u32 {
        RANGE_LOG_SIZE + LOG_CONSTRAINT_EXPAND
    }
    fn evaluate<E: EvalAtRow>(&self, mut eval: E) -> E {
        let cols = RangeCols::read(|| eval.next_trace_mask());
        add_lookups(&mut eval, &self.rels, cols.lookups());
        eval
    }
}
