//! The Starknet side of settlement, through `starknet-rust` over JSON-RPC:
//! declaring and deploying our contracts, and every call the worker, the
//! client and the validators make on them. Each write waits for its
//! transaction's receipt and turns a revert into [`ChainError::Reverted`]
//! with the contract's own message (`'still unbonding'`, `'only the
//! slasher'`, ...). Preconditions a user can get wrong are checked first and
//! reported as their own errors (insufficient balance, stake still
//! unbonding).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use starknet_rust::accounts::{Account, ExecutionEncoding, SingleOwnerAccount};
use starknet_rust::contract::{ContractFactory, UdcSelector};
use starknet_rust::core::types::contract::{CompiledClass, SierraClass};
use starknet_rust::core::types::{
    BlockId, BlockTag, Call, EventFilter, ExecutionResult, Felt, FunctionCall, MaybePreConfirmedBlockWithTxHashes,
    StarknetError, TransactionReceipt,
};
use starknet_rust::core::utils::get_selector_from_name;
use starknet_rust::providers::jsonrpc::{HttpTransport, JsonRpcClient};
use starknet_rust::providers::{Provider, ProviderError, Url};
use starknet_rust::signers::{LocalWallet, SigningKey};

use crate::attest::{Attested, JobSpec};
use crate::keystore::WorkerKey;

pub type Rpc = JsonRpcClient<HttpTransport>;
type Signer = SingleOwnerAccount<Arc<Rpc>, LocalWallet>;

/// One token in the smallest unit (18 decimals).
pub const UNIT: u128 = 1_000_000_000_000_000_000;

/// What a transaction cost ([`Chain::tx_cost`]): gas by kind, and the fee in
/// the fee token's smallest unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TxCost {
    pub l1_gas: u64,
    pub l1_data_gas: u64,
    pub l2_gas: u64,
    pub fee: u128,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("the Starknet node at {url} did not answer: {why}")]
    Unreachable { url: String, why: String },
    #[error("the Starknet node refused the request: {0}")]
    Rpc(String),
    #[error("the contract refused: {reason}")]
    Reverted { reason: String },
    #[error("insufficient balance: the account holds {} tokens, {} are needed", fmt_amount(*have), fmt_amount(*need))]
    InsufficientBalance { have: u128, need: u128 },
    #[error("insufficient stake: {} tokens staked, {} asked", fmt_amount(*have), fmt_amount(*need))]
    InsufficientStake { have: u128, need: u128 },
    #[error("the stake is still unbonding: {} tokens become claimable at {until} (chain time now {now}, {} s to go)", fmt_amount(*amount), until.saturating_sub(*now))]
    StillUnbonding { amount: u128, until: u64, now: u64 },
    #[error("nothing to claim: no stake is unbonding")]
    NothingUnbonding,
    #[error("transaction {tx:#x} was not included within {secs} s")]
    Timeout { tx: Felt, secs: u64 },
    #[error("{0}")]
    Config(String),
    #[error("unexpected answer from the chain: {0}")]
    BadResponse(String),
}

impl ChainError {
    /// A short kebab-case name, for JSON output and job events.
    pub fn kind(&self) -> &'static str {
        match self {
            ChainError::Unreachable { .. } => "chain-unreachable",
            ChainError::Rpc(_) => "chain-rpc",
            ChainError::Reverted { .. } => "reverted",
            ChainError::InsufficientBalance { .. } => "insufficient-balance",
            ChainError::InsufficientStake { .. } => "insufficient-stake",
            ChainError::StillUnbonding { .. } => "still-unbonding",
            ChainError::NothingUnbonding => "nothing-unbonding",
            ChainError::Timeout { .. } => "timeout",
            ChainError::Config(_) => "config",
            ChainError::BadResponse(_) => "bad-response",
        }
    }
}

/// Formats an amount in the smallest unit as tokens (`1234.5`).
pub fn fmt_amount(v: u128) -> String {
    let whole = v / UNIT;
    let frac = v % UNIT;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:018}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses a token amount (`1000`, `0.25`) into the smallest unit.
pub fn parse_amount(s: &str) -> Result<u128, ChainError> {
    let bad = || ChainError::Config(format!("{s:?} is not a token amount (e.g. 1000 or 0.25)"));
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 18 {
        return Err(bad());
    }
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return Err(bad());
    }
    let w: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let f: u128 = if frac.is_empty() { 0 } else { format!("{frac:0<18}").parse().map_err(|_| bad())? };
    w.checked_mul(UNIT).and_then(|x| x.checked_add(f)).ok_or_else(bad)
}

/// The stake tier names, indexed by `Staking::tier_of`.
pub const TIERS: [&str; 6] = ["none", "Consumer", "Workstation", "DataCenter", "Enterprise", "Frontier"];

/// Where our contracts live on a chain: what `bitsage-host chain deploy`
/// writes and every other chain command reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub chain_id: Felt,
    pub token: Felt,
    pub staking: Felt,
    pub registry: Felt,
    pub escrow: Felt,
    /// The on-chain proof verifier (`BitsageVerifier`) the escrow pays on.
    #[serde(default)]
    pub verifier: Felt,
    pub treasury: Felt,
    pub stakers_pool: Felt,
    pub unbonding_secs: u64,
    /// Smallest units, as decimal strings (JSON numbers would lose bits).
    pub min_validator_stake: String,
    pub slash_amount: String,
    /// The block the escrow was deployed in: where event scans start.
    pub from_block: u64,
}

