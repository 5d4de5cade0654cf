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
use core::dict::{Felt252Dict, Felt252DictTrait};
use core::poseidon::poseidon_hash_span;
use starknet::{ClassHash, ContractAddress};
use super::air;
use super::channel::{Channel, ChannelTrait};
use super::circle::{index_mul, index_neg, index_to_point, subgroup_gen};
use super::fields::{P, QM31, qm31, qm31_add, qm31_inv, qm31_mul, qm31_words};
use super::fri::{FriConfig, FriLayerProof, FriProof, Queries};
use super::pcs::{Drawn, PcsConfig, PcsError, SecurePoint, add_base_point};
use super::stark::{double_x, from_partial_evals, random_point};
use super::sha::{ShaStream, ShaStreamTrait};
use super::statement::{
    Claim, FractionSum, FractionSumTrait, Instr, Relations, Table, digest_halves, draw_relations, mix_config,
    mix_public, program_terms, public_io_sum, words_digest,
};

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
const NUM_REGISTERS: u32 = 16;
// `obelysk_vm::isa`'s caps: instructions plus table entries, tables, and a
// table name's bytes.
const MAX_PROGRAM_LEN: u32 = 0x100000;
const MAX_TABLES: u32 = 256;
const MAX_TABLE_NAME_LEN: u32 = 64;
const MAX_PUBLIC_WORDS: u32 = 0x40000;

