//! `bitsage-host`: run workloads in the sandbox, prove, verify and inspect
//! ObelyskVM receipts, and manage approved modules. Wiring only: the work is
//! in the vm, air, prover and sandbox crates.
//!
//! Exit codes: one meaning each, the [`exit::Exit`] enum (printed by
//! `--help`, listed in docs/cli.md).

mod args;
mod chain;
mod exit;
mod keys;
mod load;
mod node;
mod spec;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use bitsage_air::SecurityLevel;
use bitsage_air::Statement;
use bitsage_prover::{prove_receipt_proof, ProofStats, ProveError, ProveOptions, Receipt, ReceiptError, Stage};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use obelysk_vm::asm::{assemble, disassemble, parse_word};
use obelysk_vm::exec::{execute, ExecLimits, MAX_STEPS};
use obelysk_vm::M31;
use serde_json::json;

use crate::exit::Exit;

#[derive(Parser)]
#[command(
    name = "bitsage-host",
    version,
    about = "Verifiable compute on the ObelyskVM, proved with Stwo (Circle STARKs).",
    after_help = Exit::table()
)]
struct Cli {
    /// Machine-readable JSON on stdout instead of human output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which prover backend runs. Proofs are byte-identical across backends.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum BackendArg {
    /// The GPU when one is usable (and say so), otherwise the CPU.
    Auto,
    /// Stwo's SIMD backend on all cores.
    Cpu,
    /// The CUDA backend; an error when no GPU is usable.
    Cuda,
}

impl BackendArg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BackendArg::Auto => "auto",
            BackendArg::Cpu => "cpu",
            BackendArg::Cuda => "cuda",
        }
    }

    pub(crate) fn choice(self) -> bitsage_prover::BackendChoice {
        match self {
            BackendArg::Auto => bitsage_prover::BackendChoice::Auto,
            BackendArg::Cpu => bitsage_prover::BackendChoice::Cpu,
            BackendArg::Cuda => bitsage_prover::BackendChoice::Cuda,
        }
    }
}

/// The Merkle channel the proof is made over (`bitsage_prover::receipt::Channel`).
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ChannelArg {
    /// Blake2s: the fastest to prove and to verify off chain; the GPU proves it.
    Blake2s,
    /// Poseidon252: the proof Starknet's verifier contract checks
    /// (`settle --onchain`); proved on the CPU, slower.
    Poseidon252,
}