impl Deployment {
    pub fn load(path: &Path) -> Result<Deployment, ChainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ChainError::Config(format!("reading the deployment file {}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| ChainError::Config(format!("{} is not a deployment file: {e}", path.display())))
    }

    pub fn save(&self, path: &Path) -> Result<(), ChainError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ChainError::Config(e.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| ChainError::Config(format!("writing the deployment file {}: {e}", path.display())))
    }
}

/// An escrowed job as the contract stores it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EscrowJob {
    pub client: Felt,
    pub worker: Felt,
    pub amount: u128,
    pub deadline: u64,
    pub state: JobState,
    pub result_hash: Felt,
    pub valid_votes: u32,
    pub invalid_votes: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    None,
    Open,
    Submitted,
    Paid,
    Rejected,
    Refunded,
}

impl JobState {
    fn from_code(c: u64) -> Result<JobState, ChainError> {
        Ok(match c {
            0 => JobState::None,
            1 => JobState::Open,
            2 => JobState::Submitted,
            3 => JobState::Paid,
            4 => JobState::Rejected,
            5 => JobState::Refunded,
            _ => return Err(ChainError::BadResponse(format!("job state {c}"))),
        })
    }
}

/// What the escrow emitted, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EscrowEvent {
    Deposited {
        job_id: Felt,
        client: Felt,
        amount: u128,
        deadline: u64,
    },
    ResultSubmitted {
        job_id: Felt,
        worker: Felt,
        result_hash: Felt,
    },
    Voted {
        job_id: Felt,
        validator: Felt,
        valid: bool,
    },
    Paid {
        job_id: Felt,
        worker: Felt,
        to_worker: u128,
        to_treasury: u128,
        to_stakers: u128,
    },
    Rejected {
        job_id: Felt,
        worker: Felt,
        slashed: u128,
    },
    Refunded {
        job_id: Felt,
        client: Felt,
        amount: u128,
    },
    /// A verified proof of the job's statement paid the worker (no vote).
    ProofAccepted {
        job_id: Felt,
        worker: Felt,
        statement: Felt,
        proof_hash: Felt,
    },
}

/// A worker's standing, for `bitsage-host info`.
#[derive(Clone, Debug, Serialize)]
pub struct WorkerInfo {
    pub address: Felt,
    pub balance: String,
    pub stake: String,
    pub tier: &'static str,
    pub unbonding: String,
    pub unbonding_until: u64,
    pub public_key: Felt,
    pub is_validator: bool,
    /// Paid to this worker by the escrow, all time.
    pub earnings: String,
    /// Results submitted and awaiting a verdict.
    pub pending_jobs: Vec<Felt>,
    pub chain_time: u64,
}

fn u256(v: u128) -> [Felt; 2] {
    [Felt::from(v), Felt::ZERO]
}

fn felt_u128(f: &Felt) -> Result<u128, ChainError> {
    u128::try_from(*f).map_err(|_| ChainError::BadResponse(format!("{f:#x} does not fit 128 bits")))
}

fn felt_u64(f: &Felt) -> Result<u64, ChainError> {
    u64::try_from(*f).map_err(|_| ChainError::BadResponse(format!("{f:#x} does not fit 64 bits")))
}

/// Reads a u256 (low, high) at `at`; amounts above 2^128 are refused.
fn read_u256(v: &[Felt], at: usize) -> Result<u128, ChainError> {
    let (Some(low), Some(high)) = (v.get(at), v.get(at + 1)) else {
        return Err(ChainError::BadResponse(format!("{} felts where a u256 was expected at {at}", v.len())));
    };
    if *high != Felt::ZERO {
        return Err(ChainError::BadResponse("an amount above 2^128".into()));
    }
    felt_u128(low)
}

fn at(v: &[Felt], i: usize) -> Result<Felt, ChainError> {
    v.get(i).copied().ok_or_else(|| ChainError::BadResponse(format!("{} felts, wanted index {i}", v.len())))
}

fn selector(name: &str) -> Felt {
    // Every name passed here is a valid ASCII identifier from our ABI.
    get_selector_from_name(name).unwrap_or(Felt::ZERO)
}

/// The contract's message out of an RPC error's text. Cairo's short-string
/// panics appear as `0x... ('message')`; the wrapper failures the account
/// and the syscalls add are skipped.
pub fn revert_reason(text: &str) -> Option<String> {
    let wanted = |msg: &str| !msg.is_empty() && msg != "ENTRYPOINT_FAILED" && !msg.starts_with("argent/");
    let mut rest = text;
    while let Some(i) = rest.find("('") {
        let after = &rest[i + 2..];
        let Some(end) = after.find("')") else { break };
        let msg = &after[..end];
        if wanted(msg) {
            return Some(msg.to_string());
        }
        rest = &after[end..];
    }
    // A call's panic data comes as bare hex felts: the first that is a
    // readable short string.
    text.split(|c: char| !(c.is_ascii_alphanumeric()))
        .filter_map(|w| w.strip_prefix("0x"))
        .filter(|h| h.len() >= 8 && h.len() <= 62)
        .filter_map(|h| hex::decode(if h.len() % 2 == 1 { format!("0{h}") } else { h.to_string() }).ok())
        .filter_map(|b| String::from_utf8(b).ok())
        .find(|m| m.chars().all(|c| c.is_ascii_graphic() || c == ' ') && wanted(m))
}

