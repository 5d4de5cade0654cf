//! Settlement verbs: deploy our contracts, stake and unstake, claim, info,
//! escrow deposits and refunds, submitting an attested result, and the
//! validator. The work is in `bitsage_settle::chain`; this is wiring.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bitsage_air::verify::ChainProof;
use bitsage_prover::Receipt;
use bitsage_settle::attest::{attested_for, check_receipt, JobSpec};
use bitsage_settle::chain::{fmt_amount, parse_amount, Chain, ChainError, DeployParams, Deployment, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::onchain::{statement_key, verdict_code, verdict_name, verdict_of_reason, Split};
use bitsage_settle::validator::{ReceiptSource, Validator};
use bitsage_settle::Felt;
use serde_json::json;

use crate::args::{parse_felt, DataDir};
use crate::exit::Exit;
use crate::keys::{key_failure, keystore_path, password};
use crate::spec::{spec_json, SpecArgs};
use crate::{fail, runtime, Failure};

/// Where the chain is and our contracts on it: enough to read and call.
#[derive(clap::Args, Clone)]
pub struct ChainAt {
    /// Starknet JSON-RPC endpoint.
    #[arg(long, env = "BITSAGE_RPC", default_value = "http://127.0.0.1:5050")]
    rpc: String,
    /// The deployment file `chain deploy` wrote (default: `<data dir>/deployment.json`).
    #[arg(long, env = "BITSAGE_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

/// Where the chain is and who we are on it.
#[derive(clap::Args, Clone)]
pub struct ChainArgs {
    #[command(flatten)]
    at: ChainAt,
    /// This account's address (its signer is the keystore's key).
    #[arg(long, env = "BITSAGE_ACCOUNT")]
    account: Option<String>,
    /// The keystore (default: `<data dir>/keys/worker.json`).
    #[arg(long)]
    keystore: Option<PathBuf>,
}

/// A chain failure's exit code: Exit::ChainRefused the chain or a contract refused, 25 the
/// chain could not be reached or answered oddly, 2 a bad argument.
pub fn chain_failure(e: ChainError) -> Failure {
    let code = match e {
        ChainError::Unreachable { .. }
        | ChainError::Rpc(_)
        | ChainError::Timeout { .. }
        | ChainError::BadResponse(_) => Exit::ChainUnreachable,
        ChainError::Config(_) => Exit::Usage,
        _ => Exit::ChainRefused,
    };
    Failure { code, err: anyhow::Error::new(e) }
}

fn amount(s: &str) -> Result<u128, Failure> {
    parse_amount(s).map_err(chain_failure)
}

impl ChainAt {
    fn deployment_path(&self) -> PathBuf {
        self.deployment.clone().unwrap_or_else(|| self.data.path().join("deployment.json"))
    }

    pub fn chain(&self, need_deployment: bool) -> Result<Chain, Failure> {
        let path = self.deployment_path();
        let deployment =
            if need_deployment || path.exists() { Some(Deployment::load(&path).map_err(chain_failure)?) } else { None };
        Chain::new(&self.rpc, deployment).map_err(chain_failure)
    }
}

impl ChainArgs {
    /// True when a deployment file is named or present.
    pub fn has_deployment(&self) -> bool {
        self.at.deployment.is_some() || self.at.deployment_path().exists()
    }

    fn chain(&self, need_deployment: bool) -> Result<Chain, Failure> {
        self.at.chain(need_deployment)
    }

    fn account(&self) -> Result<Felt, Failure> {
        let a = self.account.as_deref().ok_or_else(|| Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("no account address: pass --account or set BITSAGE_ACCOUNT"),
        })?;
        parse_felt(a, "account address")
    }

    fn key(&self) -> Result<WorkerKey, Failure> {
        let path = keystore_path(&self.keystore, &self.at.data);
        let password = password(false)?;
        WorkerKey::load(&path, &password).map_err(key_failure)
    }

    async fn wallet(&self, need_deployment: bool) -> Result<Wallet, Failure> {
        let chain = self.chain(need_deployment)?;
        let key = self.key()?;
        Wallet::connect(chain, self.account()?, &key).await.map_err(chain_failure)
    }
}

#[derive(clap::Subcommand)]
pub enum ChainCmd {
    /// Declare and deploy staking, the validator registry and the job escrow; write the deployment file.
    Deploy(DeployArgs),
    /// Show an escrowed job's state.
    Job {
        /// The job's spec hash (the escrow's job id).
        job_id: String,
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// The escrow's events, decoded.
    Events {
        #[command(flatten)]
        chain: ChainArgs,
    },
}

#[derive(clap::Args)]
pub struct DeployArgs {
    /// The ERC20 staked and paid in (e.g. the chain's STRK).
    #[arg(long)]
    token: String,
    /// Receives 18% of each payment.
    #[arg(long)]
    treasury: String,
    /// Receives 2% of each payment (the stakers' pool).
    #[arg(long)]
    stakers_pool: String,
    /// Seconds an unstaked amount waits before it can be claimed.
    #[arg(long, default_value = "604800")]
    unbonding_secs: u64,
    /// Tokens a validator must have staked to register.
    #[arg(long, default_value = "1000")]
    min_validator_stake: String,
    /// Tokens taken from a worker's stake when validators reject its result.
    #[arg(long, default_value = "500")]
    slash_amount: String,
    /// The compiled contracts (`scripts/build-contracts.sh` writes them).
    #[arg(long, default_value = "target/contracts")]
    contracts: PathBuf,
    /// Deployment salt (a second deployment on one chain needs another).
    #[arg(long, default_value = "0")]
    salt: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

pub fn cmd_chain(as_json: bool, cmd: &ChainCmd) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            ChainCmd::Deploy(a) => {
                let params = DeployParams {
                    token: parse_felt(&a.token, "token")?,
                    treasury: parse_felt(&a.treasury, "treasury")?,
                    stakers_pool: parse_felt(&a.stakers_pool, "stakers pool")?,
                    unbonding_secs: a.unbonding_secs,
                    min_validator_stake: amount(&a.min_validator_stake)?,
                    slash_amount: amount(&a.slash_amount)?,
                    salt: a.salt,
                };
                let wallet = a.chain.wallet(false).await?;
                let d = wallet.deploy_all(&a.contracts, params).await.map_err(chain_failure)?;
                let path = a.chain.at.deployment_path();
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))
                        .map_err(fail(Exit::Io))?;
                }
                d.save(&path).map_err(chain_failure)?;
                if as_json {
                    println!("{}", json!({ "deployment": path, "contracts": d }));
                } else {
                    println!("staking   {:#x}", d.staking);
                    println!("registry  {:#x}", d.registry);
                    println!("escrow    {:#x}", d.escrow);
                    println!("written   {}", path.display());
                }
                Ok(())
            }
            ChainCmd::Job { job_id, chain } => {
                let c = chain.chain(true)?;
                let job = c.job(parse_felt(job_id, "job id")?).await.map_err(chain_failure)?;
                if as_json {
                    println!("{}", json!({ "job": job, "amount_tokens": fmt_amount(job.amount) }));
                } else {
                    println!("state     {:?}", job.state);
                    println!("client    {:#x}", job.client);
                    println!("worker    {:#x}", job.worker);
                    println!("amount    {}", fmt_amount(job.amount));
                    println!("deadline  {}", job.deadline);
                    println!("votes     {} valid, {} invalid", job.valid_votes, job.invalid_votes);
                }
                Ok(())
            }
            ChainCmd::Events { chain } => {
                let c = chain.chain(true)?;
                let from = c.deployment().map_err(chain_failure)?.from_block;
                for ev in c.escrow_events(from).await.map_err(chain_failure)? {
                    println!("{}", serde_json::to_string(&ev).unwrap_or_default());
                }
                Ok(())
            }
        }
    })
}

