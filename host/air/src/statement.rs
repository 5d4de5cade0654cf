//! The statement a proof is about, the prover's claim about trace sizes, and
//! the security settings.

use obelysk_vm::isa::{Program, ProgramError};
use obelysk_vm::word::{check_words, de};
use obelysk_vm::M31 as Word;
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
/// `pow_bits + log_blowup · n_queries`; the proof parameters
/// ([`ProofParams::for_claim`]) fix everything but the query count, which
/// the level sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SecurityLevel {
    /// 96 bits: 40 queries (20 for a proof with the hash component). The default.
    #[default]
    Bits96,
    /// 128 bits: 56 queries (28 with the hash component).
    Bits128,
}

/// Proof parameters apart from the query count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofParams {
    pub log_blowup: u32,
    pub pow_bits: u32,
    pub fold_step: u32,
}

/// Blowup 4, 16 grinding bits, FRI folded three layers at a time: what
/// `cargo bench -p bitsage-tests --bench proof_size` chose between (see
/// docs/proofs.md, "Security"). Blowup 4 needs 40 queries where blowup 2
/// needs 76, for proofs 1.6x smaller (165 against 263 KiB at 2^20 rows)
/// and a workload's CPU proof no slower; blowup 8 would shrink small proofs
/// by another fifth but double their CPU time. 16 grinding bits take
/// milliseconds on a CPU; 26 (stwo-cairo's setting) take seconds.
pub const PROOF_PARAMS: ProofParams = ProofParams { log_blowup: 2, pow_bits: 16, fold_step: 3 };

/// A proof with the hash component: blowup 16, so half the queries of
/// [`PROOF_PARAMS`] at the same level. Its 467 columns (335 main, 132
/// LogUp) make the queried values most of such a proof; half the queries
/// (20 where blowup 4 needs 40) bring the three hashing workloads' receipts
/// from 144-162 KiB to under 100, for a larger commitment of a trace that
/// is small (hash programs run thousands of steps, not millions). Same
/// grinding and fold step; the same provable bound (`pow + log_blowup ·
/// queries / 2`: 56 bits at 96, 72 at 128).
pub const HASH_PROOF_PARAMS: ProofParams = ProofParams { log_blowup: 4, pow_bits: 16, fold_step: 3 };

impl ProofParams {
    /// The parameters of a proof of `claim`: [`HASH_PROOF_PARAMS`] when the
    /// claim has the hash component, else [`PROOF_PARAMS`]. The claim comes
    /// first in the proof, so the verifier knows them before it checks
    /// anything else; a prover gains nothing by claiming a component it
    /// does not need, as both reach the level.
    pub fn for_claim(claim: &Claim) -> Self {
        if claim.hash_log_size.is_some() {
            HASH_PROOF_PARAMS
        } else {
            PROOF_PARAMS
        }
    }

    /// The fewest queries that reach `bits` with these parameters.
    pub fn n_queries(self, bits: u32) -> usize {
        bits.saturating_sub(self.pow_bits).div_ceil(self.log_blowup) as usize
    }
}

impl SecurityLevel {
    /// The level's proof parameters for a proof of `claim`; the verifier
    /// requires exactly these.
    pub fn pcs_config(self, claim: &Claim) -> PcsConfig {
        self.pcs_config_with(ProofParams::for_claim(claim))
    }

    /// The level's query count with other parameters (for benchmarks that
    /// compare settings).
    pub fn pcs_config_with(self, p: ProofParams) -> PcsConfig {
        PcsConfig {
            pow_bits: p.pow_bits,
            fri_config: FriConfig::new(0, p.log_blowup, p.n_queries(self.bits()), p.fold_step),
            lifting_log_size: None,
        }
    }

    /// The level's nominal bits: 96 or 128, what job specs and the node's
    /// API name it by.
    pub fn bits(self) -> u32 {
        match self {
            SecurityLevel::Bits96 => 96,
            SecurityLevel::Bits128 => 128,
        }
    }

    /// Stwo's conjectured security of the level with parameters `p`
    /// (`pow_bits + log_blowup · n_queries`): at least [`Self::bits`].
    pub fn conjectured_bits(self, p: ProofParams) -> u32 {
        self.pcs_config_with(p).security_bits()
    }

    /// The security that is proven for the level with parameters `p`: each
    /// query of a proximity test below the Johnson bound rejects a far word
    /// with probability `1 - sqrt(rho)`, so it is worth `log_blowup / 2`
    /// bits, plus the grinding bits (ethSTARK, Theorem 2; the field-size
    /// terms of the extension field QM31, 2^124, are far smaller than this
    /// for every supported trace).
    pub fn provable_bits(self, p: ProofParams) -> u32 {
        let c = self.pcs_config_with(p);
        c.pow_bits + (c.fri_config.log_blowup_factor * c.fri_config.n_queries as u32) / 2
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
    pub input: Vec<Word>,
    #[serde(deserialize_with = "de_output")]
    pub output: Vec<Word>,
    pub security: SecurityLevel,
}

/// The public input and the public output each hold at most this many
/// words. Each input word costs a `read` step and each output word a
/// `write`, so an honest statement is far below it; the cap bounds what a
/// verifier spends on a statement (one LogUp term per word).
pub const MAX_PUBLIC_WORDS: usize = 1 << 18;

fn de_input<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Word>, D::Error> {
    de::words(d, MAX_PUBLIC_WORDS, "input words")
}
fn de_output<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Word>, D::Error> {
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
    /// The Poseidon2 component's log size, or `None` when the proof has no
    /// such component. A run without `hash` calls leaves it out: its 335
    /// columns would be committed and opened for nothing. Leaving it out is
    /// sound because nothing else consumes the CPU's `HashCall` entries, so
    /// a run that does hash cannot balance its LogUp sum without it.
    pub hash_log_size: Option<u32>,
    /// The range table's log size: it holds `0..2^range_log_size`, sixteen
    /// values to a row ([`crate::range`]).
    pub range_log_size: u32,
    /// RAM words `0..ram_words` in the memory boundary.
    pub ram_words: u32,
}

impl Claim {
    /// The present components' log sizes (rows), in allocation order.
    pub fn log_sizes(&self) -> Vec<u32> {
        let range = crate::range::rows_log_size(self.range_log_size);
        [self.cpu_log_size, self.rom_log_size, self.mem_log_size, range].into_iter().chain(self.hash_log_size).collect()
    }

