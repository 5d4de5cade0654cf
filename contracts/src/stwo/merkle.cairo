// Stwo 2.3's lifted Merkle verifier (`MerkleVerifierLifted`) for the
// `Poseidon252MerkleHasher`: a leaf hashes the queried row's values, every
// column's value at the query with the columns ordered by log size (stably),
// packed eight M31 words to a felt and absorbed two felts per permutation;
// inner nodes are `poseidon_hash(left, right)`; the witness supplies each
// sibling that no other query's path computes, in the order the paths
// climb. Checked against Stwo's own prover and verifier on a devnet by
// `tests/all/onchain.rs`.
use core::poseidon::{hades_permutation, poseidon_hash_span};
use super::channel::poseidon_hash;

const TWO_POW_31: felt252 = 0x80000000;
const TWO_POW_248: felt252 = 0x100000000000000000000000000000000000000000000000000000000000000;
// M31 words to a felt.
const ELEMENTS_IN_BLOCK: u32 = 8;

#[derive(Copy, Drop, Debug, PartialEq)]
pub enum MerkleError {
    // Query positions not strictly increasing, outside the tree, or a
    // column without one value per query.
    Malformed,
    WitnessTooShort,
    WitnessTooLong,
    RootMismatch,
}

// Up to eight M31 words, 31 bits each from the high end; fewer than eight
// carry their count at bit 248 (`construct_felt252_from_m31s`).
pub fn felt_from_m31s(words: Span<u32>) -> felt252 {
    let mut cur: felt252 = 0;
    for w in words {
        cur = cur * TWO_POW_31 + (*w).into();
    }
    if words.len() < ELEMENTS_IN_BLOCK {
        cur += words.len().into() * TWO_POW_248;
    }
    cur
}

// The hash of one leaf: the row's words, sixteen to a permutation, then the
// remainder as at most two felts with the sponge's closing `+1`.
pub fn leaf_hash(row: Span<u32>) -> felt252 {
    let (mut s0, mut s1, mut s2) = (0, 0, 0);
    let n = row.len();
    let mut i: u32 = 0;
    while i + 2 * ELEMENTS_IN_BLOCK <= n {
        s0 += felt_from_m31s(row.slice(i, ELEMENTS_IN_BLOCK));
        s1 += felt_from_m31s(row.slice(i + ELEMENTS_IN_BLOCK, ELEMENTS_IN_BLOCK));
        let (a, b, c) = hades_permutation(s0, s1, s2);
        s0 = a;
        s1 = b;
        s2 = c;
        i += 2 * ELEMENTS_IN_BLOCK;
    }
    let rest = n - i;
    if rest == 0 {
        s0 += 1;
    } else if rest <= ELEMENTS_IN_BLOCK {
        s0 += felt_from_m31s(row.slice(i, rest));
        s1 += 1;
    } else {
        s0 += felt_from_m31s(row.slice(i, ELEMENTS_IN_BLOCK));
        s1 += felt_from_m31s(row.slice(i + ELEMENTS_IN_BLOCK, rest - ELEMENTS_IN_BLOCK));
        let (a, b, c) = hades_permutation(s0, s1, s2);
        s0 = a + 1;
        s1 = b;
        s2 = c;
    }
    let (h, _, _) = hades_permutation(s0, s1, s2);
    h
}

// Checks that `values[c][q]`, column `c`'s value at `queries[q]`, open the
// tree of `height` levels with root `root` (`height` is the largest column
// log size, the lifting height). `queries` must be strictly increasing.
pub fn verify(
    root: felt252,
    height: u32,
    column_log_sizes: Span<u32>,
    queries: Span<u32>,
    values: Span<Span<u32>>,
    witness: Span<felt252>,
) -> Result<(), MerkleError> {
    if height == 0 {
        return Result::Ok(());
    }
    if height > 31 || column_log_sizes.len() != values.len() {
        return Result::Err(MerkleError::Malformed);
    }
    let mut bound: u32 = 1;
    let mut k: u32 = 0;
    while k < height {
        bound *= 2;
        k += 1;
    }
    let n = queries.len();
    let mut q: u32 = 0;
    let mut malformed = false;
    while q < n {
        if *queries[q] >= bound || (q > 0 && *queries[q] <= *queries[q - 1]) {
            malformed = true;
        }
        q += 1;
    }
    for col in values {
        if (*col).len() != n {
            malformed = true;
        }
    }
    for s in column_log_sizes {
        if *s > height {
            malformed = true;
        }
    }
    if malformed || n == 0 {
        return Result::Err(MerkleError::Malformed);
    }

    // The leaves: each query's row, columns by log size, stably (the order
    // found once, then read for every query).
    let mut order: Array<u32> = array![];
    let mut size: u32 = 0;
    while size <= height {
        let mut c: u32 = 0;
        while c < values.len() {
            if *column_log_sizes[c] == size {
                order.append(c);
            }
            c += 1;
        }
        size += 1;
    }
    let order = order.span();
    let mut layer: Array<(u32, felt252)> = array![];
    let mut q: u32 = 0;
    while q < n {
        let mut row: Array<u32> = array![];
        for c in order {
            row.append(*(*values[*c])[q]);
        }
        layer.append((*queries[q], leaf_hash(row.span())));
        q += 1;
    }

    climb(layer, height, witness, root)
}

