//! The proof's whole shape, checked before Stwo reads any of it.
//!
//! Stwo's verifier trusts the shape of what it is handed. A proof whose
//! interaction column carries one sampled value too few or too many makes the
//! constraint framework assert inside a component's `evaluate`; while that
//! panic unwinds, `LogupAtRow` is dropped unfinalised and asserts again, and
//! a panic during unwinding aborts the process, which no `catch_unwind` can
//! contain. Elsewhere a short column of queried values is an `unwrap`, a long
//! one an `assert`, and a word `>= p` overflows field addition (a panic in
//! debug builds, a wrong value in release).
//!
//! So [`check_before_stark`] compares every length Stwo indexes by with what
//! the claimed components expect, and every field word with `p`, and
//! [`check_queries`] does the same for the parts whose size depends on the
//! query positions (known once the transcript has been replayed up to them).
//! Any difference is [`VerifyError::Malformed`], naming the part. A proof
//! that passes both has exactly the shape an honest prover makes, so Stwo's
//! own checks (Merkle roots, FRI, the DEEP-ALI equation, proof of work) are
//! then the only ones left to fail, and they fail as errors.

use std::ops::Deref;

use stwo::core::air::Components as StwoComponents;
use stwo::core::channel::{Channel, MerkleChannel};
use stwo::core::circle::CirclePoint;
use stwo::core::fields::cm31::CM31;
use stwo::core::fields::m31::{M31, P};
use stwo::core::fields::qm31::{SecureField, QM31, SECURE_EXTENSION_DEGREE};
use stwo::core::fri::{CirclePolyDegreeBound, FriVerifier};
use stwo::core::pcs::PcsConfig;
use stwo::core::poly::line::LinePoly;
use stwo::core::proof::StarkProof;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::verifier::{VerificationError, COMPOSITION_LOG_SPLIT};

use crate::relations::Relations;
use crate::statement::{Claim, Components, InteractionClaim};
use crate::verify::VerifyError;

/// Number of commitment trees: preprocessed (empty), main, interaction,
/// composition.
pub const N_TREES: usize = 4;
const COMPOSITION_COLUMNS: usize = 2 * SECURE_EXTENSION_DEGREE;

fn malformed(msg: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(msg.into())
}

fn m31_ok(v: M31) -> bool {
    v.0 < P
}

fn qm31_ok(v: SecureField) -> bool {
    let QM31(CM31(a, b), CM31(c, d)) = v;
    m31_ok(a) && m31_ok(b) && m31_ok(c) && m31_ok(d)
}

fn all_canonical<'a>(
    vs: impl IntoIterator<Item = &'a SecureField>,
    part: impl FnOnce() -> String,
) -> Result<(), VerifyError> {
    if vs.into_iter().all(|v| qm31_ok(*v)) {
        Ok(())
    } else {
        Err(malformed(format!("{} holds a word that is not a canonical field element", part())))
    }
}

/// The degree bound of the largest committed polynomial: the split
/// composition polynomial's (no lifting is configured).
pub fn max_log_degree_bound(components: &Components) -> u32 {
    let stwo = StwoComponents { components: components.as_components(), n_preprocessed_columns: 0 };
    stwo.composition_log_degree_bound() - COMPOSITION_LOG_SPLIT
}

/// The number of sampled values per column of each tree, as the verifier
/// will ask for them: the components' mask points, then one point for each
/// composition column.
fn expected_samples(components: &Components) -> Vec<Vec<usize>> {
    let stwo = StwoComponents { components: components.as_components(), n_preprocessed_columns: 0 };
    // The counts do not depend on the point; any point on the circle will do.
    let point = CirclePoint::<SecureField>::get_point(1);
    let mask = stwo.mask_points(point, max_log_degree_bound(components), false);
    let mut trees: Vec<Vec<usize>> = mask.iter().map(|tree| tree.iter().map(|col| col.len()).collect()).collect();
    trees.push(vec![1; COMPOSITION_COLUMNS]);
    trees
}

