//! `serve`, `worker`, `apikey`, `status`, `logs` and `submit`: the node.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use bitsage_node::auth::Role;
use bitsage_node::NodeConfig;
use serde_json::{json, Value};

use crate::args::{DataDir, LimitArgs};
use crate::exit::Exit;
use crate::{fail, runtime, BackendArg, Failure, Security};

/// Node settings. Each flag overrides its `BITSAGE_*` variable, which
/// overrides `bitsage.toml`, which overrides the defaults.
#[derive(clap::Args)]
pub struct NodeArgs {
    /// The configuration file (default: `<data dir>/bitsage.toml`).
    #[arg(long, env = "BITSAGE_CONFIG")]
    config: Option<PathBuf>,
    /// PostgreSQL URL for a cluster (default: SQLite under the data dir).
    #[arg(long = "db", env = "BITSAGE_DATABASE_URL")]
    database_url: Option<String>,
    /// Worker tasks in this process (`serve` with 0 runs the API only).
    #[arg(long, env = "BITSAGE_WORKERS")]
    workers: Option<usize>,
    /// Prover devices: `cpu`, `cuda` (every GPU) or `auto`.
    #[arg(long, value_enum, env = "BITSAGE_BACKEND")]
    backend: Option<BackendArg>,
    /// Job lease in seconds; a dead worker's job is requeued after it.
    #[arg(long, env = "BITSAGE_LEASE_SECS")]
    lease_secs: Option<u64>,
    /// Attempts per job.
    #[arg(long, env = "BITSAGE_MAX_ATTEMPTS")]
    max_attempts: Option<i64>,
    /// Default proof security in bits.
    #[arg(long, value_enum, env = "BITSAGE_SECURITY")]
    security: Option<Security>,
    #[command(flatten)]
    limits: LimitArgs,
    /// The worker's account: receipts are attested with the keystore's key.
    #[arg(long, env = "BITSAGE_ACCOUNT")]
    account: Option<String>,
    /// Starknet JSON-RPC endpoint: settle proved jobs with an open escrow.
    #[arg(long, env = "BITSAGE_RPC")]
    rpc: Option<String>,
    /// The deployment file (with --rpc).
    #[arg(long, env = "BITSAGE_DEPLOYMENT")]
    deployment: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

/// API settings of `serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "BITSAGE_LISTEN")]
    listen: Option<String>,
    /// Accept modules that are not on the approved list.
    #[arg(long, env = "BITSAGE_OPEN_MODE")]
    open_mode: bool,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, env = "BITSAGE_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Requests per minute per API key (429 beyond).
    #[arg(long, env = "BITSAGE_RATE_LIMIT")]
    rate_limit: Option<u32>,
    /// Requests a key may burst before the rate applies.
    #[arg(long, env = "BITSAGE_RATE_BURST")]
    rate_burst: Option<u32>,
    /// Jobs queued or running across the node (503 beyond).
    #[arg(long, env = "BITSAGE_MAX_QUEUE")]
    max_queue: Option<i64>,
    /// Jobs queued or running per API key (429 beyond).
    #[arg(long, env = "BITSAGE_MAX_ACTIVE_PER_KEY")]
    max_active_per_key: Option<i64>,
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl NodeArgs {
    fn config(&self) -> Result<NodeConfig, Failure> {
        let data_dir = self.data.path();
        let file = self.config.clone().unwrap_or_else(|| data_dir.join("bitsage.toml"));
        if self.config.is_some() && !file.exists() {
            return Err(Failure {
                code: Exit::Usage,
                err: anyhow::anyhow!("config file {} does not exist", file.display()),
            });
        }
        let mut c = NodeConfig::from_file(&file).map_err(|e| Failure { code: Exit::Usage, err: e.into() })?;
        // The data dir from a flag or BITSAGE_DATA_DIR wins; the file's is used otherwise.
        if self.data.data_dir.is_some() || c.data_dir == NodeConfig::default().data_dir {
            c.data_dir = data_dir;
        }
        set(&mut c.database_url, self.database_url.clone().map(Some));
        set(&mut c.workers, self.workers);
        set(&mut c.backend, self.backend.map(|b| b.name().to_string()));
        set(&mut c.lease_secs, self.lease_secs);
        set(&mut c.max_attempts, self.max_attempts);
        set(&mut c.security, self.security.map(|s| crate::security_level(s).bits()));
        set(&mut c.limits.fuel, self.limits.fuel);
        set(&mut c.limits.timeout_ms, self.limits.timeout_ms);
        set(&mut c.limits.memory_mib, self.limits.memory_mib);
        set(&mut c.limits.max_rows, self.limits.max_rows);
        set(&mut c.settlement.account, self.account.clone().map(Some));
        set(&mut c.settlement.rpc, self.rpc.clone().map(Some));
        set(&mut c.settlement.deployment, self.deployment.clone().map(Some));
        Ok(c)
    }
}

impl ServeArgs {
    fn config(&self) -> Result<NodeConfig, Failure> {
        let mut c = self.node.config()?;
        set(&mut c.listen, self.listen.clone());
        c.open_mode |= self.open_mode;
        set(&mut c.max_body_bytes, self.max_body_bytes);
        set(&mut c.rate_limit_per_minute, self.rate_limit);
        set(&mut c.rate_burst, self.rate_burst);
        set(&mut c.max_queue, self.max_queue);
        set(&mut c.max_active_per_key, self.max_active_per_key);
        c.validate().map_err(|e| Failure { code: Exit::Usage, err: e.into() })?;
        Ok(c)
    }
}

pub fn cmd_serve(as_json: bool, a: &ServeArgs) -> Result<(), Failure> {
    let config = a.config()?;
    let summary = json!({ "data_dir": config.data_dir, "store": if config.database_url.is_some() { "postgres" } else { "sqlite" },
        "workers": config.workers, "backend": config.backend, "open_mode": config.open_mode });
    runtime()?
        .block_on(bitsage_node::serve(config, |addr| {
            if as_json {
                println!("{}", json!({ "listening": format!("http://{addr}"), "config": summary }));
            } else {
                println!("listening on http://{addr}  (dashboard at /, API under /v1, metrics at /metrics)");
            }
        }))
        .map_err(fail(Exit::Node))
}

pub fn cmd_worker(a: &NodeArgs) -> Result<(), Failure> {
    let config = a.config()?;
    config.validate().map_err(|e| Failure { code: Exit::Usage, err: e.into() })?;
    runtime()?.block_on(bitsage_node::run_worker(config)).map_err(fail(Exit::Node))
}

#[derive(clap::Subcommand)]
pub enum ApikeyCmd {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// Who the key is for.
        #[arg(long)]
        name: String,
        /// `client` (submit, read own jobs) or `operator` (everything).
        #[arg(long, default_value = "client")]
        role: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name.
    Revoke { id_or_name: String },
}

pub fn cmd_apikey(as_json: bool, node: &NodeArgs, cmd: &ApikeyCmd) -> Result<(), Failure> {
    let config = node.config()?;
    runtime()?.block_on(async {
        let (store, _) = bitsage_node::open_store(&config).await.map_err(fail(Exit::Node))?;
        match cmd {
            ApikeyCmd::Create { name, role } => {
                let role = Role::parse(role).ok_or_else(|| Failure {
                    code: Exit::Usage,
                    err: anyhow::anyhow!("role `{role}` is not `client` or `operator`"),
                })?;
                let (id, key) =
                    bitsage_node::auth::create_key(&store, name, role).await.map_err(|e| fail(Exit::Node)(e.into()))?;
                if as_json {
                    println!("{}", json!({ "id": id, "name": name, "role": role, "key": key }));
                } else {
                    println!("{key}");
                    eprintln!("created {} key `{name}` ({id}); it is not shown again", role.as_str());
                }
            }
            ApikeyCmd::List => {
                let keys = store.keys().await.map_err(|e| fail(Exit::Node)(e.into()))?;
                if as_json {
                    println!("{}", json!(keys));
                } else {
                    for k in keys {
                        let state = if k.revoked_at.is_some() { "revoked" } else { "live" };
                        println!("{}  {:<8} {:<7} {}", k.id, k.role, state, k.name);
                    }
                }
            }
            ApikeyCmd::Revoke { id_or_name } => {
                let n = store.revoke_key(id_or_name).await.map_err(|e| fail(Exit::Node)(e.into()))?;
                if n == 0 {
                    return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("no live key `{id_or_name}`") });
                }
                println!("revoked {n} key(s)");
            }
        }
        Ok(())
    })
}

