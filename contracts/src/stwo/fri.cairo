// Stwo 2.3's FRI verifier (`FriVerifier`) for the Poseidon252 Merkle channel:
// the commit phase (each layer's root mixed, its folding randomness drawn,
// the last layer's coefficients mixed), the query positions drawn from the
// channel, and the decommitment: each layer's queried values completed with
// the proof's witness values into whole folding subsets, opened against the
// layer's root (four values to a leaf when the fold step is above one), and
// folded into the next layer's values, down to the last layer's polynomial.
// Checked against Stwo's own prover and verifier on a devnet by
// `tests/all/onchain.rs`.
use super::channel::{Channel, ChannelTrait};
use super::circle::{
    CircleDomain, CircleDomainTrait, Coset, CosetTrait, bit_reverse_index, coset_points, double_x, neg_y, pow2,
};
use super::fields::{QM31, m31_batch_inv, qm31, qm31_add, qm31_mul, qm31_scale, qm31_sub, qm31_words};
use super::merkle;

#[derive(Copy, Drop, Serde, PartialEq, Debug)]
pub struct FriConfig {
    pub log_blowup_factor: u32,
    pub log_last_layer_degree_bound: u32,
    pub n_queries: u32,
    pub fold_step: u32,
}

// One layer's proof: the values a query's folding subset needs beyond the
// queried ones, the Merkle witness, and the layer's root.
#[derive(Drop, Serde, Debug)]
pub struct FriLayerProof {
    // QM31 values, four words each.
    pub fri_witness: Array<u32>,
    pub decommitment: Array<felt252>,
    pub commitment: felt252,
}

#[derive(Drop, Serde, Debug)]
pub struct FriProof {
    pub first_layer: FriLayerProof,
    pub inner_layers: Array<FriLayerProof>,
    // QM31 coefficients, four words each, in Stwo's (bit-reversed) order.
    pub last_layer_poly: Array<u32>,
}

#[derive(Copy, Drop, Debug, PartialEq)]
pub enum FriError {
    InvalidNumFriLayers,
    FirstLayerEvaluationsInvalid,
    FirstLayerCommitmentInvalid,
    InnerLayerCommitmentInvalid,
    InnerLayerEvaluationsInvalid,
    LastLayerDegreeInvalid,
    LastLayerEvaluationsInvalid,
    // Evaluations that do not match the queries, or words that are no QM31.
    Malformed,
}

pub fn words_to_qm31s(words: Span<u32>) -> Option<Array<QM31>> {
    if words.len() % 4 != 0 {
        return Option::None;
    }
    let mut out = array![];
    let mut i: u32 = 0;
    while i < words.len() {
        let (a, b, c, d) = (*words[i], *words[i + 1], *words[i + 2], *words[i + 3]);
        if a >= super::fields::P || b >= super::fields::P || c >= super::fields::P || d >= super::fields::P {
            return Option::None;
        }
        out.append(qm31(a, b, c, d));
        i += 4;
    }
    Option::Some(out)
}

// `(v0 + v1, (v0 - v1) * itwid)`.
fn ibutterfly(v0: QM31, v1: QM31, itwid: u32) -> (QM31, QM31) {
    (qm31_add(v0, v1), qm31_scale(qm31_sub(v0, v1), itwid))
}

