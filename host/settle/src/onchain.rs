//! Proofs for the on-chain verifier (`contracts/src/stwo/verifier.cairo`):
//! a proof made over Stwo's Poseidon252 channel
//! ([`bitsage_prover::prove_poseidon252`]) split into the parts of a
//! verification over several transactions ([`Split`]), as the contract's
//! calldata. (No proof of our AIR fits one transaction.)
//!
//! A split verification runs as `begin` (the statement's head: the
//! program's digest and size, the public words; the claim, the roots, the
//! LogUp sums: the transcript to the interaction trace's root), `program`
//! (a run of instructions or whole tables: their rules checked, the digest
//! recomputed and the program table's LogUp terms added; after the last,
//! the digest must be the head's and the sums must balance), `commit` (the
//! rest of the transcript: sampled values, FRI's roots, the proof of work),
//! `evaluate` (the components' constraints at the out-of-domain point, a few
//! per transaction), `open` (a chunk of queries: each tree's leaves, packed
//! as the Merkle leaves hash them, with the chunk's own Merkle witness;
//! their DEEP quotients), `fri` (one FRI layer's decommitment, a
//! transaction each) and `finish` (the last layer). `begin` commits
//! to the hashes of every later part, so parts of two proofs cannot be
//! mixed; each step returns the session state the next one carries, and the
//! contract keeps only its hash.

use std::collections::HashMap;

use bitsage_air::verify::{ChainProof, VerifyError};
use bitsage_air::Statement;
use starknet_crypto::{poseidon_hash_many, Felt};
use stwo::core::fields::m31::BaseField;
use stwo::core::fields::qm31::SecureField;
use stwo::core::fri::{FriLayerProof, FriProof};
use stwo::core::pcs::quotients::CommitmentSchemeProof;
use stwo::core::vcs::poseidon252_merkle::construct_felt252_from_m31s;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::poseidon252_merkle::Poseidon252MerkleHasher;

type H = Poseidon252MerkleHasher;
type Hash = <H as MerkleHasherLifted>::Hash;

/// Queries opened per `open` transaction: with the carried session and the
/// sampled values, a chunk of this many stays within a transaction's 5,000
/// felts of calldata for every workload (the Poseidon2 component's 467
/// columns included).
pub const QUERIES_PER_CHUNK: usize = 8;

/// A Stwo Poseidon252 hash as a felt.
pub fn felt(h: Hash) -> Felt {
    Felt::from_bytes_be(&h.to_bytes_be())
}

fn len(n: usize) -> Felt {
    Felt::from(n as u64)
}

/// A QM31 as the contracts' `QM31` decodes it: its four coordinates.
pub fn qm31(v: &SecureField) -> [Felt; 4] {
    v.to_m31_array().map(|m| Felt::from(m.0))
}

/// A Cairo `ByteArray`: full 31-byte words, the pending word, its length.
fn byte_array(s: &str) -> Vec<Felt> {
    let b = s.as_bytes();
    let full: Vec<&[u8]> = b.chunks(31).filter(|c| c.len() == 31).collect();
    let pending = &b[full.len() * 31..];
    let mut out = vec![len(full.len())];
    out.extend(full.iter().map(|w| Felt::from_bytes_be_slice(w)));
    out.push(Felt::from_bytes_be_slice(pending));
    out.push(len(pending.len()));
    out
}

/// Felts of program (instructions, tables) per `program` transaction: with
/// the carried opening state (about 300 felts) a part stays well within a
/// transaction's calldata.
pub const PROGRAM_PART_FELTS: usize = 4_000;

/// Instructions plus table entries per `program` transaction: each costs
/// 1.1 to 1.6 M L2 gas to check, encode and add (measured on devnet 0.10.1:
/// 666 additions 722 M; 666 of ml-inference's instructions and table
/// entries 1,023 M), so a part of 500 stays within a transaction's 1.11 G
/// with a margin.
pub const PROGRAM_PART_ITEMS: usize = 500;