/// How a client reaches a node.
#[derive(clap::Args, Clone)]
pub struct Remote {
    /// The node's base URL.
    #[arg(long, env = "BITSAGE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key.
    #[arg(long, env = "BITSAGE_API_KEY", hide_env_values = true)]
    key: String,
    /// One agent for every request, so connections are kept and reused.
    #[arg(skip)]
    agent: std::sync::OnceLock<ureq::Agent>,
}

impl Remote {
    fn agent(&self) -> &ureq::Agent {
        self.agent.get_or_init(|| {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(120)))
                // Kept connections for every thread of `load`, not ureq's default of three per host.
                .max_idle_connections(256)
                .max_idle_connections_per_host(256)
                .build()
                .into()
        })
    }

    /// One request; a `429`/`503` with `Retry-After` is retried after the
    /// wait it names (a few times), as a client of a busy node should.
    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, ureq::Body), Failure> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let auth = format!("Bearer {}", self.key);
        let agent = self.agent();
        let mut tries = 0;
        loop {
            let resp = match (method, body) {
                ("POST", Some(b)) => agent.post(&url).header("Authorization", &auth).send_json(b),
                _ => agent.get(&url).header("Authorization", &auth).call(),
            };
            let resp = resp.with_context(|| format!("reaching {url}")).map_err(fail(Exit::Remote))?;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if let (429 | 503, Some(secs), true) = (status, retry_after, tries < 10) {
                tries += 1;
                std::thread::sleep(Duration::from_secs(secs.clamp(1, 60)));
                continue;
            }
            return Ok((status, resp.into_body()));
        }
    }

    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Failure> {
        let (status, mut resp) = self.send(method, path, body.as_ref())?;
        let text = resp
            .read_to_string()
            .with_context(|| format!("reading the answer to {path}"))
            .map_err(fail(Exit::Remote))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            let msg = v["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            return Err(Failure {
                code: Exit::Remote,
                err: anyhow::anyhow!("{}{path}: HTTP {status}: {msg}", self.url),
            });
        }
        Ok(v)
    }

    /// Follows job `id` until it ends, with the node's long poll (a node
    /// without it answers at once, so then polls pause): the job, or exit 1
    /// with the job's failure.
    pub(crate) fn wait_ended(&self, id: &str) -> Result<Value, Failure> {
        loop {
            let asked = std::time::Instant::now();
            let j = self.call("GET", &format!("/v1/jobs/{id}?wait_ms=30000"), None)?;
            match j["state"].as_str() {
                Some("queued" | "running" | "proving") => {
                    if asked.elapsed() < Duration::from_millis(20) {
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
                Some("failed") => {
                    return Err(Failure {
                        code: Exit::Rejected,
                        err: anyhow::anyhow!(
                            "job {id} failed: {}: {}",
                            j["error_kind"].as_str().unwrap_or("?"),
                            j["error"].as_str().unwrap_or("")
                        ),
                    })
                }
                _ => return Ok(j),
            }
        }
    }

    pub(crate) fn get_bytes(&self, path: &str) -> Result<Vec<u8>, Failure> {
        let (status, mut resp) = self.send("GET", path, None)?;
        if status != 200 {
            return Err(Failure { code: Exit::Remote, err: anyhow::anyhow!("{}{path}: HTTP {status}", self.url) });
        }
        resp.with_config().limit(512 << 20).read_to_vec().context("reading the receipt").map_err(fail(Exit::Remote))
    }
}

/// `status`: the node's state (with an API key) and the chain's settlement
/// state with this worker's standing (with a deployment file), or both.
#[derive(clap::Args)]
pub struct StatusArgs {
    /// The node's base URL.
    #[arg(long, env = "BITSAGE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An operator API key: report the node.
    #[arg(long, env = "BITSAGE_API_KEY", hide_env_values = true)]
    key: Option<String>,
    #[command(flatten)]
    chain: crate::chain::ChainArgs,
}

pub fn cmd_status(as_json: bool, a: &StatusArgs) -> Result<(), Failure> {
    let chain = a.chain.has_deployment();
    if a.key.is_none() && !chain {
        return Err(Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("nothing to report: give --key for a node, or a deployment file for the chain"),
        });
    }
    if let Some(key) = &a.key {
        node_status(as_json, &Remote { url: a.url.clone(), key: key.clone(), agent: Default::default() })?;
    }
    if chain {
        crate::chain::cmd_chain_status(as_json, &a.chain)?;
    }
    Ok(())
}