// Folds a line evaluation over `domain` (bit-reversed order) to one value,
// squaring the folding randomness at each step (`fold_coset`). Each layer's
// twiddles come from its coset's points, stepped, and one batch inversion.
fn fold_coset(eval: Span<QM31>, domain: Coset, alpha: QM31) -> QM31 {
    let mut cur: Array<QM31> = array![];
    for v in eval {
        cur.append(*v);
    }
    let mut domain = domain;
    let mut alpha = alpha;
    let n = domain.log_size;
    let mut i: u32 = 0;
    while i < n {
        let points = coset_points(domain);
        let c = cur.span();
        let mut xs: Array<u32> = array![];
        let mut j: u32 = 0;
        while j < c.len() {
            xs.append(*points[bit_reverse_index(j, domain.log_size)].x);
            j += 2;
        }
        let inv = m31_batch_inv(xs.span());
        let mut next: Array<QM31> = array![];
        let mut j: u32 = 0;
        while j < c.len() {
            let (f0, f1) = ibutterfly(*c[j], *c[j + 1], *inv[j / 2]);
            next.append(qm31_add(f0, qm31_mul(alpha, f1)));
            j += 2;
        }
        cur = next;
        alpha = qm31_mul(alpha, alpha);
        domain = domain.double();
        i += 1;
    }
    let folded = *cur.at(0);
    folded
}

// Folds a circle evaluation over `domain` into the line below it.
fn fold_circle_into_line(src: Span<QM31>, domain: CircleDomain, alpha: QM31) -> Array<QM31> {
    let half = coset_points(domain.half_coset);
    let n_half = half.len();
    let mut ys: Array<u32> = array![];
    let mut i: u32 = 0;
    while 2 * i < src.len() {
        let j = bit_reverse_index(2 * i, domain.log_size());
        // The second half of a circle domain is the first's conjugate.
        let p = if j < n_half {
            *half[j]
        } else {
            neg_y(*half[j - n_half])
        };
        ys.append(p.y);
        i += 1;
    }
    let inv = m31_batch_inv(ys.span());
    let mut dst = array![];
    let mut i: u32 = 0;
    while 2 * i < src.len() {
        let (f0, f1) = ibutterfly(*src[2 * i], *src[2 * i + 1], *inv[i]);
        dst.append(qm31_add(qm31_mul(alpha, f1), f0));
        i += 1;
    }
    dst
}

// Query positions: sorted, distinct, below `2^log_size`.
#[derive(Drop, Clone, Debug, Serde, PartialEq)]
pub struct Queries {
    pub positions: Array<u32>,
    pub log_size: u32,
}

fn fold_queries(q: @Queries, n: u32) -> Queries {
    let shift = pow2(n);
    let mut positions: Array<u32> = array![];
    for p in q.positions.span() {
        let f = *p / shift;
        let last = positions.len();
        if last == 0 || *positions[last - 1] != f {
            positions.append(f);
        }
    }
    Queries { positions, log_size: *q.log_size - n }
}

// `draw_queries` then `Queries::new`: words masked to the domain, then sorted
// and deduplicated.
fn sample_queries(ref channel: Channel, log_size: u32, n_queries: u32) -> Queries {
    let mask = pow2(log_size);
    let mut raw: Array<u32> = array![];
    while raw.len() < n_queries {
        for w in channel.draw_u32s() {
            if raw.len() < n_queries {
                raw.append(w % mask);
            }
        }
    }
    // Insertion sort: a few dozen queries.
    let mut sorted: Array<u32> = array![];
    for v in raw {
        let mut next: Array<u32> = array![];
        let mut placed = false;
        let mut dup = false;
        for s in sorted.span() {
            if !placed && !dup && v <= *s {
                if v == *s {
                    dup = true;
                } else {
                    next.append(v);
                    placed = true;
                }
            }
            next.append(*s);
        }
        if !placed && !dup {
            next.append(v);
        }
        sorted = next;
    }
    Queries { positions: sorted, log_size }
}

// The queried values completed with witness values into whole subsets of
// `2^fold_step` positions: the subsets' start positions (bit-reversed into
// the domain), their values, and the positions the Merkle proof opens.
#[derive(Drop)]
struct Subsets {
    positions: Array<u32>,
    initial_indexes: Array<u32>,
    evals: Array<Array<QM31>>,
}

