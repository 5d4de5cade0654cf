//! Confidential-computing hardware: which kind this machine has, and the
//! evidence a receipt carries. Without such hardware, which is every machine
//! this project runs on today, the evidence is `software-signed`: the
//! signature says which key signed the receipt, and nothing about the
//! hardware or software that produced it.
//!
//! Where a TDX machine is present, its quote binds the attestation: the
//! quote's 64-byte report data is the attestation's Poseidon hash (32 bytes,
//! big-endian) followed by 32 zero bytes. [`verify_tdx`] checks a quote with
//! Intel's DCAP rules (the `dcap-qvl` crate: certificate chain to Intel's
//! root, QE identity, TCB status) against collateral, then checks that
//! binding.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The evidence attached to an attestation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Evidence {
    /// No TEE quote: the worker's key signed, nothing more.
    SoftwareSigned,
}

impl Evidence {
    /// The label a receipt stores.
    pub fn label(&self) -> &'static str {
        match self {
            Evidence::SoftwareSigned => bitsage_receipt::attest::SOFTWARE_SIGNED,
        }
    }
}

/// A TEE this machine exposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tee {
    IntelTdx,
    AmdSevSnp,
    NvidiaCc,
}

/// The TEEs visible on this machine: the TDX and SEV-SNP guest devices, and
/// NVIDIA confidential computing as reported by `nvidia-smi conf-compute`.
pub fn detect() -> Vec<Tee> {
    let mut found = Vec::new();
    if ["/dev/tdx_guest", "/dev/tdx-guest"].iter().any(|p| Path::new(p).exists()) {
        found.push(Tee::IntelTdx);
    }
    if Path::new("/dev/sev-guest").exists() {
        found.push(Tee::AmdSevSnp);
    }
    let cc = std::process::Command::new("nvidia-smi").args(["conf-compute", "-f"]).output();
    if let Ok(out) = cc {
        if out.status.success() && String::from_utf8_lossy(&out.stdout).to_ascii_lowercase().contains("cc status: on") {
            found.push(Tee::NvidiaCc);
        }
    }
    found
}

/// The report data a TDX quote carries to bind an attestation hash.
pub fn report_data_for(message_hash: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(message_hash);
    out
}

#[derive(Debug, thiserror::Error)]
pub enum TeeError {
    #[error("the collateral is not DCAP quote collateral (JSON): {0}")]
    Collateral(String),
    #[error("the quote does not verify: {0}")]
    Quote(String),
    #[error("the quote is an SGX enclave quote, not a TDX one")]
    NotTdx,
    #[error("the quote's report data does not bind this attestation")]
    NotBound,
}

/// What a verified TDX quote says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TdxVerdict {
    /// Intel's TCB status (`UpToDate`, `OutOfDate`, ...).
    pub tcb_status: String,
    pub advisory_ids: Vec<String>,
    /// The TD's measurement (MRTD), hex.
    pub mr_td: String,
}

/// Verifies a TDX `quote` against its `collateral` (the JSON PCCS serves)
/// at `now` (Unix seconds), and that its report data is `expected`.
pub fn verify_tdx(quote: &[u8], collateral: &[u8], now: u64, expected: &[u8; 64]) -> Result<TdxVerdict, TeeError> {
    let collateral: dcap_qvl::QuoteCollateralV3 =
        serde_json::from_slice(collateral).map_err(|e| TeeError::Collateral(e.to_string()))?;
    let verified = dcap_qvl::verify::verify(quote, &collateral, now).map_err(|e| TeeError::Quote(format!("{e:#}")))?;
    let td = verified.report.as_td10().ok_or(TeeError::NotTdx)?;
    if &td.report_data != expected {
        return Err(TeeError::NotBound);
    }
    Ok(TdxVerdict { tcb_status: verified.status, advisory_ids: verified.advisory_ids, mr_td: hex::encode(td.mr_td) })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The sample quotes `dcap-qvl` ships in its crate package (read from
    /// cargo's registry, never copied into this repository).
    fn sample(name: &str) -> Vec<u8> {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .expect("CARGO_HOME or HOME");
        let src = home.join("registry").join("src");
        for index in std::fs::read_dir(&src).expect("cargo registry").flatten() {
            let p = index.path().join("dcap-qvl-0.7.1").join("sample").join(name);
            if let Ok(b) = std::fs::read(&p) {
                return b;
            }
        }
        panic!("dcap-qvl 0.7.1's sample {name} is not in {}", src.display())
    }

    /// Unix seconds of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
    fn unix(t: &str) -> u64 {
        let n = |a: usize, b: usize| t[a..b].parse::<i64>().expect("digits");
        let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
        let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + d - 1;
        let days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
        (days * 86400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)) as u64
    }

    /// A time inside the sample collateral's TCB-info validity.
    fn collateral_time(collateral: &[u8]) -> u64 {
        let c: serde_json::Value = serde_json::from_slice(collateral).expect("JSON");
        let info: serde_json::Value =
            serde_json::from_str(c["tcb_info"].as_str().expect("tcb_info")).expect("tcb_info JSON");
        unix(info["issueDate"].as_str().expect("issueDate")) + 3600
    }

    fn report_data(quote: &[u8]) -> [u8; 64] {
        let q = dcap_qvl::quote::Quote::parse(quote).expect("parses");
        q.report.as_td10().expect("a TD report").report_data
    }

    #[test]
    fn the_sample_tdx_quote_verifies_and_binds_only_its_own_report_data() {
        let (quote, collateral) = (sample("tdx_quote"), sample("tdx_quote_collateral.json"));
        let now = collateral_time(&collateral);
        let own = report_data(&quote);
        let verdict = verify_tdx(&quote, &collateral, now, &own).expect("the sample quote verifies");
        assert_eq!(verdict.tcb_status, "UpToDate");
        assert_eq!(verdict.mr_td.len(), 96);
        // Any other attestation hash is not bound by it.
        let ours = report_data_for(&[7u8; 32]);
        assert!(matches!(verify_tdx(&quote, &collateral, now, &ours), Err(TeeError::NotBound)));
        // A changed byte in the signed report breaks the quote's signature.
        let mut bent = quote.clone();
        bent[48 + 520] ^= 1;
        assert!(matches!(verify_tdx(&bent, &collateral, now, &own), Err(TeeError::Quote(_))));
        // Outside the collateral's validity the quote is refused.
        assert!(matches!(verify_tdx(&quote, &collateral, now + 400 * 86400, &own), Err(TeeError::Quote(_))));
        // Garbage is an error, not a panic.
        assert!(verify_tdx(&quote[..100], &collateral, now, &own).is_err());
        assert!(matches!(verify_tdx(&quote, b"{}", now, &own), Err(TeeError::Collateral(_))));
    }

    #[test]
    fn an_sgx_quote_is_not_tdx_evidence() {
        let (quote, collateral) = (sample("sgx_quote"), sample("sgx_quote_collateral.json"));
        let now = collateral_time(&collateral);
        let r = verify_tdx(&quote, &collateral, now, &[0u8; 64]);
        assert!(matches!(r, Err(TeeError::NotTdx) | Err(TeeError::Quote(_))), "{r:?}");
    }

    #[test]
    fn rfc3339_days_are_counted_from_the_epoch() {
        assert_eq!(unix("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix("2000-03-01T00:00:01Z"), 951_868_801);
    }
}
