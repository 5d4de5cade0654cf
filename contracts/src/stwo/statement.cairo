// The ObelyskVM statement on chain: the program's digest (SHA-256 of its
// canonical encoding, as `Program::digest`), the statement and claim mixed
// into the transcript (`PcsConfig::mix_into`, `Statement::mix_into`), the
// relations drawn after the trace commitment (`Relations::draw`), and the
// LogUp terms only the verifier adds (`public_logup_sum`): the program table,
// the initial state, the memory and range enumerations' ends, and the public
// input and output. Checked against the Rust verifier's own functions on a
// devnet by `tests/all/onchain.rs`.
use core::sha256::compute_sha256_byte_array;
use super::channel::{Channel, ChannelTrait};
use super::fields::{QM31, qm31, qm31_add, qm31_inv, qm31_mul, qm31_scale, qm31_sub};
use super::pcs::PcsConfig;

#[derive(Copy, Drop, Serde, Debug)]
pub struct Instr {
    pub op: u32,
    pub dst: u32,
    pub a: u32,
    pub b: u32,
    pub imm_mode: u32,
    pub imm: u32,
}

#[derive(Drop, Serde, Debug)]
pub struct Table {
    pub name: ByteArray,
    // (key, value) pairs.
    pub entries: Array<(u32, u32)>,
}

#[derive(Drop, Serde, Debug)]
pub struct Program {
    pub instrs: Array<Instr>,
    pub tables: Array<Table>,
}

#[derive(Drop, Serde, Debug)]
pub struct Statement {
    pub program: Program,
    pub input: Array<u32>,
    pub output: Array<u32>,
}

// The prover's trace sizes (`Claim`); `hash_log_size` 0 when absent.
#[derive(Copy, Drop, Serde, Debug)]
pub struct Claim {
    pub cpu_log_size: u32,
    pub rom_log_size: u32,
    pub mem_log_size: u32,
    pub hash_log_size: u32,
    pub range_log_size: u32,
    pub ram_words: u32,
}

// One relation's drawn elements: `z` and `α^0..α^(n-1)`.
#[derive(Drop, Clone, Serde)]
pub struct Relation {
    pub z: QM31,
    pub alpha_powers: Array<QM31>,
}

// The relations in `relations!` order.
#[derive(Drop, Clone, Serde)]
pub struct Relations {
    pub state: Relation,
    pub rom: Relation,
    pub rom_def: Relation,
    pub mem: Relation,
    pub mem_chain: Relation,
    pub range: Relation,
    pub range_chain: Relation,
    pub input: Relation,
    pub output: Relation,
    pub hash_call: Relation,
}

fn append_u32_le(ref b: ByteArray, v: u32) {
    let mut x = v;
    let mut k: u32 = 0;
    while k < 4 {
        b.append_byte((x % 256).try_into().unwrap());
        x /= 256;
        k += 1;
    }
}

fn append_u64_le(ref b: ByteArray, v: u64) {
    let mut x = v;
    let mut k: u32 = 0;
    while k < 8 {
        b.append_byte((x % 256).try_into().unwrap());
        x /= 256;
        k += 1;
    }
}

// `Program::digest`: SHA-256 of "obelysk-program-v1", then the instructions
// and tables with their lengths, little-endian.
pub fn program_digest(p: @Program) -> [u32; 8] {
    let mut b: ByteArray = "obelysk-program-v1";
    append_u64_le(ref b, p.instrs.len().into());
    for i in p.instrs.span() {
        b.append_byte((*i.op).try_into().unwrap());
        b.append_byte((*i.dst).try_into().unwrap());
        b.append_byte((*i.a).try_into().unwrap());
        b.append_byte((*i.b).try_into().unwrap());
        b.append_byte((*i.imm_mode).try_into().unwrap());
        append_u32_le(ref b, *i.imm);
    }
    append_u64_le(ref b, p.tables.len().into());
    for t in p.tables.span() {
        append_u64_le(ref b, t.name.len().into());
        b.append(t.name);
        append_u64_le(ref b, t.entries.len().into());
        for e in t.entries.span() {
            let (k, v) = *e;
            append_u32_le(ref b, k);
            append_u32_le(ref b, v);
        }
    }
    compute_sha256_byte_array(@b)
}

// `words_digest`: SHA-256 of a list of words, its length as a little-endian
// u64, then each word as a little-endian u32 (how a job spec names its public
// input, and a result its output).
pub fn words_digest(words: Span<u32>) -> [u32; 8] {
    let mut b: ByteArray = "";
    append_u64_le(ref b, words.len().into());
    for w in words {
        append_u32_le(ref b, *w);
    }
    compute_sha256_byte_array(@b)
}

// A SHA-256 digest's two 128-bit halves as felts (as job specs carry them).
pub fn digest_halves(d: [u32; 8]) -> (felt252, felt252) {
    let s = d.span();
    let mut hi: felt252 = 0;
    let mut lo: felt252 = 0;
    let mut k: u32 = 0;
    while k < 4 {
        hi = hi * 0x100000000 + (*s[k]).into();
        lo = lo * 0x100000000 + (*s[k + 4]).into();
        k += 1;
    }
    (hi, lo)
}

