// Stwo 2.3's commitment-scheme verifier (`CommitmentSchemeVerifier`) for the
// Poseidon252 Merkle channel: the trees' roots mixed as committed, the
// sampled values mixed and the quotient randomness drawn, FRI's commit
// phase, the proof of work, the query positions, every tree opened at them
// (lifted Merkle trees), the DEEP quotients of the sampled values computed at
// each query (`fri_answers`, with the periodicity samples of two-sample
// columns), and FRI's decommitment on them. Checked against Stwo's own prover
// and verifier on a devnet by `tests/all/onchain.rs`.
use super::channel::{Channel, ChannelTrait};
use super::circle::{CircleDomainTrait, bit_reverse_index, index_to_point, pow2, subgroup_gen};
use super::fields::{
    CM31, P, QM31, cm31_mul, cm31_sub, m31_add, m31_batch_inv, m31_mul, m31_neg, m31_sub, qm31, qm31_add, qm31_mul,
    qm31_scale, qm31_sub,
    qm31_words,
};
use super::fri::{FriConfig, FriProof};
use super::{fri, merkle};

#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct PcsConfig {
    pub pow_bits: u32,
    pub fri_config: FriConfig,
}

// A point on the circle over QM31.
#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct SecurePoint {
    pub x: QM31,
    pub y: QM31,
}

#[derive(Drop, Serde, Debug)]
pub struct PcsProof {
    // Per tree, per column, the values at the column's sample points.
    pub sampled_values: Array<Array<Array<QM31>>>,
    // Per tree, the Merkle witness.
    pub decommitments: Array<Array<felt252>>,
    // Per tree, per column, the value at each query position.
    pub queried_values: Array<Array<Array<u32>>>,
    pub proof_of_work: u64,
    pub fri_proof: FriProof,
}

#[derive(Copy, Drop, Debug, PartialEq)]
pub enum PcsError {
    // Shapes that do not match the commitments, or trees of unequal heights.
    Malformed,
    ProofOfWork,
    // A tree's decommitment, by tree index.
    Merkle: u32,
    Fri: fri::FriError,
    // A sample point whose line through its conjugate is undefined.
    DegenerateSample,
}

fn conj(v: QM31) -> QM31 {
    QM31 { a: v.a, b: CM31 { a: m31_sub(0, v.b.a), b: m31_sub(0, v.b.b) } }
}

// `p + q` for `q` on the base circle.
pub fn add_base_point(p: SecurePoint, qx: u32, qy: u32) -> SecurePoint {
    SecurePoint {
        x: qm31_sub(qm31_scale(p.x, qx), qm31_scale(p.y, qy)), y: qm31_add(qm31_scale(p.x, qy), qm31_scale(p.y, qx)),
    }
}

// One sampled value's place in a query's row and its randomness power, the
// power's coordinates as felts for lazy sums.
#[derive(Copy, Drop)]
struct Term {
    slot: u32,
    power: [felt252; 4],
}

// The samples at one point. With `complex_conjugate_line_coeffs` per
// sample, `a_k = power_k (conj(v_k) - v_k)`, `b_k = power_k (v_k cc -
// a'_k y)` and `c_k = power_k cc` (`cc = conj(y) - y` of the point), the
// quotient numerator at a query of value `x_k` and ordinate `py` is
// `Σ c_k x_k - (a_k py + b_k) = cc Σ power_k x_k - (A py + B)` with `A = Σ
// a_k`, `B = Σ b_k`: only `Σ power_k x_k` depends on the query.
#[derive(Drop)]
pub struct Batch {
    point: SecurePoint,
    cc: QM31,
    a: QM31,
    b: QM31,
    terms: Array<Term>,
}

const P252: u256 = 0x7fffffff;

// A felt holding a sum of products of canonical words, reduced mod p.
fn reduce(x: felt252) -> u32 {
    let v: u256 = x.into();
    (v % P252).try_into().unwrap()
}