/// The statement's head as the verifier's `StatementHead` decodes it: the
/// program's digest as eight big-endian words, its instruction and table
/// counts, the input and the output.
pub fn head_calldata(s: &Statement) -> Vec<Felt> {
    let digest = s.program.digest();
    let mut c: Vec<Felt> = digest.chunks(4).map(|w| Felt::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))).collect();
    c.extend([len(s.program.instrs.len()), len(s.program.tables.len())]);
    c.push(len(s.input.len()));
    c.extend(s.input.iter().map(|w| Felt::from(w.0)));
    c.push(len(s.output.len()));
    c.extend(s.output.iter().map(|w| Felt::from(w.0)));
    c
}

fn instr_calldata(i: &obelysk_vm::Instr) -> [Felt; 6] {
    [i.op as u32, i.dst as u32, i.a as u32, i.b as u32, i.imm_mode as u32, i.imm.0].map(Felt::from)
}

fn table_calldata(t: &obelysk_vm::Table) -> Vec<Felt> {
    let mut c = byte_array(&t.name);
    c.push(len(t.entries.len()));
    for (k, v) in &t.entries {
        c.extend([Felt::from(k.0), Felt::from(v.0)]);
    }
    c
}

/// One `ProgramPart`: instructions, then tables, each with its count.
fn program_part(instrs: &[Felt], n_instrs: usize, tables: &[Felt], n_tables: usize) -> Vec<Felt> {
    let mut part = vec![len(n_instrs)];
    part.extend_from_slice(instrs);
    part.push(len(n_tables));
    part.extend_from_slice(tables);
    part
}

/// The program as `ProgramPart`s of at most about [`PROGRAM_PART_FELTS`]
/// felts each: runs of instructions, then whole tables (a table larger than
/// a part gets a part of its own, which [`Split::too_large`] then names).
pub fn program_parts(s: &Statement) -> Vec<Vec<Felt>> {
    let mut parts = Vec::new();
    let (mut instrs, mut n_instrs, mut tables, mut n_tables) = (Vec::new(), 0, Vec::new(), 0);
    for run in s.program.instrs.chunks(PROGRAM_PART_ITEMS.min(PROGRAM_PART_FELTS / 6)) {
        if n_instrs > 0 {
            parts.push(program_part(&instrs, n_instrs, &[], 0));
        }
        instrs = run.iter().flat_map(instr_calldata).collect();
        n_instrs = run.len();
    }
    let mut items = n_instrs;
    for t in &s.program.tables {
        let felts = table_calldata(t);
        let full = instrs.len() + tables.len() + felts.len() > PROGRAM_PART_FELTS
            || items + t.entries.len() > PROGRAM_PART_ITEMS;
        if n_instrs + n_tables > 0 && full {
            parts.push(program_part(&instrs, n_instrs, &tables, n_tables));
            (instrs, n_instrs, tables, n_tables, items) = (Vec::new(), 0, Vec::new(), 0, 0);
        }
        tables.extend(felts);
        n_tables += 1;
        items += t.entries.len();
    }
    if n_instrs + n_tables > 0 {
        parts.push(program_part(&instrs, n_instrs, &tables, n_tables));
    }
    parts
}

/// A statement as the contracts' `Statement` decodes it (the statement
/// contract's `replay` view).
pub fn statement_calldata(s: &Statement) -> Vec<Felt> {
    let mut c = vec![len(s.program.instrs.len())];
    for i in &s.program.instrs {
        c.extend(instr_calldata(i));
    }
    c.push(len(s.program.tables.len()));
    for t in &s.program.tables {
        c.extend(table_calldata(t));
    }
    c.push(len(s.input.len()));
    c.extend(s.input.iter().map(|w| Felt::from(w.0)));
    c.push(len(s.output.len()));
    c.extend(s.output.iter().map(|w| Felt::from(w.0)));
    c
}

/// QM31 values as the contracts' flat word arrays (length, then four words each).
pub fn qm31s_calldata(values: &[SecureField]) -> Vec<Felt> {
    let mut out = vec![len(4 * values.len())];
    out.extend(values.iter().flat_map(qm31));
    out
}

