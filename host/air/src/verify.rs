//! The verifier: `verify(statement, proof)`.
//!
//! Cost: O(|program| + |input| + |output|) field operations for the LogUp
//! boundary terms, plus the Stwo verifier, which is polylogarithmic in the
//! trace size. It never executes the program.

use num_traits::Zero;
use serde::{Deserialize, Serialize};
use stwo::core::channel::MerkleChannel;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fields::FieldExpOps;
use stwo::core::pcs::{CommitmentSchemeVerifier, PcsConfig};
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::blake2_merkle::{Blake2sMerkleChannel, Blake2sMerkleHasher};
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
#[cfg(not(target_arch = "wasm32"))]
use stwo::core::vcs_lifted::poseidon252_merkle::{Poseidon252MerkleChannel, Poseidon252MerkleHasher};
use stwo::core::verifier::VerificationError;

use crate::memory::{SPACE_RAM, SPACE_REG};
use crate::range::{MAX_RANGE_LOG_SIZE, MIN_RANGE_LOG_SIZE};
use crate::relations::{Rel, Relations};
use crate::rom::rom_tuples;
use crate::shape;
use crate::statement::{Claim, Components, InteractionClaim, Statement, StatementError};
use crate::MIN_LOG_SIZE;

/// Largest CPU trace: keeps every timestamp below 2^26 (see `cpu`).
pub const MAX_CPU_LOG_SIZE: u32 = 23;
pub const MAX_AUX_LOG_SIZE: u32 = 23;