// What the commit phase drew: the quotients' randomness, FRI's commitment,
// the query positions, and the trees' heights (the last is the lifting
// height every tree but an empty preprocessed one is lifted to).
#[derive(Drop, Clone, Serde)]
pub struct Drawn {
    pub random_coeff: QM31,
    pub fri: fri::FriCommitment,
    pub positions: Array<u32>,
    pub heights: Array<u32>,
}

// Verifies the opening of the committed trees (`roots`, with each column's
// log size before blowup) at `sampled_points` (`verify_values`), on the
// transcript in `channel`, which has already mixed every root in order.
pub fn verify(
    ref channel: Channel,
    config: PcsConfig,
    roots: Span<felt252>,
    log_sizes: Span<Span<u32>>,
    sampled_points: Span<Span<Span<SecurePoint>>>,
    proof: @PcsProof,
) -> Result<(), PcsError> {
    let drawn = commit_phase(
        ref channel, config, roots, log_sizes, sampled_points, proof.sampled_values, proof.fri_proof, *proof.proof_of_work,
    )?;
    decommit_phase(config, roots, log_sizes, sampled_points, proof, @drawn)
}

// `verify_values` up to the query positions: the proof's shape against the
// trees and the sample points, the sampled values mixed, the quotients'
// randomness drawn, FRI's commit phase, the proof of work, the positions.
pub fn commit_phase(
    ref channel: Channel,
    config: PcsConfig,
    roots: Span<felt252>,
    log_sizes: Span<Span<u32>>,
    sampled_points: Span<Span<Span<SecurePoint>>>,
    sampled_values: @Array<Array<Array<QM31>>>,
    fri_proof: @FriProof,
    proof_of_work: u64,
) -> Result<Drawn, PcsError> {
    let blowup = config.fri_config.log_blowup_factor;
    let n_trees = roots.len();
    if n_trees == 0 || log_sizes.len() != n_trees || sampled_points.len() != n_trees
        || sampled_values.len() != n_trees {
        return Result::Err(PcsError::Malformed);
    }
    // The trees, as committed: extended log sizes and heights.
    let mut heights: Array<u32> = array![];
    let mut t: u32 = 0;
    while t < n_trees {
        let mut h: u32 = 0;
        for s in *log_sizes[t] {
            if *s + blowup > h {
                h = *s + blowup;
            }
        }
        heights.append(h);
        t += 1;
    }
    // Every tree but the preprocessed one (index 0) is lifted to the last
    // one's height; the preprocessed tree is empty or of that height.
    let lifting = *heights[n_trees - 1];
    let mut t: u32 = 0;
    while t < n_trees {
        let h = *heights[t];
        if h != lifting && !(t == 0 && h == 0) {
            return Result::Err(PcsError::Malformed);
        }
        if (*log_sizes[t]).len() != sampled_values[t].len() || (*log_sizes[t]).len() != (*sampled_points[t]).len() {
            return Result::Err(PcsError::Malformed);
        }
        t += 1;
    }

    // The sampled values, in tree, column, sample order.
    let mut mixed: Array<[u32; 4]> = array![];
    let mut t: u32 = 0;
    while t < n_trees {
        let mut c: u32 = 0;
        while c < sampled_values[t].len() {
            let values = sampled_values[t][c];
            if values.len() != (*sampled_points[t][c]).len() {
                return Result::Err(PcsError::Malformed);
            }
            for v in values.span() {
                let [a, b, cc, d] = qm31_words(*v);
                if a >= P || b >= P || cc >= P || d >= P {
                    return Result::Err(PcsError::Malformed);
                }
                mixed.append([a, b, cc, d]);
            }
            c += 1;
        }
        t += 1;
    }
    channel.mix_felts(mixed.span());
    let [r0, r1, r2, r3] = channel.draw_secure_felt();
    let random_coeff = qm31(r0, r1, r2, r3);

    if lifting < blowup {
        return Result::Err(PcsError::Malformed);
    }
    let commitment = match fri::commit(ref channel, config.fri_config, lifting - blowup, fri_proof) {
        Result::Ok(c) => c,
        Result::Err(e) => { return Result::Err(PcsError::Fri(e)); },
    };
    if !channel.verify_pow_nonce(config.pow_bits, proof_of_work) {
        return Result::Err(PcsError::ProofOfWork);
    }
    channel.mix_u64(proof_of_work);
    let positions = fri::sample_query_positions(ref channel, @commitment);
    Result::Ok(Drawn { random_coeff, fri: commitment, positions, heights })
}

