//! ObelyskVM: a small register machine over the Mersenne-31 field.
//!
//! - Words are M31 elements; 16 registers and word-addressed RAM, all
//!   starting at zero.
//! - Programs are [`Program`]s: instructions plus lookup tables. Write them
//!   with the [`builder::ProgramBuilder`] or in text assembly ([`asm`]).
//!   The instruction set, the word type and the builder are `obelysk-isa`'s,
//!   re-exported here: the guest SDK builds programs with the same crate.
//! - [`exec::execute`] runs a program deterministically on public input and
//!   private advice and returns the [`exec::Trace`] the prover consumes.
//!
//! This crate knows nothing about proofs; `bitsage-air` defines what a proof
//! of a trace means.

pub mod asm;
pub mod exec;
pub mod poseidon2;
pub mod samples;

pub use obelysk_isa::{builder, isa, word};

pub use exec::{execute, ExecError, ExecLimits, Trace};
pub use isa::{Instr, Opcode, Program, ProgramError, Table};
pub use obelysk_isa::M31;
pub use word::NonCanonicalWord;

#[cfg(test)]
mod tests;