fn classify(url: &str, e: ProviderError) -> ChainError {
    match e {
        ProviderError::StarknetError(StarknetError::TransactionExecutionError(data)) => {
            let text = format!("{data:?}");
            ChainError::Reverted { reason: revert_reason(&text).unwrap_or(text) }
        }
        ProviderError::StarknetError(StarknetError::InsufficientAccountBalance) => {
            ChainError::Rpc("the account cannot pay the transaction fee".into())
        }
        ProviderError::StarknetError(other) => {
            let text = other.to_string();
            match revert_reason(&text) {
                Some(reason) => ChainError::Reverted { reason },
                None => ChainError::Rpc(text),
            }
        }
        other => {
            let text = other.to_string();
            if text.contains("error sending request") || text.contains("onnection refused") {
                ChainError::Unreachable { url: url.into(), why: text }
            } else {
                match revert_reason(&text) {
                    Some(reason) => ChainError::Reverted { reason },
                    None => ChainError::Rpc(text),
                }
            }
        }
    }
}

/// A read-only connection to a chain with our contracts.
#[derive(Clone)]
pub struct Chain {
    rpc: Arc<Rpc>,
    url: String,
    pub deployment: Option<Deployment>,
}

impl Chain {
    pub fn new(url: &str, deployment: Option<Deployment>) -> Result<Chain, ChainError> {
        let parsed = Url::parse(url).map_err(|e| ChainError::Config(format!("{url:?} is not a URL: {e}")))?;
        Ok(Chain { rpc: Arc::new(JsonRpcClient::new(HttpTransport::new(parsed))), url: url.into(), deployment })
    }

    pub fn rpc(&self) -> &Arc<Rpc> {
        &self.rpc
    }

    fn err(&self, e: ProviderError) -> ChainError {
        classify(&self.url, e)
    }

    pub fn deployment(&self) -> Result<&Deployment, ChainError> {
        self.deployment.as_ref().ok_or_else(|| ChainError::Config("no deployment file given (--deployment)".into()))
    }

    pub async fn chain_id(&self) -> Result<Felt, ChainError> {
        self.rpc.chain_id().await.map_err(|e| self.err(e))
    }

    pub async fn block_number(&self) -> Result<u64, ChainError> {
        self.rpc.block_number().await.map_err(|e| self.err(e))
    }

    /// The timestamp the next transaction will see.
    pub async fn now(&self) -> Result<u64, ChainError> {
        let block =
            self.rpc.get_block_with_tx_hashes(BlockId::Tag(BlockTag::PreConfirmed)).await.map_err(|e| self.err(e))?;
        Ok(match block {
            MaybePreConfirmedBlockWithTxHashes::Block(b) => b.timestamp,
            MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(b) => b.timestamp,
        })
    }

    pub async fn call(&self, to: Felt, name: &str, calldata: Vec<Felt>) -> Result<Vec<Felt>, ChainError> {
        let req = FunctionCall { contract_address: to, entry_point_selector: selector(name), calldata };
        self.rpc.call(req, BlockId::Tag(BlockTag::PreConfirmed)).await.map_err(|e| self.err(e))
    }

    /// Runs `split`'s verification as calls to the verifier's views
    /// (`check_begin` .. `check_finish`): the same checks as
    /// [`Wallet::verify_on_chain`], with no transaction and no account.
    /// Returns each step's name and calldata size; a refused step is
    /// `ChainError::Reverted` with the contract's reason (`verify failed:
    /// NN`, [`crate::onchain::verdict_of_reason`]).
    pub async fn check_on_chain(
        &self,
        verifier: Felt,
        split: &crate::onchain::Split,
        mut progress: impl FnMut(&str, usize),
    ) -> Result<Vec<(String, usize)>, ChainError> {
        let mut done = Vec::new();
        let transcript = split.transcript().to_vec();
        let n = transcript.len();
        let mut session = self.call(verifier, "check_begin", transcript).await?;
        progress("begin", n);
        done.push(("begin".to_string(), n));
        for step in split.later_steps() {
            let mut c = session.clone();
            c.extend(step.tail);
            let n = c.len();
            session = self.call(verifier, &format!("check_{}", step.entry), c).await?;
            progress(&step.name, n);
            done.push((step.name, n));
        }
        Ok(done)
    }

    /// Who verified a statement on chain (`onchain::statement_key`), and with
    /// which proof hash: zero for none.
    pub async fn verified_by(&self, statement: Felt) -> Result<(Felt, Felt), ChainError> {
        let d = self.deployment()?;
        let v = self.call(d.verifier, "verified_by", vec![statement]).await?;
        Ok((at(&v, 0)?, at(&v, 1)?))
    }

