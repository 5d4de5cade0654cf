//! Attestations: the worker's Stark-ECDSA signature over
//!
//! ```text
//! poseidon_hash_many([
//!     'bitsage-attest-v1',                      // domain tag, a Cairo short string
//!     module_hi, module_lo, program_hi, program_lo, io_hi, io_lo, proof_hi, proof_lo,
//!     job_id, worker_address,
//! ])
//! ```
//!
//! Each 32-byte digest enters as two 128-bit halves (a digest does not fit
//! one felt). A Cairo contract recomputes the hash with
//! `poseidon_hash_span` and checks the signature with
//! `check_ecdsa_signature(hash, public_key, r, s)`.

use bitsage_prover::receipt::{AttestationRecord, Receipt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use starknet_crypto::{poseidon_hash_many, Felt};

use crate::keystore::{KeyError, WorkerKey};
use crate::tee::Evidence;

/// What an attestation binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    /// SHA-256 of the WASM module (attested, not proven).
    pub module: [u8; 32],
    /// SHA-256 of the VM program the STARK proves.
    pub program: [u8; 32],
    /// SHA-256 of the public input and output words.
    pub io: [u8; 32],
    /// SHA-256 of the proof.
    pub proof: [u8; 32],
    /// The job's id as a felt (e.g. the escrow's job key).
    pub job_id: Felt,
    /// The worker's Starknet account address.
    pub worker_address: Felt,
}

/// The domain tag `'bitsage-attest-v1'` as a Cairo short string.
pub fn domain_tag() -> Felt {
    Felt::from_bytes_be_slice(b"bitsage-attest-v1")
}

fn halves(d: &[u8; 32]) -> [Felt; 2] {
    [Felt::from_bytes_be_slice(&d[..16]), Felt::from_bytes_be_slice(&d[16..])]
}

impl Attested {
    /// The Poseidon hash the worker signs.
    pub fn message_hash(&self) -> Felt {
        let mut felts = vec![domain_tag()];
        for d in [&self.module, &self.program, &self.io, &self.proof] {
            felts.extend(halves(d));
        }
        felts.push(self.job_id);
        felts.push(self.worker_address);
        poseidon_hash_many(&felts)
    }
}

/// A signed attestation, as carried by a receipt (felts as 0x hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    pub worker_address: Felt,
    pub public_key: Felt,
    pub message_hash: Felt,
    pub r: Felt,
    pub s: Felt,
    pub evidence: Evidence,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttestError {
    #[error("the attestation signs a different message than this receipt's digests give")]
    WrongMessage,
    #[error("the attestation names worker {claimed:#x}, not {expected:#x}")]
    WrongWorker { claimed: Felt, expected: Felt },
    #[error("the signature does not verify under public key {0:#x}")]
    BadSignature(Felt),
    #[error("the receipt carries no attestation")]
    Missing,
    #[error("the receipt names no workload module, so it has no job spec to attest")]
    NoModule,
    #[error("the attestation's job id {claimed:#x} is not the spec hash of the receipt's module, input and nonce ({expected:#x})")]
    WrongSpec { claimed: Felt, expected: Felt },
    #[error("the receipt cannot be read: {0}")]
    Receipt(String),
}

/// A job's spec hash, the id the escrow keys payment by:
/// `SHA-256("bitsage-job-spec-v1" || module || input || nonce)` with its top
/// six bits cleared, so it is a felt (below 2^250).
pub fn spec_hash(module: &[u8; 32], input: &[u8; 32], nonce: &str) -> Felt {
    let mut h = Sha256::new();
    h.update(b"bitsage-job-spec-v1");
    h.update(module);
    h.update(input);
    h.update(nonce.as_bytes());
    let mut d: [u8; 32] = h.finalize().into();
    d[0] &= 0x03;
    Felt::from_bytes_be(&d)
}

/// What a receipt's attestation binds, for job `job_id` and worker `worker`.
pub fn attested_for(receipt: &Receipt, job_id: Felt, worker: Felt) -> Result<Attested, AttestError> {
    let module = receipt.body.module.ok_or(AttestError::NoModule)?;
    let proof = receipt.proof_digest().map_err(|e| AttestError::Receipt(e.to_string()))?;
    Ok(Attested {
        module,
        program: receipt.program_digest(),
        io: receipt.io_digest(),
        proof,
        job_id,
        worker_address: worker,
    })
}

/// Signs `receipt` as `worker` for the job whose spec is its module, `input`
/// (SHA-256 of the input document) and `nonce`, and stores the record in it.
pub fn attest_receipt(
    receipt: &mut Receipt,
    key: &WorkerKey,
    worker: Felt,
    input: [u8; 32],
    nonce: &str,
    evidence: Evidence,
) -> Result<Attestation, AttestError> {
    let module = receipt.body.module.ok_or(AttestError::NoModule)?;
    let job_id = spec_hash(&module, &input, nonce);
    let what = attested_for(receipt, job_id, worker)?;
    let a = attest(key, &what, evidence).map_err(|e| AttestError::Receipt(e.to_string()))?;
    receipt.attestation = Some(AttestationRecord {
        job_id: job_id.to_bytes_be(),
        worker_address: worker.to_bytes_be(),
        public_key: a.public_key.to_bytes_be(),
        r: a.r.to_bytes_be(),
        s: a.s.to_bytes_be(),
        evidence: a.evidence.label().into(),
        input,
        nonce: nonce.into(),
    });
    Ok(a)
}