impl ChannelArg {
    pub(crate) fn channel(self) -> bitsage_prover::receipt::Channel {
        match self {
            ChannelArg::Blake2s => bitsage_prover::receipt::Channel::Blake2s,
            ChannelArg::Poseidon252 => bitsage_prover::receipt::Channel::Poseidon252,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Security {
    #[value(name = "96")]
    B96,
    #[value(name = "128")]
    B128,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Program in ObelyskVM assembly (.obk).
    program: PathBuf,
    /// Public input words, comma separated (decimal, 0x hex, or negative).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    input: Vec<String>,
    /// File with public input words (whitespace, comma, or a JSON array).
    #[arg(long, conflicts_with = "input")]
    input_file: Option<PathBuf>,
    /// Private advice words, comma separated. Not part of the statement.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    advice: Vec<String>,
    /// File with private advice words.
    #[arg(long, conflicts_with = "advice")]
    advice_file: Option<PathBuf>,
    /// Step budget (instructions executed, including `halt`).
    #[arg(long, env = "BITSAGE_MAX_STEPS", default_value_t = MAX_STEPS)]
    max_steps: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a workload component in the sandbox, prove its VM execution, verify, write a receipt.
    Run(workload::RunCmd),
    /// Scaffold a new workload crate from the custom template.
    New(workload::NewCmd),
    /// Manage the approved-module list.
    Modules {
        #[command(flatten)]
        data: workload::DataDir,
        #[command(subcommand)]
        cmd: workload::ModulesCmd,
    },
    /// Execute a program and prove the run; writes a receipt.
    Prove {
        #[command(flatten)]
        run: RunArgs,
        /// Where to write the receipt.
        #[arg(long, short, default_value = "receipt.bin")]
        out: PathBuf,
        /// Security level in bits (pow bits + log blowup × queries).
        #[arg(long, value_enum, env = "BITSAGE_SECURITY", default_value = "96")]
        security: Security,
        /// Prover backend.
        #[arg(long, value_enum, env = "BITSAGE_BACKEND", default_value = "cpu")]
        backend: BackendArg,
        /// The proof's Merkle channel: poseidon252 for a receipt the chain verifies.
        #[arg(long, value_enum, default_value = "blake2s")]
        channel: ChannelArg,
    },
    /// Verify a receipt: the proof against the statement it carries.
    Verify {
        receipt: PathBuf,
        /// Also require that the receipt's program is this one.
        #[arg(long)]
        program: Option<PathBuf>,
        /// Also run the on-chain verifier's checks, as calls (no transaction,
        /// no account): a poseidon252 receipt, and the deployment's verifier.
        #[arg(long)]
        onchain: bool,
        #[command(flatten)]
        chain: chain::ChainAt,
    },
    /// Show a receipt: program, input, output, trace shape, proof size, security.
    Inspect {
        receipt: PathBuf,
        /// Also print the program listing (disassembly).
        #[arg(long)]
        listing: bool,
    },
    /// Execute without proving (dev mode): output, steps and time.
    Exec {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run the node: HTTP job API, dashboard, metrics, and worker tasks.
    Serve(node::ServeArgs),
    /// Run workers only, on a shared PostgreSQL store (a cluster).
    Worker(node::NodeArgs),
    /// Manage the node's API keys.
    Apikey {
        #[command(flatten)]
        node: node::NodeArgs,
        #[command(subcommand)]
        cmd: node::ApikeyCmd,
    },
    /// Status: a node's jobs, queue, workers and devices (operator key), and the chain's
    /// settlement state with this account's standing (deployment file).
    Status(node::StatusArgs),
    /// A node's job events (operator key).
    Logs(node::LogsArgs),
    /// Submit a job to a node; with --wait, fetch and verify its receipt.
    Submit(node::SubmitArgs),
    /// Load-test a node: concurrent clients submit jobs and verify every receipt; jobs/s and latency.
    Load(load::LoadArgs),
    /// Create the worker's identity: a Stark-curve key in an encrypted keystore (starkli's format).
    Setup(keys::SetupArgs),
    /// Write a backup of the worker's keystore (still encrypted).
    Export(keys::ExportArgs),
    /// Deploy our contracts, or inspect the escrow.
    Chain {
        #[command(subcommand)]
        cmd: chain::ChainCmd,
    },
    /// Stake tokens (and register the keystore's key for attestations).
    Stake(chain::AmountArgs),
    /// Move stake into the unbonding period.
    Unstake(chain::AmountArgs),
    /// Take back stake whose unbonding period has passed.
    Claim(chain::ChainArgs),
    /// A worker's stake, tier, unbonding balance, earnings and pending results.
    Info(chain::WhoArgs),
    /// Escrow payment for a job (client).
    Deposit(chain::DepositArgs),
    /// Take back a deposit whose deadline passed without a result (client).
    Refund(chain::JobArgs),
    /// A job's spec hash: the id the escrow keys its payment by.
    SpecHash(spec::SpecArgs),
    /// Submit an attested receipt's result to the escrow (worker).
    Settle(chain::SettleArgs),
    /// Validators: register, and verify and vote on submitted results.
    Validator {
        #[command(subcommand)]
        cmd: chain::ValidatorCmd,
    },
}

/// The async runtime the network commands run on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(fail(Exit::Io))
}

/// An error with its exit code.
pub(crate) struct Failure {
    code: Exit,
    err: anyhow::Error,
}

pub(crate) fn fail(code: Exit) -> impl FnOnce(anyhow::Error) -> Failure {
    move |err| Failure { code, err }
}

/// A build for x86-64-v3 (`.cargo/config.toml`) on a CPU without those
/// instructions would die of SIGILL somewhere in the prover; say so first.
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
fn check_cpu() -> Result<(), ExitCode> {
    let missing: Vec<&str> = [
        ("avx2", std::arch::is_x86_feature_detected!("avx2")),
        ("fma", std::arch::is_x86_feature_detected!("fma")),
        ("bmi2", std::arch::is_x86_feature_detected!("bmi2")),
    ]
    .into_iter()
    .filter_map(|(name, has)| (!has).then_some(name))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!(
        "error: this bitsage-host was built for x86-64-v3 and this CPU lacks {}; rebuild it for this machine with \
         RUSTFLAGS=\"-C target-cpu=native\" (or RUSTFLAGS=\"\" for baseline x86-64)",
        missing.join(", ")
    );
    Err(ExitCode::from(Exit::Backend.code()))
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
fn check_cpu() -> Result<(), ExitCode> {
    Ok(())
}

fn main() -> ExitCode {
    if let Err(code) = check_cpu() {
        return code;
    }
    // `BITSAGE_LOG_SPANS=1` also logs each span's time when it closes
    // (with `BITSAGE_LOG=bitsage_cuda=debug`, say: where a GPU run's time goes).
    let spans = match std::env::var_os("BITSAGE_LOG_SPANS").is_some_and(|v| v == "1") {
        true => tracing_subscriber::fmt::format::FmtSpan::CLOSE,
        false => tracing_subscriber::fmt::format::FmtSpan::NONE,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("BITSAGE_LOG"))
        .with_span_events(spans)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // A one-shot command piped into `head` should end quietly, as Unix tools
    // do, not panic on a closed stdout. Long-running network commands keep
    // Rust's default (SIGPIPE ignored), so a dropped connection is an error
    // on that socket, never the death of the process.
    #[cfg(unix)]
    if !matches!(
        cli.cmd,
        Cmd::Serve(_) | Cmd::Worker(_) | Cmd::Validator { .. } | Cmd::Logs(_) | Cmd::Submit(_) | Cmd::Load(_)
    ) {
        // SAFETY: restoring the default disposition of one signal before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match dispatch(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if cli.json {
                let kind = f.err.downcast_ref::<bitsage_sandbox::SandboxError>().map(|e| e.kind());
                println!(
                    "{}",
                    json!({ "ok": false, "exit_code": f.code.code(), "kind": kind, "error": format!("{:#}", f.err) })
                );
            } else {
                eprintln!("error: {:#}", f.err);
            }
            ExitCode::from(f.code.code())
        }
    }
}

fn dispatch(cli: &Cli) -> Result<(), Failure> {
    match &cli.cmd {
        Cmd::Run(a) => workload::cmd_run(cli.json, a),
        Cmd::New(a) => workload::cmd_new(cli.json, a),
        Cmd::Modules { data, cmd } => workload::cmd_modules(cli.json, data, cmd),
        Cmd::Prove { run, out, security, backend, channel } => {
            cmd_prove(cli.json, run, out, *security, *backend, *channel)
        }
        Cmd::Verify { receipt, program, onchain, chain } => {
            cmd_verify(cli.json, receipt, program.as_deref(), onchain.then_some(chain))
        }
        Cmd::Inspect { receipt, listing } => cmd_inspect(cli.json, receipt, *listing),
        Cmd::Exec { run } => cmd_exec(cli.json, run),
        Cmd::Serve(a) => node::cmd_serve(cli.json, a),
        Cmd::Worker(a) => node::cmd_worker(a),
        Cmd::Apikey { node, cmd } => node::cmd_apikey(cli.json, node, cmd),
        Cmd::Status(r) => node::cmd_status(cli.json, r),
        Cmd::Logs(a) => node::cmd_logs(cli.json, a),
        Cmd::Submit(a) => node::cmd_submit(cli.json, a),
        Cmd::Load(a) => load::cmd_load(cli.json, a),
        Cmd::Setup(a) => keys::cmd_setup(cli.json, a),
        Cmd::Export(a) => keys::cmd_export(cli.json, a),
        Cmd::Chain { cmd } => chain::cmd_chain(cli.json, cmd),
        Cmd::Stake(a) => chain::cmd_stake(cli.json, a),
        Cmd::Unstake(a) => chain::cmd_unstake(cli.json, a),
        Cmd::Claim(a) => chain::cmd_claim(cli.json, a),
        Cmd::Info(a) => chain::cmd_info(cli.json, a),
        Cmd::Deposit(a) => chain::cmd_deposit(cli.json, a),
        Cmd::Refund(a) => chain::cmd_refund(cli.json, a),
        Cmd::SpecHash(a) => spec::cmd_spec_hash(cli.json, a),
        Cmd::Settle(a) => chain::cmd_settle(cli.json, a),
        Cmd::Validator { cmd } => chain::cmd_validator(cli.json, cmd),
    }
}

fn read_words(list: &[String], file: Option<&Path>, what: &str) -> Result<Vec<M31>, Failure> {
    let text;
    let items: Vec<&str> = match file {
        Some(f) => {
            text = std::fs::read_to_string(f)
                .with_context(|| format!("reading {what} file {}", f.display()))
                .map_err(fail(Exit::Io))?;
            text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                .filter(|s| !s.is_empty())
                .collect()
        }
        None => list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect(),
    };
    items
        .iter()
        .map(|s| {
            parse_word(s).ok_or_else(|| Failure {
                code: Exit::Usage,
                err: anyhow::anyhow!("{what} word `{s}` is not an integer in (-2^31+1, 2^31-1)"),
            })
        })
        .collect()
}

struct Loaded {
    program: obelysk_vm::Program,
    input: Vec<M31>,
    advice: Vec<M31>,
    limits: ExecLimits,
}

fn load(run: &RunArgs) -> Result<Loaded, Failure> {
    let src = std::fs::read_to_string(&run.program)
        .with_context(|| format!("reading program {}", run.program.display()))
        .map_err(fail(Exit::Io))?;
    let program = assemble(&src)
        .with_context(|| format!("assembling {}", run.program.display()))
        .map_err(fail(Exit::Assemble))?;
    let input = read_words(&run.input, run.input_file.as_deref(), "input")?;
    let advice = read_words(&run.advice, run.advice_file.as_deref(), "advice")?;
    let limits = ExecLimits { max_steps: run.max_steps, ..Default::default() };
    Ok(Loaded { program, input, advice, limits })
}

pub(crate) fn words_json(w: &[M31]) -> serde_json::Value {
    json!(w.iter().map(|x| x.0).collect::<Vec<_>>())
}

fn cmd_exec(as_json: bool, run: &RunArgs) -> Result<(), Failure> {
    let l = load(run)?;
    let t0 = Instant::now();
    let trace = execute(&l.program, &l.input, &l.advice, l.limits)
        .with_context(|| format!("executing {}", run.program.display()))
        .map_err(fail(Exit::Execution))?;
    let elapsed = t0.elapsed();
    let stats = trace.stats();
    if as_json {
        println!(
            "{}",
            json!({ "ok": true, "output": words_json(&trace.output), "steps": stats.steps, "hashes": stats.hashes,
                    "ram_words": stats.ram_words, "by_opcode": stats.by_opcode, "execute_ms": elapsed.as_secs_f64() * 1e3 })
        );
    } else {
        println!("output    {:?}", trace.output.iter().map(|w| w.0).collect::<Vec<_>>());
        println!(
            "steps     {} (proof trace 2^{} rows)",
            stats.steps,
            bitsage_prover::tracegen::log_size_for(trace.steps.len())
        );
        println!("hashes    {}", stats.hashes);
        println!("ram words {}", stats.ram_words);
        println!("time      {:.3} ms", elapsed.as_secs_f64() * 1e3);
        for (op, n) in stats.by_opcode {
            println!("  {op:<7} {n}");
        }
    }
    Ok(())
}

pub(crate) fn progress(as_json: bool) -> ProgressBar {
    if as_json {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(Stage::ALL.len() as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:20} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    pb
}

/// Exit codes for proving failures: 4 execution or an unprovable statement,
/// 1 refused, 7 backend unavailable.
pub(crate) fn prove_failure(e: ProveError) -> Failure {
    let code = match e {
        ProveError::Exec(_) | ProveError::Statement(_) => Exit::Execution,
        ProveError::ConstraintsNotSatisfied => Exit::Rejected,
        ProveError::Backend(_) | ProveError::TooLarge { .. } => Exit::Backend,
    };
    Failure { code, err: anyhow::Error::new(e) }
}

pub(crate) fn security_level(s: Security) -> SecurityLevel {
    match s {
        Security::B96 => SecurityLevel::Bits96,
        Security::B128 => SecurityLevel::Bits128,
    }
}

fn cmd_prove(
    as_json: bool,
    run: &RunArgs,
    out: &Path,
    security: Security,
    backend: BackendArg,
    channel: ChannelArg,
) -> Result<(), Failure> {
    bitsage_prover::open_gpu_in_background(backend.choice());
    let l = load(run)?;
    let security = security_level(security);
    let pb = progress(as_json);
    let on_stage = |s: Stage| {
        pb.set_position(Stage::ALL.iter().position(|x| *x == s).unwrap_or(0) as u64);
        pb.set_message(s.name());
    };
    let opts = ProveOptions { security, limits: l.limits, on_stage: Some(&on_stage), ..ProveOptions::default() };
    let t0 = Instant::now();
    on_stage(Stage::Execute);
    let result = execute(&l.program, &l.input, &l.advice, l.limits).map_err(ProveError::from).and_then(|trace| {
        let statement =
            Statement { program: l.program.clone(), input: l.input.clone(), output: trace.output.clone(), security };
        let exec_time = t0.elapsed();
        prove_receipt_proof(channel.channel(), backend.choice(), &statement, &trace, &opts).map(
            |(proof, mut stats, name)| {
                stats.stages.insert(0, (Stage::Execute, exec_time));
                (proof, statement, stats, name)
            },
        )
    });
    pb.finish_and_clear();
    let (proof, statement, stats, backend_name) = result.map_err(prove_failure)?;
    let total = t0.elapsed();
    let receipt = Receipt::new(statement, proof).context("encoding the receipt").map_err(fail(Exit::Io))?;
    let bytes = receipt.to_bytes().context("compressing the receipt").map_err(fail(Exit::Io))?;
    std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display())).map_err(fail(Exit::Io))?;
    if as_json {
        println!(
            "{}",
            json!({ "ok": true, "receipt": out, "digest": receipt.digest_hex(), "output": words_json(&receipt.body.statement.output),
            "steps": stats.steps, "cpu_rows": stats.cpu_rows, "main_columns": stats.main_columns, "receipt_bytes": bytes.len(),
            "prove_ms": total.as_secs_f64() * 1e3, "stages_ms": stages_json(&stats), "security_bits": security.bits(),
            "backend": backend_name, "channel": receipt.channel().name() })
        );
    } else {
        println!("output   {}", words_line(&receipt.body.statement.output));
        println!(
            "steps    {} in a 2^{} row CPU trace, {} main columns",
            stats.steps,
            stats.cpu_rows.trailing_zeros(),
            stats.main_columns
        );
        for (s, d) in &stats.stages {
            println!("  {:<40} {:>9.1} ms", s.name(), d.as_secs_f64() * 1e3);
        }
        println!(
            "proved   in {:.1} ms on {backend_name}, {} security bits, {} channel",
            total.as_secs_f64() * 1e3,
            security.bits(),
            receipt.channel().name()
        );
        println!("receipt  {} ({} bytes, digest {})", out.display(), bytes.len(), receipt.digest_hex());
    }
    Ok(())
}

pub(crate) fn stages_json(stats: &ProofStats) -> serde_json::Value {
    stats
        .stages
        .iter()
        .map(|(s, d)| (s.name().to_string(), json!(d.as_secs_f64() * 1e3)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub(crate) fn read_receipt(path: &Path) -> Result<Receipt, Failure> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display())).map_err(fail(Exit::Io))?;
    Receipt::from_bytes(&bytes).with_context(|| format!("decoding {}", path.display())).map_err(fail(Exit::Receipt))
}

fn cmd_verify(
    as_json: bool,
    path: &Path,
    program: Option<&Path>,
    onchain: Option<&chain::ChainAt>,
) -> Result<(), Failure> {
    let receipt = read_receipt(path)?;
    if let Some(p) = program {
        let src = std::fs::read_to_string(p)
            .with_context(|| format!("reading program {}", p.display()))
            .map_err(fail(Exit::Io))?;
        let expected =
            assemble(&src).with_context(|| format!("assembling {}", p.display())).map_err(fail(Exit::Assemble))?;
        if expected.digest() != receipt.body.statement.program.digest() {
            return Err(Failure {
                code: Exit::Rejected,
                err: anyhow::anyhow!("receipt is for a different program than {}", p.display()),
            });
        }
    }
    // An attestation, when present, must sign exactly this receipt.
    let attestation = match &receipt.attestation {
        None => None,
        Some(_) => Some(
            bitsage_settle::attest::check_receipt(&receipt)
                .map_err(|e| Failure { code: Exit::Rejected, err: anyhow::anyhow!("attestation rejected: {e}") })?,
        ),
    };
    if let Some(at) = onchain {
        return chain::check_onchain(as_json, &receipt, path, at);
    }
    let t0 = Instant::now();
    let verdict = receipt.verify();
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    match verdict {
        Ok(()) => {
            let attested = attestation.as_ref().map(|a| {
                json!({ "job_id": format!("{:#x}", a.job_id), "worker": format!("{:#x}", a.worker_address),
                        "public_key": format!("{:#x}", a.public_key), "evidence": a.evidence })
            });
            if as_json {
                println!(
                    "{}",
                    json!({ "ok": true, "valid": true, "digest": receipt.digest_hex(), "program_digest": hex(&receipt.body.statement.program.digest()),
                    "output": words_json(&receipt.body.statement.output), "verify_ms": ms, "attestation": attested })
                );
                return Ok(());
            }
            match &attestation {
                Some(a) => println!(
                    "attested: job {:#x} by worker {:#x} (key {:#x}, {})",
                    a.job_id, a.worker_address, a.public_key, a.evidence
                ),
                None => println!("attested: no (an unsigned receipt)"),
            }
            {
                println!(
                    "valid: {} proves program {} on its input gives output {} ({ms:.2} ms)",
                    path.display(),
                    hex(&receipt.body.statement.program.digest()),
                    words_line(&receipt.body.statement.output)
                );
            }
            Ok(())
        }
        Err(ReceiptError::Verify(e)) => {
            Err(Failure { code: Exit::Rejected, err: anyhow::Error::new(e).context("proof rejected") })
        }
        Err(e) => Err(Failure { code: Exit::Receipt, err: e.into() }),
    }
}

/// At most 64 words, then how many more (`--json` has every word).
fn words_line(w: &[M31]) -> String {
    let shown: Vec<u32> = w.iter().take(64).map(|x| x.0).collect();
    match w.len().saturating_sub(64) {
        0 => format!("{shown:?}"),
        more => format!("{shown:?} … and {more} more words ({} in all; --json lists them)", w.len()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn cmd_inspect(as_json: bool, path: &Path, listing: bool) -> Result<(), Failure> {
    let r = read_receipt(path)?;
    let st = &r.body.statement;
    let c = r.body.proof.claim();
    let cols = c.column_log_sizes();
    let (main_cols, int_cols) = (cols[1].len(), cols[2].len());
    let range = bitsage_air::range::rows_log_size(c.range_log_size);
    let rows: u64 = c.log_sizes().into_iter().map(|l| 1u64 << l).sum();
    let proof_bytes = r.proof_bytes();
    let parts = r.body.proof.parts();
    let channel = r.channel().name();
    let bits = st.security.bits();
    if as_json {
        println!(
            "{}",
            json!({ "digest": r.digest_hex(), "program_digest": hex(&st.program.digest()), "program": disassemble(&st.program),
            "instructions": st.program.instrs.len(), "input": words_json(&st.input), "output": words_json(&st.output),
            "log_sizes": { "cpu": c.cpu_log_size, "rom": c.rom_log_size, "memory": c.mem_log_size, "hash": c.hash_log_size, "range": range },
            "range_table_log_size": c.range_log_size,
            "ram_words": c.ram_words, "total_rows": rows, "main_columns": main_cols, "interaction_columns": int_cols,
            "proof_bytes": proof_bytes, "proof_parts": parts, "channel": channel, "security_bits": bits, "module": r.body.module.map(|m| hex(&m)) })
        );
    } else {
        println!("receipt        {} (digest {})", path.display(), r.digest_hex());
        if let Some(m) = &r.body.module {
            println!("module         {} (the witness generator; attested, not proven)", hex(m));
        }
        println!(
            "program        {} ({} instructions, {} tables)",
            hex(&st.program.digest()),
            st.program.instrs.len(),
            st.program.tables.len()
        );
        println!("input          {}", words_line(&st.input));
        println!("output         {}", words_line(&st.output));
        let hash = c.hash_log_size.map_or("none".into(), |l| format!("2^{l}"));
        println!(
            "trace rows     cpu 2^{}, program 2^{}, memory 2^{}, hash {hash}, range 2^{range} (values 0..2^{}) ({rows} total)",
            c.cpu_log_size, c.rom_log_size, c.mem_log_size, c.range_log_size
        );
        println!("columns        {main_cols} main + {int_cols} LogUp");
        println!("ram words      {}", c.ram_words);
        println!("proof size     {proof_bytes} bytes, over the {channel} Merkle channel");
        let kib = |b: usize| format!("{:.1} KiB", b as f64 / 1024.0);
        println!(
            "  of which     queried values {}, trace Merkle paths {}, FRI values {}, FRI Merkle {}, sampled values {}, last layer {}",
            kib(parts.queried_values),
            kib(parts.trace_merkle),
            kib(parts.fri_values),
            kib(parts.fri_merkle),
            kib(parts.sampled_values),
            kib(parts.fri_last_layer)
        );
        let config = r.body.proof.config();
        println!(
            "security       {bits} bits: {} conjectured ({} pow bits + log blowup {} x {} queries), fold step {}",
            config.security_bits(),
            config.pow_bits,
            config.fri_config.log_blowup_factor,
            config.fri_config.n_queries,
            config.fri_config.fold_step
        );
        if listing {
            println!("listing:\n{}", disassemble(&st.program));
        }
    }
    Ok(())
}
