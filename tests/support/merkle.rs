//! A native Merkle tree with the same hashing as the batch-verify workload
//! (`bitsage_guest::gadgets::Sponge`): `H(domain; words)` permutes a zero
//! state with `words` at 0.. and `domain` at index 8, and keeps words 0..4.
//! Used to make example inputs and to check the workload independently.

use obelysk_vm::poseidon2::permute;
use obelysk_vm::M31;
use serde_json::{json, Value};

pub const LEAF: u32 = 2;
pub const NODE: u32 = 3;
pub type Digest = [M31; 4];

pub fn hash(domain: u32, words: &[M31]) -> Digest {
    assert!(words.len() <= 8);
    let mut state = [M31(0); 16];
    state[..words.len()].copy_from_slice(words);
    state[8] = M31(domain);
    permute(&mut state);
    [state[0], state[1], state[2], state[3]]
}

pub struct Tree {
    /// `levels[0]` are the leaf digests, the last level is the root.
    levels: Vec<Vec<Digest>>,
}

impl Tree {
    /// A tree of depth `depth` over `values` (padded with zero digests).
    pub fn new(values: &[u32], depth: usize) -> Tree {
        assert!(values.len() <= 1 << depth);
        let mut level: Vec<Digest> = values.iter().map(|&v| hash(LEAF, &[M31(v)])).collect();
        level.resize(1 << depth, [M31(0); 4]);
        let mut levels = vec![level];
        for _ in 0..depth {
            let prev = levels.last().expect("non-empty");
            let next = prev.chunks(2).map(|p| hash(NODE, &[p[0], p[1]].concat())).collect();
            levels.push(next);
        }
        Tree { levels }
    }

    pub fn root(&self) -> Digest {
        self.levels.last().expect("non-empty")[0]
    }

    pub fn siblings(&self, index: usize) -> Vec<Digest> {
        (0..self.levels.len() - 1).map(|l| self.levels[l][(index >> l) ^ 1]).collect()
    }
}

fn digest_json(d: &Digest) -> Value {
    json!(d.iter().map(|w| w.0).collect::<Vec<_>>())
}

/// The batch-verify input proving that `values[i]` for each `i` in
/// `members` is in the tree.
pub fn batch_input(values: &[u32], depth: usize, members: &[usize]) -> Value {
    let tree = Tree::new(values, depth);
    let proofs: Vec<Value> = members
        .iter()
        .map(|&i| {
            json!({ "leaf": values[i], "index": i,
                    "siblings": tree.siblings(i).iter().map(digest_json).collect::<Vec<_>>() })
        })
        .collect();
    json!({ "root": digest_json(&tree.root()), "depth": depth, "proofs": proofs })
}