    /// What an included invoke transaction cost: its gas by kind and its fee.
    pub async fn tx_cost(&self, tx: Felt) -> Result<TxCost, ChainError> {
        let r = self.rpc.get_transaction_receipt(tx).await.map_err(|e| self.err(e))?;
        let TransactionReceipt::Invoke(r) = r.receipt else {
            return Err(ChainError::Rpc(format!("{tx:#x} is not an invoke transaction")));
        };
        let fee = r.actual_fee.amount.to_bytes_be();
        let fee = match fee[..16].iter().all(|&b| b == 0) {
            true => u128::from_be_bytes(fee[16..].try_into().unwrap_or([0; 16])),
            false => return Err(ChainError::Rpc(format!("{tx:#x}: a fee over 2^128"))),
        };
        let g = &r.execution_resources;
        Ok(TxCost { l1_gas: g.l1_gas, l1_data_gas: g.l1_data_gas, l2_gas: g.l2_gas, fee })
    }

    pub async fn balance_of(&self, token: Felt, who: Felt) -> Result<u128, ChainError> {
        read_u256(&self.call(token, "balance_of", vec![who]).await?, 0)
    }

    pub async fn stake_of(&self, worker: Felt) -> Result<u128, ChainError> {
        let d = self.deployment()?;
        read_u256(&self.call(d.staking, "stake_of", vec![worker]).await?, 0)
    }

    pub async fn unbonding_of(&self, worker: Felt) -> Result<(u128, u64), ChainError> {
        let d = self.deployment()?;
        let v = self.call(d.staking, "unbonding_of", vec![worker]).await?;
        Ok((read_u256(&v, 0)?, felt_u64(&at(&v, 2)?)?))
    }

    pub async fn tier_of(&self, worker: Felt) -> Result<&'static str, ChainError> {
        let d = self.deployment()?;
        let v = self.call(d.staking, "tier_of", vec![worker]).await?;
        let t = felt_u64(&at(&v, 0)?)? as usize;
        TIERS.get(t).copied().ok_or_else(|| ChainError::BadResponse(format!("tier {t}")))
    }

    pub async fn public_key_of(&self, worker: Felt) -> Result<Felt, ChainError> {
        let d = self.deployment()?;
        at(&self.call(d.staking, "public_key_of", vec![worker]).await?, 0)
    }

    pub async fn is_validator(&self, who: Felt) -> Result<bool, ChainError> {
        let d = self.deployment()?;
        Ok(at(&self.call(d.registry, "is_validator", vec![who]).await?, 0)? != Felt::ZERO)
    }

    pub async fn validator_count(&self) -> Result<u32, ChainError> {
        let d = self.deployment()?;
        Ok(felt_u64(&at(&self.call(d.registry, "validator_count", vec![]).await?, 0)?)? as u32)
    }

    pub async fn job(&self, job_id: Felt) -> Result<EscrowJob, ChainError> {
        let d = self.deployment()?;
        let v = self.call(d.escrow, "job", vec![job_id]).await?;
        Ok(EscrowJob {
            client: at(&v, 0)?,
            worker: at(&v, 1)?,
            amount: read_u256(&v, 2)?,
            deadline: felt_u64(&at(&v, 4)?)?,
            state: JobState::from_code(felt_u64(&at(&v, 5)?)?)?,
            result_hash: at(&v, 6)?,
            valid_votes: felt_u64(&at(&v, 7)?)? as u32,
            invalid_votes: felt_u64(&at(&v, 8)?)? as u32,
        })
    }

    /// The spec the escrow stores for `job_id` (all zero for no deposit), as
    /// [`JobSpec::felts`] orders it.
    pub async fn job_spec(&self, job_id: Felt) -> Result<[Felt; 8], ChainError> {
        let d = self.deployment()?;
        let v = self.call(d.escrow, "spec", vec![job_id]).await?;
        let mut out = [Felt::ZERO; 8];
        for (i, f) in out.iter_mut().enumerate() {
            *f = at(&v, i)?;
        }
        Ok(out)
    }

    /// The escrow's events from block `from` on (all pages), in order.
    pub async fn escrow_events(&self, from: u64) -> Result<Vec<EscrowEvent>, ChainError> {
        self.escrow_events_between(from, None).await
    }

    /// The escrow's events in blocks `from..=to` (`to` unset: the latest).
    pub async fn escrow_events_between(&self, from: u64, to: Option<u64>) -> Result<Vec<EscrowEvent>, ChainError> {
        let d = self.deployment()?;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let filter = EventFilter {
                from_block: Some(BlockId::Number(from)),
                to_block: Some(to.map_or(BlockId::Tag(BlockTag::Latest), BlockId::Number)),
                address: Some(starknet_rust::core::types::AddressFilter::Single(d.escrow)),
                keys: None,
            };
            let page = self.rpc.get_events(filter, token, 500).await.map_err(|e| self.err(e))?;
            for e in &page.events {
                if let Some(ev) = decode_escrow_event(&e.keys, &e.data)? {
                    out.push(ev);
                }
            }
            match page.continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    /// A worker's stake, tier, unbonding balance, earnings and pending jobs.
    pub async fn worker_info(&self, worker: Felt) -> Result<WorkerInfo, ChainError> {
        let d = self.deployment()?.clone();
        let (unbonding, until) = self.unbonding_of(worker).await?;
        let mut earnings = 0u128;
        let mut pending = Vec::new();
        for ev in self.escrow_events(d.from_block).await? {
            match ev {
                EscrowEvent::ResultSubmitted { job_id, worker: w, .. } if w == worker => pending.push(job_id),
                EscrowEvent::Paid { job_id, worker: w, to_worker, .. } if w == worker => {
                    earnings += to_worker;
                    pending.retain(|j| *j != job_id);
                }
                EscrowEvent::Rejected { job_id, worker: w, .. } if w == worker => pending.retain(|j| *j != job_id),
                _ => {}
            }
        }
        Ok(WorkerInfo {
            address: worker,
            balance: fmt_amount(self.balance_of(d.token, worker).await?),
            stake: fmt_amount(self.stake_of(worker).await?),
            tier: self.tier_of(worker).await?,
            unbonding: fmt_amount(unbonding),
            unbonding_until: until,
            public_key: self.public_key_of(worker).await?,
            is_validator: self.is_validator(worker).await?,
            earnings: fmt_amount(earnings),
            pending_jobs: pending,
            chain_time: self.now().await?,
        })
    }
}

