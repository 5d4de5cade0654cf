//! batch-verify: checks a batch of Merkle inclusion proofs against a public
//! root, e.g. membership of accounts in an allowlist.
//!
//! Tree: leaf `H(LEAF; value)`, node `H(NODE; left || right)`, 4-word
//! digests. Public input: the root. Private advice: per proof, the leaf
//! value, then per level a direction bit (1 = the current node is the right
//! child) and the sibling digest. Public output: the root, a commitment to
//! the leaves (a hash chain `c = H(CHAIN; c || H(LEAF; value))` from zero),
//! and the number of proofs checked.
use bitsage_guest::gadgets::{select, write_all, Sponge, DIGEST_WORDS, RATE};
use bitsage_guest::prelude::*;

pub const LEAF: u32 = 2;
pub const NODE: u32 = 3;
pub const CHAIN: u32 = 4;
const MAX_DEPTH: usize = 32;

#[derive(Deserialize)]
struct Proof {
    leaf: u32,
    /// Bit `i` set: the node at level `i` is a right child.
    index: u64,
    siblings: Vec<[u32; DIGEST_WORDS]>,
}

#[derive(Deserialize)]
struct Input {
    root: [u32; DIGEST_WORDS],
    depth: usize,
    proofs: Vec<Proof>,
}

const SPONGE: Sponge = Sponge::at(0);
/// RAM: the root at 16..20, the leaf chain at 20..24.
const ROOT: u32 = 16;
const CHAIN_AT: u32 = 20;
const CUR: [Reg; DIGEST_WORDS] = [R3, R4, R5, R6];
const SIB: [Reg; DIGEST_WORDS] = [R7, R8, R9, R10];

fn program(depth: u32, count: u32) -> Program {
    let mut p = Program::new();
    for i in 0..DIGEST_WORDS as u32 {
        p.read(R11).store(R0, ROOT + i, R11);
    }
    p.repeat(R1, count, |p| {
        // Leaf digest, folded into the leaf chain.
        p.advice(R11);
        SPONGE.hash_words(p, LEAF, &[R11], CUR, R12);
        SPONGE.reset(p, CHAIN, R12);
        for i in 0..DIGEST_WORDS as u32 {
            p.load(R12, R0, CHAIN_AT + i);
            SPONGE.set(p, i, R12);
            SPONGE.set(p, DIGEST_WORDS as u32 + i, CUR[i as usize]);
        }
        SPONGE.permute(p);
        for i in 0..DIGEST_WORDS as u32 {
            p.load(R12, R0, SPONGE.base + i).store(R0, CHAIN_AT + i, R12);
        }
        // Walk up the tree.
        p.repeat(R2, depth, |p| {
            p.advice(R11).assert_bit(R11);
            for r in SIB {
                p.advice(r);
            }
            SPONGE.reset(p, NODE, R12);
            for i in 0..DIGEST_WORDS {
                let half = RATE / 2;
                // left = bit ? sibling : current; right = bit ? current : sibling
                select(p, R12, R11, SIB[i], CUR[i]);
                SPONGE.set(p, i as u32, R12);
                select(p, R12, R11, CUR[i], SIB[i]);
                SPONGE.set(p, half + i as u32, R12);
            }
            SPONGE.permute(p);
            SPONGE.squeeze(p, CUR);
        });
        for (i, r) in CUR.into_iter().enumerate() {
            p.load(R12, R0, ROOT + i as u32).assert_eq(R12, r, R12);
        }
    });
    for i in 0..DIGEST_WORDS as u32 {
        p.load(R12, R0, ROOT + i).write(R12);
    }
    for i in 0..DIGEST_WORDS as u32 {
        p.load(R12, R0, CHAIN_AT + i).write(R12);
    }
    p.mov(R12, count);
    write_all(&mut p, &[R12]);
    p.halt();
    p
}

fn field(v: u32) -> Result<M31, Error> {
    M31::canonical(v).ok_or_else(|| Error::new(format!("{v} is not below 2^31 - 1")))
}

fn verify_batch(input: Input) -> Result<Value, Error> {
    if input.depth == 0 || input.depth > MAX_DEPTH {
        return Err(Error::new(format!("depth must be 1..={MAX_DEPTH}")));
    }
    if input.proofs.is_empty() {
        return Err(Error::new("the batch is empty"));
    }
    let root: Vec<M31> = input.root.iter().map(|&w| field(w)).collect::<Result<_, _>>()?;
    let mut advice = Vec::new();
    for (n, proof) in input.proofs.iter().enumerate() {
        if proof.siblings.len() != input.depth {
            return Err(Error::new(format!(
                "proof {n} has {} siblings, expected {}",
                proof.siblings.len(),
                input.depth
            )));
        }
        advice.push(field(proof.leaf)?);
        for (level, sibling) in proof.siblings.iter().enumerate() {
            advice.push(M31::from(((proof.index >> level) & 1) as u32));
            for &w in sibling {
                advice.push(field(w)?);
            }
        }
    }
    let run = execute(&program(input.depth as u32, input.proofs.len() as u32), &root, &advice)?;
    let hex = |ws: &[M31]| ws.iter().map(|w| format!("{:08x}", w.value())).collect::<String>();
    Ok(json!({
        "root": hex(&run.output[..DIGEST_WORDS]),
        "leaves_commitment": hex(&run.output[DIGEST_WORDS..2 * DIGEST_WORDS]),
        "count": run.output[2 * DIGEST_WORDS].value(),
        "program_digest": run.program_digest,
    }))
}

bitsage_guest::workload!(verify_batch);