// `verify_values` from the query positions on: every tree opened at them,
// the DEEP quotients of the sampled values at each query, and FRI's
// decommitment of those.
pub fn decommit_phase(
    config: PcsConfig,
    roots: Span<felt252>,
    log_sizes: Span<Span<u32>>,
    sampled_points: Span<Span<Span<SecurePoint>>>,
    proof: @PcsProof,
    drawn: @Drawn,
) -> Result<(), PcsError> {
    let blowup = config.fri_config.log_blowup_factor;
    let n_trees = roots.len();
    let heights = drawn.heights.span();
    let lifting = *heights[n_trees - 1];
    let positions = drawn.positions.span();
    let random_coeff = *drawn.random_coeff;
    let n_queries = positions.len();
    if proof.decommitments.len() != n_trees || proof.queried_values.len() != n_trees {
        return Result::Err(PcsError::Malformed);
    }
    // Open every tree at the positions (the preprocessed tree, when empty,
    // opens nothing).
    let mut t: u32 = 0;
    while t < n_trees {
        let mut cols: Array<Span<u32>> = array![];
        let mut sizes: Array<u32> = array![];
        let mut c: u32 = 0;
        if proof.queried_values[t].len() != (*log_sizes[t]).len() {
            return Result::Err(PcsError::Malformed);
        }
        while c < proof.queried_values[t].len() {
            let col = proof.queried_values[t][c];
            if col.len() != n_queries {
                return Result::Err(PcsError::Malformed);
            }
            for v in col.span() {
                if *v >= P {
                    return Result::Err(PcsError::Malformed);
                }
            }
            cols.append(col.span());
            sizes.append(*(*log_sizes[t])[c] + blowup);
            c += 1;
        }
        if *heights[t] != 0 {
            let opened = merkle::verify(
                *roots[t], *heights[t], sizes.span(), positions, cols.span(), proof.decommitments[t].span(),
            );
            if opened.is_err() {
                return Result::Err(PcsError::Merkle(t));
            }
        } else if proof.decommitments[t].len() != 0 || cols.len() != 0 {
            return Result::Err(PcsError::Malformed);
        }
        t += 1;
    }

    // Each query's row: every tree's queried values, in column order.
    let mut rows: Array<Span<felt252>> = array![];
    let mut q: u32 = 0;
    while q < n_queries {
        let mut row: Array<felt252> = array![];
        let mut t: u32 = 0;
        while t < n_trees {
            for col in proof.queried_values[t].span() {
                row.append((*col[q]).into());
            }
            t += 1;
        }
        rows.append(row.span());
        q += 1;
    }
    let mut slots: Array<u32> = array![];
    let mut k: u32 = 0;
    while k < (*rows[0]).len() {
        slots.append(k);
        k += 1;
    }
    let batches = quotient_batches(
        config, log_sizes, sampled_points, proof.sampled_values, random_coeff, lifting, slots.span(),
    )?;
    let answers = quotients(@batches, lifting, positions, rows.span())?;
    match fri::decommit(drawn.fri, proof.fri_proof, positions, answers.span()) {
        Result::Ok(()) => Result::Ok(()),
        Result::Err(e) => Result::Err(PcsError::Fri(e)),
    }
}

