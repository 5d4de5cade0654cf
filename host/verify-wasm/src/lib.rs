//! The receipt verifier for JavaScript.
//!
//! [`check`] runs, on a receipt file's bytes, what `bitsage-host verify`
//! runs: the receipt is decoded under the format's caps, the STARK proof is
//! verified against the statement it carries (after the shape checks that
//! keep a crafted proof from reaching Stwo), and an attestation, when there
//! is one, must be the worker's signature over exactly this receipt for the
//! job its statement hashes to. A caller may also pin the program or the
//! module it expects, as `verify --program` does.
//!
//! Every outcome is a [`Report`]; nothing throws. On wasm32 the crate
//! exports `verifyReceipt(bytes, expected)` through wasm-bindgen, which
//! returns the report as a plain object. The JavaScript package in
//! `web/verifier/` wraps it (loading, timing, and turning a wasm trap, which
//! the shape checks exist to rule out, into an invalid report as well).

use bitsage_air::verify::error_chain;
use bitsage_receipt::attest::check_receipt;
use bitsage_receipt::{Receipt, ReceiptError};
use serde::{Deserialize, Serialize};

/// What the caller expects the receipt to be about (hex SHA-256 digests).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Expected {
    /// The VM program's digest (`Program::digest`).
    #[serde(default)]
    pub program_digest: Option<String>,
    /// The WASM component's digest.
    #[serde(default)]
    pub module: Option<String>,
}

/// Why a receipt is not valid, as a stable kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rejection {
    /// The bytes are not a receipt this verifier reads.
    Malformed,
    /// The proof does not verify against the statement.
    ProofRejected,
    /// The attestation does not sign this receipt for its job.
    AttestationRejected,
    /// The receipt proves another program than the caller expects.
    WrongProgram,
    /// The receipt names another module than the caller expects.
    WrongModule,
    /// The caller's expectation is not a hex digest.
    BadExpectation,
}

/// The worker's attestation, checked (felts as `0x` hex, as the CLI prints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attestation {
    pub job_id: String,
    pub worker: String,
    pub public_key: String,
    pub evidence: String,
    pub nonce: String,
}

/// The verdict and what the receipt says. The statement's fields are
/// present whenever the receipt decodes, also when it is not valid.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub valid: bool,
    pub error_kind: Option<Rejection>,
    /// Each cause once, outermost first.
    pub error: Option<String>,
    /// SHA-256 of the receipt body.
    pub digest: Option<String>,
    pub program_digest: Option<String>,
    pub module: Option<String>,
    pub input: Option<Vec<u32>>,
    pub output: Option<Vec<u32>>,
    pub security_bits: Option<u32>,
    pub proof_bytes: Option<usize>,
    pub attestation: Option<Attestation>,
}

impl Report {
    fn reject(mut self, kind: Rejection, error: String) -> Self {
        self.valid = false;
        self.error_kind = Some(kind);
        self.error = Some(error);
        self
    }
}

fn parse_digest(hex_digest: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(hex_digest.trim().trim_start_matches("0x"))
        .map_err(|e| format!("the expected {what} is not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("the expected {what} is {} bytes, not 32", b.len()))
}

/// Checks a receipt file's bytes. Never panics on any input: decoding is
/// bounded and the proof's shape is checked before Stwo reads it.
pub fn check(bytes: &[u8], expected: &Expected) -> Report {
    let report = Report::default();
    let receipt = match Receipt::from_bytes(bytes) {
        Ok(r) => r,
        Err(e) => return report.reject(Rejection::Malformed, error_chain(&e)),
    };
    let st = &receipt.body.statement;
    let program = st.program.digest();
    let mut report = Report {
        digest: Some(receipt.digest_hex()),
        program_digest: Some(hex::encode(program)),
        module: receipt.body.module.map(hex::encode),
        input: Some(st.input.iter().map(|w| w.0).collect()),
        output: Some(st.output.iter().map(|w| w.0).collect()),
        security_bits: Some(st.security.bits()),
        proof_bytes: Some(receipt.proof_bytes()),
        ..report
    };
    match receipt.verify() {
        Ok(()) => {}
        Err(ReceiptError::Verify(e)) => {
            return report.reject(Rejection::ProofRejected, format!("proof rejected: {}", error_chain(&e)))
        }
        Err(e) => return report.reject(Rejection::Malformed, error_chain(&e)),
    }
    if receipt.attestation.is_some() {
        match check_receipt(&receipt) {
            Ok(a) => {
                let nonce = receipt.attestation.as_ref().map(|r| r.nonce.clone()).unwrap_or_default();
                report.attestation = Some(Attestation {
                    job_id: format!("{:#x}", a.job_id),
                    worker: format!("{:#x}", a.worker_address),
                    public_key: format!("{:#x}", a.public_key),
                    evidence: a.evidence,
                    nonce,
                });
            }
            Err(e) => {
                return report
                    .reject(Rejection::AttestationRejected, format!("attestation rejected: {}", error_chain(&e)))
            }
        }
    }
    let pins = [
        (&expected.program_digest, Some(program), "program digest", Rejection::WrongProgram),
        (&expected.module, receipt.body.module, "module digest", Rejection::WrongModule),
    ];
    for (want, have, what, kind) in pins {
        let Some(want) = want.as_deref().filter(|w| !w.trim().is_empty()) else { continue };
        let want = match parse_digest(want, what) {
            Ok(d) => d,
            Err(e) => return report.reject(Rejection::BadExpectation, e),
        };
        if have != Some(want) {
            let found = have.map(hex::encode).unwrap_or_else(|| "none".into());
            return report
                .reject(kind, format!("the receipt's {what} is {found}, not the expected {}", hex::encode(want)));
        }
    }
    report.valid = true;
    report
}

#[cfg(target_arch = "wasm32")]
mod js {
    use wasm_bindgen::prelude::*;

    use super::{check, Expected, Rejection, Report};

    /// `verifyReceipt(bytes: Uint8Array, expected?: {program_digest?, module?})`
    /// returns the [`Report`] as a plain object.
    #[wasm_bindgen(js_name = verifyReceipt)]
    pub fn verify_receipt(bytes: &[u8], expected: JsValue) -> JsValue {
        let report = if expected.is_undefined() || expected.is_null() {
            check(bytes, &Expected::default())
        } else {
            match serde_wasm_bindgen::from_value::<Expected>(expected) {
                Ok(e) => check(bytes, &e),
                Err(e) => Report::default().reject(Rejection::BadExpectation, format!("bad expectation: {e}")),
            }
        };
        let ser = serde_wasm_bindgen::Serializer::json_compatible();
        serde::Serialize::serialize(&report, &ser).unwrap_or(JsValue::NULL)
    }
}