fn fri_layer(l: &FriLayerProof<H>, with_witness: bool) -> Vec<Felt> {
    let mut out = if with_witness { qm31s_calldata(&l.fri_witness) } else { vec![len(0)] };
    if with_witness {
        out.push(len(l.decommitment.hash_witness.len()));
        out.extend(l.decommitment.hash_witness.iter().map(|&h| felt(h)));
    } else {
        out.push(len(0));
    }
    out.push(felt(l.commitment));
    out
}

fn fri_calldata(proof: &FriProof<H>, with_witness: bool) -> Vec<Felt> {
    let mut c = fri_layer(&proof.first_layer, with_witness);
    c.push(len(proof.inner_layers.len()));
    for l in &proof.inner_layers {
        c.extend(fri_layer(l, with_witness));
    }
    c.extend(qm31s_calldata(&proof.last_layer_poly));
    c
}

/// A FRI proof as the contracts' `FriProof` decodes it.
pub fn fri_proof_calldata(proof: &FriProof<H>) -> Vec<Felt> {
    fri_calldata(proof, true)
}

/// Sampled values (per tree, per column, per sample) as the contracts decode them.
pub fn sampled_calldata(sampled: &[Vec<Vec<SecureField>>]) -> Vec<Felt> {
    let mut c = vec![len(sampled.len())];
    for tree in sampled {
        c.push(len(tree.len()));
        for col in tree {
            c.push(len(col.len()));
            col.iter().for_each(|v| c.extend(qm31(v)));
        }
    }
    c
}

/// A commitment-scheme proof as the contracts' `PcsProof` decodes it.
pub fn pcs_proof_calldata(proof: &CommitmentSchemeProof<H>) -> Vec<Felt> {
    let mut c = sampled_calldata(&proof.sampled_values);
    c.push(len(proof.decommitments.len()));
    for d in proof.decommitments.iter() {
        c.push(len(d.hash_witness.len()));
        c.extend(d.hash_witness.iter().map(|&h| felt(h)));
    }
    c.push(len(proof.queried_values.len()));
    for tree in proof.queried_values.iter() {
        c.push(len(tree.len()));
        for col in tree {
            c.push(len(col.len()));
            c.extend(col.iter().map(|v| Felt::from(v.0)));
        }
    }
    c.push(Felt::from(proof.proof_of_work));
    c.extend(fri_proof_calldata(&proof.fri_proof));
    c
}

/// The claim, the components' LogUp sums and the trees' roots, as the
/// contract's `TranscriptPart` has them after the statement.
fn claim_calldata(proof: &ChainProof) -> Vec<Felt> {
    let mut c: Vec<Felt> = proof.claim.words().map(Felt::from).to_vec();
    let i = &proof.interaction;
    c.push(len(5));
    for s in [i.cpu, i.rom, i.mem, i.range, i.hash] {
        c.extend(qm31(&s));
    }
    c.push(len(proof.stark.commitments.len()));
    c.extend(proof.stark.commitments.iter().map(|&r| felt(r)));
    c
}

/// A proof split into the parts of a verification over several transactions.
#[derive(Clone, Debug)]
pub struct Split {
    /// `begin`'s calldata: the transcript part, then the later parts' hashes.
    pub begin: Vec<Felt>,
    /// Each `program` step's part (`ProgramPart`).
    pub program: Vec<Vec<Felt>>,
    /// `commit`'s part: the sampled values, FRI's roots and last layer, the
    /// proof of work.
    pub commit: Vec<Felt>,
    /// The sampled values, as `evaluate` and `open` take them.
    pub sampled: Vec<Felt>,
    /// How many components the proof has (`evaluate` covers them all).
    pub n_components: usize,
    /// Each `open`'s chunk of queries (`QueryChunk`).
    pub chunks: Vec<Vec<Felt>>,
    /// Each `fri` step's layer (`FriLayerProof`: witness, decommitment,
    /// root): the first layer, then each inner one. `finish` takes none.
    pub fri: Vec<Vec<Felt>>,
    /// How much of `begin` is the transcript part.
    transcript_len: usize,
    /// The program's largest table's entries (a table travels whole).
    largest_table: usize,
}

