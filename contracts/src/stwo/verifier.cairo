// The verifier of our proofs (`bitsage_air::verify::verify_poseidon252`), on
// chain: the statement and claim checked and mixed, the trees' roots and the
// components' LogUp sums mixed as the prover committed them, the LogUp sums
// balanced against the terms only the verifier adds, every present
// component's constraints evaluated at the out-of-domain point by the
// evaluators generated from the AIR (`air/*.cairo`), their sum checked
// against the composition polynomial's sampled value, and then the
// commitment scheme's opening of every tree (`pcs::verify`).
//
// The components are the four the claim always has (CPU, program table,
// memory, range) and the hash component when `hash_log_size` is not 0, in
// that order: the order the prover allocates their columns in. A component's
// layout (its columns in each tree, the row offsets each is sampled at) and
// its parameters come from its generated module.
use starknet::ClassHash;
use super::air;
use super::channel::{Channel, ChannelTrait};
use super::circle::{index_mul, index_neg, index_to_point, subgroup_gen};
use super::fields::{P, QM31, qm31, qm31_add, qm31_inv, qm31_mul, qm31_words};
use super::fri::FriConfig;
use super::pcs::{PcsConfig, PcsError, PcsProof, SecurePoint, add_base_point};
use super::stark::{double_x, from_partial_evals, random_point};
use super::statement::{Claim, Relations, Statement, draw_relations, mix_config, mix_statement, public_logup_sum};

// `MIN_LOG_SIZE`, `MAX_CPU_LOG_SIZE`, `MAX_AUX_LOG_SIZE` and the range
// table's bounds, as the Rust verifier's `check_claim` has them.
const MIN_LOG_SIZE: u32 = 4;
const MAX_CPU_LOG_SIZE: u32 = 23;
const MAX_AUX_LOG_SIZE: u32 = 23;
const MIN_RANGE_LOG_SIZE: u32 = 8;
const MAX_RANGE_LOG_SIZE: u32 = 16;
// The range table holds sixteen values to a row.
const RANGE_LANES_LOG: u32 = 4;
// Opcodes, registers and tables a program may use (`obelysk_isa`).
const N_OPCODES: u32 = 20;
const NUM_REGISTERS: u32 = 16;
const MAX_PUBLIC_WORDS: u32 = 0x40000;

#[derive(Drop, Serde, Debug)]
pub struct Proof {
    pub claim: Claim,
    // The components' LogUp sums: CPU, program table, memory, range, hash.
    pub interaction: Array<QM31>,
    // Roots of the preprocessed, main, interaction and composition trees.
    pub commitments: Array<felt252>,
    pub pcs: PcsProof,
}

// The Rust verifier's error kinds (`VerifyError`).
#[derive(Copy, Drop, Debug, PartialEq)]
pub enum VerifyError {
    Statement,
    BadClaim,
    LogupImbalance,
    OodsNotMatching,
    Malformed,
    Pcs: PcsError,
}

// The evaluators' classes: the CPU, program table, memory and range
// components' (one class each), and the hash component's parts in order.
#[derive(Copy, Drop, Debug)]
pub struct Evaluators {
    pub cpu: ClassHash,
    pub rom: ClassHash,
    pub memory: ClassHash,
    pub range: ClassHash,
    pub hash_parts: Span<ClassHash>,
}

// A one-class component evaluator (`Air<Component>`'s `eval`).
#[starknet::interface]
pub trait IAirEval<TContractState> {
    fn eval(
        self: @TContractState,
        masks: Array<QM31>,
        base: Array<QM31>,
        ext: Array<QM31>,
        random_coeff: QM31,
        denom_inverse: QM31,
    ) -> QM31;
}

// `SecurityLevel::pcs_config`: blowup 4, 16 grinding bits, fold step 3, a
// last layer of degree 1, and 40 queries (96 bits) or 56 (128 bits).
pub fn pcs_config(security_bits: u32) -> Option<PcsConfig> {
    let n_queries = match security_bits {
        96 => 40,
        128 => 56,
        _ => { return Option::None; },
    };
    Option::Some(
        PcsConfig {
            pow_bits: 16,
            fri_config: FriConfig { log_blowup_factor: 2, log_last_layer_degree_bound: 0, n_queries, fold_step: 3 },
        },
    )
}