fn rebuild_subsets(
    queries: @Queries, query_evals: Span<QM31>, ref witness: Span<QM31>, fold_step: u32,
) -> Option<Subsets> {
    let size = pow2(fold_step);
    let qs = queries.positions.span();
    let mut positions: Array<u32> = array![];
    let mut initial_indexes: Array<u32> = array![];
    let mut evals: Array<Array<QM31>> = array![];
    let mut qi: u32 = 0;
    let mut short = false;
    while qi < qs.len() {
        let start = (*qs[qi] / size) * size;
        let mut subset: Array<QM31> = array![];
        let mut k: u32 = 0;
        while k < size {
            let pos = start + k;
            positions.append(pos);
            if qi < qs.len() && *qs[qi] == pos {
                subset.append(*query_evals[qi]);
                qi += 1;
            } else {
                match witness.pop_front() {
                    Option::Some(w) => subset.append(*w),
                    Option::None => { short = true; },
                }
            }
            k += 1;
        }
        evals.append(subset);
        initial_indexes.append(bit_reverse_index(start, *queries.log_size));
    }
    if short {
        return Option::None;
    }
    Option::Some(Subsets { positions, initial_indexes, evals })
}

// Opens a layer's subsets against its root, `2^leaf_log` values to a leaf.
fn open_layer(
    proof: @FriLayerProof, subsets: @Subsets, domain_log_size: u32, leaf_log: u32,
) -> Result<(), merkle::MerkleError> {
    let leaf = pow2(leaf_log);
    let n_cols = 4 * leaf;
    let mut merkle_positions: Array<u32> = array![];
    for p in subsets.positions.span() {
        let m = *p / leaf;
        let last = merkle_positions.len();
        if last == 0 || *merkle_positions[last - 1] != m {
            merkle_positions.append(m);
        }
    }
    let mut flat: Array<QM31> = array![];
    for s in subsets.evals.span() {
        for v in s.span() {
            flat.append(*v);
        }
    }
    let flat = flat.span();
    let mut columns: Array<Span<u32>> = array![];
    let mut sizes: Array<u32> = array![];
    let mut c: u32 = 0;
    while c < n_cols {
        let (offset, coord) = (c / 4, c % 4);
        let mut col: Array<u32> = array![];
        let mut m: u32 = 0;
        while m < merkle_positions.len() {
            let words = qm31_words(*flat[m * leaf + offset]);
            col.append(*words.span()[coord]);
            m += 1;
        }
        columns.append(col.span());
        sizes.append(domain_log_size - leaf_log);
        c += 1;
    }
    merkle::verify(
        *proof.commitment,
        domain_log_size - leaf_log,
        sizes.span(),
        merkle_positions.span(),
        columns.span(),
        proof.decommitment.span(),
    )
}

// What the commit phase learned: each inner layer's domain, folding
// randomness and fold step, the first layer's, the last layer's domain and
// polynomial.
#[derive(Drop, Clone, Serde)]
pub struct FriCommitment {
    first_domain: CircleDomain,
    first_alpha: QM31,
    inner_domains: Array<Coset>,
    inner_alphas: Array<QM31>,
    inner_steps: Array<u32>,
    last_domain: Coset,
    last_layer_poly: Array<QM31>,
    fold_step: u32,
    n_queries: u32,
}