    /// The claim as the transcript mixes it (and the on-chain verifier reads
    /// it): the CPU, program, memory, hash, range log sizes and the RAM
    /// words. An absent hash component is 0, which no present one can be
    /// (every log size is at least `MIN_LOG_SIZE`).
    pub fn words(&self) -> [u32; 6] {
        [
            self.cpu_log_size,
            self.rom_log_size,
            self.mem_log_size,
            self.hash_log_size.unwrap_or(0),
            self.range_log_size,
            self.ram_words,
        ]
    }

    /// The largest component's log size.
    pub fn max_log_size(&self) -> u32 {
        self.log_sizes().into_iter().max().unwrap_or(self.cpu_log_size)
    }

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

fn mix_words(ch: &mut impl Channel, words: &[Word]) {
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
        ch.mix_u32s(&claim.words());
    }
}

/// The components of one proof: four always, the hash component when the
/// claim has it. Columns are allocated in this order, the hash component's
/// last, so its absence moves no other column.
pub struct Components {
    pub cpu: FrameworkComponent<CpuEval>,
    pub rom: FrameworkComponent<RomEval>,
    pub mem: FrameworkComponent<MemEval>,
    pub range: FrameworkComponent<RangeEval>,
    pub hash: Option<FrameworkComponent<HashEval>>,
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
                RangeEval { log_size: crate::range::rows_log_size(claim.range_log_size), rels: rels.clone() },
                sums.range,
            ),
            hash: claim
                .hash_log_size
                .map(|log_size| FrameworkComponent::new(alloc, HashEval { log_size, rels }, sums.hash)),
        }
    }

    /// The present components, in allocation order.
    pub fn as_components(&self) -> Vec<&dyn stwo::core::air::Component> {
        let mut v: Vec<&dyn stwo::core::air::Component> = vec![&self.cpu, &self.rom, &self.mem, &self.range];
        if let Some(h) = &self.hash {
            v.push(h);
        }
        v
    }

    /// Column log sizes per tree (preprocessed, main, interaction).
    pub fn column_log_sizes(&self) -> TreeVec<Vec<u32>> {
        let trees = self.as_components().iter().map(|c| c.trace_log_degree_bounds()).collect::<Vec<_>>();
        TreeVec::concat_cols(trees.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::{Claim, SecurityLevel, HASH_PROOF_PARAMS, PROOF_PARAMS};

    #[test]
    fn each_level_reaches_its_nominal_bits_with_no_spare_query() {
        for p in [PROOF_PARAMS, HASH_PROOF_PARAMS] {
            for level in [SecurityLevel::Bits96, SecurityLevel::Bits128] {
                let config = level.pcs_config_with(p);
                assert!(config.security_bits() >= level.bits(), "{level:?}: {config:?}");
                let f = config.fri_config;
                let fewer = config.pow_bits + f.log_blowup_factor * (f.n_queries as u32 - 1);
                assert!(fewer < level.bits(), "{level:?}: {config:?} has a spare query");
                assert!(level.provable_bits(p) < level.conjectured_bits(p));
            }
        }
        let q = |l: SecurityLevel, p| l.pcs_config_with(p).fri_config.n_queries;
        assert_eq!((q(SecurityLevel::Bits96, PROOF_PARAMS), q(SecurityLevel::Bits128, PROOF_PARAMS)), (40, 56));
        assert_eq!(
            (q(SecurityLevel::Bits96, HASH_PROOF_PARAMS), q(SecurityLevel::Bits128, HASH_PROOF_PARAMS)),
            (20, 28)
        );
        // Both parameter sets prove the same bound at each level.
        for p in [PROOF_PARAMS, HASH_PROOF_PARAMS] {
            assert_eq!((SecurityLevel::Bits96.provable_bits(p), SecurityLevel::Bits128.provable_bits(p)), (56, 72));
        }
    }

    #[test]
    fn a_claim_with_the_hash_component_gets_the_hash_parameters() {
        let mut claim = Claim {
            cpu_log_size: 10,
            rom_log_size: 5,
            mem_log_size: 6,
            hash_log_size: None,
            range_log_size: 8,
            ram_words: 0,
        };
        assert_eq!(SecurityLevel::Bits96.pcs_config(&claim), SecurityLevel::Bits96.pcs_config_with(PROOF_PARAMS));
        claim.hash_log_size = Some(4);
        let c = SecurityLevel::Bits96.pcs_config(&claim);
        assert_eq!((c.fri_config.log_blowup_factor, c.fri_config.n_queries, c.pow_bits), (4, 20, 16));
    }
}
