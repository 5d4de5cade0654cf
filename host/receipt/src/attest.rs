//! Attestations: the worker's Stark-ECDSA signature over
//!
//! ```text
//! poseidon_hash_many([
//!     'bitsage-attest-v2',                      // domain tag, a Cairo short string
//!     module_hi, module_lo, program_hi, program_lo, io_hi, io_lo,
//!     document_hi, document_lo, proof_hi, proof_lo,
//!     job_id, worker_address,
//! ])
//! ```
//!
//! `document` is SHA-256 of the job's input document, the file the module
//! read: a validator that holds it re-runs the module on it. Every field of
//! a receipt's attestation record is either signed or checked
//! ([`check_receipt`]), so no byte of an attested receipt can change while
//! it still verifies.
//!
//! Each 32-byte digest enters as two 128-bit halves (a digest does not fit
//! one felt). A Cairo contract recomputes the hash with
//! `poseidon_hash_span` and checks the signature with
//! `check_ecdsa_signature(hash, public_key, r, s)`.
//!
//! The job id is the hash of the statement the job pays for, a [`JobSpec`]:
//!
//! ```text
//! poseidon_hash_many([
//!     'bitsage-job-spec-v2',
//!     module_hi, module_lo,        // SHA-256 of the WASM component
//!     program_hi, program_lo,      // SHA-256 of the VM program (Program::digest)
//!     input_hi, input_lo,          // SHA-256 of the public VM input words
//!     security_bits,               // 96 or 128
//!     nonce,                       // the client's nonce, a Cairo short string
//! ])
//! ```
//!
//! The client derives it from a local dev run (deterministic), the escrow
//! stores the spec under it and checks the hash on deposit, a worker's node
//! refuses a job whose committed spec differs from its own run, and a
//! receipt's attestation is only valid for the job id its own statement
//! hashes to: a worker cannot be paid for proving some other program.

use bitsage_air::SecurityLevel;
use obelysk_vm::{Program, M31};
use serde::{Deserialize, Serialize};
use starknet_crypto::poseidon_hash_many;
pub use starknet_crypto::Felt;

use crate::{words_digest, Receipt};

/// What an attestation binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attested {
    /// SHA-256 of the WASM module (attested, not proven).
    pub module: [u8; 32],
    /// SHA-256 of the VM program the STARK proves.
    pub program: [u8; 32],
    /// SHA-256 of the public input and output words.
    pub io: [u8; 32],
    /// SHA-256 of the job's input document (what the module read).
    pub document: [u8; 32],
    /// SHA-256 of the proof.
    pub proof: [u8; 32],
    /// The job's id as a felt (e.g. the escrow's job key).
    pub job_id: Felt,
    /// The worker's Starknet account address.
    pub worker_address: Felt,
}

/// The domain tag `'bitsage-attest-v2'` as a Cairo short string.
pub fn domain_tag() -> Felt {
    Felt::from_bytes_be_slice(b"bitsage-attest-v2")
}

fn halves(d: &[u8; 32]) -> [Felt; 2] {
    [Felt::from_bytes_be_slice(&d[..16]), Felt::from_bytes_be_slice(&d[16..])]
}

impl Attested {
    /// The digests in the order they are hashed and sent to the escrow.
    pub fn digests(&self) -> [&[u8; 32]; 5] {
        [&self.module, &self.program, &self.io, &self.document, &self.proof]
    }

    /// The Poseidon hash the worker signs.
    pub fn message_hash(&self) -> Felt {
        let mut felts = vec![domain_tag()];
        for d in self.digests() {
            felts.extend(halves(d));
        }
        felts.push(self.job_id);
        felts.push(self.worker_address);
        poseidon_hash_many(&felts)
    }
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
    #[error("the attestation's job id {claimed:#x} is not the spec hash of the receipt's statement ({expected:#x}): the receipt proves another module, program, input or security level than the job pays for")]
    WrongSpec { claimed: Felt, expected: Felt },
    #[error("the nonce is {0} bytes; a paid job's nonce is a Cairo short string of at most 31 bytes")]
    NonceTooLong(usize),
    #[error("the attestation's evidence kind {0:?} is not one this verifier knows ({known})", known = EVIDENCE_KINDS.join(", "))]
    UnknownEvidence(String),
    #[error("the receipt cannot be read: {0}")]
    Receipt(String),
}