#[derive(clap::Args)]
pub struct AmountArgs {
    /// Tokens (e.g. 1000 or 2.5).
    #[arg(long)]
    amount: String,
    #[command(flatten)]
    chain: ChainArgs,
}

fn tx_line(as_json: bool, what: &str, tx: Felt, extra: serde_json::Value) {
    if as_json {
        let mut v = json!({ "ok": true, "tx": format!("{tx:#x}") });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        println!("{v}");
    } else {
        println!("{what} (tx {tx:#x})");
    }
}

/// `stake`: approves and stakes, and registers the keystore's public key as
/// the attestation key when the chain has another (or none).
pub fn cmd_stake(as_json: bool, a: &AmountArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let amount = amount(&a.amount)?;
        let wallet = a.chain.wallet(true).await?;
        let key = a.chain.key()?.public_key();
        let tx = wallet.stake(amount).await.map_err(chain_failure)?;
        if wallet.chain.public_key_of(wallet.address()).await.map_err(chain_failure)? != key {
            wallet.set_public_key(key).await.map_err(chain_failure)?;
        }
        let stake = wallet.chain.stake_of(wallet.address()).await.map_err(chain_failure)?;
        let tier = wallet.chain.tier_of(wallet.address()).await.map_err(chain_failure)?;
        tx_line(
            as_json,
            &format!("staked {}; stake now {} ({tier})", a.amount, fmt_amount(stake)),
            tx,
            json!({ "stake": fmt_amount(stake), "tier": tier }),
        );
        Ok(())
    })
}