// The key a verified statement is recorded under, and an escrow asks for:
// Poseidon of a tag, the program's digest, the public input's and the public
// output's (`words_digest`), each as two 128-bit halves, and the security
// level.
pub fn statement_key(
    program: (felt252, felt252), input: (felt252, felt252), output: (felt252, felt252), security_bits: u32,
) -> felt252 {
    let (p_hi, p_lo) = program;
    let (i_hi, i_lo) = input;
    let (o_hi, o_lo) = output;
    core::poseidon::poseidon_hash_span(
        array!['bitsage-statement-v1', p_hi, p_lo, i_hi, i_lo, o_hi, o_lo, security_bits.into()].span(),
    )
}

fn byteswap(w: u32) -> u32 {
    let (b0, b1, b2, b3) = (w % 256, (w / 256) % 256, (w / 65536) % 256, w / 16777216);
    ((b0 * 256 + b1) * 256 + b2) * 256 + b3
}

// `PcsConfig::mix_into`: two QM31s of the parameters (no lifting size).
pub fn mix_config(ref ch: Channel, c: PcsConfig) {
    let f = c.fri_config;
    ch.mix_felts(
        array![
            [c.pow_bits, f.log_blowup_factor, f.n_queries, f.log_last_layer_degree_bound],
            [f.fold_step, 0, 0, 0],
        ]
            .span(),
    );
}

fn mix_words(ref ch: Channel, words: Span<u32>) {
    ch.mix_u64(words.len().into());
    ch.mix_u32s(words);
}

// `Statement::mix_into`: the program digest's words (little-endian, as the
// Rust side reads its bytes), the input and the output with their lengths,
// then the claim's sizes.
pub fn mix_statement(ref ch: Channel, s: @Statement, claim: Claim) {
    mix_public(ref ch, program_digest(s.program), s.input.span(), s.output.span(), claim);
}

// `Statement::mix_into` with the program's digest given (a statement sent
// in parts: the program parts check the digest later).
pub fn mix_public(ref ch: Channel, program: [u32; 8], input: Span<u32>, output: Span<u32>, claim: Claim) {
    let mut words: Array<u32> = array![];
    for w in program.span() {
        words.append(byteswap(*w));
    }
    ch.mix_u32s(words.span());
    mix_words(ref ch, input);
    mix_words(ref ch, output);
    ch.mix_u32s(
        array![
            claim.cpu_log_size, claim.rom_log_size, claim.mem_log_size, claim.hash_log_size, claim.range_log_size,
            claim.ram_words,
        ]
            .span(),
    );
}

// `LookupElements::draw`: `z` and `α` drawn, `α`'s first `n` powers.
fn draw_relation(ref ch: Channel, n: u32) -> Relation {
    let d = ch.draw_secure_felts(2);
    let [z0, z1, z2, z3] = *d[0];
    let [a0, a1, a2, a3] = *d[1];
    let alpha = qm31(a0, a1, a2, a3);
    let mut powers = array![];
    let mut cur = qm31(1, 0, 0, 0);
    let mut k: u32 = 0;
    while k < n {
        powers.append(cur);
        cur = qm31_mul(cur, alpha);
        k += 1;
    }
    Relation { z: qm31(z0, z1, z2, z3), alpha_powers: powers }
}

pub fn draw_relations(ref ch: Channel) -> Relations {
    Relations {
        state: draw_relation(ref ch, 4),
        rom: draw_relation(ref ch, 8),
        rom_def: draw_relation(ref ch, 8),
        mem: draw_relation(ref ch, 4),
        mem_chain: draw_relation(ref ch, 2),
        range: draw_relation(ref ch, 1),
        range_chain: draw_relation(ref ch, 1),
        input: draw_relation(ref ch, 2),
        output: draw_relation(ref ch, 2),
        hash_call: draw_relation(ref ch, 2),
    }
}

// The relation at `index` in `relations!` order (the generated evaluators'
// parameters name relations by it).
pub fn relation(rels: @Relations, index: u32) -> @Relation {
    match index {
        0 => rels.state,
        1 => rels.rom,
        2 => rels.rom_def,
        3 => rels.mem,
        4 => rels.mem_chain,
        5 => rels.range,
        6 => rels.range_chain,
        7 => rels.input,
        8 => rels.output,
        _ => rels.hash_call,
    }
}

// `Σ α^i v_i - z`.
fn combine(r: @Relation, values: Span<u32>) -> QM31 {
    let mut acc = qm31(0, 0, 0, 0);
    let mut i: u32 = 0;
    while i < values.len() {
        acc = qm31_add(acc, qm31_scale(*r.alpha_powers[i], *values[i]));
        i += 1;
    }
    qm31_sub(acc, *r.z)
}

// `1 / (Σ α^i v_i - z)`.
fn inv_combine(r: @Relation, values: Span<u32>) -> QM31 {
    qm31_inv(combine(r, values))
}

