//! The receipt file: a versioned, zstd-compressed binary holding the
//! statement, the proof, the digest of the WASM module that produced the
//! witness (when there was one), and a SHA-256 digest of all three.
//!
//! The module digest is *not* proven: the STARK proves the VM program, and
//! the module is an untrusted witness generator. It is recorded so that the
//! attestation (a worker's signature over the receipt) can name it.
//!
//! A worker may add an [`AttestationRecord`]: its signature over the
//! receipt's digests (see `bitsage_settle::attest`). It travels next to the
//! body, outside the digest, because it signs what the digest covers.
//!
//! Layout: `b"OBKRCPT\0"`, a little-endian `u16` format version, then a zstd
//! frame whose content is the bincode encoding of a `(body bytes,
//! attestation)` pair, where the body bytes are the bincode encoding of
//! [`ReceiptBody`].

use std::io::Read;

use bincode::Options;
use bitsage_air::verify::{verify, Proof, VerifyError};
use bitsage_air::Statement;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"OBKRCPT\0";
pub const FORMAT_VERSION: u16 = 3;
/// Decoded receipts larger than this are refused (a zip-bomb guard).
pub const MAX_DECODED_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub statement: Statement,
    pub proof: Proof,
    /// SHA-256 of the workload component that ran, if one did (attested,
    /// not proven).
    pub module: Option<[u8; 32]>,
}

/// A worker's Stark-ECDSA attestation of a receipt, in the bytes the file
/// stores (felts as 32-byte big-endian). `bitsage_settle::attest` makes and
/// checks it; with the body's module digest, `input` and `nonce` hash to
/// `job_id` (the job's spec hash, which the escrow keys payment by).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationRecord {
    pub job_id: [u8; 32],
    pub worker_address: [u8; 32],
    pub public_key: [u8; 32],
    pub r: [u8; 32],
    pub s: [u8; 32],
    /// `software-signed`, or the kind of TEE evidence bound to the hash.
    pub evidence: String,
    /// SHA-256 of the job's input document.
    pub input: [u8; 32],
    /// The client's nonce, which makes equal jobs distinct.
    pub nonce: String,
}

/// Statement + proof, with the digest that identifies them.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub body: ReceiptBody,
    /// The worker's signature over the digests, if it signed.
    pub attestation: Option<AttestationRecord>,
    /// SHA-256 of the bincode encoding of `body`.
    pub digest: [u8; 32],
    /// The bincode encoding of `body` (what the file compresses).
    encoded: Vec<u8>,
    /// Size of the encoded proof alone.
    proof_len: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("not a receipt file (bad magic bytes)")]
    BadMagic,
    #[error("receipt format version {0} is not supported (this build reads version {FORMAT_VERSION})")]
    Version(u16),
    #[error("receipt is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("receipt decodes to more than {MAX_DECODED_BYTES} bytes")]
    TooLarge,
    #[error("could not encode the receipt: {0}")]
    Encode(String),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(MAX_DECODED_BYTES)
}

impl Receipt {
    pub fn new(statement: Statement, proof: Proof) -> Result<Self, ReceiptError> {
        Self::with_module(statement, proof, None)
    }

    /// A receipt that also names the workload module that produced the run.
    pub fn with_module(statement: Statement, proof: Proof, module: Option<[u8; 32]>) -> Result<Self, ReceiptError> {
        let body = ReceiptBody { statement, proof, module };
        let encoded = codec().serialize(&body).map_err(|e| ReceiptError::Encode(e.to_string()))?;
        let proof_len = codec().serialized_size(&body.proof).map_err(|e| ReceiptError::Encode(e.to_string()))? as usize;
        Ok(Self::from_parts(body, encoded, proof_len))
    }

    fn from_parts(body: ReceiptBody, encoded: Vec<u8>, proof_len: usize) -> Self {
        let digest = Sha256::digest(&encoded).into();
        Receipt { body, attestation: None, digest, encoded, proof_len }
    }

    /// The receipt file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let content =
            codec().serialize(&(&self.encoded, &self.attestation)).map_err(|e| ReceiptError::Encode(e.to_string()))?;
        out.extend(zstd::encode_all(&content[..], 9).map_err(|e| ReceiptError::Encode(e.to_string()))?);
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        if bytes.len() < 10 || &bytes[..8] != MAGIC {
            return Err(ReceiptError::BadMagic);
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != FORMAT_VERSION {
            return Err(ReceiptError::Version(version));
        }
        let mut raw = Vec::new();
        zstd::Decoder::new(&bytes[10..])
            .map_err(|e| ReceiptError::Corrupt(e.to_string()))?
            .take(MAX_DECODED_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(|e| ReceiptError::Corrupt(e.to_string()))?;
        if raw.len() as u64 > MAX_DECODED_BYTES {
            return Err(ReceiptError::TooLarge);
        }
        let (encoded, attestation): (Vec<u8>, Option<AttestationRecord>) =
            codec().deserialize(&raw).map_err(|e| ReceiptError::Corrupt(e.to_string()))?;
        let body: ReceiptBody = codec().deserialize(&encoded).map_err(|e| ReceiptError::Corrupt(e.to_string()))?;
        let proof_len =
            codec().serialized_size(&body.proof).map_err(|e| ReceiptError::Corrupt(e.to_string()))? as usize;
        let mut receipt = Self::from_parts(body, encoded, proof_len);
        receipt.attestation = attestation;
        Ok(receipt)
    }

    /// Verifies the proof against the statement.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        Ok(verify(&self.body.statement, &self.body.proof)?)
    }

    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The STARK proof alone, in the receipt's bincode encoding.
    pub fn proof_encoded(&self) -> Result<Vec<u8>, ReceiptError> {
        codec().serialize(&self.body.proof).map_err(|e| ReceiptError::Encode(e.to_string()))
    }

    /// SHA-256 of the program the proof is about.
    pub fn program_digest(&self) -> [u8; 32] {
        self.body.statement.program.digest()
    }

    /// SHA-256 of the public input and output words: the input's length as
    /// a little-endian `u64`, its words as little-endian `u32`s, then the
    /// same for the output.
    pub fn io_digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for words in [&self.body.statement.input, &self.body.statement.output] {
            h.update((words.len() as u64).to_le_bytes());
            for w in words.iter() {
                h.update(w.0.to_le_bytes());
            }
        }
        h.finalize().into()
    }

    /// SHA-256 of the proof's encoding.
    pub fn proof_digest(&self) -> Result<[u8; 32], ReceiptError> {
        Ok(Sha256::digest(self.proof_encoded()?).into())
    }

    /// Size of the serialised STARK proof alone, in bytes.
    pub fn proof_bytes(&self) -> usize {
        self.proof_len
    }
}