pub fn cmd_unstake(as_json: bool, a: &AmountArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let amount = amount(&a.amount)?;
        let wallet = a.chain.wallet(true).await?;
        let tx = wallet.unstake(amount).await.map_err(chain_failure)?;
        let (unbonding, until) = wallet.chain.unbonding_of(wallet.address()).await.map_err(chain_failure)?;
        tx_line(
            as_json,
            &format!("unstaked {}; {} unbonding until {until}", a.amount, fmt_amount(unbonding)),
            tx,
            json!({ "unbonding": fmt_amount(unbonding), "until": until }),
        );
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct WhoArgs {
    /// Whose standing (default: --account).
    #[arg(long)]
    address: Option<String>,
    #[command(flatten)]
    chain: ChainArgs,
}

pub fn cmd_claim(as_json: bool, a: &ChainArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let wallet = a.wallet(true).await?;
        let got = wallet.claim().await.map_err(chain_failure)?;
        if as_json {
            println!("{}", json!({ "ok": true, "claimed": fmt_amount(got) }));
        } else {
            println!("claimed {}", fmt_amount(got));
        }
        Ok(())
    })
}

pub fn cmd_info(as_json: bool, a: &WhoArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let who = match &a.address {
            Some(s) => parse_felt(s, "address")?,
            None => a.chain.account()?,
        };
        let c = a.chain.chain(true)?;
        let info = c.worker_info(who).await.map_err(chain_failure)?;
        if as_json {
            println!("{}", serde_json::to_string(&info).unwrap_or_default());
        } else {
            println!("account     {:#x}", info.address);
            println!("balance     {}", info.balance);
            println!("stake       {} ({})", info.stake, info.tier);
            println!(
                "unbonding   {} (claimable at {}, chain time {})",
                info.unbonding, info.unbonding_until, info.chain_time
            );
            println!("earnings    {}", info.earnings);
            println!("pending     {} result(s) awaiting a verdict", info.pending_jobs.len());
            println!("public key  {:#x}", info.public_key);
            println!("validator   {}", if info.is_validator { "yes" } else { "no" });
        }
        Ok(())
    })
}

