//! Confidential-computing hardware: which kind this machine has, and the
//! evidence a receipt carries. Without such hardware, which is every machine
//! this project runs on today, the evidence is `software-signed`: the
//! signature says which key signed the receipt, and nothing about the
//! hardware or software that produced it.

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
            Evidence::SoftwareSigned => "software-signed",
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