// `Statement::validate`'s word checks: canonical words, registers and
// opcodes in range, the public words within their cap.
fn check_statement(s: @Statement) -> bool {
    if s.program.instrs.len() == 0 || s.input.len() > MAX_PUBLIC_WORDS || s.output.len() > MAX_PUBLIC_WORDS {
        return false;
    }
    for i in s.program.instrs.span() {
        if *i.op >= N_OPCODES || *i.dst >= NUM_REGISTERS || *i.a >= NUM_REGISTERS || *i.b >= NUM_REGISTERS
            || *i.imm_mode > 1 || *i.imm >= P {
            return false;
        }
    }
    for t in s.program.tables.span() {
        for e in t.entries.span() {
            let (k, v) = *e;
            if k >= P || v >= P {
                return false;
            }
        }
    }
    for w in s.input.span() {
        if *w >= P {
            return false;
        }
    }
    for w in s.output.span() {
        if *w >= P {
            return false;
        }
    }
    true
}

fn in_range(v: u32, lo: u32, hi: u32) -> bool {
    lo <= v && v <= hi
}

// `check_claim`: every size within the AIR's bounds, the RAM within memory.
fn check_claim(c: Claim) -> bool {
    let sizes = in_range(c.cpu_log_size, MIN_LOG_SIZE, MAX_CPU_LOG_SIZE)
        && in_range(c.rom_log_size, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE)
        && in_range(c.mem_log_size, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE)
        && in_range(c.range_log_size, MIN_RANGE_LOG_SIZE, MAX_RANGE_LOG_SIZE)
        && (c.hash_log_size == 0 || in_range(c.hash_log_size, MIN_LOG_SIZE, MAX_AUX_LOG_SIZE));
    if !sizes {
        return false;
    }
    let ram: u64 = c.ram_words.into() + 16;
    let mut mem: u64 = 1;
    let mut k: u32 = 0;
    while k < c.mem_log_size {
        mem *= 2;
        k += 1;
    }
    ram <= mem
}

// One present component: which (0 CPU, 1 program table, 2 memory, 3 range,
// 4 hash), its log size and its LogUp sum.
#[derive(Copy, Drop)]
struct Component {
    kind: u32,
    log_size: u32,
    claimed_sum: QM31,
}

fn columns(kind: u32) -> (Array<(u32, Span<i32>)>, Array<(u32, Span<i32>)>) {
    match kind {
        0 => (air::cpu::main_columns(), air::cpu::interaction_columns()),
        1 => (air::rom::main_columns(), air::rom::interaction_columns()),
        2 => (air::memory::main_columns(), air::memory::interaction_columns()),
        3 => (air::range::main_columns(), air::range::interaction_columns()),
        _ => (air::hash::main_columns(), air::hash::interaction_columns()),
    }
}

fn params(kind: u32, rels: @Relations, c: Component) -> (Array<QM31>, Array<QM31>) {
    match kind {
        0 => air::cpu::params(rels, c.log_size, c.claimed_sum),
        1 => air::rom::params(rels, c.log_size, c.claimed_sum),
        2 => air::memory::params(rels, c.log_size, c.claimed_sum),
        3 => air::range::params(rels, c.log_size, c.claimed_sum),
        _ => air::hash::params(rels, c.log_size, c.claimed_sum),
    }
}

fn n_constraints(kind: u32) -> u32 {
    match kind {
        0 => air::cpu::N_CONSTRAINTS,
        1 => air::rom::N_CONSTRAINTS,
        2 => air::memory::N_CONSTRAINTS,
        3 => air::range::N_CONSTRAINTS,
        _ => air::hash::N_CONSTRAINTS,
    }
}

fn qm31_pow(x: QM31, n: u32) -> QM31 {
    let mut r = qm31(1, 0, 0, 0);
    let mut b = x;
    let mut e = n;
    while e != 0 {
        if e % 2 == 1 {
            r = qm31_mul(r, b);
        }
        b = qm31_mul(b, b);
        e /= 2;
    }
    r
}

// `point + step^offset` for the step of the canonic coset of `2^log_size`.
fn shifted(point: SecurePoint, log_size: u32, offset: i32) -> SecurePoint {
    if offset == 0 {
        return point;
    }
    let step = subgroup_gen(log_size);
    let index = if offset > 0 {
        let k: u32 = offset.try_into().unwrap();
        index_mul(step, k)
    } else {
        let k: u32 = (-offset).try_into().unwrap();
        index_neg(index_mul(step, k))
    };
    let q = index_to_point(index);
    add_base_point(point, q.x, q.y)
}