/// The chain half of `status`: block, validators, escrowed jobs, and this
/// account's standing.
pub fn cmd_chain_status(as_json: bool, a: &ChainArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let c = a.chain(true)?;
        let block = c.block_number().await.map_err(chain_failure)?;
        let now = c.now().await.map_err(chain_failure)?;
        let validators = c.validator_count().await.map_err(chain_failure)?;
        let d = c.deployment().map_err(chain_failure)?.clone();
        let (mut open, mut submitted, mut proved, mut paid, mut rejected, mut refunded) = (0, 0, 0, 0, 0, 0);
        for ev in c.escrow_events(d.from_block).await.map_err(chain_failure)? {
            use bitsage_settle::chain::EscrowEvent as E;
            match ev {
                E::Deposited { .. } => open += 1,
                E::ResultSubmitted { .. } => submitted += 1,
                E::Paid { .. } => paid += 1,
                E::Rejected { .. } => rejected += 1,
                E::Refunded { .. } => refunded += 1,
                E::ProofAccepted { .. } => proved += 1,
                E::Voted { .. } => {}
            }
        }
        let me = match &a.account {
            Some(s) => Some(c.worker_info(parse_felt(s, "account address")?).await.map_err(chain_failure)?),
            None => None,
        };
        if as_json {
            println!(
                "{}",
                json!({ "block": block, "chain_time": now, "validators": validators, "deployment": d,
                        "jobs": { "deposited": open, "results": submitted, "paid_on_proof": proved, "paid": paid, "rejected": rejected, "refunded": refunded },
                        "account": me })
            );
        } else {
            println!("chain       {:#x} at block {block}, time {now}", d.chain_id);
            println!("escrow      {:#x}", d.escrow);
            println!("verifier    {:#x}", d.verifier);
            println!("validators  {validators}");
            println!(
                "jobs        {open} deposited, {submitted} results, {paid} paid ({proved} on a proof verified on chain), {rejected} rejected, {refunded} refunded"
            );
            if let Some(i) = me {
                println!(
                    "account     {:#x}: stake {} ({}), {} unbonding, earned {}, {} result(s) pending",
                    i.address,
                    i.stake,
                    i.tier,
                    i.unbonding,
                    i.earnings,
                    i.pending_jobs.len()
                );
            }
        }
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct DepositArgs {
    /// The job: its statement is derived from a local dev run (see `spec-hash`).
    #[command(flatten)]
    spec: SpecArgs,
    /// Tokens to escrow.
    #[arg(long)]
    amount: String,
    /// Seconds from now until the deposit can be refunded if no result came.
    #[arg(long, default_value = "3600")]
    deadline_secs: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

pub fn cmd_deposit(as_json: bool, a: &DepositArgs) -> Result<(), Failure> {
    let spec = a.spec.derive()?;
    let job_id = crate::spec::job_id(&spec)?;
    let (tx, deadline) = deposit_for(&a.chain, &spec, &a.amount, a.deadline_secs)?;
    tx_line(
        as_json,
        &format!("deposited {} for job {job_id:#x}, refundable after {deadline}", a.amount),
        tx,
        json!({ "deadline": deadline, "job_id": format!("{job_id:#x}"), "spec": spec_json(&spec) }),
    );
    Ok(())
}

/// Escrows `amount_text` tokens for the job `spec` describes, from this
/// account, refundable `deadline_secs` from now (chain time); returns the
/// transaction and the deadline. `deposit` and `submit --pay` both go
/// through here.
pub fn deposit_for(
    chain: &ChainArgs,
    spec: &JobSpec,
    amount_text: &str,
    deadline_secs: u64,
) -> Result<(Felt, u64), Failure> {
    let amount = amount(amount_text)?;
    runtime()?.block_on(async {
        let wallet = chain.wallet(true).await?;
        let deadline = wallet.chain.now().await.map_err(chain_failure)? + deadline_secs;
        let tx = wallet.deposit(spec, amount, deadline).await.map_err(chain_failure)?;
        Ok((tx, deadline))
    })
}

#[derive(clap::Args)]
pub struct JobArgs {
    /// The job's spec hash.
    #[arg(long)]
    job_id: String,
    #[command(flatten)]
    chain: ChainArgs,
}

pub fn cmd_refund(as_json: bool, a: &JobArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        let job_id = parse_felt(&a.job_id, "job id")?;
        let wallet = a.chain.wallet(true).await?;
        let tx = wallet.refund(job_id).await.map_err(chain_failure)?;
        tx_line(as_json, &format!("refunded job {job_id:#x}"), tx, json!({}));
        Ok(())
    })
}

#[derive(clap::Args)]
pub struct SettleArgs {
    /// An attested receipt (`run --attest`). With --onchain, a receipt proved
    /// over the Poseidon252 channel (`--channel poseidon252`).
    receipt: PathBuf,
    /// Have the chain verify the proof, over as many transactions as it
    /// needs, then claim the job's payment from the escrow on that proof:
    /// no validator vote.
    #[arg(long)]
    onchain: bool,
    /// With --onchain: the escrow job to claim (default: the attestation's
    /// job id). With neither, the proof is verified and nothing claimed.
    #[arg(long, requires = "onchain")]
    job: Option<String>,
    #[command(flatten)]
    chain: ChainArgs,
}

