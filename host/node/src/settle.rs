//! The node's side of settlement: the worker's identity signs every receipt
//! it proves, and when a chain is configured, a proved job whose escrow is
//! open has its attested result submitted (`settling`); a watcher then ends
//! it `settled` once the validators' quorum paid, or `failed`
//! (`rejected-by-validators`) when they rejected it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bitsage_prover::Receipt;
use bitsage_settle::attest::{attest_receipt, attested_for};
use bitsage_settle::chain::{Chain, Deployment, EscrowEvent, JobState as EscrowState, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::tee::Evidence;
use bitsage_settle::{felt_hex, Felt};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::blobs::Blobs;
use crate::config::NodeConfig;
use crate::store::{Job, Store};

/// Who this worker is, and the chain it settles on (if any).
pub struct Identity {
    key: WorkerKey,
    pub account: Felt,
    pub wallet: Option<Wallet>,
}

fn parse_felt(s: &str) -> anyhow::Result<Felt> {
    bitsage_settle::parse_felt(s).ok_or_else(|| anyhow::anyhow!("{s:?} is not a felt"))
}

impl Identity {
    /// Loads the identity the config names: none without an account; with
    /// one, the keystore must open (`BITSAGE_KEYSTORE_PASSWORD`).
    pub async fn load(config: &NodeConfig) -> anyhow::Result<Option<Arc<Identity>>> {
        let s = &config.settlement;
        let Some(account) = &s.account else { return Ok(None) };
        let account = parse_felt(account).context("settlement.account")?;
        let path: PathBuf = s.keystore.clone().unwrap_or_else(|| config.data_dir.join("keys").join("worker.json"));
        let password = std::env::var("BITSAGE_KEYSTORE_PASSWORD")
            .context("the worker's keystore needs BITSAGE_KEYSTORE_PASSWORD")?;
        let key = WorkerKey::load(&path, &password).with_context(|| format!("opening {}", path.display()))?;
        let wallet = match (&s.rpc, &s.deployment) {
            (Some(rpc), Some(dep)) => {
                let deployment = Deployment::load(dep)?;
                let chain = Chain::new(rpc, Some(deployment))?;
                Some(Wallet::connect(chain, account, &key).await.context("connecting to the chain")?)
            }
            _ => None,
        };
        info!(account = %format!("{account:#x}"), settles = wallet.is_some(), "worker identity loaded");
        Ok(Some(Arc::new(Identity { key, account, wallet })))
    }

    /// Signs a fresh receipt for `job`.
    pub fn attest(&self, receipt: &mut Receipt, job: &Job) -> anyhow::Result<()> {
        let input: [u8; 32] = hex::decode(&job.input_digest)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow::anyhow!("input digest {} is not SHA-256 hex", job.input_digest))?;
        attest_receipt(receipt, &self.key, self.account, input, &job.nonce, Evidence::SoftwareSigned)?;
        Ok(())
    }

    /// Submits a proved job's attested result when its escrow is open.
    /// Returns the transaction, or `None` when there is no open escrow.
    pub async fn settle(&self, store: &Store, blobs: &Blobs, job: &Job) -> anyhow::Result<Option<String>> {
        let Some(wallet) = &self.wallet else { return Ok(None) };
        let (Some(spec), Some(digest)) = (&job.spec_hash, &job.receipt_digest) else { return Ok(None) };
        let job_id = parse_felt(spec)?;
        if wallet.chain.job(job_id).await?.state != EscrowState::Open {
            return Ok(None);
        }
        let bytes = blobs.get(digest).await?.ok_or_else(|| anyhow::anyhow!("receipt {digest} is missing"))?;
        let receipt = Receipt::from_bytes(&bytes)?;
        let rec = receipt.attestation.clone().ok_or_else(|| anyhow::anyhow!("the receipt is not attested"))?;
        let what = attested_for(&receipt, job_id, self.account, rec.input)?;
        let tx = wallet.submit_result(&what, Felt::from_bytes_be(&rec.r), Felt::from_bytes_be(&rec.s)).await?;
        let tx = felt_hex(tx);
        store.mark_settling(&job.id, &tx).await?;
        info!(job_id = %job.id, spec = %spec, %tx, "result submitted to the escrow");
        Ok(Some(tx))
    }
}

/// Settles proved jobs whose escrow is opened after they were proved (a
/// `Deposited` event for a spec hash this node proved), and ends `settling`
/// jobs as the escrow decides them.
pub async fn watch_settlements(store: Store, blobs: Blobs, identity: Arc<Identity>, mut stop: watch::Receiver<bool>) {
    let Some(wallet) = &identity.wallet else { return };
    let mut cursor = wallet.chain.deployment.as_ref().map_or(0, |d| d.from_block);
    loop {
        match wallet.chain.block_number().await {
            Ok(head) if head >= cursor => match wallet.chain.escrow_events_between(cursor, Some(head)).await {
                Ok(events) => {
                    for ev in events {
                        let EscrowEvent::Deposited { job_id, .. } = ev else { continue };
                        let jobs = store.unsettled_by_spec_hash(&felt_hex(job_id)).await.unwrap_or_default();
                        for job in jobs {
                            if let Err(e) = identity.settle(&store, &blobs, &job).await {
                                warn!("settling {} after its deposit: {e:#}", job.id);
                            }
                        }
                    }
                    cursor = head + 1;
                }
                Err(e) => warn!("reading escrow events: {e}"),
            },
            Ok(_) => {}
            Err(e) => warn!("reading the chain head: {e}"),
        }
        match store.settling().await {
            Ok(jobs) => {
                for job in jobs {
                    let Some(spec) = job.spec_hash.as_deref().and_then(|s| parse_felt(s).ok()) else { continue };
                    match wallet.chain.job(spec).await {
                        Ok(e) if e.state == EscrowState::Paid => {
                            let detail = format!("paid: {} valid votes", e.valid_votes);
                            if let Err(err) = store.end_settlement(&job.id, true, &detail).await {
                                warn!("recording the payment of {}: {err}", job.id);
                            }
                        }
                        Ok(e) if e.state == EscrowState::Rejected => {
                            let detail =
                                format!("{} validators voted the result invalid; stake slashed", e.invalid_votes);
                            if let Err(err) = store.end_settlement(&job.id, false, &detail).await {
                                warn!("recording the rejection of {}: {err}", job.id);
                            }
                        }
                        Ok(_) => {}
                        Err(err) => warn!("reading escrow job {spec:#x}: {err}"),
                    }
                }
            }
            Err(e) => warn!("listing settling jobs: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}
