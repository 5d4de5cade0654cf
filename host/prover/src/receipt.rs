//! The receipt file: a versioned, zstd-compressed binary holding the
//! statement, the proof, the digest of the WASM module that produced the
//! witness (when there was one), and a SHA-256 digest of all three.
//!
//! The module digest is *not* proven: the STARK proves the VM program, and
//! the module is an untrusted witness generator. It is recorded so that the
//! attestation (a worker's signature over the receipt) can name it.
//!
//! Layout: `b"OBKRCPT\0"`, a little-endian `u16` format version, then a zstd
//! frame whose content is the bincode encoding of [`ReceiptBody`].

use std::io::Read;

use bincode::Options;
use bitsage_air::verify::{verify, Proof, VerifyError};
use bitsage_air::Statement;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"OBKRCPT\0";
pub const FORMAT_VERSION: u16 = 2;
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

/// Statement + proof, with the digest that identifies them.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub body: ReceiptBody,
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
        Receipt { body, digest, encoded, proof_len }
    }

    /// The receipt file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend(zstd::encode_all(&self.encoded[..], 9).map_err(|e| ReceiptError::Encode(e.to_string()))?);
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
        let body: ReceiptBody = codec().deserialize(&raw).map_err(|e| ReceiptError::Corrupt(e.to_string()))?;
        let proof_len =
            codec().serialized_size(&body.proof).map_err(|e| ReceiptError::Corrupt(e.to_string()))? as usize;
        Ok(Self::from_parts(body, raw, proof_len))
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

    /// Size of the serialised STARK proof alone, in bytes.
    pub fn proof_bytes(&self) -> usize {
        self.proof_len
    }
}
