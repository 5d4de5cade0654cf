// Stwo 2.3's STARK verifier (`stwo::core::verifier::verify`) for the
// Poseidon252 Merkle channel, end to end for one component: the
// preprocessed and trace roots mixed, the constraint randomness drawn, the
// composition polynomial's root mixed, the out-of-domain point drawn, the
// composition polynomial's value there (from its two halves' sampled
// coordinates) checked against the component's constraints evaluated on the
// sampled trace values and divided by the domain's vanishing polynomial, and
// then the commitment scheme's opening of every tree (`pcs::verify`).
//
// The component here is the one the end-to-end test proves: `n` columns
// where `c[i] = c[i-2]^2 + c[i-1]^2` for `i >= 2` on every row (Stwo's wide
// Fibonacci). Our own AIR's constraints are generated, not written here.
use super::channel::{Channel, ChannelTrait};
use super::fields::{QM31, qm31, qm31_add, qm31_inv, qm31_mul, qm31_sub};
use super::pcs::{PcsConfig, PcsError, PcsProof, SecurePoint};

#[derive(Drop, Serde, Debug)]
pub struct StarkProof {
    // Roots of the preprocessed, trace and composition trees.
    pub commitments: Array<felt252>,
    pub pcs: PcsProof,
}

#[derive(Copy, Drop, Debug, PartialEq)]
pub enum StarkError {
    Malformed,
    OodsNotMatching,
    Pcs: PcsError,
}

fn qm31_one() -> QM31 {
    qm31(1, 0, 0, 0)
}

// `2x^2 - 1`.
pub fn double_x(x: QM31) -> QM31 {
    let sx = qm31_mul(x, x);
    qm31_sub(qm31_add(sx, sx), qm31_one())
}

// `CirclePoint::get_random_point`: `t` drawn, then `((1 - t^2), 2t) / (1 + t^2)`.
pub fn random_point(ref channel: Channel) -> SecurePoint {
    let [a, b, c, d] = channel.draw_secure_felt();
    let t = qm31(a, b, c, d);
    let t2 = qm31_mul(t, t);
    let inv = qm31_inv(qm31_add(t2, qm31_one()));
    SecurePoint { x: qm31_mul(qm31_sub(qm31_one(), t2), inv), y: qm31_mul(qm31_add(t, t), inv) }
}

// `QM31::from_partial_evals`: `Σ v_k e_k` over the basis `1, i, u, iu`.
pub fn from_partial_evals(v: Span<QM31>) -> QM31 {
    let mut res = *v[0];
    res = qm31_add(res, qm31_mul(*v[1], qm31(0, 1, 0, 0)));
    res = qm31_add(res, qm31_mul(*v[2], qm31(0, 0, 1, 0)));
    qm31_add(res, qm31_mul(*v[3], qm31(0, 0, 0, 1)))
}

// The test component's constraints, in the order it adds them.
fn squares_constraints(values: Span<QM31>) -> Array<QM31> {
    let mut out = array![];
    let mut i: u32 = 2;
    while i < values.len() {
        let (a, b) = (*values[i - 2], *values[i - 1]);
        out.append(qm31_sub(*values[i], qm31_add(qm31_mul(a, a), qm31_mul(b, b))));
        i += 1;
    }
    out
}

