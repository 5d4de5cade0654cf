//! The ObelyskVM instruction set, shared by the host and the guest SDK.
//!
//! - [`M31`]: the VM's word, an element of the Mersenne-31 field, with the
//!   one rule every word from outside passes ([`word`], [`word::de`]).
//! - [`Opcode`], [`Instr`], [`Table`], [`Program`]: what a program is, how
//!   [`Program::validate`] decides it is well formed, and its digest.
//! - [`ProgramBuilder`] with [`Reg`], [`Operand`], [`Label`], [`TableId`]:
//!   how programs are written, with loops and assertion gadgets; [`gadgets`]
//!   adds a Poseidon2 sponge and selection on top of it.
//!
//! The crate knows nothing of execution or proofs (`obelysk-vm` executes,
//! `bitsage-air` proves), and depends on no proof system, so the guest SDK
//! compiles it to wasm32 as it is. The host and the guest therefore validate,
//! encode and digest a program with the same code.

pub mod builder;
pub mod field;
pub mod gadgets;
pub mod isa;
pub mod word;

pub use builder::{
    BuildError, Label, Operand, ProgramBuilder, Reg, TableId, MAX_RANGE_BOUND, R0, R1, R10, R11, R12, R13, R14, R15,
    R2, R3, R4, R5, R6, R7, R8, R9,
};
pub use field::{M31, P};
pub use isa::{
    Instr, Opcode, Program, ProgramError, Table, HASH_WIDTH, LT_BITS, MAX_PROGRAM_LEN, MAX_TABLES, MAX_TABLE_NAME_LEN,
    NUM_REGISTERS,
};
pub use word::{check_words, is_canonical, word, words, NonCanonicalWord};
