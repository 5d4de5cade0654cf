//! Settlement verbs: deploy our contracts, stake and unstake, claim, info,
//! escrow deposits and refunds, submitting an attested result, and the
//! validator. The work is in `bitsage_settle::chain`; this is wiring.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bitsage_prover::Receipt;
use bitsage_settle::attest::{attested_for, check_receipt, JobSpec};
use bitsage_settle::chain::{fmt_amount, parse_amount, Chain, ChainError, DeployParams, Deployment, Wallet};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::validator::{ReceiptSource, Validator};
use bitsage_settle::Felt;
use serde_json::json;

use crate::args::{parse_felt, DataDir};
use crate::exit::Exit;
use crate::keys::{key_failure, keystore_path, password};
use crate::spec::{spec_json, SpecArgs};
use crate::{fail, runtime, Failure};

/// Where the chain is and who we are on it.
#[derive(clap::Args, Clone)]
pub struct ChainArgs {
    /// Starknet JSON-RPC endpoint.
    #[arg(long, env = "BITSAGE_RPC", default_value = "http://127.0.0.1:5050")]
    rpc: String,
    /// The deployment file `chain deploy` wrote (default: `<data dir>/deployment.json`).
    #[arg(long, env = "BITSAGE_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    /// This account's address (its signer is the keystore's key).
    #[arg(long, env = "BITSAGE_ACCOUNT")]
    account: Option<String>,
    /// The keystore (default: `<data dir>/keys/worker.json`).
    #[arg(long)]
    keystore: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
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

impl ChainArgs {
    /// True when a deployment file is named or present.
    pub fn has_deployment(&self) -> bool {
        self.deployment.is_some() || self.deployment_path().exists()
    }

    fn deployment_path(&self) -> PathBuf {
        self.deployment.clone().unwrap_or_else(|| self.data.path().join("deployment.json"))
    }

    fn chain(&self, need_deployment: bool) -> Result<Chain, Failure> {
        let path = self.deployment_path();
        let deployment =
            if need_deployment || path.exists() { Some(Deployment::load(&path).map_err(chain_failure)?) } else { None };
        Chain::new(&self.rpc, deployment).map_err(chain_failure)
    }

    fn account(&self) -> Result<Felt, Failure> {
        let a = self.account.as_deref().ok_or_else(|| Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("no account address: pass --account or set BITSAGE_ACCOUNT"),
        })?;
        parse_felt(a, "account address")
    }

    fn key(&self) -> Result<WorkerKey, Failure> {
        let path = keystore_path(&self.keystore, &self.data);
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
                let path = a.chain.deployment_path();
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
    /// An attested receipt (`run --attest`).
    receipt: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
}

/// `settle`: submits an attested receipt's result to the escrow.
pub fn cmd_settle(as_json: bool, a: &SettleArgs) -> Result<(), Failure> {
    let bytes = std::fs::read(&a.receipt)
        .with_context(|| format!("reading {}", a.receipt.display()))
        .map_err(fail(Exit::Io))?;
    let receipt =
        Receipt::from_bytes(&bytes).map_err(|e| Failure { code: Exit::Receipt, err: anyhow::Error::new(e) })?;
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
        let what = attested_for(&receipt, checked.job_id, checked.worker_address)
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