fn decode_escrow_event(keys: &[Felt], data: &[Felt]) -> Result<Option<EscrowEvent>, ChainError> {
    let (Some(name), Some(job_id)) = (keys.first(), keys.get(1).copied()) else {
        return Ok(None);
    };
    let ev = if *name == selector("Deposited") {
        EscrowEvent::Deposited {
            job_id,
            client: at(data, 0)?,
            amount: read_u256(data, 1)?,
            deadline: felt_u64(&at(data, 3)?)?,
        }
    } else if *name == selector("ResultSubmitted") {
        EscrowEvent::ResultSubmitted { job_id, worker: at(data, 0)?, result_hash: at(data, 1)? }
    } else if *name == selector("Voted") {
        EscrowEvent::Voted { job_id, validator: at(data, 0)?, valid: at(data, 1)? != Felt::ZERO }
    } else if *name == selector("Paid") {
        EscrowEvent::Paid {
            job_id,
            worker: at(data, 0)?,
            to_worker: read_u256(data, 1)?,
            to_treasury: read_u256(data, 3)?,
            to_stakers: read_u256(data, 5)?,
        }
    } else if *name == selector("Rejected") {
        EscrowEvent::Rejected { job_id, worker: at(data, 0)?, slashed: read_u256(data, 1)? }
    } else if *name == selector("Refunded") {
        EscrowEvent::Refunded { job_id, client: at(data, 0)?, amount: read_u256(data, 1)? }
    } else if *name == selector("ProofAccepted") {
        EscrowEvent::ProofAccepted { job_id, worker: at(data, 0)?, statement: at(data, 1)?, proof_hash: at(data, 2)? }
    } else {
        return Ok(None);
    };
    Ok(Some(ev))
}

/// A chain connection that can sign: an account whose signer is the
/// keystore's key.
pub struct Wallet {
    pub chain: Chain,
    account: Signer,
}

/// How long a write waits for its receipt.
const INCLUSION_TIMEOUT: Duration = Duration::from_secs(120);

impl Wallet {
    pub async fn connect(chain: Chain, address: Felt, key: &WorkerKey) -> Result<Wallet, ChainError> {
        let chain_id = chain.chain_id().await?;
        if let Some(d) = &chain.deployment {
            if d.chain_id != chain_id {
                return Err(ChainError::Config(format!(
                    "the deployment file is for chain {:#x}, the node serves {chain_id:#x}",
                    d.chain_id
                )));
            }
        }
        let signer = LocalWallet::from(SigningKey::from_secret_scalar(key.secret_scalar()));
        let mut account = SingleOwnerAccount::new(chain.rpc.clone(), signer, address, chain_id, ExecutionEncoding::New);
        account.set_block_id(BlockId::Tag(BlockTag::PreConfirmed));
        Ok(Wallet { chain, account })
    }

    pub fn address(&self) -> Felt {
        self.account.address()
    }

