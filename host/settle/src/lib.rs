//! Settlement's off-chain half: who the worker is, what it signs, and the
//! client of our Starknet contracts.
//!
//! - [`keystore`]: the worker's Stark-curve key, kept in an encrypted
//!   keystore file in the Web3 Secret Storage format (scrypt + AES-128-CTR)
//!   that starkli reads and writes, mode 0600.
//! - [`attest`]: signing a Stark-ECDSA attestation over a Poseidon hash of a
//!   receipt's module, program, input/output and proof digests, the job id
//!   and the worker's address (a Cairo contract checks it with
//!   `check_ecdsa_signature`). What needs no key (the job spec hash, the
//!   signed message, checking a receipt's attestation) is in
//!   `bitsage_receipt::attest`, re-exported there, so the browser's
//!   verifier runs it too.
//! - [`tee`]: which confidential-computing hardware the machine has. Where
//!   none is present (every machine this project runs on) an attestation is
//!   `software-signed`: it says which key signed, not what hardware ran.
//! - [`chain`]: the Starknet client (starknet-rust) for the staking,
//!   validator-registry and escrow contracts.
//! - [`onchain`]: our proofs as the on-chain verifier's calldata, whole or
//!   split over transactions.
//! - [`validator`]: a validator's judgement of a submitted result: the
//!   receipt verifies, its attestation signs it, it proves the committed
//!   spec, and, with a rerun, the output matches.
//!
//! `starknet-crypto`'s signing is not constant-time (its README says so).
//! That is acceptable for attestations made on the worker's own machine.

pub mod attest;
pub mod chain;
pub mod keystore;
pub mod onchain;
pub mod tee;
pub mod validator;

pub use starknet_crypto::Felt;

/// Parses a felt written as `0x`-hex or decimal.
pub fn parse_felt(s: &str) -> Option<Felt> {
    let t = s.trim();
    if t.starts_with("0x") { Felt::from_hex(t) } else { Felt::from_dec_str(t) }.ok()
}

/// `0x` and 64 hex digits: how job ids (spec hashes) are written in URLs,
/// file names and the node's store.
pub fn felt_hex(f: Felt) -> String {
    format!("{f:#066x}")
}