/// A proof: the claim plus the Stwo proof. Receipts carry proofs over Stwo's
/// Blake2s Merkle channel (the default `H`); proofs for the chain use the
/// Poseidon252 one ([`verify_poseidon252`]), which Cairo hashes natively.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "StarkProof<H>: Serialize", deserialize = "StarkProof<H>: Deserialize<'de>"))]
pub struct Proof<H: MerkleHasherLifted = Blake2sMerkleHasher> {
    pub claim: Claim,
    pub interaction: InteractionClaim,
    pub stark: StarkProof<H>,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("invalid statement")]
    Statement(#[from] StatementError),
    #[error("claim out of bounds: {0}")]
    BadClaim(String),
    #[error("proof was made with different proof parameters than the statement asks for")]
    ConfigMismatch,
    #[error("lookup sums do not balance: the trace does not match the program, input and output")]
    LogupImbalance,
    #[error("STARK verification failed")]
    Stark(#[from] VerificationError),
    /// The proof's shape is not what the claimed components produce, or it
    /// holds a word `>= p`. The message names the part.
    #[error("malformed proof: {0}")]
    Malformed(String),
}

/// Checks the claim's sizes against the bounds the AIR supports.
pub fn check_claim(claim: &Claim) -> Result<(), VerifyError> {
    let in_range = |name: &str, v: u32, min: u32, max: u32| {
        if (min..=max).contains(&v) {
            Ok(())
        } else {
            Err(VerifyError::BadClaim(format!("{name} log size {v} not in {min}..={max}")))
        }
    };
    in_range("cpu", claim.cpu_log_size, MIN_LOG_SIZE, MAX_CPU_LOG_SIZE)?;
    in_range("rom", claim.rom_log_size, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE)?;
    in_range("memory", claim.mem_log_size, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE)?;
    in_range("range", claim.range_log_size, MIN_RANGE_LOG_SIZE, MAX_RANGE_LOG_SIZE)?;
    if let Some(hash) = claim.hash_log_size {
        in_range("hash", hash, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE)?;
    }
    if claim.ram_words as u64 + 16 > 1u64 << claim.mem_log_size {
        return Err(VerifyError::BadClaim(format!(
            "{} RAM words do not fit a memory table of 2^{}",
            claim.ram_words, claim.mem_log_size
        )));
    }
    Ok(())
}

fn inv_combine(rels: &Relations, rel: Rel, values: &[M31]) -> SecureField {
    let d: SecureField = rels.combine(rel, values);
    d.inverse()
}

/// The LogUp terms only the verifier adds: the program table, the initial
/// state, the address and range enumerations, and the public input and
/// output.
pub fn public_logup_sum(statement: &Statement, claim: &Claim, rels: &Relations) -> SecureField {
    let m = |v: u32| M31::from(v);
    let mut sum = SecureField::zero();
    for t in rom_tuples(&statement.program) {
        sum += inv_combine(rels, Rel::RomDef, &t);
    }
    sum += inv_combine(rels, Rel::State, &[m(0), m(1), m(0), m(0)]);
    sum += inv_combine(rels, Rel::MemChain, &[m(SPACE_REG), m(0)]);
    sum -= inv_combine(rels, Rel::MemChain, &[m(SPACE_REG), m(obelysk_vm::isa::NUM_REGISTERS as u32)]);
    sum += inv_combine(rels, Rel::MemChain, &[m(SPACE_RAM), m(0)]);
    sum -= inv_combine(rels, Rel::MemChain, &[m(SPACE_RAM), m(claim.ram_words)]);
    sum += inv_combine(rels, Rel::RangeChain, &[m(0)]);
    sum -= inv_combine(rels, Rel::RangeChain, &[m(1 << claim.range_log_size)]);
    for (i, x) in statement.input.iter().enumerate() {
        sum += inv_combine(rels, Rel::Input, &[m(i as u32), crate::felt(*x)]);
    }
    for (j, y) in statement.output.iter().enumerate() {
        sum -= inv_combine(rels, Rel::Output, &[m(j as u32), crate::felt(*y)]);
    }
    sum
}

/// Checks that `proof` proves `statement`.
///
/// Nothing in `statement` or `proof` can make it panic or abort: the
/// statement's words and caps, the claim's bounds and the proof's whole
/// shape are checked before any arithmetic (see [`crate::shape`]); what
/// remains runs under `catch_unwind` as a second line.
pub fn verify(statement: &Statement, proof: &Proof) -> Result<(), VerifyError> {
    verify_with_config(statement, proof, &statement.security.pcs_config(&proof.claim))
}

/// [`verify`] under proof parameters other than the statement's security
/// level's: for benchmarks that compare settings. A proof verified this way
/// has the security `config` gives it, which may be none at all.
pub fn verify_with_config(statement: &Statement, proof: &Proof, config: &PcsConfig) -> Result<(), VerifyError> {
    verify_on::<Blake2sMerkleChannel>(statement, proof, config)
}

/// [`verify`] for a proof made over Stwo's Poseidon252 Merkle channel
/// (`bitsage_prover::prove_poseidon252`): the same statement, claim and AIR,
/// another hash in the transcript and the trees. (Stwo builds the Poseidon252
/// channel for native targets only.)
#[cfg(not(target_arch = "wasm32"))]
pub fn verify_poseidon252(statement: &Statement, proof: &ChainProof) -> Result<(), VerifyError> {
    verify_on::<Poseidon252MerkleChannel>(statement, proof, &statement.security.pcs_config(&proof.claim))
}

/// A proof over the Poseidon252 channel: what the on-chain verifier checks.
#[cfg(not(target_arch = "wasm32"))]
pub type ChainProof = Proof<Poseidon252MerkleHasher>;

/// The query positions the transcript of a Poseidon252 proof draws, sorted
/// (as the verifier opens the trees at them), or the error the verifier
/// stops at before them. For splitting a proof over transactions; it checks
/// nothing the positions do not depend on.
#[cfg(not(target_arch = "wasm32"))]
pub fn query_positions_poseidon252(statement: &Statement, proof: &ChainProof) -> Result<Vec<usize>, VerifyError> {
    let config = statement.security.pcs_config(&proof.claim);
    statement.validate()?;
    check_claim(&proof.claim)?;
    let layout = Components::new(&proof.claim, &Relations::for_layout(), &proof.interaction);
    shape::check_before_stark(&proof.stark, &proof.interaction, &layout, &config)?;
    let (channel, _, rels) = replay::<Poseidon252MerkleChannel>(statement, proof, config);
    let components = Components::new(&proof.claim, &rels, &proof.interaction);
    shape::query_positions::<Poseidon252MerkleChannel>(&channel, &proof.stark, &components, &config)
}

/// The transcript up to the interaction trace's commitment: the config,
/// statement and claim, the trees' roots, the relations drawn, the LogUp sums.
fn replay<MC: MerkleChannel<C: Default + Clone>>(
    statement: &Statement,
    proof: &Proof<MC::H>,
    config: PcsConfig,
) -> (MC::C, CommitmentSchemeVerifier<MC>, Relations) {
    let mut channel = MC::C::default();
    config.mix_into(&mut channel);
    statement.mix_into(&proof.claim, &mut channel);
    let mut scheme = CommitmentSchemeVerifier::<MC>::new(config);
    let sizes = proof.claim.column_log_sizes();
    scheme.commit(proof.stark.commitments[0], &[], &mut channel);
    scheme.commit(proof.stark.commitments[1], &sizes[1], &mut channel);
    let rels = Relations::draw(&mut channel);
    proof.interaction.mix_into(&mut channel);
    scheme.commit(proof.stark.commitments[2], &sizes[2], &mut channel);
    (channel, scheme, rels)
}

/// The verifier, over any of Stwo's Merkle channels.
pub fn verify_on<MC: MerkleChannel<C: Default + Clone>>(
    statement: &Statement,
    proof: &Proof<MC::H>,
    config: &PcsConfig,
) -> Result<(), VerifyError> {
    statement.validate()?;
    check_claim(&proof.claim)?;
    // An absent component has no LogUp sum: a nonzero one would offset an
    // imbalance elsewhere.
    if proof.claim.hash_log_size.is_none() && !proof.interaction.hash.is_zero() {
        return Err(VerifyError::BadClaim("a LogUp sum for the absent hash component".into()));
    }
    let config = *config;
    if proof.stark.config != config {
        return Err(VerifyError::ConfigMismatch);
    }
    // The shape check needs only the claim (sizes) and the relations'
    // layout, not their values: the real relations are drawn below.
    let layout = Components::new(&proof.claim, &Relations::for_layout(), &proof.interaction);
    shape::check_before_stark(&proof.stark, &proof.interaction, &layout, &config)?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify_checked::<MC>(statement, proof, config)))
        .map_err(|p| VerifyError::Malformed(panic_message(p)))?
}