/// Evidence without TEE hardware: the worker's key signed, nothing more.
pub const SOFTWARE_SIGNED: &str = "software-signed";
/// The evidence kinds a receipt's attestation may name. The signature does
/// not cover the kind, so a verifier accepts only kinds it can check.
pub const EVIDENCE_KINDS: &[&str] = &[SOFTWARE_SIGNED];

/// The domain tag of job specs, `'bitsage-job-spec-v2'`.
pub fn spec_tag() -> Felt {
    Felt::from_bytes_be_slice(b"bitsage-job-spec-v2")
}

/// A nonce as a Cairo short string (at most 31 bytes).
pub fn nonce_felt(nonce: &str) -> Result<Felt, AttestError> {
    if nonce.len() > 31 {
        return Err(AttestError::NonceTooLong(nonce.len()));
    }
    Ok(Felt::from_bytes_be_slice(nonce.as_bytes()))
}

/// The statement a paid job commits to; its hash is the job id the escrow
/// keys payment by (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// SHA-256 of the WASM component (attested, not proven).
    pub module: [u8; 32],
    /// SHA-256 of the VM program the proof must be about.
    pub program: [u8; 32],
    /// SHA-256 of the public VM input words ([`words_digest`]).
    pub input: [u8; 32],
    /// 96 or 128.
    pub security_bits: u32,
    /// The client's nonce, which makes equal jobs distinct.
    pub nonce: String,
}

/// The parts of a spec, in the order of [`JobSpec::felts`].
pub const SPEC_PARTS: [&str; 8] =
    ["module", "module", "program", "program", "VM input", "VM input", "security level", "nonce"];

impl JobSpec {
    /// The spec of a VM run of `module`'s component.
    pub fn new(module: [u8; 32], program: &Program, input: &[M31], security: SecurityLevel, nonce: &str) -> Self {
        JobSpec {
            module,
            program: program.digest(),
            input: words_digest(input),
            security_bits: security.bits(),
            nonce: nonce.into(),
        }
    }

    /// The spec a receipt's statement satisfies, with the job's `nonce`.
    pub fn of_receipt(receipt: &Receipt, nonce: &str) -> Result<Self, AttestError> {
        let module = receipt.body.module.ok_or(AttestError::NoModule)?;
        let st = &receipt.body.statement;
        Ok(Self::new(module, &st.program, &st.input, st.security, nonce))
    }

    /// The spec as the escrow stores it: module, program and input digests
    /// as 128-bit halves, the security bits, the nonce.
    pub fn felts(&self) -> Result<[Felt; 8], AttestError> {
        let [m0, m1] = halves(&self.module);
        let [p0, p1] = halves(&self.program);
        let [i0, i1] = halves(&self.input);
        Ok([m0, m1, p0, p1, i0, i1, Felt::from(self.security_bits), nonce_felt(&self.nonce)?])
    }

    /// The job id: the Poseidon hash of the tag and [`Self::felts`].
    pub fn job_id(&self) -> Result<Felt, AttestError> {
        let mut felts = vec![spec_tag()];
        felts.extend(self.felts()?);
        Ok(poseidon_hash_many(&felts))
    }
}

/// The parts in which two specs (as felts) differ, named once each.
pub fn spec_differences(a: &[Felt; 8], b: &[Felt; 8]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for (i, name) in SPEC_PARTS.iter().enumerate() {
        if a[i] != b[i] && !out.contains(name) {
            out.push(name);
        }
    }
    out
}

