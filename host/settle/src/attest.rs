//! Signing attestations. What an attestation binds, the job spec and the
//! checks that need no key live in [`bitsage_receipt::attest`] (re-exported
//! here), so that a verifier without this crate (the browser's) runs them.

use bitsage_prover::receipt::{AttestationRecord, Receipt};
pub use bitsage_receipt::attest::*;
use serde::{Deserialize, Serialize};

use crate::keystore::{KeyError, WorkerKey};
use crate::tee::Evidence;

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

/// Signs `receipt` as `worker` for the job whose spec is the receipt's own
/// statement with `nonce`, and stores the record in it. `input` (SHA-256 of
/// the job's input document, which a validator re-runs the module on) is
/// signed with the rest.
pub fn attest_receipt(
    receipt: &mut Receipt,
    key: &WorkerKey,
    worker: Felt,
    input: [u8; 32],
    nonce: &str,
    evidence: Evidence,
) -> Result<Attestation, AttestError> {
    let job_id = JobSpec::of_receipt(receipt, nonce)?.job_id()?;
    let what = attested_for(receipt, job_id, worker, input)?;
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
    check_signature(a.public_key, a.message_hash, a.r, a.s)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Change<T> = Box<dyn Fn(&mut T)>;

    fn sample() -> Attested {
        let worker_address = Felt::from(0x5eedu32);
        Attested {
            module: [9; 32],
            program: [8; 32],
            io: [7; 32],
            document: [6; 32],
            proof: [5; 32],
            job_id: Felt::from(5u32),
            worker_address,
        }
    }

    #[test]
    fn an_attestation_verifies_and_every_changed_field_is_rejected() {
        let key = WorkerKey::generate();
        let what = sample();
        let a = attest(&key, &what, Evidence::SoftwareSigned).expect("sign");
        assert_eq!(verify(&a, &what), Ok(()));
        let changes: Vec<Change<Attested>> = vec![
            Box::new(|w| w.module[0] ^= 1),
            Box::new(|w| w.program[31] ^= 1),
            Box::new(|w| w.io[16] ^= 1),
            Box::new(|w| w.document[3] ^= 1),
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
}