/// A proof's parameters as `TranscriptPart` takes them: the `PcsConfig`
/// (grinding bits, then the FRI config's fields), then the lifting log size
/// plus one (0 for none).
pub fn config_calldata(config: &stwo::core::pcs::PcsConfig) -> Vec<Felt> {
    let f = &config.fri_config;
    let mut c: Vec<Felt> =
        [config.pow_bits, f.log_blowup_factor, f.log_last_layer_degree_bound, f.n_queries as u32, f.fold_step]
            .map(Felt::from)
            .to_vec();
    c.push(Felt::from(config.lifting_log_size.map_or(0, |l| u64::from(l) + 1)));
    c
}

/// Mainnet's calldata limit per transaction, in felts (blockifier's
/// versioned constants 0.14.4).
pub const MAX_CALLDATA_FELTS: usize = 5_000;

/// An upper bound on the state a `program` or `commit` step carries besides
/// its part (the opening: relations, components, roots, the digest's
/// progress), with room to spare.
pub const CARRIED_STATE_FELTS: usize = 400;

/// One step of a split verification after `begin`: the verifier's entry
/// point (`check_` before it is the same step as a view), and the calldata
/// after the carried session.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub entry: &'static str,
    pub tail: Vec<Felt>,
}

/// The contract's number for a verdict (`verifier.cairo`'s `verdict`): 0
/// accepted, 1 statement, 2 claim bounds, 3 LogUp balance, 4 out-of-domain
/// values, 5 malformed, 6 parameters, 10-13 the commitment scheme's
/// structure, proof of work, Merkle and FRI checks, 14 a degenerate sample.
pub fn verdict_code(r: &Result<(), VerifyError>) -> u32 {
    use stwo::core::verifier::VerificationError as V;
    match r {
        Ok(()) => 0,
        Err(VerifyError::Statement(_)) => 1,
        Err(VerifyError::BadClaim(_)) => 2,
        Err(VerifyError::LogupImbalance) => 3,
        Err(VerifyError::Stark(V::OodsNotMatching)) => 4,
        Err(VerifyError::Malformed(_)) => 5,
        Err(VerifyError::ConfigMismatch) => 6,
        Err(VerifyError::Stark(V::InvalidStructure(_))) => 10,
        Err(VerifyError::Stark(V::ProofOfWork)) => 11,
        Err(VerifyError::Stark(V::Merkle(_))) => 12,
        Err(VerifyError::Stark(V::Fri(_))) => 13,
    }
}

/// What a verdict code means, in the Rust verifier's words for its error kind.
pub fn verdict_name(code: u32) -> &'static str {
    match code {
        0 => "accepted",
        1 => "invalid statement",
        2 => "claim out of bounds",
        3 => "lookup sums do not balance",
        4 => "out-of-domain values do not match the constraints",
        5 => "malformed proof",
        6 => "different proof parameters than the statement asks for",
        10 => "invalid proof structure",
        11 => "proof of work not satisfied",
        12 => "Merkle decommitment failed",
        13 => "FRI check failed",
        14 => "degenerate out-of-domain sample",
        _ => "unknown verdict",
    }
}

/// The verdict a revert reason carries (`verify failed: NN`), if any.
pub fn verdict_of_reason(reason: &str) -> Option<u32> {
    reason.strip_prefix("verify failed: ")?.parse().ok()
}

/// The key the verifier records a verified statement under, and the escrow
/// asks for: Poseidon of a tag, the program's digest, the public input's and
/// output's ([`bitsage_receipt::words_digest`]), each as two 128-bit halves,
/// and the security level.
pub fn statement_key(statement: &Statement) -> Felt {
    let halves = |d: [u8; 32]| [Felt::from_bytes_be_slice(&d[..16]), Felt::from_bytes_be_slice(&d[16..])];
    let mut words = vec![Felt::from_bytes_be_slice(b"bitsage-statement-v1")];
    words.extend(halves(statement.program.digest()));
    words.extend(halves(bitsage_receipt::words_digest(&statement.input)));
    words.extend(halves(bitsage_receipt::words_digest(&statement.output)));
    words.push(Felt::from(statement.security.bits()));
    poseidon_hash_many(&words)
}