// Verifies `proof` of the test component with `n_columns` columns of
// `2^log_size` rows, on a fresh transcript in `channel`.
pub fn verify_squares(
    ref channel: Channel, config: PcsConfig, log_size: u32, n_columns: u32, proof: @StarkProof,
) -> Result<(), StarkError> {
    if proof.commitments.len() != 3 || n_columns < 3 || log_size == 0 || log_size > 24 {
        return Result::Err(StarkError::Malformed);
    }
    let roots = proof.commitments.span();
    channel.mix_root(*roots[0]);
    channel.mix_root(*roots[1]);
    // Degree-2 constraints: the composition polynomial's log degree bound is
    // `log_size + 1`, split in two halves of `log_size`.
    let max_log_degree_bound = log_size;
    let [a, b, c, d] = channel.draw_secure_felt();
    let random_coeff = qm31(a, b, c, d);
    channel.mix_root(*roots[2]);
    let oods = random_point(ref channel);

    // The composition's value at the point, from its sampled halves.
    let sampled = proof.pcs.sampled_values;
    if sampled.len() != 3 || sampled[1].len() != n_columns || sampled[2].len() != 8 {
        return Result::Err(StarkError::Malformed);
    }
    let mut trace: Array<QM31> = array![];
    for col in sampled[1].span() {
        if col.len() != 1 {
            return Result::Err(StarkError::Malformed);
        }
        trace.append(*col[0]);
    }
    let mut composition: Array<QM31> = array![];
    for col in sampled[2].span() {
        if col.len() != 1 {
            return Result::Err(StarkError::Malformed);
        }
        composition.append(*col[0]);
    }
    // `oods.repeated_double(max_log_degree_bound - 1).x`, which is also the
    // vanishing polynomial of the canonic coset of that size at the point.
    let mut x = oods.x;
    let mut k: u32 = 1;
    while k < max_log_degree_bound {
        x = double_x(x);
        k += 1;
    }
    let composition = composition.span();
    let value = qm31_add(from_partial_evals(composition.slice(0, 4)), qm31_mul(x, from_partial_evals(composition.slice(4, 4))));
    let denom_inverse = qm31_inv(x);
    let mut acc = qm31(0, 0, 0, 0);
    for constraint in squares_constraints(trace.span()) {
        acc = qm31_add(qm31_mul(acc, random_coeff), qm31_mul(denom_inverse, constraint));
    }
    if acc != value {
        return Result::Err(StarkError::OodsNotMatching);
    }

    // Open every tree: the trace and composition columns at the point.
    let mut trace_sizes: Array<u32> = array![];
    let mut trace_points: Array<Span<SecurePoint>> = array![];
    let mut i: u32 = 0;
    while i < n_columns {
        trace_sizes.append(log_size);
        trace_points.append(array![oods].span());
        i += 1;
    }
    let mut composition_sizes: Array<u32> = array![];
    let mut composition_points: Array<Span<SecurePoint>> = array![];
    let mut i: u32 = 0;
    while i < 8 {
        composition_sizes.append(max_log_degree_bound);
        composition_points.append(array![oods].span());
        i += 1;
    }
    let empty_sizes: Array<u32> = array![];
    let empty_points: Array<Span<SecurePoint>> = array![];
    let sizes = array![empty_sizes.span(), trace_sizes.span(), composition_sizes.span()];
    let points = array![empty_points.span(), trace_points.span(), composition_points.span()];
    match super::pcs::verify(ref channel, config, roots, sizes.span(), points.span(), proof.pcs) {
        Result::Ok(()) => Result::Ok(()),
        Result::Err(e) => Result::Err(StarkError::Pcs(e)),
    }
}

#[starknet::interface]
pub trait IStwoStark<TContractState> {
    // 0 when the proof verifies, else 1 malformed, 2 OODS mismatch, 3 the
    // commitment scheme's opening.
    fn verify_squares(
        self: @TContractState, config: PcsConfig, log_size: u32, n_columns: u32, proof: StarkProof,
    ) -> u32;
}

// The verifier as a contract, for tests on a chain.
#[starknet::contract]
pub mod StwoStark {
    use super::super::channel::ChannelTrait;
    use super::StarkError;

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoStarkImpl of super::IStwoStark<ContractState> {
        fn verify_squares(
            self: @ContractState, config: super::PcsConfig, log_size: u32, n_columns: u32, proof: super::StarkProof,
        ) -> u32 {
            let mut channel = ChannelTrait::new();
            match super::verify_squares(ref channel, config, log_size, n_columns, @proof) {
                Result::Ok(()) => 0,
                Result::Err(StarkError::Malformed) => 1,
                Result::Err(StarkError::OodsNotMatching) => 2,
                Result::Err(StarkError::Pcs(_)) => 3,
            }
        }
    }
}
