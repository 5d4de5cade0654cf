//! The on-chain verifier's building blocks (issue 19), on a real devnet.
//!
//! Blake2s first: Stwo's Merkle trees and Fiat–Shamir channel hash with
//! it, and cairo-lang 2.16 has it as the audited `blake2s_compress` and
//! `blake2s_finalize` libfuncs. The `Blake2s` contract, deployed on
//! starknet-devnet 0.10.1, must give Stwo's own hasher's digest for inputs
//! on both sides of every block boundary.

use bitsage_settle::chain::{Chain, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::Felt;
use bitsage_tests::devnet::{contracts_dir, Devnet};
use stwo::core::vcs::blake2_hash::Blake2sHasher;

/// Stwo's Blake2s-256 of `words`' little-endian bytes, as eight
/// little-endian words (the contract's output).
fn stwo_blake2s(words: &[u32]) -> Vec<u32> {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let digest = Blake2sHasher::hash(&bytes);
    digest.0.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn the_chain_computes_blake2s_as_stwo_does() {
    let devnet = Devnet::start(1);
    let account = &devnet.accounts[0];
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let chain = Chain::new(&devnet.url, None).expect("chain");
    let key = WorkerKey::from_secret(Felt::from_hex(&account.private_key).expect("key"));
    let wallet = rt
        .block_on(Wallet::connect(chain.clone(), Felt::from_hex(&account.address).expect("address"), &key))
        .expect("wallet");
    let class = rt.block_on(wallet.declare(&contracts_dir(), "Blake2s")).expect("declares");
    let contract = rt.block_on(wallet.deploy(class, vec![], Felt::ONE)).expect("deploys");

    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut word = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as u32
    };
    // Empty, one word, and either side of one, two and many 64-byte blocks.
    for n in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 1000] {
        let words: Vec<u32> = (0..n).map(|_| word()).collect();
        let calldata: Vec<Felt> =
            std::iter::once(Felt::from(n as u64)).chain(words.iter().map(|&w| Felt::from(w))).collect();
        let out = rt.block_on(chain.call(contract, "blake2s", calldata)).expect("calls");
        let got: Vec<u32> = out
            .iter()
            .skip(1)
            .map(|f| {
                let b = f.to_bytes_le();
                assert!(b[4..].iter().all(|&x| x == 0), "{f:#x} is no u32");
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            })
            .collect();
        assert_eq!(out.first(), Some(&Felt::from(8u64)), "{n} words: {out:?}");
        assert_eq!(got, stwo_blake2s(&words), "{n} words");
    }
}