// The sampled values and sample points of one tree's columns for one
// component, from `first` on: appends the values to `masks` and each
// column's points and log size; returns the next column, or `None` when the
// shape differs.
fn take_columns(
    runs: Array<(u32, Span<i32>)>,
    sampled: Span<Array<QM31>>,
    first: u32,
    oods: SecurePoint,
    max_log_degree_bound: u32,
    log_size: u32,
    ref masks: Array<QM31>,
    ref points: Array<Span<SecurePoint>>,
    ref sizes: Array<u32>,
) -> Option<u32> {
    let mut col = first;
    for run in runs {
        let (n, offsets) = run;
        let mut col_points: Array<SecurePoint> = array![];
        for o in offsets {
            col_points.append(shifted(oods, max_log_degree_bound, *o));
        }
        let col_points = col_points.span();
        let mut k: u32 = 0;
        while k < n {
            if col >= sampled.len() {
                return Option::None;
            }
            let values = sampled[col].span();
            if values.len() != offsets.len() {
                return Option::None;
            }
            for v in values {
                masks.append(*v);
            }
            points.append(col_points);
            sizes.append(log_size);
            col += 1;
            k += 1;
        }
    }
    Option::Some(col)
}

fn qm31_is_canonical(v: QM31) -> bool {
    let [a, b, c, d] = qm31_words(v);
    a < P && b < P && c < P && d < P
}