/// The proof hash `begin` keys the session by: Poseidon of each part's
/// Poseidon hash.
pub fn part_hash(part: &[Felt]) -> Felt {
    poseidon_hash_many(part)
}

impl Split {
    /// Splits `proof` of `statement`. The query positions come from the
    /// proof's own transcript; a proof whose transcript fails before them
    /// (its proof of work, FRI's layer count) gets no chunks, and `begin`
    /// rejects it.
    pub fn new(statement: &Statement, proof: &ChainProof) -> Split {
        let positions = bitsage_air::verify::query_positions_poseidon252(statement, proof).unwrap_or_default();
        Split::with_positions(statement, proof, &positions)
    }

    /// [`Split::new`] with the query positions given.
    pub fn with_positions(statement: &Statement, proof: &ChainProof, positions: &[usize]) -> Split {
        let pcs = &proof.stark.0;
        let mut transcript = head_calldata(statement);
        transcript.push(Felt::from(statement.security.bits()));
        transcript.extend(config_calldata(&proof.stark.config));
        transcript.extend(claim_calldata(proof));

        let program = program_parts(statement);
        let sampled = sampled_calldata(&pcs.sampled_values);
        let mut commit = sampled.clone();
        commit.extend(fri_calldata(&pcs.fri_proof, false));
        commit.push(Felt::from(pcs.proof_of_work));
        let chunks = query_chunks(proof, positions);
        let fri: Vec<Vec<Felt>> = [&pcs.fri_proof.first_layer]
            .into_iter()
            .chain(&pcs.fri_proof.inner_layers)
            .map(|l| fri_layer(l, true))
            .collect();
        let mut split = Split {
            largest_table: statement.program.tables.iter().map(|t| t.entries.len()).max().unwrap_or(0),
            transcript_len: transcript.len(),
            begin: transcript,
            program,
            commit,
            sampled,
            n_components: 4 + proof.claim.hash_log_size.is_some() as usize,
            chunks,
            fri,
        };
        split.recommit();
        split
    }

    /// The components each `evaluate` step covers: the four always present
    /// in one, the hash component's Poseidon2 constraints in one of their own.
    pub fn evaluate_counts(&self) -> Vec<usize> {
        [4, self.n_components - 4].into_iter().filter(|&c| c > 0).collect()
    }

    /// Why this split cannot be sent on chain, if it cannot: a part that
    /// overflows a transaction's calldata with the state it carries (the
    /// public input and output travel whole in `begin`; a table larger than
    /// a program part travels whole in one).
    pub fn too_large(&self) -> Option<String> {
        if self.largest_table > PROGRAM_PART_ITEMS {
            return Some(format!(
                "a table of {} entries is more than one transaction can check ({PROGRAM_PART_ITEMS}): \
                 this proof cannot be verified on chain",
                self.largest_table
            ));
        }
        let mut parts = [("the statement's head and transcript", self.begin.len())]
            .into_iter()
            .chain(self.program.iter().map(|p| ("a program part", p.len() + CARRIED_STATE_FELTS)))
            .chain([("the sampled values and FRI's roots", self.commit.len() + CARRIED_STATE_FELTS)])
            .chain(self.fri.iter().map(|l| ("a FRI layer", l.len() + CARRIED_STATE_FELTS)));
        parts.find(|&(_, n)| n > MAX_CALLDATA_FELTS).map(|(what, n)| {
            format!(
                "{what} needs about {n} felts of calldata, over a transaction's {MAX_CALLDATA_FELTS}: \
                 this proof cannot be verified on chain"
            )
        })
    }