fn verify_checked<MC: MerkleChannel<C: Default + Clone>>(
    statement: &Statement,
    proof: &Proof<MC::H>,
    config: PcsConfig,
) -> Result<(), VerifyError> {
    let (mut channel, mut scheme, rels) = replay::<MC>(statement, proof, config);
    let (channel, scheme) = (&mut channel, &mut scheme);

    if proof.interaction.total() + public_logup_sum(statement, &proof.claim, &rels) != SecureField::zero() {
        return Err(VerifyError::LogupImbalance);
    }
    let components = Components::new(&proof.claim, &rels, &proof.interaction);
    // The rows queried and the hashes opened depend on the query positions,
    // which the transcript fixes: replay it to them and check those counts
    // too before Stwo indexes by them.
    let positions = shape::query_positions::<MC>(channel, &proof.stark, &components, &config)?;
    let lifting = shape::max_log_degree_bound(&components) + config.fri_config.log_blowup_factor;
    let heights: Vec<u32> = scheme.trees.iter().map(|t| t.height).chain([lifting]).collect();
    shape::check_queries(&proof.stark, &positions, &heights)?;
    stwo::core::verifier::verify(&components.as_components(), channel, scheme, proof.stark.clone())?;
    Ok(())
}

/// `e` and each of its sources, once each, joined by `: ` (for answers that
/// are one line of text, such as the node's verdicts).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        // A cause whose text the message already carries is not repeated.
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "verifier panicked".into())
}