/// An upper bound on the bincode size of any proof of `claim` made with
/// `config`, derived from the shape the claim fixes (every query on its own
/// Merkle path, every FRI layer at full height). A receipt decoder refuses a
/// larger proof before reading it.
pub fn max_proof_bytes(claim: &Claim, config: &PcsConfig) -> usize {
    max_proof_bytes_with(claim, config, BLAKE2S_HASH_BYTES)
}

/// A Blake2s hash's bincode size: 32 bytes.
pub const BLAKE2S_HASH_BYTES: usize = 32;
/// The most bytes a Poseidon252 hash (a felt252) takes in bincode: its serde
/// form is its decimal digits (at most 76 below the field's modulus) after
/// an 8-byte length.
pub const POSEIDON252_HASH_BYTES: usize = 8 + 76;

/// [`max_proof_bytes`] for a Merkle channel whose hashes encode in at most
/// `hash_bytes` bytes.
pub fn max_proof_bytes_with(claim: &Claim, config: &PcsConfig, hash_bytes: usize) -> usize {
    const VEC: usize = 8;
    let hash = hash_bytes;
    const QM31_BYTES: usize = 16;
    let zero = SecureField::from(M31(0));
    let sums = InteractionClaim { cpu: zero, rom: zero, mem: zero, range: zero, hash: zero };
    let components = Components::new(claim, &Relations::for_layout(), &sums);
    let samples = expected_samples(&components);
    let n_q = config.fri_config.n_queries;
    let height = (max_log_degree_bound(&components) + config.fri_config.log_blowup_factor) as usize;
    let cols: usize = samples.iter().map(|t| t.len()).sum();
    let points: usize = samples.iter().flatten().sum();
    let sampled = VEC + N_TREES * VEC + cols * VEC + points * QM31_BYTES;
    let queried = VEC + N_TREES * VEC + cols * (VEC + n_q * 4);
    let merkle = VEC + n_q * height * hash;
    let decommitments = VEC + N_TREES * merkle;
    let fold = 1usize << config.fri_config.fold_step;
    let fri_layer = VEC + n_q * fold * QM31_BYTES + merkle + hash;
    let fri =
        (1 + height) * fri_layer + VEC + (1usize << config.fri_config.log_last_layer_degree_bound) * QM31_BYTES + 4;
    // Config, commitments, proof of work, the two claims: well under 512.
    512 + N_TREES * hash + sampled + queried + decommitments + fri
}