    /// `begin`'s commitment to the later parts, computed from the parts as
    /// they are now ([`Split::with_positions`] makes the honest one; a test
    /// that rearranges or replaces parts calls it as a hostile prover would).
    pub fn recommit(&mut self) {
        let mut begin = self.transcript().to_vec();
        let later: Vec<Felt> = self
            .program
            .iter()
            .chain([&self.commit])
            .chain(&self.chunks)
            .chain(&self.fri)
            .map(|p| part_hash(p))
            .collect();
        begin.push(len(later.len()));
        begin.extend(later);
        self.begin = begin;
    }

    /// `begin`'s transcript part alone (what `check_begin` takes).
    pub fn transcript(&self) -> &[Felt] {
        &self.begin[..self.transcript_len]
    }

    /// The steps after `begin`, in order: each `program` part, `commit`,
    /// each `evaluate`, each `open`, then `finish`. A step's calldata is the
    /// state it carries, then its tail.
    pub fn later_steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        for (k, part) in self.program.iter().enumerate() {
            steps.push(Step { name: format!("program {k}"), entry: "program", tail: part.clone() });
        }
        steps.push(Step { name: "commit".into(), entry: "commit", tail: self.commit.clone() });
        for count in self.evaluate_counts() {
            let mut tail = self.sampled.clone();
            tail.push(Felt::from(count as u64));
            steps.push(Step { name: format!("evaluate {count}"), entry: "evaluate", tail });
        }
        for (k, chunk) in self.chunks.iter().enumerate() {
            let mut tail = self.sampled.clone();
            tail.extend_from_slice(chunk);
            steps.push(Step { name: format!("open {k}"), entry: "open", tail });
        }
        for (k, layer) in self.fri.iter().enumerate() {
            steps.push(Step { name: format!("fri {k}"), entry: "fri", tail: layer.clone() });
        }
        steps.push(Step { name: "finish".into(), entry: "finish", tail: Vec::new() });
        steps
    }

    /// The proof hash `begin` returns for this split.
    pub fn proof_hash(&self) -> Felt {
        // `begin`'s calldata is the transcript part, then the count and the
        // later parts' hashes.
        let mut hashes = vec![part_hash(self.transcript())];
        hashes.extend_from_slice(&self.begin[self.transcript_len + 1..]);
        poseidon_hash_many(&hashes)
    }
}

/// Each tree's columns' extended log sizes, in the proof's column order: the
/// main and interaction trees' from the claim, the composition tree's eight.
fn tree_column_sizes(proof: &ChainProof) -> Vec<Vec<u32>> {
    let blowup = proof.stark.config.fri_config.log_blowup_factor;
    let sizes = proof.claim.column_log_sizes();
    let max = proof.claim.log_sizes().into_iter().max().unwrap_or(0);
    vec![
        vec![],
        sizes[1].iter().map(|s| s + blowup).collect(),
        sizes[2].iter().map(|s| s + blowup).collect(),
        vec![max + blowup; 8],
    ]
}

/// A tree's leaf order: columns by extended log size, stably (as the lifted
/// Merkle tree hashes a row).
fn leaf_order(sizes: &[u32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&c| sizes[c]);
    order
}

/// The row of `tree` at query `q`, in leaf order.
fn leaf_row(proof: &ChainProof, tree: usize, order: &[usize], q: usize) -> Vec<BaseField> {
    order.iter().map(|&c| proof.stark.0.queried_values[tree][c][q]).collect()
}