// The commit phase of FRI on a column committed on the canonic domain of
// `column_log_degree_bound + log_blowup`: mixes each layer's root and draws
// its folding randomness, checks the number of layers and the last layer's
// degree, and mixes the last layer.
pub fn commit(
    ref channel: Channel, config: FriConfig, column_log_degree_bound: u32, proof: @FriProof,
) -> Result<FriCommitment, FriError> {
    let fold_step = config.fold_step;
    if fold_step == 0 || config.log_last_layer_degree_bound > 10 || config.log_blowup_factor == 0 {
        return Result::Err(FriError::Malformed);
    }
    channel.mix_root(*proof.first_layer.commitment);
    let first_domain = CircleDomainTrait::canonic(column_log_degree_bound + config.log_blowup_factor);
    let [a0, a1, a2, a3] = channel.draw_secure_felt();
    let first_alpha = qm31(a0, a1, a2, a3);
    if column_log_degree_bound < fold_step {
        return Result::Err(FriError::InvalidNumFriLayers);
    }
    let mut layer_bound = column_log_degree_bound - fold_step;
    let mut layer_domain = CosetTrait::half_odds(layer_bound + config.log_blowup_factor);
    let n_inner = proof.inner_layers.len();
    let mut inner_domains: Array<Coset> = array![];
    let mut inner_alphas: Array<QM31> = array![];
    let mut inner_steps: Array<u32> = array![];
    let mut i: u32 = 0;
    let mut bad_layers = false;
    while i < n_inner {
        channel.mix_root(*proof.inner_layers[i].commitment);
        let step = if i + 1 < n_inner {
            fold_step
        } else if layer_bound >= config.log_last_layer_degree_bound
            && layer_bound - config.log_last_layer_degree_bound >= 1
            && layer_bound - config.log_last_layer_degree_bound <= fold_step {
            layer_bound - config.log_last_layer_degree_bound
        } else {
            bad_layers = true;
            1
        };
        if bad_layers || layer_bound < step {
            return Result::Err(FriError::InvalidNumFriLayers);
        }
        let [a, b, c, d] = channel.draw_secure_felt();
        inner_domains.append(layer_domain);
        inner_alphas.append(qm31(a, b, c, d));
        inner_steps.append(step);
        layer_bound -= step;
        layer_domain = layer_domain.repeated_double(step);
        i += 1;
    }
    if layer_bound != config.log_last_layer_degree_bound {
        return Result::Err(FriError::InvalidNumFriLayers);
    }
    let last_layer_poly = match words_to_qm31s(proof.last_layer_poly.span()) {
        Option::Some(p) => p,
        Option::None => { return Result::Err(FriError::Malformed); },
    };
    let n_coeffs = last_layer_poly.len();
    // A power of two, and at most the bound.
    if n_coeffs == 0 || n_coeffs > pow2(config.log_last_layer_degree_bound) || (n_coeffs & (n_coeffs - 1)) != 0 {
        return Result::Err(FriError::LastLayerDegreeInvalid);
    }
    let mut mixed: Array<[u32; 4]> = array![];
    for c in last_layer_poly.span() {
        mixed.append(qm31_words(*c));
    }
    channel.mix_felts(mixed.span());
    Result::Ok(
        FriCommitment {
            first_domain,
            first_alpha,
            inner_domains,
            inner_alphas,
            inner_steps,
            last_domain: layer_domain,
            last_layer_poly,
            fold_step,
            n_queries: config.n_queries,
        },
    )
}

// The query positions in the first layer (`FriVerifier::sample_query_positions`).
pub fn sample_query_positions(ref channel: Channel, commitment: @FriCommitment) -> Array<u32> {
    sample_queries(ref channel, commitment.first_domain.log_size(), *commitment.n_queries).positions
}

// The decommitment phase: `first_layer_evals` are the first layer's values at
// `positions` (as `sample_query_positions` gave them).
pub fn decommit(
    commitment: @FriCommitment, proof: @FriProof, positions: Span<u32>, first_layer_evals: Span<QM31>,
) -> Result<(), FriError> {
    let (mut queries, mut evals) = decommit_first(commitment, proof.first_layer, positions, first_layer_evals)?;
    let mut l: u32 = 0;
    while l < proof.inner_layers.len() {
        let (q, e) = decommit_inner(commitment, l, proof.inner_layers[l], @queries, evals.span())?;
        queries = q;
        evals = e;
        l += 1;
    }
    check_last_layer(commitment, @queries, evals.span())
}