// `public_logup_sum`: every term the verifier adds itself.
pub fn public_logup_sum(s: @Statement, claim: Claim, rels: @Relations) -> QM31 {
    let mut terms = FractionSum { num: qm31(0, 0, 0, 0), den: qm31(1, 0, 0, 0) };
    // The program table: each instruction, then each table entry.
    program_terms(ref terms, s.program.instrs.span(), 0, s.program.tables.span(), 0, rels);
    qm31_add(terms.value().unwrap_or(qm31(0, 0, 0, 0)), public_io_sum(s.input.span(), s.output.span(), claim, rels))
}

// `Σ 1/x` kept as one fraction `num / den`, so that a run of terms costs
// one inversion (`value`).
#[derive(Copy, Drop)]
pub struct FractionSum {
    pub num: QM31,
    pub den: QM31,
}

#[generate_trait]
pub impl FractionSumImpl of FractionSumTrait {
    // Adds `1 / (Σ α^i v_i - z)`.
    fn add_inverse(ref self: FractionSum, r: @Relation, values: Span<u32>) {
        let x = combine(r, values);
        self.num = qm31_add(qm31_mul(self.num, x), self.den);
        self.den = qm31_mul(self.den, x);
    }

    // The sum, or `None` when a denominator was zero (a term the Rust
    // verifier cannot invert either).
    fn value(self: FractionSum) -> Option<QM31> {
        if self.den == qm31(0, 0, 0, 0) {
            return Option::None;
        }
        Option::Some(qm31_mul(self.num, qm31_inv(self.den)))
    }
}

// The program table's terms for instructions `instrs` (the first at
// `first_pc`) and tables `tables` (the first numbered `first_table`).
pub fn program_terms(
    ref terms: FractionSum,
    instrs: Span<Instr>,
    first_pc: u32,
    tables: Span<Table>,
    first_table: u32,
    rels: @Relations,
) {
    let mut pc: u32 = first_pc;
    for i in instrs {
        terms.add_inverse(rels.rom_def, array![0, pc, *i.op, *i.imm_mode, *i.dst, *i.a, *i.b, *i.imm].span());
        pc += 1;
    }
    let mut t: u32 = first_table;
    for table in tables {
        for e in table.entries.span() {
            let (k, v) = *e;
            terms.add_inverse(rels.rom_def, array![t + 1, k, v, 0, 0, 0, 0, 0].span());
        }
        t += 1;
    }
}

// The public terms other than the program table's: the initial state, the
// memory and range enumerations' ends, the public input and output.
pub fn public_io_sum(input: Span<u32>, output: Span<u32>, claim: Claim, rels: @Relations) -> QM31 {
    let mut sum = qm31(0, 0, 0, 0);
    sum = qm31_add(sum, inv_combine(rels.state, array![0, 1, 0, 0].span()));
    // Registers (space 0) and RAM (space 1): the enumerations' two ends.
    sum = qm31_add(sum, inv_combine(rels.mem_chain, array![0, 0].span()));
    sum = qm31_sub(sum, inv_combine(rels.mem_chain, array![0, 16].span()));
    sum = qm31_add(sum, inv_combine(rels.mem_chain, array![1, 0].span()));
    sum = qm31_sub(sum, inv_combine(rels.mem_chain, array![1, claim.ram_words].span()));
    sum = qm31_add(sum, inv_combine(rels.range_chain, array![0].span()));
    let mut range_size: u32 = 1;
    let mut k: u32 = 0;
    while k < claim.range_log_size {
        range_size *= 2;
        k += 1;
    }
    sum = qm31_sub(sum, inv_combine(rels.range_chain, array![range_size].span()));
    let mut i: u32 = 0;
    for x in input {
        sum = qm31_add(sum, inv_combine(rels.input, array![i, *x].span()));
        i += 1;
    }
    let mut j: u32 = 0;
    for y in output {
        sum = qm31_sub(sum, inv_combine(rels.output, array![j, *y].span()));
        j += 1;
    }
    sum
}

#[starknet::interface]
pub trait IStwoStatement<TContractState> {
    // The transcript as the verifier runs it up to the relations: the config
    // and the statement with its claim mixed, then the preprocessed and main
    // roots; returns the digest at that point, the program's digest, and the
    // public LogUp sum under the relations then drawn.
    fn replay(
        self: @TContractState, config: PcsConfig, statement: Statement, claim: Claim, roots: Array<felt252>,
    ) -> (felt252, [u32; 8], QM31);
}

#[starknet::contract]
pub mod StwoStatement {
    use super::super::channel::ChannelTrait;
    use super::super::fields::QM31;
    use super::super::pcs::PcsConfig;
    use super::{Claim, Statement};

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoStatementImpl of super::IStwoStatement<ContractState> {
        fn replay(
            self: @ContractState, config: PcsConfig, statement: Statement, claim: Claim, roots: Array<felt252>,
        ) -> (felt252, [u32; 8], QM31) {
            let mut ch = ChannelTrait::new();
            super::mix_config(ref ch, config);
            super::mix_statement(ref ch, @statement, claim);
            for r in roots {
                ch.mix_root(r);
            };
            let digest = ch.digest;
            let rels = super::draw_relations(ref ch);
            (digest, super::program_digest(@statement.program), super::public_logup_sum(@statement, claim, @rels))
        }
    }
}