/// A receipt's attestation, checked against the receipt itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedAttestation {
    pub job_id: Felt,
    pub worker_address: Felt,
    pub public_key: Felt,
    pub message_hash: Felt,
    pub evidence: String,
}

/// Checks that the receipt's attestation record is for the spec hash of the
/// receipt's module with its input and nonce, and that it signs the
/// receipt's digests under the public key it names. Whether that key is the
/// worker's registered key, and whether the proof verifies, are separate
/// checks.
pub fn check_receipt(receipt: &Receipt) -> Result<CheckedAttestation, AttestError> {
    let rec = receipt.attestation.as_ref().ok_or(AttestError::Missing)?;
    let module = receipt.body.module.ok_or(AttestError::NoModule)?;
    let job_id = Felt::from_bytes_be(&rec.job_id);
    let expected = spec_hash(&module, &rec.input, &rec.nonce);
    if job_id != expected {
        return Err(AttestError::WrongSpec { claimed: job_id, expected });
    }
    let worker_address = Felt::from_bytes_be(&rec.worker_address);
    let what = attested_for(receipt, job_id, worker_address)?;
    let a = Attestation {
        worker_address,
        public_key: Felt::from_bytes_be(&rec.public_key),
        message_hash: what.message_hash(),
        r: Felt::from_bytes_be(&rec.r),
        s: Felt::from_bytes_be(&rec.s),
        evidence: Evidence::SoftwareSigned,
    };
    verify(&a, &what)?;
    Ok(CheckedAttestation {
        job_id,
        worker_address,
        public_key: a.public_key,
        message_hash: a.message_hash,
        evidence: rec.evidence.clone(),
    })
}

/// Signs `what` with `key`.
pub fn attest(key: &WorkerKey, what: &Attested, evidence: Evidence) -> Result<Attestation, KeyError> {
    let message_hash = what.message_hash();
    let (r, s) = key.sign(&message_hash)?;
    Ok(Attestation { worker_address: what.worker_address, public_key: key.public_key(), message_hash, r, s, evidence })
}

/// Checks that `a` signs exactly `what`, under the public key it carries.
/// Whether that key belongs to the worker is the chain's question (the
/// staking contract records each worker's key).
pub fn verify(a: &Attestation, what: &Attested) -> Result<(), AttestError> {
    if a.worker_address != what.worker_address {
        return Err(AttestError::WrongWorker { claimed: a.worker_address, expected: what.worker_address });
    }
    if a.message_hash != what.message_hash() {
        return Err(AttestError::WrongMessage);
    }
    match starknet_crypto::verify(&a.public_key, &a.message_hash, &a.r, &a.s) {
        Ok(true) => Ok(()),
        _ => Err(AttestError::BadSignature(a.public_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attested {
        Attested {
            module: [1; 32],
            program: [2; 32],
            io: [3; 32],
            proof: [4; 32],
            job_id: Felt::from(77u32),
            worker_address: Felt::from_hex_unchecked(
                "0x64b48806902a367c8598f4f95c305e8c1a1acba5f082d294a43793113115691",
            ),
        }
    }

    #[test]
    fn an_attestation_verifies_and_every_changed_field_is_rejected() {
        let key = WorkerKey::generate();
        let what = sample();
        let a = attest(&key, &what, Evidence::SoftwareSigned).expect("sign");
        assert_eq!(verify(&a, &what), Ok(()));
        let changes: Vec<Box<dyn Fn(&mut Attested)>> = vec![
            Box::new(|w| w.module[0] ^= 1),
            Box::new(|w| w.program[31] ^= 1),
            Box::new(|w| w.io[16] ^= 1),
            Box::new(|w| w.proof[15] ^= 1),
            Box::new(|w| w.job_id += Felt::ONE),
        ];
        for change in changes {
            let mut other = what.clone();
            change(&mut other);
            assert_eq!(verify(&a, &other), Err(AttestError::WrongMessage));
        }
        let mut moved = what.clone();
        moved.worker_address = Felt::from(5u32);
        assert!(matches!(verify(&a, &moved), Err(AttestError::WrongWorker { .. })));
        // Someone else's key over the right message: rejected.
        let mut forged = a.clone();
        forged.public_key = WorkerKey::generate().public_key();
        assert!(matches!(verify(&forged, &what), Err(AttestError::BadSignature(_))));
        let mut bent = a.clone();
        bent.s += Felt::ONE;
        assert!(matches!(verify(&bent, &what), Err(AttestError::BadSignature(_))));
    }

    #[test]
    fn the_hash_is_the_documented_poseidon_of_halves() {
        let w = sample();
        let mut felts = vec![Felt::from_bytes_be_slice(b"bitsage-attest-v1")];
        for b in [1u8, 2, 3, 4] {
            let half = Felt::from_bytes_be_slice(&[b; 16]);
            felts.extend([half, half]);
        }
        felts.extend([w.job_id, w.worker_address]);
        assert_eq!(w.message_hash(), poseidon_hash_many(&felts));
        // The tag is the short string's big-endian bytes, as Cairo encodes it.
        assert_eq!(domain_tag(), Felt::from_hex_unchecked("0x626974736167652d6174746573742d7631"));
    }
}
