// Building blocks of an on-chain verifier for our Stwo proofs (issue 19),
// written for Stwo 2.3's Poseidon252 Merkle channel: cairo-lang 2.16 cannot
// deploy Blake2s (see docs/settlement.md), while Poseidon is native here.
pub mod air;
pub mod channel;
pub mod circle;
pub mod fields;
pub mod fri;
pub mod merkle;
pub mod pcs;
pub mod sha;
pub mod stark;
pub mod statement;
pub mod verifier;