// The first layer: its values at the queries (the DEEP quotients
// `first_layer_evals` and the witness) opened against its root, then the
// circle folded into a line and on by the fold step. Returns the folded
// queries and their values.
pub fn decommit_first(
    commitment: @FriCommitment, layer: @FriLayerProof, positions: Span<u32>, first_layer_evals: Span<QM31>,
) -> Result<(Queries, Array<QM31>), FriError> {
    let fold_step = *commitment.fold_step;
    let first_domain = *commitment.first_domain;
    let mut pos: Array<u32> = array![];
    for p in positions {
        pos.append(*p);
    }
    let queries = Queries { positions: pos, log_size: first_domain.log_size() };
    if first_layer_evals.len() != queries.positions.len() {
        return Result::Err(FriError::Malformed);
    }
    let mut witness = match words_to_qm31s(layer.fri_witness.span()) {
        Option::Some(w) => w.span(),
        Option::None => { return Result::Err(FriError::Malformed); },
    };
    let subsets = match rebuild_subsets(@queries, first_layer_evals, ref witness, fold_step) {
        Option::Some(s) => s,
        Option::None => { return Result::Err(FriError::FirstLayerEvaluationsInvalid); },
    };
    if witness.len() != 0 {
        return Result::Err(FriError::FirstLayerEvaluationsInvalid);
    }
    let leaf_log = if first_domain.log_size() >= 2 && fold_step > 1 {
        2
    } else {
        0
    };
    if open_layer(layer, @subsets, first_domain.log_size(), leaf_log).is_err() {
        return Result::Err(FriError::FirstLayerCommitmentInvalid);
    }
    let mut evals: Array<QM31> = array![];
    let alpha = *commitment.first_alpha;
    let mut s: u32 = 0;
    while s < subsets.evals.len() {
        let initial = first_domain.index_at(*subsets.initial_indexes[s]);
        let fold_domain = CircleDomain { half_coset: CosetTrait::new(initial, fold_step - 1) };
        let line = fold_circle_into_line(subsets.evals[s].span(), fold_domain, alpha);
        if fold_step == 1 {
            evals.append(*line[0]);
        } else {
            let line_domain = CosetTrait::new(initial, fold_step - 1);
            evals.append(fold_coset(line.span(), line_domain, qm31_mul(alpha, alpha)));
        }
        s += 1;
    }
    Result::Ok((fold_queries(@queries, fold_step), evals))
}

// Inner layer `l`: its values at `queries` (`evals` and the witness)
// opened against its root and folded. Returns the folded queries and values.
pub fn decommit_inner(
    commitment: @FriCommitment, l: u32, layer: @FriLayerProof, queries: @Queries, evals: Span<QM31>,
) -> Result<(Queries, Array<QM31>), FriError> {
    if l >= commitment.inner_domains.len() {
        return Result::Err(FriError::Malformed);
    }
    let domain = *commitment.inner_domains[l];
    let step = *commitment.inner_steps[l];
    let mut witness = match words_to_qm31s(layer.fri_witness.span()) {
        Option::Some(w) => w.span(),
        Option::None => { return Result::Err(FriError::Malformed); },
    };
    let subsets = match rebuild_subsets(queries, evals, ref witness, step) {
        Option::Some(s) => s,
        Option::None => { return Result::Err(FriError::InnerLayerEvaluationsInvalid); },
    };
    if witness.len() != 0 {
        return Result::Err(FriError::InnerLayerEvaluationsInvalid);
    }
    let leaf_log = if domain.log_size >= 2 && step > 1 {
        2
    } else {
        0
    };
    if open_layer(layer, @subsets, domain.log_size, leaf_log).is_err() {
        return Result::Err(FriError::InnerLayerCommitmentInvalid);
    }
    let mut next: Array<QM31> = array![];
    let mut s: u32 = 0;
    while s < subsets.evals.len() {
        let initial = domain.index_at(*subsets.initial_indexes[s]);
        next.append(fold_coset(subsets.evals[s].span(), CosetTrait::new(initial, step), *commitment.inner_alphas[l]));
        s += 1;
    }
    Result::Ok((fold_queries(queries, step), next))
}

