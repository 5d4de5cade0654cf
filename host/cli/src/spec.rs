//! `spec-hash`, and the job spec a paying client derives locally.
//!
//! A paid job commits to the statement it pays for (module, program and
//! public VM input digests, security level, nonce; `bitsage_settle::attest`
//! has the layout). The client gets the program and the VM input the only
//! way they exist: by running the workload in its own sandbox in dev mode,
//! which is deterministic (clocks and randomness are fixed, fuel is counted
//! the same everywhere), so the worker's node reaches the same statement from
//! the same module and input, or refuses the job.

use std::path::PathBuf;

use bitsage_sandbox::{Sandbox, SandboxConfig};
use bitsage_settle::attest::JobSpec;
use bitsage_settle::Felt;
use serde_json::json;

use crate::args::{read, read_input, LimitArgs};
use crate::exit::Exit;
use crate::workload::sandbox_failure;
use crate::{security_level, Failure, Security};

/// A job, described the way a client submits it.
#[derive(clap::Args)]
pub struct SpecArgs {
    /// The workload component.
    pub workload: PathBuf,
    /// The job's input document (default: `{}`).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// The client's nonce (at most 31 bytes).
    #[arg(long, default_value = "")]
    pub nonce: String,
    /// Proof security, in bits.
    #[arg(long, value_enum, default_value = "96")]
    pub security: Security,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl SpecArgs {
    /// The spec of this job, from a local dev run.
    pub fn derive(&self) -> Result<JobSpec, Failure> {
        let module = read(&self.workload)?;
        let input = read_input(self.input.as_deref())?;
        dev_spec(&module, &input, self.security, &self.nonce, &self.limits)
    }
}

/// The spec of the statement a job of `module` on `input` proves: the
/// workload runs in a local sandbox in dev mode (no proof).
pub fn dev_spec(
    module: &[u8],
    input: &[u8],
    security: Security,
    nonce: &str,
    limits: &LimitArgs,
) -> Result<JobSpec, Failure> {
    // Refuse a nonce the chain cannot hold before running anything.
    bitsage_settle::attest::nonce_felt(nonce).map_err(|e| Failure { code: Exit::Usage, err: anyhow::Error::new(e) })?;
    let sandbox =
        Sandbox::new(SandboxConfig { limits: limits.limits(), ..SandboxConfig::default() }).map_err(sandbox_failure)?;
    let loaded = sandbox.load(module).map_err(sandbox_failure)?;
    let run = sandbox.run(&loaded, input).map_err(sandbox_failure)?;
    let rec = &run.recorded;
    Ok(JobSpec::new(loaded.digest, &rec.program, &rec.input, security_level(security), nonce))
}

/// `spec`'s job id; a nonce too long for the chain is exit 2.
pub fn job_id(spec: &JobSpec) -> Result<Felt, Failure> {
    spec.job_id().map_err(|e| Failure { code: Exit::Usage, err: anyhow::Error::new(e) })
}

/// `spec` as JSON (digests as hex).
pub fn spec_json(spec: &JobSpec) -> serde_json::Value {
    json!({
        "module": hex::encode(spec.module), "program": hex::encode(spec.program), "vm_input": hex::encode(spec.input),
        "security_bits": spec.security_bits, "nonce": spec.nonce,
    })
}

pub fn cmd_spec_hash(as_json: bool, a: &SpecArgs) -> Result<(), Failure> {
    let spec = a.derive()?;
    let id = job_id(&spec)?;
    if as_json {
        println!("{}", json!({ "job_id": format!("{id:#x}"), "spec": spec_json(&spec) }));
    } else {
        println!("{id:#x}");
    }
    Ok(())
}

/// A validator's re-run: the module and the input document from a
/// content-addressed directory, run in the local sandbox.
pub struct BlobRerun {
    pub dir: PathBuf,
    pub limits: LimitArgs,
}

impl BlobRerun {
    fn blob(&self, digest: &[u8; 32]) -> Option<Vec<u8>> {
        let hex = hex::encode(digest);
        let bytes =
            std::fs::read(self.dir.join(&hex)).or_else(|_| std::fs::read(self.dir.join(&hex[..2]).join(&hex[2..])));
        // Only bytes that hash to the name count.
        bytes.ok().filter(|b| <sha2::Sha256 as sha2::Digest>::digest(b).as_slice() == digest)
    }
}

impl bitsage_settle::validator::Rerun for BlobRerun {
    fn spec(
        &self,
        module: &[u8; 32],
        input: &[u8; 32],
        security_bits: u32,
        nonce: &str,
    ) -> Option<Result<JobSpec, String>> {
        let (wasm, doc) = (self.blob(module)?, self.blob(input)?);
        let security = if security_bits == 128 { Security::B128 } else { Security::B96 };
        Some(dev_spec(&wasm, &doc, security, nonce, &self.limits).map_err(|f| format!("{:#}", f.err)))
    }
}
