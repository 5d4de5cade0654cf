//! The range table: the values `0..2^k`, `k` the claim's `range_log_size`
//! (at most 16), sixteen to a row. Row `r` holds the base `v = 16·r` and one
//! lookup multiplicity per lane `j < 16` for the value `v + j`, so the
//! component has `2^(k-4)` rows: a 16-bit table is 4,096 rows, no taller
//! than a small program's CPU trace, instead of 65,536 rows that would set
//! every Merkle tree's and FRI layer's height.
//!
//! The `RangeChain` relation pins the bases to exactly `0, 16, ..., 2^k - 16`
//! (each row consumes `v` and produces `v + 16`; the verifier supplies `0`
//! and takes back `2^k`), so the table holds exactly `0..2^k`, each value
//! once, and no preprocessed column is needed.
//!
//! The prover picks the smallest `k` that holds every value its run checks
//! (a short run's timestamp gaps are small). Any `k <= 16` is sound: a
//! smaller table accepts a subset of the values the 16-bit one does, and
//! every bound argued in [`crate::cpu`] holds for the 16-bit table.

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue, MIN_LOG_SIZE};

/// The largest range table: the checks in [`crate::cpu`] and [`crate::hash`]
/// split values into 16-bit limbs.
pub const MAX_RANGE_LOG_SIZE: u32 = 16;
/// Values per row: `2^RANGE_LANES_LOG`.
pub const RANGE_LANES_LOG: u32 = 4;
pub const RANGE_LANES: usize = 1 << RANGE_LANES_LOG;
/// The smallest range table: one component of `2^MIN_LOG_SIZE` rows.
pub const MIN_RANGE_LOG_SIZE: u32 = MIN_LOG_SIZE + RANGE_LANES_LOG;

/// The component's log size (rows) for a table of `0..2^range_log_size`.
pub const fn rows_log_size(range_log_size: u32) -> u32 {
    range_log_size.saturating_sub(RANGE_LANES_LOG)
}

columns!(RangeCols { v } [ mult: RANGE_LANES ]);

impl<F: AirValue> RangeCols<F> {
    pub fn air(&self, _name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        (Vec::new(), self.lookups())
    }

    pub fn lookups(&self) -> Vec<Lookup<F>> {
        let mut v: Vec<Lookup<F>> = (0..RANGE_LANES)
            .map(|j| Lookup::new(Rel::Range, self.mult[j].clone(), vec![self.v.clone() + c(j as u32)]))
            .collect();
        v.push(Lookup::new(Rel::RangeChain, c::<F>(0) - c::<F>(1), vec![self.v.clone()]));
        v.push(Lookup::new(Rel::RangeChain, c(1), vec![self.v.clone() + c(RANGE_LANES as u32)]));
        v
    }
}

crate::component_eval!(
    /// Evaluator for the range table.
    RangeEval,
    RangeCols
);