fn node_status(as_json: bool, r: &Remote) -> Result<(), Failure> {
    let v = r.call("GET", "/v1/status", None)?;
    if as_json {
        println!("{v}");
        return Ok(());
    }
    println!(
        "node      {} store, up {} s, version {}",
        v["store"].as_str().unwrap_or("?"),
        v["uptime_s"],
        v["version"]
    );
    println!("queue     {} job(s) queued or in progress", v["queue_depth"]);
    if let Some(jobs) = v["jobs"].as_object() {
        let line: Vec<String> = jobs.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("jobs      {}", line.join(", "));
    }
    for w in v["workers"].as_array().into_iter().flatten() {
        println!(
            "worker    {} on {} ({} jobs done)",
            w["id"].as_str().unwrap_or("?"),
            w["host"].as_str().unwrap_or("?"),
            w["jobs_done"]
        );
    }
    for d in v["devices"].as_array().into_iter().flatten() {
        println!(
            "device    {} {} proofs, {:.0}% busy{}",
            d["label"].as_str().unwrap_or("?"),
            d["proofs"],
            d["utilisation"].as_f64().unwrap_or(0.0) * 100.0,
            if d["busy"].as_bool() == Some(true) { " (proving now)" } else { "" }
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    remote: Remote,
    /// Only this job's events.
    #[arg(long)]
    job: Option<String>,
    /// Keep polling for new events.
    #[arg(long, short)]
    follow: bool,
}

pub fn cmd_logs(as_json: bool, a: &LogsArgs) -> Result<(), Failure> {
    let mut after = 0i64;
    loop {
        let job = a.job.as_deref().map(|j| format!("&job={j}")).unwrap_or_default();
        let v = a.remote.call("GET", &format!("/v1/events?after={after}&limit=1000{job}"), None)?;
        for e in v.as_array().into_iter().flatten() {
            after = after.max(e["id"].as_i64().unwrap_or(after));
            if as_json {
                println!("{e}");
            } else {
                println!(
                    "{:>6}  {}  {:<9} {}  {}{}",
                    e["id"],
                    e["at"],
                    e["event"].as_str().unwrap_or("?"),
                    e["job_id"].as_str().unwrap_or("?"),
                    e["worker_id"].as_str().map(|w| format!("[{w}] ")).unwrap_or_default(),
                    e["detail"].as_str().unwrap_or("")
                );
            }
        }
        if !a.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[derive(clap::Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    remote: Remote,
    /// The workload component to upload (or use --module-digest).
    workload: Option<PathBuf>,
    /// An approved module already on the node.
    #[arg(long, conflicts_with = "workload")]
    module_digest: Option<String>,
    /// The job input (JSON file).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Execute only, no proof.
    #[arg(long)]
    dev: bool,
    /// Wait for the job, then download and verify its receipt here.
    #[arg(long)]
    wait: Option<PathBuf>,
    /// The nonce in the job's spec hash, at most 31 bytes (random with --pay
    /// when not given).
    #[arg(long)]
    nonce: Option<String>,
    /// Proof security, in bits (the node's setting when not given).
    #[arg(long, value_enum)]
    security: Option<Security>,
    /// Escrow this many tokens for the job before submitting it (from
    /// --account, signed with the keystore). The job commits to the
    /// statement a local dev run of the workload gives; the node refuses to
    /// prove any other.
    #[arg(long, requires = "workload")]
    pay: Option<String>,
    /// With --pay: seconds until the deposit can be refunded without a result.
    #[arg(long, default_value = "3600")]
    deadline_secs: u64,
    /// Chain settings for --pay (the client's account pays).
    #[command(flatten)]
    chain: crate::chain::ChainArgs,
    /// Limits for the local dev run that derives a paid job's statement.
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn cmd_submit(as_json: bool, a: &SubmitArgs) -> Result<(), Failure> {
    let mut body = json!({ "mode": if a.dev { "dev" } else { "prove" } });
    match (&a.workload, &a.module_digest) {
        (Some(p), _) => {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display())).map_err(fail(Exit::Io))?;
            body["module"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        (None, Some(d)) => body["module_digest"] = json!(d),
        (None, None) => {
            return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("give a workload file or --module-digest") })
        }
    }
    // The input travels as its exact bytes, so the spec hash the client
    // computes is the one the node computes.
    let input = match &a.input {
        Some(p) => {
            let text = std::fs::read(p).with_context(|| format!("reading {}", p.display())).map_err(fail(Exit::Io))?;
            serde_json::from_slice::<serde_json::Value>(&text)
                .with_context(|| format!("{} is not JSON", p.display()))
                .map_err(fail(Exit::Usage))?;
            text
        }
        None => b"{}".to_vec(),
    };
    body["input_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&input));
    let nonce = match (&a.nonce, &a.pay) {
        (Some(n), _) => n.clone(),
        (None, Some(_)) => {
            let mut b = [0u8; 15];
            getrandom::fill(&mut b)
                .map_err(|e| Failure { code: Exit::Io, err: anyhow::anyhow!("no randomness: {e}") })?;
            hex::encode(b)
        }
        (None, None) => String::new(),
    };
    body["nonce"] = json!(nonce);
    if let Some(s) = a.security {
        body["security"] = json!(crate::security_level(s).bits());
    }
    if let Some(amount) = &a.pay {
        let Some(path) = &a.workload else {
            return Err(Failure {
                code: Exit::Usage,
                err: anyhow::anyhow!("--pay needs the workload file to derive the statement"),
            });
        };
        let module = crate::args::read(path)?;
        let security = a.security.unwrap_or(Security::B96);
        body["security"] = json!(crate::security_level(security).bits());
        let spec = crate::spec::dev_spec(&module, &input, security, &nonce, &a.limits)?;
        let job_id = crate::spec::job_id(&spec)?;
        crate::chain::deposit_for(&a.chain, &spec, amount, a.deadline_secs)?;
        body["spec_hash"] = json!(format!("{job_id:#x}"));
        if !as_json {
            eprintln!("escrowed {amount} for job {job_id:#x} (program {})", hex::encode(spec.program));
        }
    }
    let job = a.remote.call("POST", "/v1/jobs", Some(body))?;
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let Some(out) = &a.wait else {
        println!("{}", if as_json { job.to_string() } else { id });
        return Ok(());
    };
    let job = a.remote.wait_ended(&id)?;
    if job["receipt_digest"].is_string() {
        let bytes = a.remote.get_bytes(&format!("/v1/jobs/{id}/receipt"))?;
        let receipt =
            bitsage_prover::Receipt::from_bytes(&bytes).context("decoding the receipt").map_err(fail(Exit::Receipt))?;
        receipt.verify().context("the node's receipt does not verify").map_err(fail(Exit::Rejected))?;
        std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display())).map_err(fail(Exit::Io))?;
        if !as_json {
            println!("job {id} proved; receipt verified locally and written to {}", out.display());
        }
    }
    if as_json {
        println!("{job}");
    }
    Ok(())
}