// The DEEP quotients' samples with their randomness powers, grouped by
// point in order of first appearance; a column with two samples also
// vouches for its last value one period further on. `slots[c]` is where
// column `c` (flattened over the trees) sits in the rows `quotients` reads.
pub fn quotient_batches(
    config: PcsConfig,
    log_sizes: Span<Span<u32>>,
    sampled_points: Span<Span<Span<SecurePoint>>>,
    sampled_values: @Array<Array<Array<QM31>>>,
    random_coeff: QM31,
    lifting: u32,
    slots: Span<u32>,
) -> Result<Array<Batch>, PcsError> {
    let blowup = config.fri_config.log_blowup_factor;
    let mut batches: Array<Batch> = array![];
    let mut power = qm31(1, 0, 0, 0);
    let mut column: u32 = 0;
    let mut t: u32 = 0;
    while t < log_sizes.len() {
        let mut c: u32 = 0;
        while c < (*log_sizes[t]).len() {
            let points = *sampled_points[t][c];
            let values = sampled_values[t][c].span();
            let mut samples: Array<(SecurePoint, QM31)> = array![];
            if points.len() == 2 {
                // `lifting_domain.step().repeated_double(extended log size)`.
                let period = index_to_point(subgroup_gen(lifting) * pow2(*(*log_sizes[t])[c] + blowup));
                samples.append((add_base_point(*points[1], period.x, period.y), *values[1]));
            }
            let mut k: u32 = 0;
            while k < points.len() {
                samples.append((*points[k], *values[k]));
                k += 1;
            }
            for sample in samples {
                let (point, value) = sample;
                let a = qm31_sub(conj(value), value);
                let cc = qm31_sub(conj(point.y), point.y);
                if cc == qm31(0, 0, 0, 0) {
                    return Result::Err(PcsError::DegenerateSample);
                }
                let b = qm31_sub(qm31_mul(value, cc), qm31_mul(a, point.y));
                let [w0, w1, w2, w3] = qm31_words(power);
                let term = Term { slot: *slots[column], power: [w0.into(), w1.into(), w2.into(), w3.into()] };
                batches = add_to_batch(batches, point, cc, qm31_mul(power, a), qm31_mul(power, b), term);
                power = qm31_mul(power, random_coeff);
            }
            column += 1;
            c += 1;
        }
        t += 1;
    }

    Result::Ok(batches)
}

// The quotient sum at each query of `positions` (on the canonic domain of
// `2^lifting`), from its row of queried values.
pub fn quotients(
    batches: @Array<Batch>, lifting: u32, positions: Span<u32>, rows: Span<Span<felt252>>,
) -> Result<Array<QM31>, PcsError> {
    let n_queries = positions.len();
    // Each query's point and the denominators of its quotients (one per
    // batch), inverted together: `(Re(px) - x) Im(py) - (Re(py) - y) Im(px)`
    // in CM31, inverted through its norm.
    let domain = CircleDomainTrait::canonic(lifting);
    let mut query_ys: Array<u32> = array![];
    let mut denoms: Array<CM31> = array![];
    let mut norms: Array<u32> = array![];
    let mut q: u32 = 0;
    while q < n_queries {
        let p = domain.at(bit_reverse_index(*positions[q], lifting));
        query_ys.append(p.y);
        for batch in batches.span() {
            let sp = *batch.point;
            let dx = cm31_sub(sp.x.a, CM31 { a: p.x, b: 0 });
            let dy = cm31_sub(sp.y.a, CM31 { a: p.y, b: 0 });
            let denom = cm31_sub(cm31_mul(dx, sp.y.b), cm31_mul(dy, sp.x.b));
            let norm = m31_add(m31_mul(denom.a, denom.a), m31_mul(denom.b, denom.b));
            // The norm of a nonzero CM31 is nonzero (-1 is no square mod p).
            if norm == 0 {
                return Result::Err(PcsError::DegenerateSample);
            }
            denoms.append(denom);
            norms.append(norm);
        }
        q += 1;
    }
    let norm_inverses = m31_batch_inv(norms.span());

    // Each query's row of queried values, and its quotient sum.
    let mut answers: Array<QM31> = array![];
    let mut k: u32 = 0;
    let mut q: u32 = 0;
    while q < n_queries {
        let row = *rows[q];
        let py = *query_ys[q];
        let mut acc = qm31(0, 0, 0, 0);
        for batch in batches.span() {
            let (mut s0, mut s1, mut s2, mut s3) = (0, 0, 0, 0);
            for term in batch.terms.span() {
                let x = *row[*term.slot];
                let [p0, p1, p2, p3] = *term.power;
                s0 += p0 * x;
                s1 += p1 * x;
                s2 += p2 * x;
                s3 += p3 * x;
            }
            let sum = qm31(reduce(s0), reduce(s1), reduce(s2), reduce(s3));
            let numerator = qm31_sub(qm31_mul(*batch.cc, sum), qm31_add(qm31_scale(*batch.a, py), *batch.b));
            let d = *denoms[k];
            let n_inv = *norm_inverses[k];
            let inv = CM31 { a: m31_mul(d.a, n_inv), b: m31_mul(m31_neg(d.b), n_inv) };
            acc = qm31_add(acc, QM31 { a: cm31_mul(numerator.a, inv), b: cm31_mul(numerator.b, inv) });
            k += 1;
        }
        answers.append(acc);
        q += 1;
    }

    Result::Ok(answers)
}