    /// Waits until `tx` is in a block; a reverted one is an error.
    pub async fn wait(&self, tx: Felt) -> Result<(), ChainError> {
        let start = std::time::Instant::now();
        loop {
            match self.chain.rpc.get_transaction_receipt(tx).await {
                Ok(r) => {
                    return match r.receipt.execution_result() {
                        ExecutionResult::Succeeded => Ok(()),
                        ExecutionResult::Reverted { reason } => Err(ChainError::Reverted {
                            reason: revert_reason(reason).unwrap_or_else(|| reason.clone()),
                        }),
                    }
                }
                Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound)) => {}
                Err(e) => return Err(self.chain.err(e)),
            }
            if start.elapsed() > INCLUSION_TIMEOUT {
                return Err(ChainError::Timeout { tx, secs: INCLUSION_TIMEOUT.as_secs() });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends `calls` as one transaction and waits for it.
    pub async fn invoke(&self, calls: Vec<Call>) -> Result<Felt, ChainError> {
        let sent = self.account.execute_v3(calls).send().await.map_err(|e| self.account_err(e))?;
        self.wait(sent.transaction_hash).await?;
        Ok(sent.transaction_hash)
    }

    fn account_err<S: std::fmt::Display>(&self, e: starknet_rust::accounts::AccountError<S>) -> ChainError {
        match e {
            starknet_rust::accounts::AccountError::Provider(p) => self.chain.err(p),
            other => ChainError::Rpc(other.to_string()),
        }
    }

    /// A call of `name` on `to`, for [`Wallet::invoke`].
    pub fn call(to: Felt, name: &str, calldata: Vec<Felt>) -> Call {
        Call { to, selector: selector(name), calldata }
    }

    /// Declares the class in `dir` (`<name>.contract_class.json` and
    /// `<name>.compiled_contract_class.json`, as `scripts/build-contracts.sh`
    /// writes them); an already declared class is fine.
    pub async fn declare(&self, dir: &Path, name: &str) -> Result<Felt, ChainError> {
        let read = |file: String| -> Result<String, ChainError> {
            let path = dir.join(&file);
            std::fs::read_to_string(&path).map_err(|e| {
                ChainError::Config(format!(
                    "{}: {e} (build the contracts with ./scripts/build-contracts.sh)",
                    path.display()
                ))
            })
        };
        let sierra: SierraClass = serde_json::from_str(&read(format!("{name}.contract_class.json"))?)
            .map_err(|e| ChainError::Config(format!("{name}: not a Sierra class: {e}")))?;
        let casm: CompiledClass = serde_json::from_str(&read(format!("{name}.compiled_contract_class.json"))?)
            .map_err(|e| ChainError::Config(format!("{name}: not a CASM class: {e}")))?;
        let flat = sierra.flatten().map_err(|e| ChainError::Config(format!("{name}: {e}")))?;
        let class_hash = flat.class_hash();
        let version =
            self.chain.rpc.starknet_version(BlockId::Tag(BlockTag::Latest)).await.map_err(|e| self.chain.err(e))?;
        let hash_fn = CompiledClass::hash_function_from_starknet_version(&version)
            .ok_or_else(|| ChainError::BadResponse(format!("unknown Starknet version {version}")))?;
        let compiled_hash = casm
            .class_hash_with_hash_function(hash_fn)
            .map_err(|e| ChainError::Config(format!("{name}: compiled class hash: {e}")))?;
        match self.account.declare_v3(Arc::new(flat), compiled_hash).send().await {
            Ok(sent) => self.wait(sent.transaction_hash).await?,
            Err(starknet_rust::accounts::AccountError::Provider(ProviderError::StarknetError(
                StarknetError::ClassAlreadyDeclared,
            ))) => {}
            Err(e) => return Err(self.account_err(e)),
        }
        Ok(class_hash)
    }

    /// Deploys `class_hash` through the universal deployer.
    pub async fn deploy(&self, class_hash: Felt, calldata: Vec<Felt>, salt: Felt) -> Result<Felt, ChainError> {
        let factory = ContractFactory::new_with_udc(class_hash, &self.account, UdcSelector::New);
        let deploy = factory.deploy_v3(calldata, salt, true);
        let address = deploy.deployed_address();
        let sent = deploy.send().await.map_err(|e| self.account_err(e))?;
        self.wait(sent.transaction_hash).await?;
        Ok(address)
    }

    /// Declares the on-chain verifier's classes (the AIR's generated
    /// evaluators, its step classes) and deploys `BitsageVerifier`.
    pub async fn deploy_verifier(&self, contracts: &Path, salt: Felt) -> Result<Felt, ChainError> {
        let mut args = vec![Felt::from(4u64)];
        for name in ["AirCpu", "AirRom", "AirMemory", "AirRange"] {
            args.push(self.declare(contracts, name).await?);
        }
        // The hash component's evaluator is split into part classes, as many
        // as were built.
        let mut parts = Vec::new();
        while contracts.join(format!("AirHashPart{}.contract_class.json", parts.len())).exists() {
            let name = format!("AirHashPart{}", parts.len());
            parts.push(self.declare(contracts, &name).await?);
        }
        args.push(Felt::from(parts.len() as u64));
        args.extend(parts);
        args.push(self.declare(contracts, "VerifierTranscript").await?);
        args.push(self.declare(contracts, "VerifierSteps").await?);
        let class = self.declare(contracts, "BitsageVerifier").await?;
        self.deploy(class, args, salt).await
    }

    /// Verifies a proof on chain, split over transactions (`begin`, the
    /// `evaluate` steps, each `open`, `finish`): each step runs first as a
    /// call, which returns the session state the next step carries, then as
    /// a transaction. A refused step is [`ChainError::Reverted`] with the
    /// verifier's reason (`verify failed: NN`, as `verifier::verdict`
    /// numbers the Rust verifier's error kinds). `progress` sees each step
    /// once it is included.
    pub async fn verify_on_chain(
        &self,
        verifier: Felt,
        split: &crate::onchain::Split,
        mut progress: impl FnMut(&StepCost),
    ) -> Result<Vec<StepCost>, ChainError> {
        let mut steps = Vec::new();
        let mut run = async |name: String, entry: &str, calldata: Vec<Felt>| -> Result<Vec<Felt>, ChainError> {
            let out = self.chain.call(verifier, entry, calldata.clone()).await?;
            let n = calldata.len();
            let tx = self.invoke(vec![Self::call(verifier, entry, calldata)]).await?;
            let cost = self.chain.tx_cost(tx).await?;
            let step = StepCost { step: name, tx, calldata: n, l2_gas: cost.l2_gas, fee: cost.fee };
            progress(&step);
            steps.push(step);
            Ok(out)
        };
        let out = run("begin".into(), "begin", split.begin.clone()).await?;
        let (proof_hash, mut session) = match out.split_first() {
            Some((h, rest)) => (*h, rest.to_vec()),
            None => return Err(ChainError::BadResponse("begin returned nothing".into())),
        };
        for step in split.later_steps() {
            let mut c = vec![proof_hash];
            c.extend_from_slice(&session);
            c.extend(step.tail);
            session = run(step.name, step.entry, c).await?;
        }
        Ok(steps)
    }

    /// Claims the payment for `job_id` with a proof this account verified on
    /// chain: the escrow finds the job's statement with this output
    /// (`words_digest` of the output words) recorded as verified by it.
    pub async fn claim_verified(&self, job_id: Felt, output_digest: &[u8; 32]) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        let calldata = vec![
            job_id,
            Felt::from_bytes_be_slice(&output_digest[..16]),
            Felt::from_bytes_be_slice(&output_digest[16..]),
        ];
        self.invoke(vec![Self::call(d.escrow, "claim_verified", calldata)]).await
    }