/// A receipt's proof for the chain: refused unless it is over Poseidon252
/// and verifies here (a proof that does not would only spend gas).
fn chain_proof<'r>(receipt: &'r Receipt, path: &Path) -> Result<&'r ChainProof, Failure> {
    let proof = receipt.body.proof.for_chain().ok_or_else(|| Failure {
        code: Exit::Usage,
        err: anyhow::anyhow!(
            "{} is proved over the {} channel; the chain verifies poseidon252 proofs: prove with `--channel poseidon252`",
            path.display(),
            receipt.channel().name()
        ),
    })?;
    Ok(proof)
}

/// The proof's parts for the chain, refused when they cannot fit a
/// transaction (`Split::too_large`).
fn fitting_split(statement: &bitsage_air::Statement, proof: &ChainProof) -> Result<Split, Failure> {
    let split = Split::new(statement, proof);
    match split.too_large() {
        Some(why) => Err(Failure { code: Exit::Usage, err: anyhow::anyhow!(why) }),
        None => Ok(split),
    }
}

/// A step the chain refused, with the verdict's meaning when it has one.
fn refused_step(step: &str, e: ChainError) -> Failure {
    let mut f = chain_failure(e);
    if let Some(reason) = f.err.downcast_ref::<ChainError>().and_then(|e| match e {
        ChainError::Reverted { reason } => Some(reason.clone()),
        _ => None,
    }) {
        let why = verdict_of_reason(&reason).map(|c| format!(" ({})", verdict_name(c))).unwrap_or_default();
        f.err = f.err.context(format!("the chain refused `{step}`{why}"));
    }
    f
}

/// `settle`: submits an attested receipt's result to the escrow, or with
/// `--onchain` has the chain verify its proof and claims on that.
pub fn cmd_settle(as_json: bool, a: &SettleArgs) -> Result<(), Failure> {
    if a.onchain {
        return cmd_settle_onchain(as_json, a);
    }
    let receipt = crate::read_receipt(&a.receipt)?;
    let checked = check_receipt(&receipt).map_err(|e| Failure { code: Exit::Rejected, err: anyhow::Error::new(e) })?;
    let rec = receipt
        .attestation
        .clone()
        .ok_or_else(|| Failure { code: Exit::Rejected, err: anyhow::anyhow!("no attestation") })?;
    let rt = runtime()?;
    rt.block_on(async {
        let wallet = a.chain.wallet(true).await?;
        if wallet.address() != checked.worker_address {
            return Err(Failure {
                code: Exit::Usage,
                err: anyhow::anyhow!(
                    "the receipt is attested by {:#x}, this account is {:#x}",
                    checked.worker_address,
                    wallet.address()
                ),
            });
        }
        let what = attested_for(&receipt, checked.job_id, checked.worker_address, rec.input)
            .map_err(|e| Failure { code: Exit::Rejected, err: anyhow::Error::new(e) })?;
        let tx = wallet
            .submit_result(&what, Felt::from_bytes_be(&rec.r), Felt::from_bytes_be(&rec.s))
            .await
            .map_err(chain_failure)?;
        tx_line(
            as_json,
            &format!("submitted the result of job {:#x}", checked.job_id),
            tx,
            json!({ "job_id": format!("{:#x}", checked.job_id) }),
        );
        Ok(())
    })
}