fn add_to_batch(batches: Array<Batch>, point: SecurePoint, cc: QM31, a: QM31, b: QM31, term: Term) -> Array<Batch> {
    let mut out: Array<Batch> = array![];
    let mut found = false;
    for batch in batches {
        if !found && batch.point == point {
            let mut terms = batch.terms;
            terms.append(term);
            out.append(Batch { point, cc, a: qm31_add(batch.a, a), b: qm31_add(batch.b, b), terms });
            found = true;
        } else {
            out.append(batch);
        }
    }
    if !found {
        out.append(Batch { point, cc, a, b, terms: array![term] });
    }
    out
}

#[starknet::interface]
pub trait IStwoPcs<TContractState> {
    // 0 when the opening verifies, else 1 malformed, 2 proof of work, 3 a
    // tree's decommitment, 4 FRI, 5 a degenerate sample.
    fn verify(
        self: @TContractState,
        config: PcsConfig,
        roots: Array<felt252>,
        log_sizes: Array<Array<u32>>,
        sampled_points: Array<Array<Array<SecurePoint>>>,
        proof: PcsProof,
    ) -> u32;
}

// The verifier as a contract, for tests on a chain; the transcript starts
// from a fresh channel that mixes the roots in order.
#[starknet::contract]
pub mod StwoPcs {
    use super::super::channel::ChannelTrait;
    use super::{PcsError, SecurePoint};

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoPcsImpl of super::IStwoPcs<ContractState> {
        fn verify(
            self: @ContractState,
            config: super::PcsConfig,
            roots: Array<felt252>,
            log_sizes: Array<Array<u32>>,
            sampled_points: Array<Array<Array<SecurePoint>>>,
            proof: super::PcsProof,
        ) -> u32 {
            let mut sizes: Array<Span<u32>> = array![];
            for s in log_sizes.span() {
                sizes.append(s.span());
            }
            let mut points: Array<Span<Span<SecurePoint>>> = array![];
            for tree in sampled_points.span() {
                let mut cols: Array<Span<SecurePoint>> = array![];
                for c in tree.span() {
                    cols.append(c.span());
                }
                points.append(cols.span());
            }
            let mut channel = ChannelTrait::new();
            for root in roots.span() {
                channel.mix_root(*root);
            }
            match super::verify(ref channel, config, roots.span(), sizes.span(), points.span(), @proof) {
                Result::Ok(()) => 0,
                Result::Err(PcsError::Malformed) => 1,
                Result::Err(PcsError::ProofOfWork) => 2,
                Result::Err(PcsError::Merkle(_)) => 3,
                Result::Err(PcsError::Fri(_)) => 4,
                Result::Err(PcsError::DegenerateSample) => 5,
            }
        }
    }
}