    /// Declares and deploys staking, the validator registry, the proof
    /// verifier and the escrow over `token`, then makes the escrow the
    /// staking contract's slasher.
    pub async fn deploy_all(&self, contracts: &Path, params: DeployParams) -> Result<Deployment, ChainError> {
        let staking_class = self.declare(contracts, "Staking").await?;
        let registry_class = self.declare(contracts, "ValidatorRegistry").await?;
        let escrow_class = self.declare(contracts, "JobEscrow").await?;
        let salt = Felt::from(params.salt);
        let staking = self
            .deploy(staking_class, vec![params.token, self.address(), Felt::from(params.unbonding_secs)], salt)
            .await?;
        let mut calldata = vec![staking];
        calldata.extend(u256(params.min_validator_stake));
        let registry = self.deploy(registry_class, calldata, salt).await?;
        let verifier = self.deploy_verifier(contracts, salt).await?;
        let mut calldata = vec![params.token, staking, registry, params.treasury, params.stakers_pool];
        calldata.extend(u256(params.slash_amount));
        calldata.push(verifier);
        let escrow = self.deploy(escrow_class, calldata, salt).await?;
        self.invoke(vec![Self::call(staking, "set_slasher", vec![escrow])]).await?;
        Ok(Deployment {
            chain_id: self.account.chain_id(),
            token: params.token,
            staking,
            registry,
            escrow,
            verifier,
            treasury: params.treasury,
            stakers_pool: params.stakers_pool,
            unbonding_secs: params.unbonding_secs,
            min_validator_stake: params.min_validator_stake.to_string(),
            slash_amount: params.slash_amount.to_string(),
            from_block: self.chain.block_number().await?,
        })
    }

    async fn require_balance(&self, need: u128) -> Result<(), ChainError> {
        let d = self.chain.deployment()?;
        let have = self.chain.balance_of(d.token, self.address()).await?;
        if have < need {
            return Err(ChainError::InsufficientBalance { have, need });
        }
        Ok(())
    }

    fn approve(&self, spender: Felt, amount: u128) -> Result<Call, ChainError> {
        let d = self.chain.deployment()?;
        let mut calldata = vec![spender];
        calldata.extend(u256(amount));
        Ok(Self::call(d.token, "approve", calldata))
    }

    /// Approves and stakes `amount` in one transaction.
    pub async fn stake(&self, amount: u128) -> Result<Felt, ChainError> {
        if amount == 0 {
            return Err(ChainError::Config("the amount must be above zero".into()));
        }
        self.require_balance(amount).await?;
        let d = self.chain.deployment()?;
        let calls = vec![self.approve(d.staking, amount)?, Self::call(d.staking, "stake", u256(amount).to_vec())];
        self.invoke(calls).await
    }