// The leaves' paths climbed to the root: siblings from other queries' paths
// or, in order, from the witness.
fn climb(
    leaves: Array<(u32, felt252)>, height: u32, witness: Span<felt252>, root: felt252,
) -> Result<(), MerkleError> {
    let mut layer = leaves;
    let mut witness = witness;
    let mut level: u32 = 0;
    let mut short = false;
    while level < height {
        let mut next: Array<(u32, felt252)> = array![];
        let cur = layer.span();
        let mut i: u32 = 0;
        while i < cur.len() {
            let (idx, h) = *cur[i];
            let pair = i + 1 < cur.len() && {
                let (j, _) = *cur[i + 1];
                idx ^ 1 == j
            };
            if pair {
                let (_, h1) = *cur[i + 1];
                next.append((idx / 2, poseidon_hash(h, h1)));
                i += 2;
            } else {
                let sibling = match witness.pop_front() {
                    Option::Some(w) => *w,
                    Option::None => {
                        short = true;
                        0
                    },
                };
                let parent = if idx % 2 == 0 {
                    poseidon_hash(h, sibling)
                } else {
                    poseidon_hash(sibling, h)
                };
                next.append((idx / 2, parent));
                i += 1;
            }
        }
        if short {
            return Result::Err(MerkleError::WitnessTooShort);
        }
        layer = next;
        level += 1;
    }
    if witness.len() != 0 {
        return Result::Err(MerkleError::WitnessTooLong);
    }
    let (_, computed) = *layer[0];
    if computed != root {
        return Result::Err(MerkleError::RootMismatch);
    }
    Result::Ok(())
}

// Checks that `leaves[q]`, the felts of the leaf at `queries[q]` (its row's
// words in leaf order, packed eight to a felt as `felt_from_m31s` packs
// them), open the tree of `height` levels with root `root`. `queries` must
// be strictly increasing; they may be any subset of a proof's queries, with
// the witness their own paths need.
pub fn verify_leaves(
    root: felt252, height: u32, queries: Span<u32>, leaves: Span<Span<felt252>>, witness: Span<felt252>,
) -> Result<(), MerkleError> {
    if height == 0 || height > 31 || queries.len() == 0 || leaves.len() != queries.len() {
        return Result::Err(MerkleError::Malformed);
    }
    let bound = super::circle::pow2(height);
    let mut layer: Array<(u32, felt252)> = array![];
    let mut q: u32 = 0;
    while q < queries.len() {
        if *queries[q] >= bound || (q > 0 && *queries[q] <= *queries[q - 1]) {
            return Result::Err(MerkleError::Malformed);
        }
        layer.append((*queries[q], poseidon_hash_span(*leaves[q])));
        q += 1;
    }
    climb(layer, height, witness, root)
}

#[starknet::interface]
pub trait IStwoMerkle<TContractState> {
    // 0 when the decommitment opens the tree, else 1 malformed, 2 witness
    // too short, 3 witness too long, 4 root mismatch.
    fn verify(
        self: @TContractState,
        root: felt252,
        height: u32,
        column_log_sizes: Array<u32>,
        queries: Array<u32>,
        values: Array<Array<u32>>,
        witness: Array<felt252>,
    ) -> u32;
    fn leaf_hash(self: @TContractState, row: Array<u32>) -> felt252;
}

// The verifier as a contract, for tests on a chain.
#[starknet::contract]
pub mod StwoMerkle {
    use super::MerkleError;

    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl StwoMerkleImpl of super::IStwoMerkle<ContractState> {
        fn verify(
            self: @ContractState,
            root: felt252,
            height: u32,
            column_log_sizes: Array<u32>,
            queries: Array<u32>,
            values: Array<Array<u32>>,
            witness: Array<felt252>,
        ) -> u32 {
            let mut cols: Array<Span<u32>> = array![];
            for c in values.span() {
                cols.append(c.span());
            }
            match super::verify(root, height, column_log_sizes.span(), queries.span(), cols.span(), witness.span()) {
                Result::Ok(()) => 0,
                Result::Err(MerkleError::Malformed) => 1,
                Result::Err(MerkleError::WitnessTooShort) => 2,
                Result::Err(MerkleError::WitnessTooLong) => 3,
                Result::Err(MerkleError::RootMismatch) => 4,
            }
        }

        fn leaf_hash(self: @ContractState, row: Array<u32>) -> felt252 {
            super::leaf_hash(row.span())
        }
    }
}