// Verifies that `proof` proves `statement` at `security_bits`, on a fresh
// transcript in `channel`.
pub fn verify(
    ref channel: Channel, statement: @Statement, security_bits: u32, proof: @Proof, evaluators: Evaluators,
) -> Result<(), VerifyError> {
    let config = match pcs_config(security_bits) {
        Option::Some(c) => c,
        Option::None => { return Result::Err(VerifyError::Statement); },
    };
    if !check_statement(statement) {
        return Result::Err(VerifyError::Statement);
    }
    let claim = *proof.claim;
    if !check_claim(claim) {
        return Result::Err(VerifyError::BadClaim);
    }
    let sums = proof.interaction.span();
    let roots = proof.commitments.span();
    if sums.len() != 5 || roots.len() != 4 {
        return Result::Err(VerifyError::Malformed);
    }
    for s in sums {
        if !qm31_is_canonical(*s) {
            return Result::Err(VerifyError::Malformed);
        }
    }
    // An absent component has no LogUp sum: a nonzero one would offset an
    // imbalance elsewhere.
    if claim.hash_log_size == 0 && *sums[4] != qm31(0, 0, 0, 0) {
        return Result::Err(VerifyError::BadClaim);
    }

    // The transcript, as the prover wrote it.
    mix_config(ref channel, config);
    mix_statement(ref channel, statement, claim);
    channel.mix_root(*roots[0]);
    channel.mix_root(*roots[1]);
    let rels = draw_relations(ref channel);
    let mut words: Array<[u32; 4]> = array![];
    for s in sums {
        words.append(qm31_words(*s));
    }
    channel.mix_felts(words.span());
    channel.mix_root(*roots[2]);

    let mut total = public_logup_sum(statement, claim, @rels);
    for s in sums {
        total = qm31_add(total, *s);
    }
    if total != qm31(0, 0, 0, 0) {
        return Result::Err(VerifyError::LogupImbalance);
    }

    let mut components: Array<Component> = array![
        Component { kind: 0, log_size: claim.cpu_log_size, claimed_sum: *sums[0] },
        Component { kind: 1, log_size: claim.rom_log_size, claimed_sum: *sums[1] },
        Component { kind: 2, log_size: claim.mem_log_size, claimed_sum: *sums[2] },
        Component { kind: 3, log_size: claim.range_log_size - RANGE_LANES_LOG, claimed_sum: *sums[3] },
    ];
    if claim.hash_log_size != 0 {
        components.append(Component { kind: 4, log_size: claim.hash_log_size, claimed_sum: *sums[4] });
    }
    // Degree-2 constraints: the composition polynomial's log degree bound is
    // the largest component's plus one, committed as two halves.
    let mut max_log_degree_bound: u32 = 0;
    for c in components.span() {
        if *c.log_size > max_log_degree_bound {
            max_log_degree_bound = *c.log_size;
        }
    }

    let [a, b, c, d] = channel.draw_secure_felt();
    let random_coeff = qm31(a, b, c, d);
    channel.mix_root(*roots[3]);
    let oods = random_point(ref channel);

    let sampled = proof.pcs.sampled_values.span();
    if sampled.len() != 4 || sampled[0].len() != 0 || sampled[3].len() != 8 {
        return Result::Err(VerifyError::Malformed);
    }
    // `oods.repeated_double(max_log_degree_bound - 1).x`: the vanishing
    // polynomial of the canonic coset of that size at the point.
    let mut x = oods.x;
    let mut k: u32 = 1;
    while k < max_log_degree_bound {
        x = double_x(x);
        k += 1;
    }
    let denom_inverse = qm31_inv(x);

    // Each component's masks and its columns' sample points, from the
    // layout generated with its evaluator.
    let (mut main_col, mut inter_col) = (0_u32, 0_u32);
    let mut main_points: Array<Span<SecurePoint>> = array![];
    let mut inter_points: Array<Span<SecurePoint>> = array![];
    let mut main_sizes: Array<u32> = array![];
    let mut inter_sizes: Array<u32> = array![];
    let mut masks_of: Array<Array<QM31>> = array![];
    for comp in components.span() {
        let (main_runs, inter_runs) = columns(*comp.kind);
        let mut masks: Array<QM31> = array![];
        main_col =
            match take_columns(
                main_runs,
                sampled[1].span(),
                main_col,
                oods,
                max_log_degree_bound,
                *comp.log_size,
                ref masks,
                ref main_points,
                ref main_sizes,
            ) {
                Option::Some(next) => next,
                Option::None => { return Result::Err(VerifyError::Malformed); },
            };
        inter_col =
            match take_columns(
                inter_runs,
                sampled[2].span(),
                inter_col,
                oods,
                max_log_degree_bound,
                *comp.log_size,
                ref masks,
                ref inter_points,
                ref inter_sizes,
            ) {
                Option::Some(next) => next,
                Option::None => { return Result::Err(VerifyError::Malformed); },
            };
        masks_of.append(masks);
    }
    if main_col != sampled[1].len() || inter_col != sampled[2].len() {
        return Result::Err(VerifyError::Malformed);
    }
    let mut composition: Array<QM31> = array![];
    for col in sampled[3].span() {
        if col.len() != 1 {
            return Result::Err(VerifyError::Malformed);
        }
        composition.append(*col[0]);
    }
    let mut composition_sizes: Array<u32> = array![];
    let mut composition_points: Array<Span<SecurePoint>> = array![];
    let oods_only = array![oods].span();
    let mut i: u32 = 0;
    while i < 8 {
        composition_sizes.append(max_log_degree_bound);
        composition_points.append(oods_only);
        i += 1;
    }
    let empty_sizes: Array<u32> = array![];
    let empty_points: Array<Span<SecurePoint>> = array![];
    let sizes = array![empty_sizes.span(), main_sizes.span(), inter_sizes.span(), composition_sizes.span()];
    let points = array![empty_points.span(), main_points.span(), inter_points.span(), composition_points.span()];

    // The rest of the transcript (as the Rust verifier replays it before it
    // opens anything): the sampled values mixed, FRI's commitments, the
    // proof of work and the query positions.
    let drawn = match super::pcs::commit_phase(ref channel, config, roots, sizes.span(), points.span(), proof.pcs) {
        Result::Ok(d) => d,
        Result::Err(e) => { return Result::Err(VerifyError::Pcs(e)); },
    };

    // Every component's constraints at the point, against the composition
    // polynomial's value there (from its two halves).
    let mut acc = qm31(0, 0, 0, 0);
    let mut k: u32 = 0;
    for masks in masks_of {
        let comp = *components[k];
        let (base, ext) = params(comp.kind, @rels, comp);
        let value = match comp.kind {
            0 => eval_class(evaluators.cpu, masks, base, ext, random_coeff, denom_inverse),
            1 => eval_class(evaluators.rom, masks, base, ext, random_coeff, denom_inverse),
            2 => eval_class(evaluators.memory, masks, base, ext, random_coeff, denom_inverse),
            3 => eval_class(evaluators.range, masks, base, ext, random_coeff, denom_inverse),
            _ => air::hash::eval(
                evaluators.hash_parts,
                masks.span(),
                base.span(),
                ext.span(),
                random_coeff,
                denom_inverse,
                qm31(0, 0, 0, 0),
            ),
        };
        acc = qm31_add(qm31_mul(acc, qm31_pow(random_coeff, n_constraints(comp.kind))), value);
        k += 1;
    }
    let composition = composition.span();
    let value = qm31_add(
        from_partial_evals(composition.slice(0, 4)), qm31_mul(x, from_partial_evals(composition.slice(4, 4))),
    );
    if acc != value {
        return Result::Err(VerifyError::OodsNotMatching);
    }

    // Open every tree at the query positions.
    match super::pcs::decommit_phase(config, roots, sizes.span(), points.span(), proof.pcs, @drawn) {
        Result::Ok(()) => Result::Ok(()),
        Result::Err(e) => Result::Err(VerifyError::Pcs(e)),
    }
}

