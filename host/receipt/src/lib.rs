//! The receipt file: a versioned, zstd-compressed binary holding the
//! statement, the proof (over Stwo's Blake2s Merkle channel, or over its
//! Poseidon252 one for a proof the chain will verify), the digest of the WASM module that produced the
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
//!
//! Decoding is bounded by what the format allows, checked while decoding:
//! every piece must be its value's one encoding (a felt252 hash is decimal
//! digits in serde, so "0x1" or "01" for 1 is refused),
//! the zstd window and the decompressed size are capped
//! ([`max_decoded_bytes`]: a statement at its caps plus the largest proof
//! any claim allows), the statement's lists are refused at their length
//! prefix when over their caps and its words when not canonical, and the
//! proof's bytes are compared with the bound its own claim implies
//! ([`bitsage_air::shape::max_proof_bytes`]) before the proof is read.
//!
//! Natively the C zstd library compresses and decompresses. On wasm32 the
//! pure-Rust `ruzstd` decompresses under the same window and size caps, and
//! there is no encoder: a browser checks receipts, it does not make them.

use std::io::Read;

pub mod attest;

use bincode::Options;
use bitsage_air::verify::{verify, Proof, VerifyError};
#[cfg(not(target_arch = "wasm32"))]
use bitsage_air::verify::{verify_poseidon252, ChainProof};
use bitsage_air::Statement;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"OBKRCPT\0";
/// 6: the attestation signs the input document's digest too
/// (`bitsage-attest-v2`) and names an evidence kind the verifier knows.
/// 5: the proof names its Merkle channel ([`ReceiptProof`]): Blake2s, or
/// Poseidon252 for a proof the chain verifies. (4: components present only
/// when used, a range table sized to the run, the smaller-proof parameters
/// of each security level.) Version 5 and older receipts are refused.
pub const FORMAT_VERSION: u16 = 7;
/// The largest zstd window a receipt may ask the decoder for (8 MiB; the
/// encoder's window at `ZSTD_LEVEL` is smaller for any receipt the caps allow).
const WINDOW_LOG_MAX: u32 = 23;
/// The level receipts are compressed at. A receipt is mostly Merkle hashes
/// and field elements, which do not compress: zstd's default level 3 makes
/// an ml_inference receipt of 100,191 bytes in about 0.5 ms, where level 9
/// made 99,302 in about 2.3 ms, paid on every job a node serves (every
/// workload stays under 100 KiB; host/benches/RESULTS.md).
#[cfg(not(target_arch = "wasm32"))]
const ZSTD_LEVEL: i32 = 3;
/// Attestation strings (evidence kind, nonce) are at most this long.
pub const MAX_ATTESTATION_STRING: usize = 128;

/// The largest decompressed receipt the format allows: a statement at its
/// caps (program, input, output), the largest proof any claim allows at the
/// strongest security level, and an attestation. Larger content is refused
/// as soon as decompression passes it.
pub fn max_decoded_bytes() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        use bitsage_air::verify::{MAX_AUX_LOG_SIZE, MAX_CPU_LOG_SIZE};
        // Fixint bincode: an instruction is 12 bytes, a table entry 8, a word
        // 4; each list adds an 8-byte length.
        let program = 8
            + 12 * obelysk_vm::isa::MAX_PROGRAM_LEN
            + 8
            + obelysk_vm::isa::MAX_TABLES * (8 + obelysk_vm::isa::MAX_TABLE_NAME_LEN + 8);
        let statement = program + 2 * (8 + 4 * bitsage_air::MAX_PUBLIC_WORDS) + 4;
        let largest = bitsage_air::Claim {
            cpu_log_size: MAX_CPU_LOG_SIZE,
            rom_log_size: MAX_AUX_LOG_SIZE,
            mem_log_size: MAX_AUX_LOG_SIZE,
            hash_log_size: Some(MAX_AUX_LOG_SIZE),
            range_log_size: bitsage_air::range::MAX_RANGE_LOG_SIZE,
            ram_words: 0,
        };
        // Each claim has its parameters (blowup 16 with the hash component,
        // 4 without): the larger of the two largest claims' bounds.
        let level = bitsage_air::SecurityLevel::Bits128;
        let without = bitsage_air::Claim { hash_log_size: None, ..largest };
        let proof = [largest, without]
            .iter()
            .map(|c| {
                bitsage_air::shape::max_proof_bytes_with(c, &level.pcs_config(c), Channel::Poseidon252.hash_bytes())
            })
            .max()
            .unwrap_or(0);
        let attestation = 1 + 6 * 32 + 2 * (8 + MAX_ATTESTATION_STRING);
        (8 + statement + 4 + proof + 33 + attestation) as u64
    })
}