/// Checks everything whose size the claim fixes, and every field word, before
/// any of it reaches arithmetic or Stwo.
pub fn check_before_stark<H: MerkleHasherLifted>(
    stark: &StarkProof<H>,
    interaction: &InteractionClaim,
    components: &Components,
    config: &PcsConfig,
) -> Result<(), VerifyError> {
    let sums = [interaction.cpu, interaction.rom, interaction.mem, interaction.range, interaction.hash];
    all_canonical(&sums, || "the claimed LogUp sums".into())?;

    if stark.commitments.len() != N_TREES {
        return Err(malformed(format!("{} commitments, expected {N_TREES}", stark.commitments.len())));
    }

    // Sampled values: per tree, per column, one value per mask point.
    let expected = expected_samples(components);
    debug_assert_eq!(expected.len(), N_TREES);
    let sampled = &stark.sampled_values;
    if sampled.len() != N_TREES {
        return Err(malformed(format!("sampled values for {} trees, expected {N_TREES}", sampled.len())));
    }
    for (t, (cols, want)) in sampled.iter().zip(&expected).enumerate() {
        if cols.len() != want.len() {
            return Err(malformed(format!(
                "sampled values of tree {t}: {} columns, expected {}",
                cols.len(),
                want.len()
            )));
        }
        for (c, (values, &n)) in cols.iter().zip(want).enumerate() {
            if values.len() != n {
                return Err(malformed(format!(
                    "sampled values of tree {t}, column {c}: {} points, expected {n}",
                    values.len()
                )));
            }
            all_canonical(values, || format!("sampled values of tree {t}, column {c}"))?;
        }
    }

    // Queried values and decommitments: the number of trees and columns here;
    // the number of rows once the query positions are known.
    let queried = &stark.queried_values;
    if queried.len() != N_TREES {
        return Err(malformed(format!("queried values for {} trees, expected {N_TREES}", queried.len())));
    }
    for (t, (cols, want)) in queried.iter().zip(&expected).enumerate() {
        if cols.len() != want.len() {
            return Err(malformed(format!(
                "queried values of tree {t}: {} columns, expected {}",
                cols.len(),
                want.len()
            )));
        }
        for (c, values) in cols.iter().enumerate() {
            if !values.iter().all(|v| m31_ok(*v)) {
                return Err(malformed(format!(
                    "queried values of tree {t}, column {c} hold a word that is not a canonical field element"
                )));
            }
        }
    }
    if stark.decommitments.len() != N_TREES {
        return Err(malformed(format!("{} Merkle decommitments, expected {N_TREES}", stark.decommitments.len())));
    }

    // FRI: the layer count and the last layer's size follow from the
    // composition bound and the configuration.
    let fri = &stark.fri_proof;
    let fri_config = config.fri_config;
    let first_line = max_log_degree_bound(components)
        .checked_sub(fri_config.fold_step)
        .ok_or_else(|| malformed("the trace is too small for the FRI fold step"))?;
    let to_fold = first_line.saturating_sub(fri_config.log_last_layer_degree_bound);
    let want_layers = to_fold.div_ceil(fri_config.fold_step) as usize;
    if fri.inner_layers.len() != want_layers {
        return Err(malformed(format!("{} FRI inner layers, expected {want_layers}", fri.inner_layers.len())));
    }
    let last: &LinePoly = &fri.last_layer_poly;
    let want_last = 1usize << fri_config.log_last_layer_degree_bound;
    let coeffs: &[SecureField] = last.deref();
    // The stored size must be the coefficients' (Stwo reads both).
    if coeffs.len() != want_last || *last != LinePoly::new(coeffs.to_vec()) {
        return Err(malformed(format!(
            "the FRI last layer has {} coefficients or an inconsistent size, expected {want_last}",
            coeffs.len()
        )));
    }
    all_canonical(coeffs, || "the FRI last layer".into())?;
    all_canonical(&fri.first_layer.fri_witness, || "the FRI first layer witness".into())?;
    for (i, layer) in fri.inner_layers.iter().enumerate() {
        all_canonical(&layer.fri_witness, || format!("the witness of FRI inner layer {i}"))?;
    }
    Ok(())
}

/// Replays the transcript from where Stwo's verifier takes it over up to the
/// query positions, as Stwo 2.3's `verify` and `verify_values` draw them, and
/// returns the positions (sorted, distinct). `channel` is the transcript
/// after the interaction commitment.
pub fn query_positions<MC: MerkleChannel>(
    channel: &MC::C,
    stark: &StarkProof<MC::H>,
    components: &Components,
    config: &PcsConfig,
) -> Result<Vec<usize>, VerifyError> {
    let ch = &mut channel.clone();
    let _constraint_coeff = ch.draw_secure_felt();
    MC::mix_root(ch, stark.commitments[N_TREES - 1]);
    let _oods_point = CirclePoint::<SecureField>::get_random_point(ch);
    ch.mix_felts(&stark.sampled_values.clone().flatten_cols());
    let _quotient_coeff = ch.draw_secure_felt();
    let bound = CirclePolyDegreeBound::new(max_log_degree_bound(components));
    let mut fri = FriVerifier::<MC>::commit(ch, config.fri_config, stark.fri_proof.clone(), bound)
        .map_err(VerificationError::from)?;
    if !ch.verify_pow_nonce(config.pow_bits, stark.proof_of_work) {
        return Err(VerificationError::ProofOfWork.into());
    }
    ch.mix_u64(stark.proof_of_work);
    Ok(fri.sample_query_positions(ch))
}

/// How many sibling hashes a Merkle tree of `height` layers needs to open
/// `positions` (sorted, distinct): one per node whose sibling is not itself
/// on a queried path, as the lifted Merkle verifier consumes them.
pub fn merkle_witness_len(positions: &[usize], height: u32) -> usize {
    let mut layer: Vec<usize> = positions.to_vec();
    let mut n = 0;
    for _ in 0..height {
        let mut next = Vec::with_capacity(layer.len());
        let mut i = 0;
        while i < layer.len() {
            if i + 1 < layer.len() && layer[i] ^ 1 == layer[i + 1] {
                i += 2;
            } else {
                n += 1;
                i += 1;
            }
            next.push(layer[i - 1] >> 1);
        }
        next.dedup();
        layer = next;
    }
    n
}