/// `settle --onchain`: the proof verified by the chain in its steps, each
/// transaction reported with its L2 gas and fee, then the escrow's payment
/// claimed on it.
fn cmd_settle_onchain(as_json: bool, a: &SettleArgs) -> Result<(), Failure> {
    let receipt = crate::read_receipt(&a.receipt)?;
    let proof = chain_proof(&receipt, &a.receipt)?;
    receipt.verify().map_err(|e| Failure {
        code: Exit::Rejected,
        err: anyhow::Error::new(e).context("the proof does not verify here; the chain would refuse it"),
    })?;
    let job_id = match (&a.job, &receipt.attestation) {
        (Some(j), _) => Some(parse_felt(j, "job id")?),
        (None, Some(_)) => Some(
            check_receipt(&receipt).map_err(|e| Failure { code: Exit::Rejected, err: anyhow::Error::new(e) })?.job_id,
        ),
        (None, None) => None,
    };
    let statement = &receipt.body.statement;
    let split = fitting_split(statement, proof)?;
    let rt = runtime()?;
    rt.block_on(async {
        let wallet = a.chain.wallet(true).await?;
        let verifier = wallet.chain.deployment().map_err(chain_failure)?.verifier;
        let key = statement_key(statement);
        let (prover, earlier) = wallet.chain.verified_by(key).await.map_err(chain_failure)?;
        let mut steps = Vec::new();
        if prover == Felt::ZERO {
            steps = wallet
                .verify_on_chain(verifier, &split, |s| {
                    if !as_json {
                        println!(
                            "{:<12} tx {:#x}: {} felts of calldata, {} L2 gas, fee {} STRK",
                            s.step,
                            s.tx,
                            s.calldata,
                            s.l2_gas,
                            fmt_amount(s.fee)
                        );
                    }
                })
                .await
                .map_err(|e| refused_step("verify", e))?;
        } else if prover != wallet.address() {
            return Err(Failure {
                code: Exit::ChainRefused,
                err: anyhow::anyhow!("this statement was already verified on chain by {prover:#x} (proof {earlier:#x})"),
            });
        } else if !as_json {
            println!("already verified on chain by this account (proof {earlier:#x})");
        }
        let claimed = match job_id {
            Some(job) => {
                let output = bitsage_prover::receipt::words_digest(&statement.output);
                let tx = wallet.claim_verified(job, &output).await.map_err(|e| refused_step("claim_verified", e))?;
                let cost = wallet.chain.tx_cost(tx).await.map_err(chain_failure)?;
                if !as_json {
                    println!(
                        "{:<12} tx {tx:#x}: job {job:#x} paid, {} L2 gas, fee {} STRK",
                        "claim",
                        cost.l2_gas,
                        fmt_amount(cost.fee)
                    );
                }
                Some((job, tx, cost))
            }
            None => None,
        };
        let gas: u64 = steps.iter().map(|s| s.l2_gas).sum::<u64>() + claimed.as_ref().map_or(0, |c| c.2.l2_gas);
        let fee: u128 = steps.iter().map(|s| s.fee).sum::<u128>() + claimed.as_ref().map_or(0, |c| c.2.fee);
        let n_tx = steps.len() + claimed.is_some() as usize;
        if as_json {
            let steps: Vec<_> = steps
                .iter()
                .map(|s| json!({ "step": s.step, "tx": format!("{:#x}", s.tx), "calldata_felts": s.calldata, "l2_gas": s.l2_gas, "fee_fri": s.fee.to_string() }))
                .collect();
            println!(
                "{}",
                json!({ "ok": true, "statement": format!("{key:#x}"), "proof_hash": format!("{:#x}", split.proof_hash()),
                "steps": steps, "claim": claimed.as_ref().map(|(job, tx, c)| json!({ "job_id": format!("{job:#x}"), "tx": format!("{tx:#x}"), "l2_gas": c.l2_gas, "fee_fri": c.fee.to_string() })),
                "transactions": n_tx, "l2_gas": gas, "fee_fri": fee.to_string() })
            );
        } else {
            println!(
                "verified on chain: statement {key:#x}{}; {n_tx} transactions, {gas} L2 gas, fee {} STRK in all",
                if claimed.is_some() { ", payment claimed" } else { "" },
                fmt_amount(fee)
            );
        }
        Ok(())
    })
}

