//! Stwo's proving sequence without its final self-check, so that the
//! soundness tests can hand proofs of bad traces to the verifier. It uses
//! only Stwo's public API and produces exactly what `prove` would, minus the
//! refusal.

use stwo::core::channel::{Channel, MerkleChannel};
use stwo::core::circle::CirclePoint;
use stwo::core::fields::qm31::{SecureField, SECURE_EXTENSION_DEGREE};
use stwo::core::pcs::utils::get_lifting_log_size;
use stwo::core::proof::StarkProof;
use stwo::prover::backend::BackendForChannel;
use stwo::prover::ComponentProvers;
use stwo::prover::{CommitmentSchemeProver, ComponentProver};

pub(crate) fn prove_unchecked<B: BackendForChannel<MC>, MC: MerkleChannel>(
    components: &[&dyn ComponentProver<B>],
    channel: &mut MC::C,
    mut scheme: CommitmentSchemeProver<'_, B, MC>,
) -> StarkProof<MC::H> {
    let n_pre = scheme.trees[0].polynomials.len();
    let provers = ComponentProvers { components: components.to_vec(), n_preprocessed_columns: n_pre };
    let trace = scheme.trace();
    let random_coeff: SecureField = channel.draw_secure_felt();
    let composition = provers.compute_composition_polynomial(
        random_coeff,
        &trace,
        scheme.twiddles,
        scheme.config.fri_config.log_blowup_factor,
    );
    let mut tb = scheme.tree_builder();
    let (left, right) = composition.split_at_mid();
    tb.extend_polys(left.into_coordinate_polys());
    tb.extend_polys(right.into_coordinate_polys());
    tb.commit(channel);
    let oods_point = CirclePoint::<SecureField>::get_random_point(channel);
    let split_log = scheme.trees.last().map(|t| t.commitment.layers.len() as u32 - 1).unwrap_or(0);
    let lifting = get_lifting_log_size(&scheme.config, split_log);
    let max_log_degree_bound = lifting - scheme.config.fri_config.log_blowup_factor;
    let mut points = provers.components().mask_points(oods_point, max_log_degree_bound, false);
    points.push(vec![vec![oods_point]; 2 * SECURE_EXTENSION_DEGREE]);
    StarkProof(scheme.prove_values(points, channel).proof)
}

/// Rewrites the CPU's claimed LogUp sum so that all sums, with the verifier's
/// public terms, add up to zero.
pub(crate) fn balance(
    mut claim: bitsage_air::statement::InteractionClaim,
    statement: &bitsage_air::Statement,
    sizes: &bitsage_air::Claim,
    rels: &bitsage_air::relations::Relations,
) -> bitsage_air::statement::InteractionClaim {
    let public = bitsage_air::verify::public_logup_sum(statement, sizes, rels);
    claim.cpu = -(claim.rom + claim.mem + claim.range + claim.hash + public);
    claim
}
