//! The validator: watches the escrow for submitted results, fetches each
//! result's receipt (from the worker's node or a directory), checks it, and
//! votes. A result is valid when
//!
//! 1. the receipt proves the statement the job pays for: its module,
//!    program, public VM input and security level, with the attestation's
//!    nonce, are the spec the escrow stores for the job (whose hash the
//!    escrow checked against the job id at deposit), and the attestation is
//!    for that job id;
//! 2. the attestation signs exactly the receipt's digests, for the worker
//!    that submitted, and its hash is the `result_hash` the escrow recorded;
//! 3. the signing key is the one the worker registered in the staking
//!    contract;
//! 4. the Stwo proof verifies against the statement in the receipt.
//!
//! Where the validator holds the job's module and input document (a
//! [`Rerun`], e.g. a content-addressed directory such as a node's blob
//! store), it also re-runs the module in its own sandbox and requires the
//! same program and VM input: the check that the statement is really what
//! the module makes of the input, which the proof cannot show. A re-run that
//! fails (a smaller limit here, say) confirms nothing and decides nothing.
//!
//! A receipt that stays unavailable past the grace period is voted invalid:
//! a worker that does not publish its result cannot be paid for it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bitsage_prover::Receipt;
use serde::Serialize;
use starknet_rust::core::types::Felt;

use crate::attest::{check_receipt, spec_differences, JobSpec};
use crate::chain::{ChainError, EscrowEvent, JobState, Wallet};

/// Where receipts come from.
#[derive(Clone, Debug, Default)]
pub struct ReceiptSource {
    /// Worker node base URLs, asked `GET /v1/settlement/{job id}/receipt`.
    pub nodes: Vec<String>,
    /// A directory of `<job id>.bin` files (job id as 0x-hex, 64 digits).
    pub dir: Option<PathBuf>,
}

/// Receipts above this size are not fetched.
const MAX_RECEIPT_BYTES: usize = 64 << 20;

impl ReceiptSource {
    pub fn file_name(job_id: Felt) -> String {
        format!("{}.bin", crate::felt_hex(job_id))
    }

    async fn fetch(&self, http: &reqwest::Client, job_id: Felt) -> Option<Vec<u8>> {
        if let Some(dir) = &self.dir {
            if let Ok(bytes) = std::fs::read(dir.join(Self::file_name(job_id))) {
                return Some(bytes);
            }
        }
        for node in &self.nodes {
            let url = format!("{}/v1/settlement/{}/receipt", node.trim_end_matches('/'), crate::felt_hex(job_id));
            let Ok(resp) = http.get(&url).send().await else { continue };
            if !resp.status().is_success() || resp.content_length().is_some_and(|n| n as usize > MAX_RECEIPT_BYTES) {
                continue;
            }
            if let Ok(bytes) = resp.bytes().await {
                if bytes.len() <= MAX_RECEIPT_BYTES {
                    return Some(bytes.to_vec());
                }
            }
        }
        None
    }
}

/// A vote this validator cast.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    pub job_id: Felt,
    pub worker: Felt,
    pub valid: bool,
    pub reason: String,
    pub tx: Option<Felt>,
}

/// Re-derives a job's statement by running its module on its input
/// document, where the validator has both (the sandbox lives in the
/// caller, so this crate needs no WASM runtime).
pub trait Rerun: Send + Sync {
    /// The spec the module's run gives, `None` when the module or the input
    /// is not at hand, `Err` when the run fails.
    fn spec(
        &self,
        module: &[u8; 32],
        input_document: &[u8; 32],
        security_bits: u32,
        nonce: &str,
    ) -> Option<Result<JobSpec, String>>;
}

/// What the escrow holds about a submitted result.
#[derive(Clone, Copy, Debug)]
pub struct Submitted {
    pub job_id: Felt,
    /// The spec the job pays for, as the escrow stores it.
    pub spec: [Felt; 8],
    pub worker: Felt,
    pub result_hash: Felt,
    /// The key the worker registered in the staking contract.
    pub registered_key: Felt,
}