/// `verify --onchain`: the verifier contract's checks of the receipt's
/// proof, run as calls (nothing is sent, no account is needed), beside the
/// Rust verifier's verdict. Both must accept.
pub fn check_onchain(as_json: bool, receipt: &Receipt, path: &Path, at: &ChainAt) -> Result<(), Failure> {
    let proof = chain_proof(receipt, path)?;
    let statement = &receipt.body.statement;
    let local = bitsage_air::verify::verify_poseidon252(statement, proof);
    let split = fitting_split(statement, proof)?;
    let chain = at.chain(true)?;
    let verifier = chain.deployment().map_err(chain_failure)?.verifier;
    let rt = runtime()?;
    let checked = rt.block_on(chain.check_on_chain(verifier, &split, |step, n| {
        if !as_json {
            println!("{step:<12} passed ({n} felts of calldata)");
        }
    }));
    let (n_steps, onchain_code, refused) = match checked {
        Ok(steps) => (steps.len(), 0, None),
        Err(ChainError::Reverted { reason }) => (0, verdict_of_reason(&reason).unwrap_or(u32::MAX), Some(reason)),
        Err(e) => return Err(chain_failure(e)),
    };
    let rust_code = verdict_code(&local);
    let (prover, _) = rt.block_on(chain.verified_by(statement_key(statement))).map_err(chain_failure)?;
    if as_json {
        println!(
            "{}",
            json!({ "ok": onchain_code == 0 && rust_code == 0, "chain_verdict": onchain_code, "chain_reason": refused,
            "rust_verdict": rust_code, "agree": onchain_code == rust_code, "statement": format!("{:#x}", statement_key(statement)),
            "proof_hash": format!("{:#x}", split.proof_hash()), "verified_by": format!("{prover:#x}"),
            "steps": n_steps })
        );
    } else {
        match &refused {
            None => println!("the chain's verdict: accepted, in {n_steps} calls"),
            Some(reason) => println!("the chain's verdict: {} (`{reason}`)", verdict_name(onchain_code)),
        }
        println!("the Rust verifier's: {} ({rust_code})", verdict_name(rust_code));
        if prover != Felt::ZERO {
            println!("recorded as verified on chain by {prover:#x}");
        }
    }
    match (onchain_code, rust_code) {
        (0, 0) => Ok(()),
        (c, r) => Err(Failure {
            code: Exit::Rejected,
            err: anyhow::anyhow!(
                "proof rejected: the chain says {}, the Rust verifier {}{}",
                verdict_name(c),
                verdict_name(r),
                if c == r { "" } else { " (they disagree: please report this)" }
            ),
        }),
    }
}

#[derive(clap::Subcommand)]
pub enum ValidatorCmd {
    /// Register this (staked) account as a validator.
    Register(ChainArgs),
    /// Watch the escrow; fetch, verify and vote on every submitted result.
    Run(ValidatorRunArgs),
}

#[derive(clap::Args)]
pub struct ValidatorRunArgs {
    /// Worker nodes to fetch receipts from (`GET /v1/settlement/{job id}/receipt`).
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Also look for receipts as `<job id>.bin` in this directory.
    #[arg(long)]
    receipts: Option<PathBuf>,
    /// Re-run each job's module on its input document where both are in
    /// this content-addressed directory (files named by their hex SHA-256,
    /// flat or as a node's `blobs/ab/cdef…`), and vote invalid when the run
    /// gives another statement than the job pays for.
    #[arg(long)]
    rerun: Option<PathBuf>,
    #[command(flatten)]
    limits: crate::args::LimitArgs,
    /// Vote on what is pending, then exit.
    #[arg(long)]
    once: bool,
    /// Poll interval.
    #[arg(long, default_value = "1000")]
    poll_ms: u64,
    /// How long a result's receipt may stay unavailable before it is voted invalid.
    #[arg(long, default_value = "60")]
    fetch_grace_secs: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

pub fn cmd_validator(as_json: bool, cmd: &ValidatorCmd) -> Result<(), Failure> {
    let rt = runtime()?;
    rt.block_on(async {
        match cmd {
            ValidatorCmd::Register(c) => {
                let wallet = c.wallet(true).await?;
                let tx = wallet.register_validator().await.map_err(chain_failure)?;
                let n = wallet.chain.validator_count().await.map_err(chain_failure)?;
                tx_line(as_json, &format!("registered as a validator ({n} now)"), tx, json!({ "validators": n }));
                Ok(())
            }
            ValidatorCmd::Run(a) => {
                let wallet = a.chain.wallet(true).await?;
                let source = ReceiptSource { nodes: a.nodes.clone(), dir: a.receipts.clone() };
                let mut v =
                    Validator::new(wallet, source, Duration::from_secs(a.fetch_grace_secs)).map_err(chain_failure)?;
                if let Some(dir) = &a.rerun {
                    v = v.with_rerun(Box::new(crate::spec::BlobRerun { dir: dir.clone(), limits: a.limits.clone() }));
                }
                loop {
                    for verdict in v.step().await.map_err(chain_failure)? {
                        if as_json {
                            println!("{}", serde_json::to_string(&verdict).unwrap_or_default());
                        } else {
                            println!(
                                "job {:#x}: voted {} ({})",
                                verdict.job_id,
                                if verdict.valid { "valid" } else { "invalid" },
                                verdict.reason
                            );
                        }
                    }
                    if a.once && v.idle() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(a.poll_ms)).await;
                }
            }
        }
    })
}