// The Rust verifier's error kinds (`VerifyError`).
#[derive(Copy, Drop, Debug, PartialEq)]
pub enum VerifyError {
    Statement,
    BadClaim,
    // The proof's parameters are not the ones its statement's security
    // level fixes.
    ConfigMismatch,
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

// `SecurityLevel::pcs_config`: 16 grinding bits, fold step 3, a last layer
// of degree 1; blowup 4 with 40 queries (96 bits) or 56 (128 bits), or, for
// a proof with the hash component (`HASH_PROOF_PARAMS`), blowup 16 with 20
// or 28.
pub fn pcs_config(security_bits: u32, hash: bool) -> Option<PcsConfig> {
    let n_queries = match security_bits {
        96 => if hash {
            20
        } else {
            40
        },
        128 => if hash {
            28
        } else {
            56
        },
        _ => { return Option::None; },
    };
    let log_blowup_factor = if hash {
        4
    } else {
        2
    };
    Option::Some(
        PcsConfig {
            pow_bits: 16,
            fri_config: FriConfig { log_blowup_factor, log_last_layer_degree_bound: 0, n_queries, fold_step: 3 },
        },
    )
}

// Whether the components include the hash one (it comes last when present).
fn has_hash(components: Span<Component>) -> bool {
    let n = components.len();
    if n == 0 {
        return false;
    }
    let last = *components[n - 1];
    last.kind == 4
}

// `Statement::validate`, in the pieces a statement sent in parts is checked
// by: `Program::validate` per instruction (registers in range, canonical
// words, an unused field zero, an immediate operand only where the opcode
// takes one, jump targets inside the program, lookups naming a table) and
// per table (its name's length, canonical words, no key twice), the caps,
// and the public words canonical within their cap. The per-opcode rules are
// generated from the ISA (`air::instr_rules`).
fn check_instr(i: @Instr, n: u32, n_tables: u32) -> bool {
    if *i.op >= air::N_OPCODES || *i.dst >= NUM_REGISTERS || *i.a >= NUM_REGISTERS || *i.b >= NUM_REGISTERS
        || *i.imm_mode > 1 || *i.imm >= P {
        return false;
    }
    let rules = air::instr_rules(*i.op, *i.imm_mode);
    if rules & 16 == 0 {
        return false;
    }
    if (rules & 32 != 0 && *i.imm >= n) || (rules & 64 != 0 && *i.imm >= n_tables) {
        return false;
    }
    !((rules & 1 == 0 && *i.dst != 0) || (rules & 2 == 0 && *i.a != 0) || (rules & 4 == 0 && *i.b != 0)
        || (rules & 8 == 0 && *i.imm != 0))
}

fn check_table(t: @Table) -> bool {
    if t.name.len() > MAX_TABLE_NAME_LEN {
        return false;
    }
    let mut seen: Felt252Dict<u8> = Default::default();
    for e in t.entries.span() {
        let (k, v) = *e;
        if k >= P || v >= P || seen.get(k.into()) != 0 {
            return false;
        }
        seen.insert(k.into(), 1);
    }
    true
}

fn check_words(words: Span<u32>) -> bool {
    if words.len() > MAX_PUBLIC_WORDS {
        return false;
    }
    for w in words {
        if *w >= P {
            return false;
        }
    }
    true
}

fn check_head(h: @StatementHead) -> bool {
    *h.n_instrs != 0 && *h.n_instrs <= MAX_PROGRAM_LEN && *h.n_tables <= MAX_TABLES && check_words(h.input.span())
        && check_words(h.output.span())
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
#[derive(Copy, Drop, Serde)]
pub struct Component {
    pub kind: u32,
    pub log_size: u32,
    pub claimed_sum: QM31,
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

// The key a verified statement is recorded under (and an escrow asks for):
// `statement::statement_key` of its program's, input's and output's digests.
pub fn statement_key(head: @StatementHead, security_bits: u32) -> felt252 {
    super::statement::statement_key(
        digest_halves(*head.program_digest),
        digest_halves(words_digest(head.input.span())),
        digest_halves(words_digest(head.output.span())),
        security_bits,
    )
}

// A statement as `begin` takes it: the program's digest and size, and the
// public words. The program itself follows in `ProgramPart`s, which check
// its rules, recompute the digest and add the program table's LogUp terms.
#[derive(Drop, Serde, Debug)]
pub struct StatementHead {
    pub program_digest: [u32; 8],
    pub n_instrs: u32,
    pub n_tables: u32,
    pub input: Array<u32>,
    pub output: Array<u32>,
}

// A run of the program: instructions after those sent before, then whole
// tables once every instruction is in.
#[derive(Drop, Serde, Debug)]
pub struct ProgramPart {
    pub instrs: Array<Instr>,
    pub tables: Array<Table>,
}

// The program parts' progress: what the head declared, what has come, the
// digest of the canonical encoding so far (`Program::digest`), and the
// LogUp sum so far (the components' sums and every public term added).
#[derive(Drop, Clone, Serde)]
pub struct ProgramCheck {
    pub digest: [u32; 8],
    pub n_instrs: u32,
    pub n_tables: u32,
    pub instrs: u32,
    pub tables: u32,
    // Instructions plus table entries so far (`MAX_PROGRAM_LEN` caps it).
    pub total: u32,
    pub sha: ShaStream,
    pub logup: QM31,
}

// The session from `begin` until `commit`: the transcript up to the
// interaction trace's root, and the program parts' progress.
#[derive(Drop, Clone, Serde)]
pub struct Opening {
    pub statement: felt252,
    pub security_bits: u32,
    pub components: Array<Component>,
    pub roots: Array<felt252>,
    pub rels: Relations,
    pub channel: Channel,
    pub program: ProgramCheck,
    pub next_part: u32,
}

// What `commit` reads: the sampled values, FRI's layer roots and last layer
// (witnesses and decommitments empty), the proof of work.
#[derive(Drop, Serde)]
pub struct CommitPart {
    pub sampled_values: Array<Array<Array<QM31>>>,
    pub fri: FriProof,
    pub proof_of_work: u64,
}

// Everything the transcript fixed that a later step needs, carried between
// the transactions of a split verification (the contract keeps its hash).
#[derive(Drop, Clone, Serde)]
pub struct Session {
    pub statement: felt252,
    pub security_bits: u32,
    pub components: Array<Component>,
    pub roots: Array<felt252>,
    pub rels: Relations,
    // The constraints' randomness and the out-of-domain point.
    pub random_coeff: QM31,
    pub oods: SecurePoint,
    // Poseidon of the sampled values' serialization.
    pub sampled: felt252,
    // The commitment scheme's draws, and FRI's layer roots as mixed.
    pub drawn: Drawn,
    pub fri_roots: Array<felt252>,
    // Components evaluated at the point so far, and their accumulation.
    pub evaluated: u32,
    pub acc: QM31,
    // The quotient sums of the queries opened so far, in order.
    pub answers: Array<QM31>,
    // FRI's layers decommitted so far, and the queries and values they
    // folded to.
    pub fri_layers: u32,
    pub fri_queries: Queries,
    pub fri_evals: Array<QM31>,
    // The index of the next part of the proof (see `BitsageVerifier::begin`).
    pub next_part: u32,
}

pub fn hash_of<T, +Serde<T>, +Drop<T>>(value: @T) -> felt252 {
    let mut out: Array<felt252> = array![];
    value.serialize(ref out);
    poseidon_hash_span(out.span())
}

fn components_of(claim: Claim, sums: Span<QM31>) -> Array<Component> {
    let mut components: Array<Component> = array![
        Component { kind: 0, log_size: claim.cpu_log_size, claimed_sum: *sums[0] },
        Component { kind: 1, log_size: claim.rom_log_size, claimed_sum: *sums[1] },
        Component { kind: 2, log_size: claim.mem_log_size, claimed_sum: *sums[2] },
        Component { kind: 3, log_size: claim.range_log_size - RANGE_LANES_LOG, claimed_sum: *sums[3] },
    ];
    if claim.hash_log_size != 0 {
        components.append(Component { kind: 4, log_size: claim.hash_log_size, claimed_sum: *sums[4] });
    }
    components
}

// Degree-2 constraints: the composition polynomial's log degree bound is the
// largest component's plus one, committed as two halves of the largest size.
fn max_log_degree_bound(components: Span<Component>) -> u32 {
    let mut m: u32 = 0;
    for c in components {
        if *c.log_size > m {
            m = *c.log_size;
        }
    }
    m
}

// `oods.repeated_double(max_log_degree_bound - 1).x`: the vanishing
// polynomial of the canonic coset of that size at the point.
fn vanishing(oods: SecurePoint, max_log_degree_bound: u32) -> QM31 {
    let mut x = oods.x;
    let mut k: u32 = 1;
    while k < max_log_degree_bound {
        x = double_x(x);
        k += 1;
    }
    x
}

// Where each tree's columns are sampled and their log sizes, and each
// component's masks (its sampled values in tree, column, sample order).
#[derive(Drop)]
struct Layout {
    sizes: Array<Span<u32>>,
    points: Array<Span<Span<SecurePoint>>>,
    masks: Array<Array<QM31>>,
}

fn layout(
    components: Span<Component>, sampled: @Array<Array<Array<QM31>>>, oods: SecurePoint, max_log: u32,
) -> Result<Layout, VerifyError> {
    if sampled.len() != 4 || sampled[0].len() != 0 || sampled[3].len() != 8 {
        return Result::Err(VerifyError::Malformed);
    }
    let (mut main_col, mut inter_col) = (0_u32, 0_u32);
    let mut main_points: Array<Span<SecurePoint>> = array![];
    let mut inter_points: Array<Span<SecurePoint>> = array![];
    let mut main_sizes: Array<u32> = array![];
    let mut inter_sizes: Array<u32> = array![];
    let mut masks_of: Array<Array<QM31>> = array![];
    for comp in components {
        let (main_runs, inter_runs) = columns(*comp.kind);
        let mut masks: Array<QM31> = array![];
        main_col =
            match take_columns(
                main_runs,
                sampled[1].span(),
                main_col,
                oods,
                max_log,
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
                max_log,
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
    let mut composition_sizes: Array<u32> = array![];
    let mut composition_points: Array<Span<SecurePoint>> = array![];
    let oods_only = array![oods].span();
    let mut i: u32 = 0;
    while i < 8 {
        if sampled[3][i].len() != 1 {
            return Result::Err(VerifyError::Malformed);
        }
        composition_sizes.append(max_log);
        composition_points.append(oods_only);
        i += 1;
    }
    let empty_sizes: Array<u32> = array![];
    let empty_points: Array<Span<SecurePoint>> = array![];
    Result::Ok(
        Layout {
            sizes: array![empty_sizes.span(), main_sizes.span(), inter_sizes.span(), composition_sizes.span()],
            points: array![empty_points.span(), main_points.span(), inter_points.span(), composition_points.span()],
            masks: masks_of,
        },
    )
}

// `acc` advanced over components `from..to`: `acc · rc^n + eval`, each
// component's constraints evaluated at the point by its generated evaluator.
fn evaluate_components(
    components: Span<Component>,
    masks: Span<Array<QM31>>,
    rels: @Relations,
    random_coeff: QM31,
    denom_inverse: QM31,
    evaluators: Evaluators,
    from: u32,
    to: u32,
    acc: QM31,
) -> QM31 {
    let mut acc = acc;
    let mut k = from;
    while k < to {
        let comp = *components[k];
        let masks = masks[k];
        let (base, ext) = params(comp.kind, rels, comp);
        let value = match comp.kind {
            0 => eval_class(evaluators.cpu, masks.clone(), base, ext, random_coeff, denom_inverse),
            1 => eval_class(evaluators.rom, masks.clone(), base, ext, random_coeff, denom_inverse),
            2 => eval_class(evaluators.memory, masks.clone(), base, ext, random_coeff, denom_inverse),
            3 => eval_class(evaluators.range, masks.clone(), base, ext, random_coeff, denom_inverse),
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
    acc
}

// The composition polynomial's value at the point, from its two halves'
// sampled coordinates.
fn composition_value(sampled: @Array<Array<Array<QM31>>>, x: QM31) -> QM31 {
    let mut c: Array<QM31> = array![];
    for col in sampled[3].span() {
        c.append(*col[0]);
    }
    let c = c.span();
    qm31_add(from_partial_evals(c.slice(0, 4)), qm31_mul(x, from_partial_evals(c.slice(4, 4))))
}

// The transcript's fixed values: the checks before any arithmetic, the
// statement and claim mixed, the roots and LogUp sums mixed as committed,
// the LogUp balance, then the commitment scheme's commit phase (sampled
// values mixed, FRI's roots, the proof of work, the query positions).
// `begin`: the head and claim checked, the transcript replayed to the
// interaction trace's root (config, statement, the main roots, the
// relations drawn, the LogUp sums mixed), the public terms other than the
// program table's added to the components' sums.
fn begin_transcript(part: @TranscriptPart) -> Result<Opening, VerifyError> {
    let security_bits = *part.security_bits;
    let claim = *part.claim;
    let head = part.head;
    let config = match pcs_config(security_bits, claim.hash_log_size != 0) {
        Option::Some(c) => c,
        Option::None => { return Result::Err(VerifyError::Statement); },
    };
    if !check_head(head) {
        return Result::Err(VerifyError::Statement);
    }
    if !check_claim(claim) {
        return Result::Err(VerifyError::BadClaim);
    }
    let sums = part.interaction.span();
    let roots = part.commitments.span();
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
    if *part.config != config || *part.lifting != 0 {
        return Result::Err(VerifyError::ConfigMismatch);
    }

    let mut channel = ChannelTrait::new();
    mix_config(ref channel, config);
    mix_public(ref channel, *head.program_digest, head.input.span(), head.output.span(), claim);
    channel.mix_root(*roots[0]);
    channel.mix_root(*roots[1]);
    let rels = draw_relations(ref channel);
    let mut words: Array<[u32; 4]> = array![];
    for s in sums {
        words.append(qm31_words(*s));
    }
    channel.mix_felts(words.span());
    channel.mix_root(*roots[2]);
    let mut logup = public_io_sum(head.input.span(), head.output.span(), claim, @rels);
    for s in sums {
        logup = qm31_add(logup, *s);
    }
    let mut sha = ShaStreamTrait::new();
    sha.bytes(@"obelysk-program-v1");
    sha.u64_le((*head.n_instrs).into());
    let program = ProgramCheck {
        digest: *head.program_digest,
        n_instrs: *head.n_instrs,
        n_tables: *head.n_tables,
        instrs: 0,
        tables: 0,
        total: 0,
        sha,
        logup,
    };
    Result::Ok(
        Opening {
            statement: statement_key(head, security_bits),
            security_bits,
            components: components_of(claim, sums),
            roots: part.commitments.clone(),
            rels,
            channel,
            program,
            next_part: 0,
        },
    )
}

fn program_done(p: @ProgramCheck) -> bool {
    p.instrs == p.n_instrs && p.tables == p.n_tables
}

// One program part: its instructions and tables checked (`check_instr`,
// `check_table`), encoded into the digest, and their LogUp terms added.
// After the last part the digest must be the one the head declared (which
// the transcript mixed), and the LogUp sums must balance.
fn step_program(ref o: Opening, part: @ProgramPart) -> Result<(), VerifyError> {
    let mut p = o.program.clone();
    let instrs = part.instrs.span();
    let tables = part.tables.span();
    if program_done(@p) || (instrs.len() == 0 && tables.len() == 0) {
        return Result::Err(VerifyError::Malformed);
    }
    let first_pc = p.instrs;
    let first_table = p.tables;
    if instrs.len() > p.n_instrs - p.instrs {
        return Result::Err(VerifyError::Statement);
    }
    for i in instrs {
        if !check_instr(i, p.n_instrs, p.n_tables) {
            return Result::Err(VerifyError::Statement);
        }
        p.sha.byte(*i.op);
        p.sha.byte(*i.dst);
        p.sha.byte(*i.a);
        p.sha.byte(*i.b);
        p.sha.byte(*i.imm_mode);
        p.sha.u32_le(*i.imm);
    }
    p.instrs += instrs.len();
    p.total += instrs.len();
    if p.instrs == p.n_instrs && first_pc < p.n_instrs {
        p.sha.u64_le(p.n_tables.into());
    }
    if tables.len() != 0 && p.instrs != p.n_instrs {
        return Result::Err(VerifyError::Statement);
    }
    if tables.len() > p.n_tables - p.tables {
        return Result::Err(VerifyError::Statement);
    }
    for t in tables {
        if !check_table(t) {
            return Result::Err(VerifyError::Statement);
        }
        p.sha.u64_le(t.name.len().into());
        p.sha.bytes(t.name);
        p.sha.u64_le(t.entries.len().into());
        for e in t.entries.span() {
            let (k, v) = *e;
            p.sha.u32_le(k);
            p.sha.u32_le(v);
        }
        p.total += t.entries.len();
    }
    p.tables += tables.len();
    if p.total > MAX_PROGRAM_LEN {
        return Result::Err(VerifyError::Statement);
    }
    let mut terms = FractionSum { num: qm31(0, 0, 0, 0), den: qm31(1, 0, 0, 0) };
    program_terms(ref terms, instrs, first_pc, tables, first_table, @o.rels);
    match terms.value() {
        Option::Some(v) => { p.logup = qm31_add(p.logup, v); },
        Option::None => { return Result::Err(VerifyError::LogupImbalance); },
    }
    if program_done(@p) {
        if p.sha.clone().finish() != p.digest {
            return Result::Err(VerifyError::Statement);
        }
        if p.logup != qm31(0, 0, 0, 0) {
            return Result::Err(VerifyError::LogupImbalance);
        }
    }
    o.program = p;
    Result::Ok(())
}

// `commit`: once the whole program is in, the rest of the transcript (the
// constraints' randomness, the composition root, the out-of-domain point,
// the sampled values, FRI's commitments, the proof of work) and the session
// the constraint, query and FRI steps carry.
fn step_commit(o: Opening, part: @CommitPart) -> Result<Session, VerifyError> {
    if !program_done(@o.program) {
        return Result::Err(VerifyError::Statement);
    }
    let config = match pcs_config(o.security_bits, has_hash(o.components.span())) {
        Option::Some(c) => c,
        Option::None => { return Result::Err(VerifyError::Statement); },
    };
    let mut channel = o.channel;
    let roots = o.roots.span();
    let max_log = max_log_degree_bound(o.components.span());
    let [a, b, c, d] = channel.draw_secure_felt();
    let random_coeff = qm31(a, b, c, d);
    channel.mix_root(*roots[3]);
    let oods = random_point(ref channel);
    let sampled_values = part.sampled_values;
    let fri_proof = part.fri;
    let layout = layout(o.components.span(), sampled_values, oods, max_log)?;
    let drawn = match super::pcs::commit_phase(
        ref channel,
        config,
        roots,
        layout.sizes.span(),
        layout.points.span(),
        sampled_values,
        fri_proof,
        *part.proof_of_work,
    ) {
        Result::Ok(d) => d,
        Result::Err(e) => { return Result::Err(VerifyError::Pcs(e)); },
    };
    let mut fri_roots: Array<felt252> = array![*fri_proof.first_layer.commitment];
    for layer in fri_proof.inner_layers.span() {
        fri_roots.append(*layer.commitment);
    }
    Result::Ok(
        Session {
            statement: o.statement,
            security_bits: o.security_bits,
            components: o.components,
            roots: o.roots,
            rels: o.rels,
            random_coeff,
            oods,
            sampled: hash_of(sampled_values),
            drawn,
            fri_roots,
            evaluated: 0,
            acc: qm31(0, 0, 0, 0),
            answers: array![],
            fri_layers: 0,
            fri_queries: Queries { positions: array![], log_size: 0 },
            fri_evals: array![],
            next_part: o.next_part,
        },
    )
}

// A split verification's step over the constraints: components
// `session.evaluated..+count` evaluated at the point; after the last, the sum
// is checked against the composition polynomial's value.
pub fn step_evaluate(
    ref session: Session, sampled_values: @Array<Array<Array<QM31>>>, count: u32, evaluators: Evaluators,
) -> Result<(), VerifyError> {
    if hash_of(sampled_values) != session.sampled {
        return Result::Err(VerifyError::Malformed);
    }
    let components = session.components.span();
    let to = session.evaluated + count;
    if count == 0 || to > components.len() {
        return Result::Err(VerifyError::Malformed);
    }
    let max_log = max_log_degree_bound(components);
    let layout = layout(components, sampled_values, session.oods, max_log)?;
    let x = vanishing(session.oods, max_log);
    session.acc = evaluate_components(
        components,
        layout.masks.span(),
        @session.rels,
        session.random_coeff,
        qm31_inv(x),
        evaluators,
        session.evaluated,
        to,
        session.acc,
    );
    session.evaluated = to;
    if to == components.len() && session.acc != composition_value(sampled_values, x) {
        return Result::Err(VerifyError::OodsNotMatching);
    }
    Result::Ok(())
}

// One chunk of the queries, opened: for each of the main, interaction and
// composition trees, each query's leaf (its row's words in leaf order,
// packed eight to a felt) and the chunk's own Merkle witness.
#[derive(Drop, Serde)]
pub struct QueryChunk {
    pub leaves: Array<Array<Array<felt252>>>,
    pub witnesses: Array<Array<felt252>>,
}

const TWO_POW_31_U128: NonZero<u128> = 0x80000000;
const TWO_POW_124: NonZero<u256> = 0x10000000000000000000000000000000;
const TWO_POW_248_U256: u256 = 0x100000000000000000000000000000000000000000000000000000000000000;

// The `n` words of a packed felt (`merkle::felt_from_m31s`), appended to
// `out` in order; `false` when a word is not canonical or the felt is not
// such a packing.
fn unpack(f: felt252, n: u32, ref out: Array<felt252>) -> bool {
    let mut v: u256 = f.into();
    if n < 8 {
        let marker: u256 = n.into() * TWO_POW_248_U256;
        if v < marker {
            return false;
        }
        v -= marker;
    }
    let (hi, lo) = DivRem::div_rem(v, TWO_POW_124);
    if hi.high != 0 || lo.high != 0 {
        return false;
    }
    // Least significant word first.
    let mut rev: Array<u128> = array![];
    let mut part = lo.low;
    let mut k: u32 = 0;
    while k < n && k < 4 {
        let (q, r) = DivRem::div_rem(part, TWO_POW_31_U128);
        rev.append(r);
        part = q;
        k += 1;
    }
    if part != 0 && n <= 4 {
        return false;
    }
    let mut part = hi.low;
    while k < n {
        let (q, r) = DivRem::div_rem(part, TWO_POW_31_U128);
        rev.append(r);
        part = q;
        k += 1;
    }
    if part != 0 {
        return false;
    }
    let mut j = rev.len();
    while j > 0 {
        j -= 1;
        let w = *rev[j];
        if w >= P.into() {
            return false;
        }
        out.append(w.into());
    }
    true
}

// A split verification's step over a chunk of queries: each tree opened at
// the chunk's positions (the positions after those already answered), the
// leaves unpacked into rows, and the chunk's quotient sums appended.
pub fn step_open(
    ref session: Session, sampled_values: @Array<Array<Array<QM31>>>, chunk: @QueryChunk,
) -> Result<(), VerifyError> {
    if hash_of(sampled_values) != session.sampled || session.evaluated != session.components.len() {
        return Result::Err(VerifyError::Malformed);
    }
    let config = match pcs_config(session.security_bits, has_hash(session.components.span())) {
        Option::Some(c) => c,
        Option::None => { return Result::Err(VerifyError::Statement); },
    };
    let components = session.components.span();
    let max_log = max_log_degree_bound(components);
    let layout = layout(components, sampled_values, session.oods, max_log)?;
    let heights = session.drawn.heights.span();
    let lifting = *heights[3];
    let all = session.drawn.positions.span();
    let first = session.answers.len();
    if chunk.leaves.len() != 4 || chunk.witnesses.len() != 4 || chunk.leaves[0].len() != 0 {
        return Result::Err(VerifyError::Malformed);
    }
    let n = chunk.leaves[1].len();
    if n == 0 || first + n > all.len() {
        return Result::Err(VerifyError::Malformed);
    }
    let positions = all.slice(first, n);

    // Each tree: its leaf order (columns by extended log size, stably), the
    // slot of each column in a query's row, the leaves opened.
    let mut slots: Array<u32> = array![];
    let mut widths: Array<u32> = array![];
    let mut row_len: u32 = 0;
    let mut t: u32 = 1;
    while t < 4 {
        let sizes = *layout.sizes[t];
        let n_cols = sizes.len();
        // Columns of each size before a column's own, then its place among
        // its own size.
        let mut count: Felt252Dict<u32> = Default::default();
        for s in sizes {
            let key: felt252 = (*s).into();
            count.insert(key, count.get(key) + 1);
        }
        let mut base: Felt252Dict<u32> = Default::default();
        let mut acc: u32 = 0;
        let mut size: u32 = 0;
        while size <= 31 {
            let key: felt252 = size.into();
            base.insert(key, acc);
            acc += count.get(key);
            size += 1;
        }
        for s in sizes {
            let key: felt252 = (*s).into();
            let b = base.get(key);
            slots.append(row_len + b);
            base.insert(key, b + 1);
        }
        let felts_per_leaf = (n_cols + 7) / 8;
        let leaves = chunk.leaves[t];
        if leaves.len() != n {
            return Result::Err(VerifyError::Malformed);
        }
        let mut spans: Array<Span<felt252>> = array![];
        for leaf in leaves.span() {
            if leaf.len() != felts_per_leaf {
                return Result::Err(VerifyError::Malformed);
            }
            spans.append(leaf.span());
        }
        if super::merkle::verify_leaves(
            *session.roots[t], *heights[t], positions, spans.span(), chunk.witnesses[t].span(),
        ).is_err() {
            return Result::Err(VerifyError::Pcs(PcsError::Merkle(t)));
        }
        widths.append(n_cols);
        row_len += n_cols;
        t += 1;
    }
    // Each query's row: the trees' leaves unpacked, in leaf order.
    let mut row_spans: Array<Span<felt252>> = array![];
    let mut q: u32 = 0;
    while q < n {
        let mut row: Array<felt252> = array![];
        let mut t: u32 = 1;
        while t < 4 {
            let n_cols = *widths[t - 1];
            let leaf = chunk.leaves[t][q].span();
            let mut k: u32 = 0;
            for f in leaf {
                let words = if 8 * (k + 1) <= n_cols {
                    8
                } else {
                    n_cols - 8 * k
                };
                if !unpack(*f, words, ref row) {
                    return Result::Err(VerifyError::Malformed);
                }
                k += 1;
            }
            t += 1;
        }
        row_spans.append(row.span());
        q += 1;
    }
    let batches = match super::pcs::quotient_batches(
        config,
        layout.sizes.span(),
        layout.points.span(),
        sampled_values,
        session.drawn.random_coeff,
        lifting,
        slots.span(),
    ) {
        Result::Ok(b) => b,
        Result::Err(e) => { return Result::Err(VerifyError::Pcs(e)); },
    };
    let answers = match super::pcs::quotients(@batches, lifting, positions, row_spans.span()) {
        Result::Ok(a) => a,
        Result::Err(e) => { return Result::Err(VerifyError::Pcs(e)); },
    };
    for a in answers {
        session.answers.append(a);
    }
    Result::Ok(())
}

// A split verification's last step: FRI's decommitment of every query's
// quotient sum.
// FRI's next layer decommitted (a transaction per layer: a whole FRI
// proof outgrows one transaction's gas and calldata from 2^14 rows up): its
// root must be the one the transcript mixed; the first layer takes the DEEP
// quotients of every opened query, a later one the values the previous
// layer folded to.
pub fn step_fri(ref session: Session, layer: @FriLayerProof) -> Result<(), VerifyError> {
    let k = session.fri_layers;
    if k >= session.fri_roots.len() || *layer.commitment != *session.fri_roots[k] {
        return Result::Err(VerifyError::Malformed);
    }
    let folded = if k == 0 {
        let positions = session.drawn.positions.span();
        if session.answers.len() != positions.len() || session.evaluated != session.components.len() {
            return Result::Err(VerifyError::Malformed);
        }
        super::fri::decommit_first(@session.drawn.fri, layer, positions, session.answers.span())
    } else {
        super::fri::decommit_inner(@session.drawn.fri, k - 1, layer, @session.fri_queries, session.fri_evals.span())
    };
    match folded {
        Result::Ok((queries, evals)) => {
            session.fri_queries = queries;
            session.fri_evals = evals;
            session.fri_layers = k + 1;
            Result::Ok(())
        },
        Result::Err(e) => Result::Err(VerifyError::Pcs(PcsError::Fri(e))),
    }
}

// After every FRI layer: each folded value is the last layer polynomial's.
pub fn step_finish(ref session: Session) -> Result<(), VerifyError> {
    if session.fri_layers != session.fri_roots.len() {
        return Result::Err(VerifyError::Malformed);
    }
    match super::fri::check_last_layer(@session.drawn.fri, @session.fri_queries, session.fri_evals.span()) {
        Result::Ok(()) => Result::Ok(()),
        Result::Err(e) => Result::Err(VerifyError::Pcs(PcsError::Fri(e))),
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
        Result::Err(VerifyError::ConfigMismatch) => 6,
        Result::Err(VerifyError::Pcs(PcsError::Malformed)) => 10,
        Result::Err(VerifyError::Pcs(PcsError::ProofOfWork)) => 11,
        Result::Err(VerifyError::Pcs(PcsError::Merkle(_))) => 12,
        Result::Err(VerifyError::Pcs(PcsError::Fri(_))) => 13,
        Result::Err(VerifyError::Pcs(PcsError::DegenerateSample)) => 14,
    }
}

// A failed step reverts with its verdict (`verdict`) as the reason's two
// last characters: 'verify failed: 03' for LogUp sums that do not balance.
fn or_revert_code(v: u32) {
    if v != 0 {
        core::panic_with_felt252(reason(v));
    }
}

// A step's value, or a revert with its verdict.
fn or_revert<T, +Drop<T>>(r: Result<T, VerifyError>) -> T {
    match r {
        Result::Ok(v) => v,
        Result::Err(e) => core::panic_with_felt252(reason(verdict(Result::Err(e)))),
    }
}

fn reason(v: u32) -> felt252 {
    'verify failed: ' * 0x10000 + (0x30 + v / 10).into() * 0x100 + (0x30 + v % 10).into()
}

// The first part of a split proof: the statement's head and what the
// transcript reads up to the interaction trace's root.
#[derive(Drop, Serde)]
pub struct TranscriptPart {
    pub head: StatementHead,
    pub security_bits: u32,
    // The parameters the proof says it was made with, and its lifting log
    // size plus one (0: none, as every level's parameters have).
    pub config: PcsConfig,
    pub lifting: u32,
    pub claim: Claim,
    pub interaction: Array<QM31>,
    pub commitments: Array<felt252>,
}

// The query and FRI steps, a class of their own (a contract class holds at
// most 81,920 felts): library-called by `BitsageVerifier`, which checks the
// session and the part before and stores the state after.
#[starknet::interface]
pub trait IVerifierSteps<TContractState> {
    // `step_open`'s verdict and the session after it.
    fn open(
        self: @TContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, chunk: QueryChunk,
    ) -> (u32, Session);
    // `step_fri`'s verdict and the session after it.
    fn fri(self: @TContractState, session: Session, layer: FriLayerProof) -> (u32, Session);
    // `step_finish`'s verdict.
    fn finish(self: @TContractState, session: Session) -> u32;
    // The session `step_commit` starts (reverts with its verdict).
    fn commit(self: @TContractState, opening: Opening, part: CommitPart) -> Session;
}

#[starknet::contract]
pub mod VerifierSteps {
    use super::super::fields::QM31;
    use super::super::fri::FriLayerProof;
    use super::{CommitPart, Opening, QueryChunk, Session, or_revert};

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl VerifierStepsImpl of super::IVerifierSteps<ContractState> {
        fn open(
            self: @ContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, chunk: QueryChunk,
        ) -> (u32, Session) {
            let mut session = session;
            let code = super::verdict(super::step_open(ref session, @sampled_values, @chunk));
            (code, session)
        }

        fn fri(self: @ContractState, session: Session, layer: FriLayerProof) -> (u32, Session) {
            let mut session = session;
            let code = super::verdict(super::step_fri(ref session, @layer));
            (code, session)
        }

        fn finish(self: @ContractState, session: Session) -> u32 {
            let mut session = session;
            super::verdict(super::step_finish(ref session))
        }

        fn commit(self: @ContractState, opening: Opening, part: CommitPart) -> Session {
            or_revert(super::step_commit(opening, @part))
        }
    }
}

// The transcript and constraint steps, a class of their own. `begin`,
// `program` and `commit` revert with their verdict (`verify failed: NN`).
#[starknet::interface]
pub trait IVerifierTranscript<TContractState> {
    // The opening `begin_transcript` starts.
    fn begin(self: @TContractState, part: TranscriptPart) -> Opening;
    // The opening after `step_program`.
    fn program(self: @TContractState, opening: Opening, part: ProgramPart) -> Opening;
    // `step_evaluate`'s verdict and the session after it; `evaluators` are
    // the CPU, program table, memory and range classes, then the hash
    // component's parts.
    fn evaluate(
        self: @TContractState,
        session: Session,
        sampled_values: Array<Array<Array<QM31>>>,
        count: u32,
        evaluators: Array<ClassHash>,
    ) -> (u32, Session);
}

#[starknet::contract]
pub mod VerifierTranscript {
    use starknet::ClassHash;
    use super::super::fields::QM31;
    use super::{Evaluators, Opening, ProgramPart, Session, TranscriptPart, or_revert};


    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl VerifierTranscriptImpl of super::IVerifierTranscript<ContractState> {
        fn begin(self: @ContractState, part: TranscriptPart) -> Opening {
            or_revert(super::begin_transcript(@part))
        }

        fn program(self: @ContractState, opening: Opening, part: ProgramPart) -> Opening {
            let mut opening = opening;
            or_revert(super::step_program(ref opening, @part));
            opening
        }

        fn evaluate(
            self: @ContractState,
            session: Session,
            sampled_values: Array<Array<Array<QM31>>>,
            count: u32,
            evaluators: Array<ClassHash>,
        ) -> (u32, Session) {
            assert(evaluators.len() > 4, 'evaluator classes');
            let e = evaluators.span();
            let evaluators = Evaluators {
                cpu: *e[0], rom: *e[1], memory: *e[2], range: *e[3], hash_parts: e.slice(4, e.len() - 4),
            };
            let mut session = session;
            let code = super::verdict(super::step_evaluate(ref session, @sampled_values, count, evaluators));
            (code, session)
        }
    }
}

#[starknet::interface]
pub trait IBitsageVerifier<TContractState> {
    // A split verification: the transcript part and the hashes of the parts
    // to come (`QueryChunk`s, then the FRI proof). The session is keyed by
    // the proof's hash, Poseidon of the first part's hash and the others';
    // returns it and the session state the next step carries (each step
    // returns the next state).
    fn begin(ref self: TContractState, part: TranscriptPart, later_parts: Array<felt252>) -> (felt252, Opening);
    // The next part of the program (`ProgramPart`).
    fn program(ref self: TContractState, proof_hash: felt252, opening: Opening, part: ProgramPart) -> Opening;
    // The rest of the transcript, once the program is in (`CommitPart`).
    fn commit(ref self: TContractState, proof_hash: felt252, opening: Opening, part: CommitPart) -> Session;
    // Components `count` more evaluated at the out-of-domain point.
    fn evaluate(
        ref self: TContractState,
        proof_hash: felt252,
        session: Session,
        sampled_values: Array<Array<Array<QM31>>>,
        count: u32,
    ) -> Session;
    // The next chunk of queries opened.
    fn open(
        ref self: TContractState,
        proof_hash: felt252,
        session: Session,
        sampled_values: Array<Array<Array<QM31>>>,
        chunk: QueryChunk,
    ) -> Session;
    // FRI's next layer decommitted.
    fn fri(ref self: TContractState, proof_hash: felt252, session: Session, layer: FriLayerProof) -> Session;
    // FRI's last layer checked, once every part is in; on success the
    // statement is recorded as verified.
    fn finish(ref self: TContractState, proof_hash: felt252, session: Session);
    // Who verified a statement (`statement_key`), and with which proof
    // hash: the account that began the session; zero for none.
    fn verified_by(self: @TContractState, statement: felt252) -> (ContractAddress, felt252);
    // The hash of a session's carried state (0: none; 1: finished).
    fn session(self: @TContractState, proof_hash: felt252) -> felt252;
    // The same four steps as views, storing nothing: each returns the
    // session the next one carries, or reverts with the step's verdict as
    // `begin`..`finish` would. A client checks a proof with calls before it
    // spends gas (`bitsage-host verify --onchain`). A call does not check
    // that the parts come from one proof; the stored session does.
    fn check_begin(self: @TContractState, part: TranscriptPart) -> Opening;
    fn check_program(self: @TContractState, opening: Opening, part: ProgramPart) -> Opening;
    fn check_commit(self: @TContractState, opening: Opening, part: CommitPart) -> Session;
    fn check_evaluate(
        self: @TContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, count: u32,
    ) -> Session;
    fn check_open(
        self: @TContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, chunk: QueryChunk,
    ) -> Session;
    fn check_fri(self: @TContractState, session: Session, layer: FriLayerProof) -> Session;
    fn check_finish(self: @TContractState, session: Session);
}

// The verifier as a contract, deployed with its evaluators' classes.
#[starknet::contract]
pub mod BitsageVerifier {
    use starknet::storage::{
        Map, StorageMapReadAccess, StorageMapWriteAccess, StoragePointerReadAccess, StoragePointerWriteAccess,
    };
    use core::num::traits::Zero;
    use starknet::{ClassHash, ContractAddress, get_caller_address};
    use super::super::fields::QM31;
    use super::super::fri::FriLayerProof;
    use super::{
        IVerifierStepsDispatcherTrait, IVerifierStepsLibraryDispatcher, IVerifierTranscriptDispatcherTrait,
        IVerifierTranscriptLibraryDispatcher, CommitPart, Opening, ProgramPart, QueryChunk, Session, TranscriptPart,
        hash_of, or_revert_code,
    };

    // A finished session's marker.
    const FINISHED: felt252 = 1;

    #[storage]
    struct Storage {
        // CPU, program table, memory, range.
        evaluators: Map<u32, ClassHash>,
        hash_parts: Map<u32, ClassHash>,
        n_hash_parts: u32,
        // The classes of the transcript and constraint steps
        // (`VerifierTranscript`) and of the query and FRI steps
        // (`VerifierSteps`).
        transcript: ClassHash,
        steps: ClassHash,
        // Per proof hash: the session's state hash, and its parts' hashes.
        sessions: Map<felt252, felt252>,
        parts: Map<(felt252, u32), felt252>,
        n_parts: Map<felt252, u32>,
        // Per proof hash, the account that began its session: the prover
        // the statement is recorded for.
        owners: Map<felt252, ContractAddress>,
        // Per statement key, the prover and the proof hash that verified it.
        verified: Map<felt252, (ContractAddress, felt252)>,
    }

    #[event]
    #[derive(Drop, starknet::Event)]
    pub enum Event {
        Verified: Verified,
    }

    #[derive(Drop, starknet::Event)]
    pub struct Verified {
        #[key]
        pub statement: felt252,
        pub prover: ContractAddress,
        pub proof_hash: felt252,
    }

    #[constructor]
    fn constructor(
        ref self: ContractState,
        evaluators: Array<ClassHash>,
        hash_parts: Array<ClassHash>,
        transcript: ClassHash,
        steps: ClassHash,
    ) {
        self.transcript.write(transcript);
        self.steps.write(steps);
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

    #[generate_trait]
    impl Internal of InternalTrait {
        // The evaluators' classes, then the hash component's parts.
        fn evaluators(self: @ContractState) -> Array<ClassHash> {
            let mut classes: Array<ClassHash> = array![];
            let mut k: u32 = 0;
            while k < 4 {
                classes.append(self.evaluators.read(k));
                k += 1;
            }
            let mut k: u32 = 0;
            while k < self.n_hash_parts.read() {
                classes.append(self.hash_parts.read(k));
                k += 1;
            }
            classes
        }

        fn steps_class(self: @ContractState) -> IVerifierStepsLibraryDispatcher {
            IVerifierStepsLibraryDispatcher { class_hash: self.steps.read() }
        }

        fn transcript_class(self: @ContractState) -> IVerifierTranscriptLibraryDispatcher {
            IVerifierTranscriptLibraryDispatcher { class_hash: self.transcript.read() }
        }

        // The state as carried (an `Opening` or a `Session`), checked
        // against its stored hash.
        fn resume<T, +Serde<T>, +Drop<T>>(self: @ContractState, proof_hash: felt252, state: @T) {
            let stored = self.sessions.read(proof_hash);
            assert(stored != 0, 'no such session');
            assert(stored != FINISHED, 'proof already verified');
            assert(hash_of(state) == stored, 'session state differs');
        }

        // Part `k` of the proof, checked against its committed hash; returns
        // the next part's index.
        fn take_part<T, +Serde<T>, +Drop<T>>(self: @ContractState, proof_hash: felt252, k: u32, part: @T) -> u32 {
            assert(k < self.n_parts.read(proof_hash), 'no part left');
            assert(hash_of(part) == self.parts.read((proof_hash, k)), 'part differs from committed');
            k + 1
        }
    }

    #[abi(embed_v0)]
    impl BitsageVerifierImpl of super::IBitsageVerifier<ContractState> {
        fn begin(ref self: ContractState, part: TranscriptPart, later_parts: Array<felt252>) -> (felt252, Opening) {
            let mut hashes: Array<felt252> = array![hash_of(@part)];
            for h in later_parts.span() {
                hashes.append(*h);
            }
            let proof_hash = core::poseidon::poseidon_hash_span(hashes.span());
            // A session not finished may begin again (from the transcript).
            assert(self.sessions.read(proof_hash) != FINISHED, 'proof already verified');
            let session = self.transcript_class().begin(part);
            let (prover, _) = self.verified.read(session.statement);
            assert(prover.is_zero(), 'statement already verified');
            self.owners.write(proof_hash, get_caller_address());
            let mut k: u32 = 0;
            for h in later_parts {
                self.parts.write((proof_hash, k), h);
                k += 1;
            }
            self.n_parts.write(proof_hash, k);
            self.sessions.write(proof_hash, hash_of(@session));
            (proof_hash, session)
        }

        fn program(ref self: ContractState, proof_hash: felt252, opening: Opening, part: ProgramPart) -> Opening {
            self.resume(proof_hash, @opening);
            let mut opening = opening;
            opening.next_part = self.take_part(proof_hash, opening.next_part, @part);
            let opening = self.transcript_class().program(opening, part);
            self.sessions.write(proof_hash, hash_of(@opening));
            opening
        }

        fn commit(ref self: ContractState, proof_hash: felt252, opening: Opening, part: CommitPart) -> Session {
            self.resume(proof_hash, @opening);
            let mut opening = opening;
            opening.next_part = self.take_part(proof_hash, opening.next_part, @part);
            let session = self.steps_class().commit(opening, part);
            self.sessions.write(proof_hash, hash_of(@session));
            session
        }

        fn evaluate(
            ref self: ContractState,
            proof_hash: felt252,
            session: Session,
            sampled_values: Array<Array<Array<QM31>>>,
            count: u32,
        ) -> Session {
            self.resume(proof_hash, @session);
            let (code, session) = self.transcript_class().evaluate(session, sampled_values, count, self.evaluators());
            or_revert_code(code);
            self.sessions.write(proof_hash, hash_of(@session));
            session
        }

        fn open(
            ref self: ContractState,
            proof_hash: felt252,
            session: Session,
            sampled_values: Array<Array<Array<QM31>>>,
            chunk: QueryChunk,
        ) -> Session {
            self.resume(proof_hash, @session);
            let mut session = session;
            session.next_part = self.take_part(proof_hash, session.next_part, @chunk);
            let steps = IVerifierStepsLibraryDispatcher { class_hash: self.steps.read() };
            let (code, next) = steps.open(session, sampled_values, chunk);
            or_revert_code(code);
            let session = next;
            self.sessions.write(proof_hash, hash_of(@session));
            session
        }

        fn fri(ref self: ContractState, proof_hash: felt252, session: Session, layer: FriLayerProof) -> Session {
            self.resume(proof_hash, @session);
            let mut session = session;
            session.next_part = self.take_part(proof_hash, session.next_part, @layer);
            let (code, session) = self.steps_class().fri(session, layer);
            or_revert_code(code);
            self.sessions.write(proof_hash, hash_of(@session));
            session
        }

        fn finish(ref self: ContractState, proof_hash: felt252, session: Session) {
            self.resume(proof_hash, @session);
            assert(session.next_part == self.n_parts.read(proof_hash), 'parts left over');
            or_revert_code(self.steps_class().finish(session.clone()));
            let (earlier, _) = self.verified.read(session.statement);
            assert(earlier.is_zero(), 'statement already verified');
            let prover = self.owners.read(proof_hash);
            self.verified.write(session.statement, (prover, proof_hash));
            self.sessions.write(proof_hash, FINISHED);
            self.emit(Verified { statement: session.statement, prover, proof_hash });
        }

        fn verified_by(self: @ContractState, statement: felt252) -> (ContractAddress, felt252) {
            self.verified.read(statement)
        }

        fn session(self: @ContractState, proof_hash: felt252) -> felt252 {
            self.sessions.read(proof_hash)
        }

        fn check_begin(self: @ContractState, part: TranscriptPart) -> Opening {
            self.transcript_class().begin(part)
        }

        fn check_program(self: @ContractState, opening: Opening, part: ProgramPart) -> Opening {
            let mut opening = opening;
            opening.next_part += 1;
            self.transcript_class().program(opening, part)
        }

        fn check_commit(self: @ContractState, opening: Opening, part: CommitPart) -> Session {
            let mut opening = opening;
            opening.next_part += 1;
            self.steps_class().commit(opening, part)
        }

        fn check_evaluate(
            self: @ContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, count: u32,
        ) -> Session {
            let (code, session) = self.transcript_class().evaluate(session, sampled_values, count, self.evaluators());
            or_revert_code(code);
            session
        }

        fn check_open(
            self: @ContractState, session: Session, sampled_values: Array<Array<Array<QM31>>>, chunk: QueryChunk,
        ) -> Session {
            let mut session = session;
            session.next_part += 1;
            let steps = IVerifierStepsLibraryDispatcher { class_hash: self.steps.read() };
            let (code, next) = steps.open(session, sampled_values, chunk);
            or_revert_code(code);
            next
        }

        fn check_fri(self: @ContractState, session: Session, layer: FriLayerProof) -> Session {
            let mut session = session;
            session.next_part += 1;
            let (code, next) = self.steps_class().fri(session, layer);
            or_revert_code(code);
            next
        }

        fn check_finish(self: @ContractState, session: Session) {
            or_revert_code(self.steps_class().finish(session));
        }
    }
}