/// What a receipt's attestation binds, for job `job_id`, worker `worker`
/// and the input document whose SHA-256 is `document`.
pub fn attested_for(
    receipt: &Receipt,
    job_id: Felt,
    worker: Felt,
    document: [u8; 32],
) -> Result<Attested, AttestError> {
    let module = receipt.body.module.ok_or(AttestError::NoModule)?;
    let proof = receipt.proof_digest().map_err(|e| AttestError::Receipt(e.to_string()))?;
    Ok(Attested {
        module,
        program: receipt.program_digest(),
        io: receipt.io_digest(),
        document,
        proof,
        job_id,
        worker_address: worker,
    })
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
/// receipt's own statement with its nonce, and that it signs the
/// receipt's digests under the public key it names. Whether that key is the
/// worker's registered key, and whether the proof verifies, are separate
/// checks.
pub fn check_receipt(receipt: &Receipt) -> Result<CheckedAttestation, AttestError> {
    let rec = receipt.attestation.as_ref().ok_or(AttestError::Missing)?;
    if !EVIDENCE_KINDS.contains(&rec.evidence.as_str()) {
        return Err(AttestError::UnknownEvidence(rec.evidence.clone()));
    }
    let job_id = Felt::from_bytes_be(&rec.job_id);
    let expected = JobSpec::of_receipt(receipt, &rec.nonce)?.job_id()?;
    if job_id != expected {
        return Err(AttestError::WrongSpec { claimed: job_id, expected });
    }
    let worker_address = Felt::from_bytes_be(&rec.worker_address);
    let message_hash = attested_for(receipt, job_id, worker_address, rec.input)?.message_hash();
    let public_key = Felt::from_bytes_be(&rec.public_key);
    check_signature(public_key, message_hash, Felt::from_bytes_be(&rec.r), Felt::from_bytes_be(&rec.s))?;
    Ok(CheckedAttestation { job_id, worker_address, public_key, message_hash, evidence: rec.evidence.clone() })
}

/// Checks a Stark-ECDSA signature `(r, s)` of `message_hash` under
/// `public_key` (what Cairo's `check_ecdsa_signature` checks).
pub fn check_signature(public_key: Felt, message_hash: Felt, r: Felt, s: Felt) -> Result<(), AttestError> {
    match starknet_crypto::verify(&public_key, &message_hash, &r, &s) {
        Ok(true) => Ok(()),
        _ => Err(AttestError::BadSignature(public_key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Change<T> = Box<dyn Fn(&mut T)>;

    fn sample() -> Attested {
        Attested {
            module: [1; 32],
            program: [2; 32],
            io: [3; 32],
            document: [4; 32],
            proof: [5; 32],
            job_id: Felt::from(77u32),
            worker_address: Felt::from_hex_unchecked(
                "0x64b48806902a367c8598f4f95c305e8c1a1acba5f082d294a43793113115691",
            ),
        }
    }

    #[test]
    fn the_hash_is_the_documented_poseidon_of_halves() {
        let w = sample();
        let mut felts = vec![Felt::from_bytes_be_slice(b"bitsage-attest-v2")];
        for b in [1u8, 2, 3, 4, 5] {
            let half = Felt::from_bytes_be_slice(&[b; 16]);
            felts.extend([half, half]);
        }
        felts.extend([w.job_id, w.worker_address]);
        assert_eq!(w.message_hash(), poseidon_hash_many(&felts));
        // The tag is the short string's big-endian bytes, as Cairo encodes it.
        assert_eq!(domain_tag(), Felt::from_hex_unchecked("0x626974736167652d6174746573742d7632"));
    }

    #[test]
    fn the_job_id_is_the_documented_poseidon_of_the_spec() {
        let spec =
            JobSpec { module: [1; 32], program: [2; 32], input: [3; 32], security_bits: 96, nonce: "n-1".into() };
        let mut felts = vec![Felt::from_bytes_be_slice(b"bitsage-job-spec-v2")];
        for b in [1u8, 2, 3] {
            let half = Felt::from_bytes_be_slice(&[b; 16]);
            felts.extend([half, half]);
        }
        felts.extend([Felt::from(96u32), Felt::from_bytes_be_slice(b"n-1")]);
        assert_eq!(spec.job_id(), Ok(poseidon_hash_many(&felts)));
        // Every part moves the id.
        let changes: Vec<Change<JobSpec>> = vec![
            Box::new(|s| s.module[0] ^= 1),
            Box::new(|s| s.program[31] ^= 1),
            Box::new(|s| s.input[16] ^= 1),
            Box::new(|s| s.security_bits = 128),
            Box::new(|s| s.nonce.push('x')),
        ];
        let felts = spec.felts().expect("felts");
        for (change, part) in changes.iter().zip(["module", "program", "VM input", "security level", "nonce"]) {
            let mut other = spec.clone();
            change(&mut other);
            assert_ne!(other.job_id(), spec.job_id());
            assert_eq!(spec_differences(&felts, &other.felts().expect("felts")), vec![part]);
        }
        // A nonce is a short string: 31 bytes at most.
        let long = JobSpec { nonce: "x".repeat(32), ..spec.clone() };
        assert_eq!(long.job_id(), Err(AttestError::NonceTooLong(32)));
        assert!(JobSpec { nonce: "x".repeat(31), ..spec }.job_id().is_ok());
    }
}