    /// Moves `amount` of the stake into the unbonding period.
    pub async fn unstake(&self, amount: u128) -> Result<Felt, ChainError> {
        if amount == 0 {
            return Err(ChainError::Config("the amount must be above zero".into()));
        }
        let have = self.chain.stake_of(self.address()).await?;
        if have < amount {
            return Err(ChainError::InsufficientStake { have, need: amount });
        }
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.staking, "unstake", u256(amount).to_vec())]).await
    }

    /// Takes back what finished unbonding; returns the amount.
    pub async fn claim(&self) -> Result<u128, ChainError> {
        let (amount, until) = self.chain.unbonding_of(self.address()).await?;
        if amount == 0 {
            return Err(ChainError::NothingUnbonding);
        }
        let now = self.chain.now().await?;
        if now < until {
            return Err(ChainError::StillUnbonding { amount, until, now });
        }
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.staking, "claim", vec![])]).await?;
        Ok(amount)
    }

    /// Records the attestation key the escrow checks results against.
    pub async fn set_public_key(&self, key: Felt) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.staking, "set_public_key", vec![key])]).await
    }

    pub async fn register_validator(&self) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.registry, "register", vec![])]).await
    }

    /// Approves and deposits `amount` for `job_id`, refundable after `deadline`.
    /// Escrows `amount` for the job `spec` describes, under its job id
    /// (the contract checks the id is the spec's hash and stores the spec).
    pub async fn deposit(&self, spec: &JobSpec, amount: u128, deadline: u64) -> Result<Felt, ChainError> {
        let felts = spec.felts().map_err(|e| ChainError::Config(e.to_string()))?;
        let job_id = spec.job_id().map_err(|e| ChainError::Config(e.to_string()))?;
        self.deposit_raw(job_id, &felts, amount, deadline).await
    }

    /// [`Self::deposit`] with the id and spec felts as given (tests use it to
    /// send what the CLI never would).
    pub async fn deposit_raw(
        &self,
        job_id: Felt,
        spec: &[Felt],
        amount: u128,
        deadline: u64,
    ) -> Result<Felt, ChainError> {
        self.require_balance(amount).await?;
        let d = self.chain.deployment()?;
        let mut calldata = vec![job_id];
        calldata.extend_from_slice(spec);
        calldata.extend(u256(amount));
        calldata.push(Felt::from(deadline));
        let calls = vec![self.approve(d.escrow, amount)?, Self::call(d.escrow, "deposit", calldata)];
        self.invoke(calls).await
    }

    pub async fn refund(&self, job_id: Felt) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.escrow, "refund", vec![job_id])]).await
    }

    /// Submits an attested result: the digests, and the signature (r, s).
    pub async fn submit_result(&self, what: &Attested, r: Felt, s: Felt) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        let mut calldata = vec![what.job_id];
        for digest in what.digests() {
            calldata.push(Felt::from_bytes_be_slice(&digest[..16]));
            calldata.push(Felt::from_bytes_be_slice(&digest[16..]));
        }
        calldata.extend([r, s]);
        self.invoke(vec![Self::call(d.escrow, "submit_result", calldata)]).await
    }

    pub async fn vote(&self, job_id: Felt, valid: bool) -> Result<Felt, ChainError> {
        let d = self.chain.deployment()?;
        self.invoke(vec![Self::call(d.escrow, "vote", vec![job_id, Felt::from(valid as u8)])]).await
    }

    /// An ERC20 transfer from this account.
    pub async fn transfer(&self, token: Felt, to: Felt, amount: u128) -> Result<Felt, ChainError> {
        let mut calldata = vec![to];
        calldata.extend(u256(amount));
        self.invoke(vec![Self::call(token, "transfer", calldata)]).await
    }
}

/// One transaction of an on-chain verification.
#[derive(Clone, Debug, Serialize)]
pub struct StepCost {
    pub step: String,
    pub tx: Felt,
    /// Felts of calldata the step sent.
    pub calldata: usize,
    pub l2_gas: u64,
    /// In fri (10^-18 STRK).
    pub fee: u128,
}

/// What `deploy_all` needs besides the compiled contracts.
#[derive(Clone, Debug)]
pub struct DeployParams {
    pub token: Felt,
    pub treasury: Felt,
    pub stakers_pool: Felt,
    pub unbonding_secs: u64,
    pub min_validator_stake: u128,
    pub slash_amount: u128,
    pub salt: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_and_format_in_tokens() {
        assert_eq!(parse_amount("1000").ok(), Some(1000 * UNIT));
        assert_eq!(parse_amount("0.25").ok(), Some(UNIT / 4));
        assert_eq!(parse_amount("2.000000000000000001").ok(), Some(2 * UNIT + 1));
        for bad in ["", ".", "-1", "1e3", "1.0000000000000000001", "abc", "340282366920938463464"] {
            assert!(parse_amount(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(fmt_amount(1000 * UNIT), "1000");
        assert_eq!(fmt_amount(UNIT / 4 + 3 * UNIT), "3.25");
    }

    #[test]
    fn revert_reasons_are_the_contracts_messages() {
        let text = "TransactionExecutionErrorData { execution_error: Nested { error: Message(\"0x454e545259504f494e545f4641494c4544 ('ENTRYPOINT_FAILED')\\n0x7374696c6c20756e626f6e64696e67 ('still unbonding')\") } }";
        assert_eq!(revert_reason(text).as_deref(), Some("still unbonding"));
        assert_eq!(revert_reason("no message here"), None);
        // A call's panic data: hex felts only.
        let call =
            r#"error: Message("[\"0x766572696679206661696c65643a203033\",\"0x454e545259504f494e545f4641494c4544\"]")"#;
        assert_eq!(revert_reason(call).as_deref(), Some("verify failed: 03"));
        // Addresses and hashes are not messages.
        assert_eq!(
            revert_reason("contract_address: 0x7b9d79346b6efc80bab7675538e57237a7bef8030e2ecca9c9c2018ea2c01a9"),
            None
        );
    }
}