/// The Merkle channel a receipt's proof was made over. Its bincode form (a
/// `u32` index) is [`ReceiptProof`]'s variant tag, in the same order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Channel {
    /// Stwo's Blake2s Merkle channel: the default, fastest to prove and to
    /// check off chain, and what the GPU proves.
    Blake2s,
    /// Stwo's Poseidon252 Merkle channel: what the on-chain verifier checks
    /// (Cairo hashes Poseidon natively). Proved on the CPU.
    Poseidon252,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Blake2s => "blake2s",
            Channel::Poseidon252 => "poseidon252",
        }
    }

    /// The most bytes one of its hashes takes in the receipt's encoding.
    pub fn hash_bytes(self) -> usize {
        match self {
            Channel::Blake2s => bitsage_air::shape::BLAKE2S_HASH_BYTES,
            Channel::Poseidon252 => bitsage_air::shape::POSEIDON252_HASH_BYTES,
        }
    }
}

/// A receipt's proof, over the channel it names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ReceiptProof {
    Blake2s(Proof),
    /// Native builds only: Stwo builds its Poseidon252 channel for native
    /// targets, so the browser verifier refuses these receipts by name.
    #[cfg(not(target_arch = "wasm32"))]
    Poseidon252(ChainProof),
}

impl From<Proof> for ReceiptProof {
    fn from(p: Proof) -> Self {
        ReceiptProof::Blake2s(p)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl From<ChainProof> for ReceiptProof {
    fn from(p: ChainProof) -> Self {
        ReceiptProof::Poseidon252(p)
    }
}

impl ReceiptProof {
    pub fn channel(&self) -> Channel {
        match self {
            ReceiptProof::Blake2s(_) => Channel::Blake2s,
            #[cfg(not(target_arch = "wasm32"))]
            ReceiptProof::Poseidon252(_) => Channel::Poseidon252,
        }
    }

    pub fn claim(&self) -> &bitsage_air::Claim {
        match self {
            ReceiptProof::Blake2s(p) => &p.claim,
            #[cfg(not(target_arch = "wasm32"))]
            ReceiptProof::Poseidon252(p) => &p.claim,
        }
    }

    /// The security parameters the proof was made with.
    pub fn config(&self) -> &stwo::core::pcs::PcsConfig {
        match self {
            ReceiptProof::Blake2s(p) => &p.stark.config,
            #[cfg(not(target_arch = "wasm32"))]
            ReceiptProof::Poseidon252(p) => &p.stark.config,
        }
    }

    /// Where the proof's bytes go, part by part.
    pub fn parts(&self) -> bitsage_air::shape::ProofParts {
        match self {
            ReceiptProof::Blake2s(p) => bitsage_air::shape::ProofParts::of(&p.stark),
            #[cfg(not(target_arch = "wasm32"))]
            ReceiptProof::Poseidon252(p) => bitsage_air::shape::ProofParts::of(&p.stark),
        }
    }

    /// Verifies the proof against `statement` with its channel's verifier.
    pub fn verify(&self, statement: &Statement) -> Result<(), VerifyError> {
        match self {
            ReceiptProof::Blake2s(p) => verify(statement, p),
            #[cfg(not(target_arch = "wasm32"))]
            ReceiptProof::Poseidon252(p) => verify_poseidon252(statement, p),
        }
    }

    /// The proof the chain verifies, when it is over Poseidon252.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn for_chain(&self) -> Option<&ChainProof> {
        match self {
            ReceiptProof::Poseidon252(p) => Some(p),
            ReceiptProof::Blake2s(_) => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub statement: Statement,
    pub proof: ReceiptProof,
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
    /// The kind of evidence behind the signature: one of
    /// [`attest::EVIDENCE_KINDS`] (today `software-signed`), checked by
    /// [`attest::check_receipt`], since the signature does not cover it.
    #[serde(deserialize_with = "de_short")]
    pub evidence: String,
    /// SHA-256 of the job's input document (signed).
    pub input: [u8; 32],
    /// The client's nonce, which makes equal jobs distinct.
    #[serde(deserialize_with = "de_short")]
    pub nonce: String,
}

fn de_short<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    obelysk_vm::word::de::short_string(d, MAX_ATTESTATION_STRING, "attestation string")
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
    #[error("receipt is truncated or corrupt")]
    Corrupt(#[source] Corruption),
    #[error("this build verifies no proofs over the {0} channel (the browser verifier checks blake2s receipts; `bitsage-host verify` checks both)")]
    ChannelUnsupported(&'static str),
    #[error("receipt decodes to more than the format allows ({0})")]
    TooLarge(String),
    #[error("could not encode the receipt")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// What part of a receipt did not decode, and the decoder's own error when
/// there is one (zstd's, bincode's, a refused word's).
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Corruption {
    pub what: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ReceiptError {
    fn corrupt(what: impl Into<String>) -> ReceiptError {
        ReceiptError::Corrupt(Corruption { what: what.into(), source: None })
    }

    fn corrupt_by(what: impl Into<String>, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ReceiptError {
        ReceiptError::Corrupt(Corruption { what: what.into(), source: Some(e.into()) })
    }
}

fn hash_words(h: &mut Sha256, words: &[obelysk_vm::M31]) {
    h.update((words.len() as u64).to_le_bytes());
    for w in words {
        h.update(w.0.to_le_bytes());
    }
}

/// SHA-256 of one list of words, encoded as in [`Receipt::io_digest`]: the
/// length as a little-endian `u64`, then each word as a little-endian `u32`.
/// A job spec names its public VM input this way.
pub fn words_digest(words: &[obelysk_vm::M31]) -> [u8; 32] {
    let mut h = Sha256::new();
    hash_words(&mut h, words);
    h.finalize().into()
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(max_decoded_bytes())
}

/// How a receipt whose zstd frame does not decode is described, before the
/// decoder's own words.
pub const ZSTD_ERROR: &str = "the zstd frame does not decode";

/// The zstd frame's content, refused as soon as it passes
/// [`max_decoded_bytes`] or asks for a window over 2^[`WINDOW_LOG_MAX`].
fn decompress(frame: &[u8]) -> Result<Vec<u8>, ReceiptError> {
    let max = max_decoded_bytes();
    // The two decoders word their errors differently; the prefix is common.
    let corrupt = |e: std::io::Error| ReceiptError::corrupt_by(ZSTD_ERROR, e);
    let mut raw = Vec::new();
    #[cfg(not(target_arch = "wasm32"))]
    {
        let mut decoder = zstd::Decoder::new(frame).map_err(corrupt)?;
        decoder.window_log_max(WINDOW_LOG_MAX).map_err(corrupt)?;
        decoder.take(max + 1).read_to_end(&mut raw).map_err(corrupt)?;
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut decoder = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(frame, 1 << WINDOW_LOG_MAX)
            .map_err(|e| ReceiptError::corrupt_by(ZSTD_ERROR, e))?;
        (&mut decoder).take(max + 1).read_to_end(&mut raw).map_err(corrupt)?;
        // One frame and nothing after it, as the C decoder requires.
        if raw.len() as u64 <= max && !decoder.get_ref().is_empty() {
            return Err(ReceiptError::corrupt("bytes after the zstd frame"));
        }
    }
    if raw.len() as u64 > max {
        return Err(ReceiptError::TooLarge(format!("more than {max} bytes decompressed")));
    }
    Ok(raw)
}

/// Decodes one value from the front of `rest` and moves past it. The bytes
/// read must be the value's own encoding: fixint bincode has one per value,
/// but a felt252 (a Poseidon252 hash) goes through serde as a string that
/// also parses with leading zeros or in hex.
fn take<T: serde::de::DeserializeOwned + Serialize>(rest: &mut &[u8], what: &str) -> Result<T, ReceiptError> {
    let corrupt = |e: bincode::Error| ReceiptError::corrupt_by(what, e);
    let mut reader = *rest;
    let v: T = codec().allow_trailing_bytes().deserialize_from(&mut reader).map_err(corrupt)?;
    let (read, left) = rest.split_at(rest.len() - reader.len());
    if codec().serialize(&v).map_err(corrupt)? != read {
        return Err(ReceiptError::corrupt(format!("{what}: not in its canonical encoding")));
    }
    *rest = left;
    Ok(v)
}

/// Decodes a body piece by piece, so that the proof's size is checked
/// against what its claim allows before the proof is read.
fn decode_body(mut rest: &[u8]) -> Result<(ReceiptBody, usize), ReceiptError> {
    let statement: Statement = take(&mut rest, "statement")?;
    let channel: Channel = take(&mut rest, "proof channel")?;
    let claim: bitsage_air::Claim = take(&mut rest, "claim")?;
    let interaction: bitsage_air::statement::InteractionClaim = take(&mut rest, "interaction claim")?;
    bitsage_air::verify::check_claim(&claim)?;
    let bound =
        bitsage_air::shape::max_proof_bytes_with(&claim, &statement.security.pcs_config(&claim), channel.hash_bytes());
    // What is left is the STARK proof and the module digest (at most 33).
    if rest.len() > bound + 33 {
        return Err(ReceiptError::TooLarge(format!(
            "{} bytes of proof, where the claim allows at most {bound}",
            rest.len().saturating_sub(33)
        )));
    }
    let before = rest.len();
    let proof = match channel {
        Channel::Blake2s => ReceiptProof::Blake2s(Proof { claim, interaction, stark: take(&mut rest, "STARK proof")? }),
        #[cfg(not(target_arch = "wasm32"))]
        Channel::Poseidon252 => {
            ReceiptProof::Poseidon252(Proof { claim, interaction, stark: take(&mut rest, "STARK proof")? })
        }
        #[cfg(target_arch = "wasm32")]
        Channel::Poseidon252 => return Err(ReceiptError::ChannelUnsupported(Channel::Poseidon252.name())),
    };
    let stark_len = before - rest.len();
    let module: Option<[u8; 32]> = take(&mut rest, "module digest")?;
    if !rest.is_empty() {
        return Err(ReceiptError::corrupt(format!("{} trailing bytes after the body", rest.len())));
    }
    let size = |e| ReceiptError::corrupt_by("proof size", e);
    let proof_len = codec().serialized_size(&claim).map_err(size)? as usize
        + codec().serialized_size(&interaction).map_err(size)? as usize
        + stark_len;
    Ok((ReceiptBody { statement, proof, module }, proof_len))
}

impl Receipt {
    pub fn new(statement: Statement, proof: impl Into<ReceiptProof>) -> Result<Self, ReceiptError> {
        Self::with_module(statement, proof, None)
    }

    /// A receipt that also names the workload module that produced the run.
    pub fn with_module(
        statement: Statement,
        proof: impl Into<ReceiptProof>,
        module: Option<[u8; 32]>,
    ) -> Result<Self, ReceiptError> {
        let body = ReceiptBody { statement, proof: proof.into(), module };
        let encoded = codec().serialize(&body).map_err(|e| ReceiptError::Encode(e.into()))?;
        // The proof's size without the channel's tag.
        let proof_len = codec().serialized_size(&body.proof).map_err(|e| ReceiptError::Encode(e.into()))? as usize - 4;
        Ok(Self::from_parts(body, encoded, proof_len))
    }

    fn from_parts(body: ReceiptBody, encoded: Vec<u8>, proof_len: usize) -> Self {
        let digest = Sha256::digest(&encoded).into();
        Receipt { body, attestation: None, digest, encoded, proof_len }
    }

    /// The receipt file's bytes.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_bytes(&self) -> Result<Vec<u8>, ReceiptError> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let content =
            codec().serialize(&(&self.encoded, &self.attestation)).map_err(|e| ReceiptError::Encode(e.into()))?;
        out.extend(zstd::encode_all(&content[..], ZSTD_LEVEL).map_err(|e| ReceiptError::Encode(e.into()))?);
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
        let raw = decompress(&bytes[10..])?;
        Self::from_content(raw)
    }

    /// The decompressed content of a receipt file (what [`Self::from_content`]
    /// decodes), under the same caps as [`Self::from_bytes`].
    pub fn content_of(bytes: &[u8]) -> Result<Vec<u8>, ReceiptError> {
        let r = Self::from_bytes(bytes)?;
        codec().serialize(&(&r.encoded, &r.attestation)).map_err(|e| ReceiptError::Encode(e.into()))
    }

    /// Decodes a receipt's decompressed content: the body's bytes (a u64
    /// length, then the bytes), then the attestation. The body is decoded in
    /// place and its bytes kept.
    pub fn from_content(mut raw: Vec<u8>) -> Result<Self, ReceiptError> {
        if raw.len() as u64 > max_decoded_bytes() {
            return Err(ReceiptError::TooLarge(format!("{} bytes of content", raw.len())));
        }
        let len_prefix: [u8; 8] = raw
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ReceiptError::corrupt("truncated before the body"))?;
        let body_len = u64::from_le_bytes(len_prefix);
        let body_end = usize::try_from(body_len)
            .ok()
            .and_then(|l| l.checked_add(8))
            .filter(|&e| e <= raw.len())
            .ok_or_else(|| ReceiptError::corrupt(format!("body of {body_len} bytes does not fit the receipt")))?;
        let (body, proof_len) = decode_body(&raw[8..body_end])?;
        let attestation: Option<AttestationRecord> =
            codec().deserialize(&raw[body_end..]).map_err(|e| ReceiptError::corrupt_by("attestation", e))?;
        raw.truncate(body_end);
        raw.drain(..8);
        let mut receipt = Self::from_parts(body, raw, proof_len);
        receipt.attestation = attestation;
        Ok(receipt)
    }

    /// Verifies the proof against the statement, with the verifier of the
    /// proof's channel.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        Ok(self.body.proof.verify(&self.body.statement)?)
    }

    /// The Merkle channel the proof was made over.
    pub fn channel(&self) -> Channel {
        self.body.proof.channel()
    }

    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The STARK proof alone (with its channel's tag), in the receipt's
    /// bincode encoding.
    pub fn proof_encoded(&self) -> Result<Vec<u8>, ReceiptError> {
        codec().serialize(&self.body.proof).map_err(|e| ReceiptError::Encode(e.into()))
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
            hash_words(&mut h, words);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_frame_names_each_cause_once() {
        // The magic and version, then a zstd frame header with nothing valid after it.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff]);
        let e = Receipt::from_bytes(&bytes).unwrap_err();
        let ReceiptError::Corrupt(c) = &e else { panic!("expected a corrupt receipt, got {e:?}") };
        assert_eq!(c.what, ZSTD_ERROR);
        let decoder = c.source.as_ref().expect("the decoder's error is the source").to_string();
        let chain = bitsage_air::verify::error_chain(&e);
        assert_eq!(chain, format!("receipt is truncated or corrupt: {ZSTD_ERROR}: {decoder}"));
        // Each level prints only itself.
        assert_eq!(e.to_string(), "receipt is truncated or corrupt");
        assert_eq!(c.to_string(), ZSTD_ERROR);
    }
}
