//! The ObelyskVM AIR, the statement, and the verifier.
//!
//! The AIR is described once, in the components' `FrameworkEval::evaluate`
//! (constraints) and their `lookups` functions (LogUp entries). The same
//! `lookups` functions drive the prover's interaction trace, so prover and
//! verifier cannot disagree about what is looked up.
//!
//! Components (each its own trace, sizes chosen by the prover and bound in
//! the [`statement::Claim`]):
//! - [`cpu`]: one row per executed instruction.
//! - [`rom`]: the program table: instructions and lookup-table entries.
//! - [`memory`]: initial and final value of every register and RAM word.
//! - [`range`]: the 16-bit range table.
//! - [`hash`]: one Poseidon2 permutation per `hash` instruction.
//!
//! No preprocessed columns are used: every fixed table (program, address
//! list, range table) is pinned by a LogUp argument whose boundary terms the
//! verifier computes itself, so verification needs no trusted commitment.

#[cfg(feature = "codegen")]
pub mod cairo;
pub mod columns;
pub mod cpu;
#[cfg(feature = "codegen")]
pub mod expr;
pub mod hash;
pub mod memory;
pub mod range;
pub mod relations;
pub mod rom;
pub mod shape;
pub mod statement;
pub mod verify;

/// A VM word as an element of the proof's base field. Both are a `u32`
/// below `p`, so this is the identity on the representation; words come
/// from the VM and the statement, already canonical.
pub fn felt(w: obelysk_vm::M31) -> stwo::core::fields::m31::M31 {
    stwo::core::fields::m31::M31::from_u32_unchecked(w.0)
}

pub use statement::{Claim, SecurityLevel, Statement, StatementError, MAX_PUBLIC_WORDS};
pub use verify::{verify, VerifyError};

/// Values the AIR description is generic over: symbolic/packed trace values
/// in the evaluator, `PackedM31` in the prover.
pub trait AirValue:
    Clone
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Mul<stwo::core::fields::m31::M31, Output = Self>
    + From<stwo::core::fields::m31::M31>
{
}
impl<T> AirValue for T where
    T: Clone
        + std::ops::Add<Output = T>
        + std::ops::Sub<Output = T>
        + std::ops::Mul<Output = T>
        + std::ops::Mul<stwo::core::fields::m31::M31, Output = T>
        + From<stwo::core::fields::m31::M31>
{
}

/// The constant `v` as an AIR value.
pub fn c<F: AirValue>(v: u32) -> F {
    F::from(stwo::core::fields::m31::M31::from(v))
}

/// Every component is at least this big (the SIMD backend packs 16 rows).
pub const MIN_LOG_SIZE: u32 = 4;
/// Constraints have degree at most 2, so the composition polynomial needs a
/// domain twice the trace size.
pub const LOG_CONSTRAINT_EXPAND: u32 = 1;