fn eval_class(
    class_hash: ClassHash,
    masks: Array<QM31>,
    base: Array<QM31>,
    ext: Array<QM31>,
    random_coeff: QM31,
    denom_inverse: QM31,
) -> QM31 {
    IAirEvalLibraryDispatcher { class_hash }.eval(masks, base, ext, random_coeff, denom_inverse)
}

// The verdict as a number: 0 when the proof verifies, else 1 an invalid
// statement, 2 a claim out of bounds, 3 LogUp sums that do not balance, 4 an
// out-of-domain mismatch, 5 a malformed proof, and 10 + the commitment
// scheme's error (10 malformed, 11 proof of work, 12 a tree's decommitment,
// 13 FRI, 14 a degenerate sample).
pub fn verdict(r: Result<(), VerifyError>) -> u32 {
    match r {
        Result::Ok(()) => 0,
        Result::Err(VerifyError::Statement) => 1,
        Result::Err(VerifyError::BadClaim) => 2,
        Result::Err(VerifyError::LogupImbalance) => 3,
        Result::Err(VerifyError::OodsNotMatching) => 4,
        Result::Err(VerifyError::Malformed) => 5,
        Result::Err(VerifyError::Pcs(PcsError::Malformed)) => 10,
        Result::Err(VerifyError::Pcs(PcsError::ProofOfWork)) => 11,
        Result::Err(VerifyError::Pcs(PcsError::Merkle(_))) => 12,
        Result::Err(VerifyError::Pcs(PcsError::Fri(_))) => 13,
        Result::Err(VerifyError::Pcs(PcsError::DegenerateSample)) => 14,
    }
}

#[starknet::interface]
pub trait IBitsageVerifier<TContractState> {
    // `verdict` of `verify` on a fresh transcript.
    fn verify(self: @TContractState, statement: Statement, security_bits: u32, proof: Proof) -> u32;
}

// The verifier as a contract, deployed with its evaluators' classes.
#[starknet::contract]
pub mod BitsageVerifier {
    use starknet::ClassHash;
    use starknet::storage::{
        Map, StorageMapReadAccess, StorageMapWriteAccess, StoragePointerReadAccess, StoragePointerWriteAccess,
    };
    use super::super::channel::ChannelTrait;
    use super::{Evaluators, Proof, Statement};

    #[storage]
    struct Storage {
        // CPU, program table, memory, range.
        evaluators: Map<u32, ClassHash>,
        hash_parts: Map<u32, ClassHash>,
        n_hash_parts: u32,
    }

    #[constructor]
    fn constructor(ref self: ContractState, evaluators: Array<ClassHash>, hash_parts: Array<ClassHash>) {
        assert(evaluators.len() == 4, 'four evaluators');
        assert(hash_parts.len() == super::air::hash::N_PARTS, 'hash part count');
        let mut k: u32 = 0;
        for e in evaluators {
            self.evaluators.write(k, e);
            k += 1;
        }
        let mut k: u32 = 0;
        for p in hash_parts {
            self.hash_parts.write(k, p);
            k += 1;
        }
        self.n_hash_parts.write(k);
    }

    #[abi(embed_v0)]
    impl BitsageVerifierImpl of super::IBitsageVerifier<ContractState> {
        fn verify(self: @ContractState, statement: Statement, security_bits: u32, proof: Proof) -> u32 {
            let mut parts: Array<ClassHash> = array![];
            let mut k: u32 = 0;
            while k < self.n_hash_parts.read() {
                parts.append(self.hash_parts.read(k));
                k += 1;
            }
            let evaluators = Evaluators {
                cpu: self.evaluators.read(0),
                rom: self.evaluators.read(1),
                memory: self.evaluators.read(2),
                range: self.evaluators.read(3),
                hash_parts: parts.span(),
            };
            let mut channel = ChannelTrait::new();
            super::verdict(super::verify(ref channel, @statement, security_bits, @proof, evaluators))
        }
    }
}
