// Blake2s-256 on chain, as Stwo's Blake2s Merkle trees and Fiat-Shamir
// channel use it: the first building block of the on-chain verifier (issue
// 19). Words are hashed as their little-endian bytes, sixteen to a block,
// with the `blake2s_compress` and `blake2s_finalize` libfuncs (in
// cairo-lang 2.16's audited list). The tests deploy it on starknet-devnet and
// compare its digests with Rust's for inputs of 0 to 1,000 words.

#[starknet::interface]
pub trait IBlake2s<TContractState> {
    /// Blake2s-256 of the words' little-endian bytes, as eight
    /// little-endian digest words.
    fn blake2s(self: @TContractState, words: Array<u32>) -> Array<u32>;
}

// Blake2s's IV, with the parameter block of an unkeyed 32-byte digest
// (digest length 32, fanout 1, depth 1) folded into the first word.
const IV0_PARAMS: u32 = 0x6B08E647;

fn initial_state() -> Box<[u32; 8]> {
    BoxTrait::new(
        [IV0_PARAMS, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19],
    )
}

// Word `i` of `words`, zero past the end (the final block's padding).
fn at(words: Span<u32>, i: u32) -> u32 {
    if i < words.len() {
        *words.at(i)
    } else {
        0
    }
}

// The sixteen words from `start`, zero-padded.
fn block(words: Span<u32>, start: u32) -> Box<[u32; 16]> {
    BoxTrait::new(
        [
            at(words, start), at(words, start + 1), at(words, start + 2), at(words, start + 3),
            at(words, start + 4), at(words, start + 5), at(words, start + 6), at(words, start + 7),
            at(words, start + 8), at(words, start + 9), at(words, start + 10), at(words, start + 11),
            at(words, start + 12), at(words, start + 13), at(words, start + 14), at(words, start + 15),
        ],
    )
}

// Blake2s-256 of `words` (4 bytes each): every block but the last is
// compressed, the last (possibly partial, possibly empty) finalized, with
// the byte count so far.
pub fn blake2s_words(words: Span<u32>) -> [u32; 8] {
    let n = words.len();
    let mut state = initial_state();
    let mut start: u32 = 0;
    while n - start > 16 {
        state = core::blake::blake2s_compress(state, (start + 16) * 4, block(words, start));
        start += 16;
    }
    core::blake::blake2s_finalize(state, n * 4, block(words, start)).unbox()
}

#[starknet::contract]
pub mod Blake2s {
    #[storage]
    struct Storage {}

    #[abi(embed_v0)]
    impl Blake2sImpl of super::IBlake2s<ContractState> {
        fn blake2s(self: @ContractState, words: Array<u32>) -> Array<u32> {
            let [a, b, c, d, e, f, g, h] = super::blake2s_words(words.span());
            array![a, b, c, d, e, f, g, h]
        }
    }
}