// The last layer: every folded value is the polynomial's.
pub fn check_last_layer(commitment: @FriCommitment, queries: @Queries, evals: Span<QM31>) -> Result<(), FriError> {
    let last_domain = *commitment.last_domain;
    if evals.len() != queries.positions.len() {
        return Result::Err(FriError::Malformed);
    }
    let mut q: u32 = 0;
    while q < queries.positions.len() {
        let x = last_domain.at(bit_reverse_index(*queries.positions[q], last_domain.log_size)).x;
        if *evals[q] != eval_line_poly(commitment.last_layer_poly.span(), x) {
            return Result::Err(FriError::LastLayerEvaluationsInvalid);
        }
        q += 1;
    }
    Result::Ok(())
}

// The number of inner layers a commitment has.
pub fn n_inner_layers(commitment: @FriCommitment) -> u32 {
    commitment.inner_domains.len()
}

// FRI end to end on `channel`: commit, draw the queries, decommit, with
// `first_layer_evals` the column's values at the drawn positions (in
// increasing order).
pub fn verify(
    ref channel: Channel, config: FriConfig, column_log_degree_bound: u32, proof: @FriProof,
    first_layer_evals: Span<QM31>,
) -> Result<(), FriError> {
    let commitment = commit(ref channel, config, column_log_degree_bound, proof)?;
    let positions = sample_query_positions(ref channel, @commitment);
    decommit(@commitment, proof, positions.span(), first_layer_evals)
}

// `LinePoly::eval_at_point`: coefficients in the folding basis, folded by
// `x, 2x^2 - 1, ...`.
fn eval_line_poly(coeffs: Span<QM31>, x: u32) -> QM31 {
    let mut factors: Array<u32> = array![];
    let mut n = coeffs.len();
    let mut y = x;
    while n > 1 {
        factors.append(y);
        y = double_x(y);
        n /= 2;
    }
    fold(coeffs, factors.span())
}

fn fold(values: Span<QM31>, factors: Span<u32>) -> QM31 {
    if values.len() == 1 {
        return *values[0];
    }
    let half = values.len() / 2;
    let rest = factors.slice(1, factors.len() - 1);
    let lhs = fold(values.slice(0, half), rest);
    let rhs = fold(values.slice(half, half), rest);
    qm31_add(lhs, qm31_scale(rhs, *factors[0]))
}

#[starknet::interface]
pub trait IStwoFri<TContractState> {
    // 0 when the proof verifies, else the error's code (1 + its index in
    // `FriError`).
    fn verify(
        self: @TContractState,
        config: FriConfig,
        column_log_degree_bound: u32,
        proof: FriProof,
        first_layer_evals: Array<u32>,
    ) -> u32;
}

// The verifier as a contract, for tests on a chain; the transcript starts
// from a fresh channel.
#[starknet::contract]
pub mod StwoFri {
    use super::super::channel::ChannelTrait;
    use super::FriError;

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoFriImpl of super::IStwoFri<ContractState> {
        fn verify(
            self: @ContractState,
            config: super::FriConfig,
            column_log_degree_bound: u32,
            proof: super::FriProof,
            first_layer_evals: Array<u32>,
        ) -> u32 {
            let evals = match super::words_to_qm31s(first_layer_evals.span()) {
                Option::Some(e) => e,
                Option::None => { return 8; },
            };
            let mut channel = ChannelTrait::new();
            match super::verify(ref channel, config, column_log_degree_bound, @proof, evals.span()) {
                Result::Ok(()) => 0,
                Result::Err(FriError::InvalidNumFriLayers) => 1,
                Result::Err(FriError::FirstLayerEvaluationsInvalid) => 2,
                Result::Err(FriError::FirstLayerCommitmentInvalid) => 3,
                Result::Err(FriError::InnerLayerCommitmentInvalid) => 4,
                Result::Err(FriError::InnerLayerEvaluationsInvalid) => 5,
                Result::Err(FriError::LastLayerDegreeInvalid) => 6,
                Result::Err(FriError::LastLayerEvaluationsInvalid) => 7,
                Result::Err(FriError::Malformed) => 8,
            }
        }
    }
}
