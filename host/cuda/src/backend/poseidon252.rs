//! `MerkleOpsLifted` and `GrindOps` for Stwo's Poseidon252 Merkle channel:
//! the proofs the on-chain verifier checks, made on the device.

use starknet_crypto_06::poseidon_hash_many;
use starknet_ff::FieldElement as Felt252;
use stwo::core::channel::Poseidon252Channel;
use stwo::core::vcs_lifted::merkle_hasher::MerkleHasherLifted;
use stwo::core::vcs_lifted::poseidon252_merkle::{Poseidon252MerkleChannel, Poseidon252MerkleHasher};

use super::*;
use crate::poseidon252::{felt_words, words_felt};

impl DeviceValue for Felt252 {
    const WORDS: usize = 8;
    fn write(&self, out: &mut Vec<u32>) {
        out.extend(felt_words(self));
    }
    fn read(w: &[u32]) -> Self {
        // The kernels write reduced values only; anything else is a device fault.
        words_felt(w).unwrap_or_else(|| panic!("CUDA: a Poseidon252 hash on the device is not a reduced felt: {w:x?}"))
    }
}

impl ColumnOps<Felt252> for CudaBackend {
    type Column = DevCol<Felt252>;
    fn bit_reverse_column(column: &mut Self::Column) {
        column::bit_reverse_on_host(column);
    }
}

impl MerkleOpsLifted<Poseidon252MerkleHasher> for CudaBackend {
    fn build_leaves(columns: &[&Col<Self, BaseField>], lifting_log_size: u32) -> Col<Self, Felt252> {
        let _s = tracing::debug_span!("cuda poseidon252 merkle leaves").entered();
        if columns.is_empty() {
            // As the SIMD backend: one leaf, the default hash.
            return DevCol::from_host(&[<Poseidon252MerkleHasher as MerkleHasherLifted>::Hash::default()]);
        }
        let cols: Vec<(&CudaSlice<u32>, u32)> = columns.iter().map(|c| (c.buf(), c.len().ilog2())).collect();
        DevCol::from_words(ok(gpu().p252_merkle_leaves(&cols, lifting_log_size)), 1 << lifting_log_size)
            .link_merkle(None)
    }

    fn build_next_layer(prev_layer: &Col<Self, Felt252>) -> Col<Self, Felt252> {
        let _s = tracing::debug_span!("cuda poseidon252 merkle layer").entered();
        DevCol::from_words(ok(gpu().p252_merkle_next_layer(prev_layer.buf())), prev_layer.len() / 2)
            .link_merkle(Some(prev_layer))
    }
}

impl GrindOps<Poseidon252Channel> for CudaBackend {
    fn grind(channel: &Poseidon252Channel, pow_bits: u32) -> u64 {
        let _s = tracing::debug_span!("cuda poseidon252 grind").entered();
        let prefixed = poseidon_hash_many(&[Poseidon252Channel::POW_PREFIX.into(), channel.digest(), pow_bits.into()]);
        let nonce = ok(gpu().p252_grind(&prefixed, pow_bits));
        column::seed_query_plan(channel, nonce);
        nonce
    }
}

impl BackendForChannel<Poseidon252MerkleChannel> for CudaBackend {}