/// Checks the row count of every queried column and the number of
/// decommitment hashes of every tree against the query positions.
pub fn check_queries<H: MerkleHasherLifted>(
    stark: &StarkProof<H>,
    positions: &[usize],
    tree_heights: &[u32],
) -> Result<(), VerifyError> {
    for (t, cols) in stark.queried_values.iter().enumerate() {
        if let Some((c, values)) = cols.iter().enumerate().find(|(_, v)| v.len() != positions.len()) {
            return Err(malformed(format!(
                "queried values of tree {t}, column {c}: {} rows, expected {}",
                values.len(),
                positions.len()
            )));
        }
    }
    for (t, (decommitment, &height)) in stark.decommitments.iter().zip(tree_heights).enumerate() {
        let want = merkle_witness_len(positions, height);
        if decommitment.hash_witness.len() != want {
            return Err(malformed(format!(
                "the decommitment of tree {t} has {} hashes, expected {want}",
                decommitment.hash_witness.len()
            )));
        }
    }
    Ok(())
}

/// Where a proof's bytes go: the payload of each part (field words at 4
/// bytes, extension words at 16, hashes at 32), without the encoding's
/// length prefixes. Each main and interaction column costs one word per
/// query; Merkle paths and the FRI layers grow with the query count and the
/// tree height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProofParts {
    /// The out-of-domain samples of every column.
    pub sampled_values: usize,
    /// Every committed column's value at every queried row.
    pub queried_values: usize,
    /// The Merkle paths that open those rows in the four trees.
    pub trace_merkle: usize,
    /// FRI layers' sibling values.
    pub fri_values: usize,
    /// FRI layers' Merkle paths and roots.
    pub fri_merkle: usize,
    /// The FRI last layer's coefficients.
    pub fri_last_layer: usize,
    /// Tree roots and the proof of work.
    pub other: usize,
}

impl ProofParts {
    pub fn of<H: MerkleHasherLifted>(stark: &StarkProof<H>) -> Self {
        const W: usize = 4;
        const QW: usize = 16;
        const H: usize = 32;
        let fri = &stark.fri_proof;
        let layers = || std::iter::once(&fri.first_layer).chain(&fri.inner_layers);
        ProofParts {
            sampled_values: stark.sampled_values.iter().flatten().map(Vec::len).sum::<usize>() * QW,
            queried_values: stark.queried_values.iter().flatten().map(Vec::len).sum::<usize>() * W,
            trace_merkle: stark.decommitments.iter().map(|d| d.hash_witness.len()).sum::<usize>() * H,
            fri_values: layers().map(|l| l.fri_witness.len()).sum::<usize>() * QW,
            fri_merkle: layers().map(|l| l.decommitment.hash_witness.len() + 1).sum::<usize>() * H,
            fri_last_layer: fri.last_layer_poly.len() * QW,
            other: stark.commitments.len() * H + 8,
        }
    }

    pub fn total(&self) -> usize {
        self.sampled_values
            + self.queried_values
            + self.trace_merkle
            + self.fri_values
            + self.fri_merkle
            + self.fri_last_layer
            + self.other
    }
}

#[cfg(test)]
mod tests {
    use super::merkle_witness_len;

    #[test]
    fn witness_counts_siblings_off_the_queried_paths() {
        // One leaf of a 3-layer tree needs one sibling per layer.
        assert_eq!(merkle_witness_len(&[5], 3), 3);
        // Siblings 4 and 5 share every node above them.
        assert_eq!(merkle_witness_len(&[4, 5], 3), 2);
        // All leaves: nothing to supply.
        assert_eq!(merkle_witness_len(&[0, 1, 2, 3], 2), 0);
        // 0 and 3: siblings at layer 0 (1, 2), then 0 and 1 meet.
        assert_eq!(merkle_witness_len(&[0, 3], 2), 2);
        assert_eq!(merkle_witness_len(&[], 0), 0);
    }
}