/// Judges one receipt for the result the escrow recorded. `Ok` is a valid
/// result; `Err` says why it is not.
pub fn judge(bytes: &[u8], s: &Submitted, rerun: Option<&dyn Rerun>) -> Result<(), String> {
    let Submitted { job_id, worker, result_hash, registered_key, .. } = *s;
    let receipt = Receipt::from_bytes(bytes)
        .map_err(|e| format!("the receipt is unreadable: {}", bitsage_air::verify::error_chain(&e)))?;
    let rec = receipt.attestation.as_ref().ok_or("the receipt carries no attestation")?;
    let proven = JobSpec::of_receipt(&receipt, &rec.nonce)
        .and_then(|spec| spec.felts())
        .map_err(|e| format!("the receipt names no job spec: {e}"))?;
    let differ = spec_differences(&proven, &s.spec);
    if !differ.is_empty() {
        return Err(format!(
            "the receipt proves another statement than job {job_id:#x} pays for: its {} differ",
            differ.join(", ")
        ));
    }
    if let (Some(rerun), Some(module)) = (rerun, receipt.body.module) {
        let bits = receipt.body.statement.security.bits();
        match rerun.spec(&module, &rec.input, bits, &rec.nonce) {
            Some(Ok(spec)) => {
                let again = spec.felts().map_err(|e| format!("the re-run's spec: {e}"))?;
                let differ = spec_differences(&again, &s.spec);
                if !differ.is_empty() {
                    return Err(format!(
                        "re-running the module on the job's input gives another statement: its {} differ",
                        differ.join(", ")
                    ));
                }
            }
            Some(Err(e)) => tracing::warn!(job = %format!("{job_id:#x}"), "re-running the module failed: {e}"),
            None => {}
        }
    }
    let checked = check_receipt(&receipt).map_err(|e| format!("the attestation is invalid: {e}"))?;
    if checked.job_id != job_id {
        return Err(format!("the receipt is for job {:#x}", checked.job_id));
    }
    if checked.worker_address != worker {
        return Err(format!("the receipt is attested by {:#x}, not the submitter", checked.worker_address));
    }
    if checked.message_hash != result_hash {
        return Err("the receipt's digests are not the ones the worker submitted".into());
    }
    if checked.public_key != registered_key {
        return Err("the receipt is signed by a key the worker has not registered".into());
    }
    receipt.verify().map_err(|e| format!("the proof does not verify: {}", bitsage_air::verify::error_chain(&e)))?;
    Ok(())
}

struct Pending {
    worker: Felt,
    result_hash: Felt,
    first_seen: Instant,
}

pub struct Validator {
    rerun: Option<Box<dyn Rerun>>,
    wallet: Wallet,
    source: ReceiptSource,
    grace: Duration,
    http: reqwest::Client,
    pending: HashMap<Felt, Pending>,
    done: HashSet<Felt>,
}

impl Validator {
    pub fn new(wallet: Wallet, source: ReceiptSource, grace: Duration) -> Result<Validator, ChainError> {
        wallet.chain.deployment()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ChainError::Config(format!("HTTP client: {e}")))?;
        Ok(Validator { rerun: None, wallet, source, grace, http, pending: HashMap::new(), done: HashSet::new() })
    }

    /// Also re-run each job's module on its input where `rerun` has them.
    pub fn with_rerun(mut self, rerun: Box<dyn Rerun>) -> Self {
        self.rerun = Some(rerun);
        self
    }

    /// True when no submitted result is waiting for this validator's vote.
    pub fn idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// One pass: picks up new results, votes on those whose receipt is
    /// available (or overdue), returns the votes cast.
    pub async fn step(&mut self) -> Result<Vec<Verdict>, ChainError> {
        let chain = self.wallet.chain.clone();
        let me = self.wallet.address();
        let from = chain.deployment()?.from_block;
        for ev in chain.escrow_events(from).await? {
            match ev {
                EscrowEvent::ResultSubmitted { job_id, worker, result_hash } if !self.done.contains(&job_id) => {
                    self.pending.entry(job_id).or_insert(Pending { worker, result_hash, first_seen: Instant::now() });
                }
                EscrowEvent::Voted { job_id, validator, .. } if validator == me => {
                    self.pending.remove(&job_id);
                    self.done.insert(job_id);
                }
                _ => {}
            }
        }
        let mut verdicts = Vec::new();
        let ids: Vec<Felt> = self.pending.keys().copied().collect();
        for job_id in ids {
            let Some(p) = self.pending.get(&job_id) else { continue };
            if chain.job(job_id).await?.state != JobState::Submitted {
                self.pending.remove(&job_id);
                self.done.insert(job_id);
                continue;
            }
            let (worker, result_hash, overdue) = (p.worker, p.result_hash, p.first_seen.elapsed() > self.grace);
            let judged = match self.source.fetch(&self.http, job_id).await {
                Some(bytes) => {
                    let registered_key = chain.public_key_of(worker).await?;
                    let spec = chain.job_spec(job_id).await?;
                    let submitted = Submitted { job_id, spec, worker, result_hash, registered_key };
                    Some(judge(&bytes, &submitted, self.rerun.as_deref()))
                }
                None if overdue => Some(Err(format!("no receipt within {} s", self.grace.as_secs()))),
                None => None,
            };
            let Some(judged) = judged else { continue };
            let valid = judged.is_ok();
            let reason = judged.err().unwrap_or_else(|| "the proof verifies and the attestation matches".into());
            let tx = match self.wallet.vote(job_id, valid).await {
                Ok(tx) => Some(tx),
                // Settled by the others' votes meanwhile, or voted already.
                Err(ChainError::Reverted { reason: r }) if r == "no result to judge" || r == "already voted" => None,
                Err(e) => return Err(e),
            };
            tracing::info!(job = %format!("{job_id:#x}"), valid, %reason, "voted");
            self.pending.remove(&job_id);
            self.done.insert(job_id);
            verdicts.push(Verdict { job_id, worker, valid, reason, tx });
        }
        Ok(verdicts)
    }
}