/// Every node hash the paths of `positions` compute, by level (0: leaves),
/// with the siblings the proof's witness supplies.
fn known_nodes(leaves: &[(usize, Hash)], height: u32, witness: &[Hash]) -> Vec<HashMap<usize, Hash>> {
    let mut levels: Vec<HashMap<usize, Hash>> = vec![leaves.iter().copied().collect()];
    let mut layer: Vec<(usize, Hash)> = leaves.to_vec();
    let mut w = witness.iter();
    for _ in 0..height {
        let mut next = Vec::new();
        let known = levels.last_mut().expect("a level");
        let mut i = 0;
        while i < layer.len() {
            let (idx, h) = layer[i];
            let (left, right) = if i + 1 < layer.len() && layer[i + 1].0 == idx ^ 1 {
                i += 2;
                (h, layer[i - 1].1)
            } else {
                // A malformed witness leaves the sibling unknown; the
                // contract then rejects the chunk.
                let s = w.next().copied().unwrap_or_default();
                known.insert(idx ^ 1, s);
                i += 1;
                if idx % 2 == 0 {
                    (h, s)
                } else {
                    (s, h)
                }
            };
            next.push((idx / 2, H::hash_children((left, right))));
        }
        levels.push(next.iter().copied().collect());
        layer = next;
    }
    levels
}

/// The witness a subset of the queries needs: the siblings its own paths do
/// not compute, in the order the contract's Merkle verifier climbs.
fn subset_witness(levels: &[HashMap<usize, Hash>], subset: &[usize], height: u32) -> Vec<Felt> {
    let mut out = Vec::new();
    let mut layer: Vec<usize> = subset.to_vec();
    for level in 0..height as usize {
        let mut next = Vec::new();
        let mut i = 0;
        while i < layer.len() {
            let idx = layer[i];
            if i + 1 < layer.len() && layer[i + 1] == idx ^ 1 {
                i += 2;
            } else {
                out.push(felt(levels[level].get(&(idx ^ 1)).copied().unwrap_or_default()));
                i += 1;
            }
            next.push(idx / 2);
        }
        layer = next;
    }
    out
}

/// The `open` parts: per chunk of [`QUERIES_PER_CHUNK`] queries, each tree's
/// leaves (packed eight words to a felt, as the leaf hash packs them) and the
/// chunk's own Merkle witness.
fn query_chunks(proof: &ChainProof, positions: &[usize]) -> Vec<Vec<Felt>> {
    let pcs = &proof.stark.0;
    let sizes = tree_column_sizes(proof);
    if positions.is_empty() || pcs.queried_values.len() != 4 || pcs.decommitments.len() != 4 {
        return Vec::new();
    }
    // Per tree: leaf order, packed leaves and every known node.
    let mut trees = Vec::new();
    for (t, sizes) in sizes.iter().enumerate().skip(1) {
        let order = leaf_order(sizes);
        let height = sizes.iter().copied().max().unwrap_or(0);
        if pcs.queried_values[t].len() != order.len()
            || pcs.queried_values[t].iter().any(|c| c.len() != positions.len())
        {
            return Vec::new();
        }
        let rows: Vec<Vec<BaseField>> = (0..positions.len()).map(|q| leaf_row(proof, t, &order, q)).collect();
        let leaves: Vec<(usize, Hash)> = positions
            .iter()
            .zip(&rows)
            .map(|(&p, row)| {
                let mut hasher = H::default();
                hasher.update_leaf(row);
                (p, hasher.finalize())
            })
            .collect();
        let levels = known_nodes(&leaves, height, &pcs.decommitments[t].hash_witness);
        let packed: Vec<Vec<Felt>> =
            rows.iter().map(|row| row.chunks(8).map(|c| felt(construct_felt252_from_m31s(c))).collect()).collect();
        trees.push((height, levels, packed));
    }
    positions
        .chunks(QUERIES_PER_CHUNK)
        .enumerate()
        .map(|(k, subset)| {
            let range = k * QUERIES_PER_CHUNK..k * QUERIES_PER_CHUNK + subset.len();
            // `leaves`: four trees (the empty preprocessed one first), each
            // query's felts.
            let mut c = vec![len(4), len(0)];
            for (_, _, packed) in &trees {
                c.push(len(subset.len()));
                for leaf in &packed[range.clone()] {
                    c.push(len(leaf.len()));
                    c.extend(leaf);
                }
            }
            c.push(len(4));
            c.push(len(0));
            for (height, levels, _) in &trees {
                let w = subset_witness(levels, subset, *height);
                c.push(len(w.len()));
                c.extend(w);
            }
            c
        })
        .collect()
}
