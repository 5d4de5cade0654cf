//! The statement a proof is about, the prover's claim about trace sizes, and
//! the security settings.

use obelysk_vm::isa::{Program, ProgramError};
use obelysk_vm::word::{check_words, de};
use serde::{Deserialize, Serialize};
use stwo::core::channel::Channel;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fri::FriConfig;
use stwo::core::pcs::{PcsConfig, TreeVec};
use stwo_constraint_framework::{FrameworkComponent, TraceLocationAllocator};

use crate::cpu::CpuEval;
use crate::hash::HashEval;
use crate::memory::MemEval;
use crate::range::RangeEval;
use crate::relations::Relations;
use crate::rom::RomEval;

/// The proof-system security target. Stwo's conjectured security is
/// `pow_bits + log_blowup · n_queries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SecurityLevel {
    /// 96 bits: 20 grinding bits + 76 queries at blowup 2. The default.
    #[default]
    Bits96,
    /// 128 bits: 20 grinding bits + 108 queries at blowup 2.
    Bits128,
}

impl SecurityLevel {
    pub const LOG_BLOWUP: u32 = 1;
    pub const POW_BITS: u32 = 20;

    pub fn n_queries(self) -> usize {
        match self {
            SecurityLevel::Bits96 => 76,
            SecurityLevel::Bits128 => 108,
        }
    }

    pub fn pcs_config(self) -> PcsConfig {
        PcsConfig {
            pow_bits: Self::POW_BITS,
            fri_config: FriConfig::new(0, Self::LOG_BLOWUP, self.n_queries(), 1),
            lifting_log_size: None,
        }
    }

    pub fn bits(self) -> u32 {
        self.pcs_config().security_bits()
    }
}

/// What a proof proves: some execution of `program` halts, reading exactly
/// `input`, with any private advice, and writing exactly `output`.
///
/// Every word is canonical (below `p`) and the input and output hold at most
/// [`MAX_PUBLIC_WORDS`] each: [`Statement::validate`] checks it, and decoding
/// refuses anything else before allocating it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub program: Program,
    #[serde(deserialize_with = "de_input")]
    pub input: Vec<M31>,
    #[serde(deserialize_with = "de_output")]
    pub output: Vec<M31>,
    pub security: SecurityLevel,
}

/// The public input and the public output each hold at most this many
/// words. Each input word costs a `read` step and each output word a
/// `write`, so an honest statement is far below it; the cap bounds what a
/// verifier spends on a statement (one LogUp term per word).
pub const MAX_PUBLIC_WORDS: usize = 1 << 18;

fn de_input<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<M31>, D::Error> {
    de::words(d, MAX_PUBLIC_WORDS, "input words")
}
fn de_output<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<M31>, D::Error> {
    de::words(d, MAX_PUBLIC_WORDS, "output words")
}

/// Why a statement is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("public {part} word {index} is {value}, not a canonical field element (must be below 2^31 - 1)")]
    NonCanonical { part: &'static str, index: usize, value: u32 },
    #[error("public {part} has {len} words; the limit is {MAX_PUBLIC_WORDS}")]
    TooLong { part: &'static str, len: usize },
}

impl Statement {
    /// Checks the program, the word caps, and that every word is canonical.
    pub fn validate(&self) -> Result<(), StatementError> {
        self.program.validate()?;
        for (part, ws) in [("input", &self.input), ("output", &self.output)] {
            if ws.len() > MAX_PUBLIC_WORDS {
                return Err(StatementError::TooLong { part, len: ws.len() });
            }
            check_words(ws).map_err(|(index, w)| StatementError::NonCanonical { part, index, value: w.0 })?;
        }
        Ok(())
    }
}

/// Trace sizes chosen by the prover. Part of the proof, mixed into the
/// transcript and checked against bounds by the verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub cpu_log_size: u32,
    pub rom_log_size: u32,
    pub mem_log_size: u32,
    pub hash_log_size: u32,
    /// RAM words `0..ram_words` in the memory boundary.
    pub ram_words: u32,
}

impl Claim {
    /// Column log sizes per tree (preprocessed, main, interaction) of a proof
    /// with this claim.
    pub fn column_log_sizes(&self) -> TreeVec<Vec<u32>> {
        let zero = SecureField::from(M31(0));
        let sums = InteractionClaim { cpu: zero, rom: zero, mem: zero, range: zero, hash: zero };
        Components::new(self, &Relations::for_layout(), &sums).column_log_sizes()
    }
}

/// The LogUp sum of each component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InteractionClaim {
    pub cpu: SecureField,
    pub rom: SecureField,
    pub mem: SecureField,
    pub range: SecureField,
    pub hash: SecureField,
}

impl InteractionClaim {
    pub fn total(&self) -> SecureField {
        self.cpu + self.rom + self.mem + self.range + self.hash
    }
    pub fn mix_into(&self, ch: &mut impl Channel) {
        ch.mix_felts(&[self.cpu, self.rom, self.mem, self.range, self.hash]);
    }
}

fn mix_words(ch: &mut impl Channel, words: &[M31]) {
    ch.mix_u64(words.len() as u64);
    ch.mix_u32s(&words.iter().map(|w| w.0).collect::<Vec<_>>());
}

impl Statement {
    /// Binds the statement and the claim into the Fiat–Shamir transcript,
    /// before any trace is committed.
    pub fn mix_into(&self, claim: &Claim, ch: &mut impl Channel) {
        let digest = self.program.digest();
        let words: Vec<u32> = digest.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        ch.mix_u32s(&words);
        mix_words(ch, &self.input);
        mix_words(ch, &self.output);
        ch.mix_u32s(&[
            claim.cpu_log_size,
            claim.rom_log_size,
            claim.mem_log_size,
            claim.hash_log_size,
            claim.ram_words,
        ]);
    }
}

/// The five components of one proof.
pub struct Components {
    pub cpu: FrameworkComponent<CpuEval>,
    pub rom: FrameworkComponent<RomEval>,
    pub mem: FrameworkComponent<MemEval>,
    pub range: FrameworkComponent<RangeEval>,
    pub hash: FrameworkComponent<HashEval>,
}

impl Components {
    pub fn new(claim: &Claim, rels: &Relations, sums: &InteractionClaim) -> Self {
        let alloc = &mut TraceLocationAllocator::default();
        let rels = rels.clone();
        Components {
            cpu: FrameworkComponent::new(alloc, CpuEval { log_size: claim.cpu_log_size, rels: rels.clone() }, sums.cpu),
            rom: FrameworkComponent::new(alloc, RomEval { log_size: claim.rom_log_size, rels: rels.clone() }, sums.rom),
            mem: FrameworkComponent::new(alloc, MemEval { log_size: claim.mem_log_size, rels: rels.clone() }, sums.mem),
            range: FrameworkComponent::new(
                alloc,
                RangeEval { log_size: crate::range::RANGE_LOG_SIZE, rels: rels.clone() },
                sums.range,
            ),
            hash: FrameworkComponent::new(alloc, HashEval { log_size: claim.hash_log_size, rels }, sums.hash),
        }
    }

    pub fn as_components(&self) -> Vec<&dyn stwo::core::air::Component> {
        vec![&self.cpu, &self.rom, &self.mem, &self.range, &self.hash]
    }

    /// Column log sizes per tree (preprocessed, main, interaction).
    pub fn column_log_sizes(&self) -> TreeVec<Vec<u32>> {
        let trees = self.as_components().iter().map(|c| c.trace_log_degree_bounds()).collect::<Vec<_>>();
        TreeVec::concat_cols(trees.into_iter())
    }
}
