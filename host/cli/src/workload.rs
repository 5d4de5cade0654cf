//! `run`, `new` and `modules`: workloads as sandboxed WASM components.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bitsage_air::Statement;
use bitsage_prover::{prove_receipt_proof, ProveOptions, Receipt, Stage};
use bitsage_sandbox::modules::{self, Allowlist, ModulesError, PublisherSignature};
use bitsage_sandbox::{Limits, Sandbox, SandboxConfig, SandboxError};
use serde_json::json;

use crate::args::parse_felt;
pub use crate::args::{DataDir, LimitArgs};
use crate::exit::Exit;
use crate::{
    fail, progress, prove_failure, security_level, stages_json, words_json, BackendArg, ChannelArg, Failure, Security,
};

#[derive(clap::Args)]
pub struct RunCmd {
    /// The workload component (.wasm, built for wasm32-wasip2).
    workload: PathBuf,
    /// The job input (JSON). Without it the workload gets `{}`.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Execute without proving: report fuel, VM rows and time per stage.
    #[arg(long)]
    dev: bool,
    /// Where to write the receipt.
    #[arg(long, short, default_value = "receipt.bin")]
    out: PathBuf,
    /// Refuse modules that are not on the approved list.
    #[arg(long, env = "BITSAGE_REQUIRE_APPROVED")]
    require_approved: bool,
    /// Do not read or write the compile cache.
    #[arg(long)]
    no_cache: bool,
    /// Security level in bits.
    #[arg(long, value_enum, env = "BITSAGE_SECURITY", default_value = "96")]
    security: Security,
    /// Prover backend.
    #[arg(long, value_enum, env = "BITSAGE_BACKEND", default_value = "cpu")]
    backend: BackendArg,
    /// The proof's Merkle channel: poseidon252 for a receipt the chain verifies.
    #[arg(long, value_enum, default_value = "blake2s")]
    channel: ChannelArg,
    #[command(flatten)]
    limits: LimitArgs,
    /// Sign the receipt with the worker's keystore (password from
    /// `BITSAGE_KEYSTORE_PASSWORD` or a prompt) for account `--account`.
    #[arg(long)]
    attest: bool,
    /// The worker's account address (with --attest).
    #[arg(long, env = "BITSAGE_ACCOUNT")]
    account: Option<String>,
    /// The client's nonce in the job's spec hash (with --attest).
    #[arg(long, default_value = "")]
    nonce: String,
    /// The keystore (default: `<data dir>/keys/worker.json`).
    #[arg(long)]
    keystore: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) fn sandbox_failure(e: SandboxError) -> Failure {
    Failure { code: Exit::from(&e), err: anyhow::Error::new(e) }
}

fn modules_failure(e: ModulesError) -> Failure {
    let code = match e {
        ModulesError::NotApproved { .. } | ModulesError::SignatureMismatch { .. } => Exit::NotApproved,
        ModulesError::Io { .. } => Exit::Io,
        _ => Exit::Usage,
    };
    Failure { code, err: anyhow::Error::new(e) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn cmd_run(as_json: bool, a: &RunCmd) -> Result<(), Failure> {
    if !a.dev {
        bitsage_prover::open_gpu_in_background(a.backend.choice());
    }
    let bytes = std::fs::read(&a.workload)
        .with_context(|| format!("reading {}", a.workload.display()))
        .map_err(fail(Exit::Io))?;
    let input = match &a.input {
        Some(p) => {
            std::fs::read(p).with_context(|| format!("reading input {}", p.display())).map_err(fail(Exit::Io))?
        }
        None => b"{}".to_vec(),
    };
    let approved = if a.require_approved {
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
        let list = Allowlist::load(&a.data.modules_file()).map_err(modules_failure)?;
        Some(list.check(&digest).map_err(modules_failure)?.name.clone())
    } else {
        None
    };
    let config = SandboxConfig {
        limits: a.limits.limits(),
        pooling: None,
        cache_dir: (!a.no_cache).then(|| a.data.cache_dir()),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).map_err(sandbox_failure)?;
    let module = sandbox.load(&bytes).map_err(sandbox_failure)?;
    let run = sandbox.run(&module, &input).map_err(sandbox_failure)?;
    let limits = sandbox.limits();
    let rec = &run.recorded;
    let t = &rec.trace;
    let report: serde_json::Value =
        serde_json::from_slice(&run.report).unwrap_or_else(|_| json!(String::from_utf8_lossy(&run.report)));
    let guest = json!({
        "module": module.digest_hex(), "approved_as": approved, "compile_ms": ms(module.compile_time), "from_cache": module.from_cache,
        "fuel_used": run.fuel_used, "fuel_budget": limits.fuel, "instantiate_ms": ms(run.instantiate_time), "call_ms": ms(run.call_time),
        "vm_steps": t.steps.len(), "vm_exec_ms": ms(rec.exec_time), "vm_hashes": t.hashes.len(), "ram_words": t.ram.len(),
        "cpu_rows": 1u64 << bitsage_prover::tracegen::log_size_for(t.steps.len()),
        "output": words_json(&t.output), "report": report, "logs": run.logs, "stdout": run.stdout, "stderr": run.stderr,
    });
    if !as_json {
        print_guest(&module, &run, limits, approved.as_deref());
    }
    if a.dev {
        if as_json {
            println!("{}", json!({ "ok": true, "dev": true, "guest": guest }));
        }
        return Ok(());
    }

    let statement = Statement {
        program: rec.program.clone(),
        input: rec.input.clone(),
        output: t.output.clone(),
        security: security_level(a.security),
    };
    let pb = progress(as_json);
    let on_stage = |s: Stage| {
        pb.set_position(Stage::ALL.iter().position(|x| *x == s).unwrap_or(0) as u64);
        pb.set_message(s.name());
    };
    let opts = ProveOptions { security: statement.security, on_stage: Some(&on_stage), ..ProveOptions::default() };
    let t0 = Instant::now();
    let proved = prove_receipt_proof(a.channel.channel(), a.backend.choice(), &statement, t, &opts);
    pb.finish_and_clear();
    let (proof, stats, backend_name) = proved.map_err(prove_failure)?;
    let prove_time = t0.elapsed();
    let mut receipt = Receipt::with_module(statement, proof, Some(module.digest))
        .context("encoding the receipt")
        .map_err(fail(Exit::Io))?;
    if a.attest {
        let account = a.account.as_deref().ok_or_else(|| Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("--attest needs the worker's account: --account or BITSAGE_ACCOUNT"),
        })?;
        let worker = parse_felt(account, "account address")?;
        let path = crate::keys::keystore_path(&a.keystore, &a.data);
        let key = bitsage_settle::keystore::WorkerKey::load(&path, &crate::keys::password(false)?)
            .map_err(crate::keys::key_failure)?;
        let input = crate::args::input_digest(a.input.as_deref())?;
        bitsage_settle::attest::attest_receipt(
            &mut receipt,
            &key,
            worker,
            input,
            &a.nonce,
            bitsage_settle::tee::Evidence::SoftwareSigned,
        )
        .map_err(|e| Failure { code: Exit::Usage, err: anyhow::Error::new(e) })?;
    }
    let t1 = Instant::now();
    receipt.verify().map_err(|e| Failure {
        code: Exit::Rejected,
        err: anyhow::Error::new(e).context("the fresh proof did not verify"),
    })?;
    let verify_time = t1.elapsed();
    let file = receipt.to_bytes().context("compressing the receipt").map_err(fail(Exit::Io))?;
    std::fs::write(&a.out, &file).with_context(|| format!("writing {}", a.out.display())).map_err(fail(Exit::Io))?;
    if as_json {
        println!(
            "{}",
            json!({ "ok": true, "guest": guest, "receipt": a.out, "digest": receipt.digest_hex(), "receipt_bytes": file.len(),
            "prove_ms": ms(prove_time), "backend": backend_name, "stages_ms": stages_json(&stats), "verify_ms": ms(verify_time), "security_bits": statement_bits(&receipt),
            "channel": receipt.channel().name() })
        );
    } else {
        for (s, d) in &stats.stages {
            println!("  {:<40} {:>9.1} ms", s.name(), ms(*d));
        }
        println!(
            "proved    in {:.1} ms on {backend_name} ({} security bits, {} channel), verified in {:.2} ms",
            ms(prove_time),
            statement_bits(&receipt),
            receipt.channel().name(),
            ms(verify_time)
        );
        println!("receipt   {} ({} bytes, digest {})", a.out.display(), file.len(), receipt.digest_hex());
    }
    Ok(())
}

fn statement_bits(r: &Receipt) -> u32 {
    r.body.statement.security.bits()
}

fn print_guest(module: &bitsage_sandbox::Module, run: &bitsage_sandbox::Run, limits: &Limits, approved: Option<&str>) {
    let t = &run.recorded.trace;
    let origin = if module.from_cache { "loaded from cache" } else { "compiled" };
    println!(
        "module    {} ({origin} in {:.1} ms){}",
        module.digest_hex(),
        ms(module.compile_time),
        approved.map(|n| format!(", approved as `{n}`")).unwrap_or_default()
    );
    println!(
        "guest     fuel {} of {}, instantiate {:.2} ms, call {:.2} ms",
        run.fuel_used,
        limits.fuel,
        ms(run.instantiate_time),
        ms(run.call_time)
    );
    println!(
        "vm        {} steps, {} hashes, {} RAM words -> 2^{} CPU rows, executed in {:.2} ms",
        t.steps.len(),
        t.hashes.len(),
        t.ram.len(),
        bitsage_prover::tracegen::log_size_for(t.steps.len()),
        ms(run.recorded.exec_time)
    );
    println!("output    {:?}", t.output.iter().map(|w| w.0).collect::<Vec<_>>());
    for l in &run.logs {
        println!("log       [{}] {}", l.level, l.message);
    }
    if !run.stdout.is_empty() {
        println!("stdout    {}", run.stdout.trim_end());
    }
    println!("report    {}", String::from_utf8_lossy(&run.report));
}

/// `bitsage-host new`: scaffolds a workload crate from the custom template.
#[derive(clap::Args)]
pub struct NewCmd {
    /// Crate name; also the directory created.
    name: String,
    /// Path to the bitsage-guest SDK (defaults to the one this binary was built from).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

const TEMPLATE_LIB: &str = include_str!("../../../workloads/custom/src/lib.rs");
const TEMPLATE_GUIDE: &str = include_str!("../../../workloads/custom/GUIDE.md");
const TEMPLATE_INPUT: &str = include_str!("../../../examples/custom.json");

pub fn cmd_new(as_json: bool, a: &NewCmd) -> Result<(), Failure> {
    let valid = !a.name.is_empty()
        && a.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && a.name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !valid {
        return Err(Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("`{}` is not a valid crate name (letters, digits, - and _)", a.name),
        });
    }
    let dir = PathBuf::from(&a.name);
    if dir.exists() {
        return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("{} already exists", dir.display()) });
    }
    let sdk = match &a.sdk {
        Some(p) => p.clone(),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../guest-sdk")),
    };
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("the guest SDK is not at {} (pass --sdk)", sdk.display()))
        .map_err(fail(Exit::Usage))?;
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
bitsage-guest = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
strip = true

# A workload is its own workspace.
[workspace]
"#,
        name = a.name,
        sdk = sdk.display()
    );
    let write = |rel: &str, text: &str| -> Result<(), Failure> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))
                .map_err(fail(Exit::Io))?;
        }
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display())).map_err(fail(Exit::Io))
    };
    write("Cargo.toml", &manifest)?;
    write("src/lib.rs", TEMPLATE_LIB)?;
    write("GUIDE.md", TEMPLATE_GUIDE)?;
    write("input.json", TEMPLATE_INPUT)?;
    write(".gitignore", "/target\n")?;
    // The toolchain this tree is tested with, and the guest target, so the
    // scaffold builds the same where rustup does not install on its own.
    write(
        "rust-toolchain.toml",
        "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip2\"]\nprofile = \"minimal\"\n",
    )?;
    let wasm = format!("target/wasm32-wasip2/release/{}.wasm", a.name.replace('-', "_"));
    if as_json {
        println!("{}", json!({ "ok": true, "dir": dir, "wasm": wasm }));
    } else {
        println!("created {}/ (Cargo.toml, rust-toolchain.toml, src/lib.rs, input.json, GUIDE.md)", dir.display());
        println!("next:   cd {} && cargo build --release --target wasm32-wasip2", dir.display());
        println!("        bitsage-host run {wasm} --input input.json");
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum ModulesCmd {
    /// Add a component to the approved list (by its SHA-256).
    Approve {
        file: PathBuf,
        /// Name shown in listings (defaults to the file stem).
        #[arg(long)]
        name: Option<String>,
        /// Publisher ed25519 public key (hex); requires --signature.
        #[arg(long, requires = "signature")]
        publisher_key: Option<String>,
        /// Publisher signature over the module digest (hex), from `modules sign`.
        #[arg(long, requires = "publisher_key")]
        signature: Option<String>,
    },
    /// List approved modules.
    List,
    /// Remove a module by name or digest.
    Revoke { name_or_digest: String },
    /// Create a publisher signing key (hex secret key file, mode 0600).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a component as a publisher.
    Sign {
        file: PathBuf,
        /// Secret key file from `modules keygen`.
        #[arg(long)]
        key: PathBuf,
    },
}

fn file_digest(path: &Path) -> Result<[u8; 32], Failure> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display())).map_err(fail(Exit::Io))?;
    Ok(<sha2::Sha256 as sha2::Digest>::digest(&bytes).into())
}

pub fn cmd_modules(as_json: bool, data: &DataDir, cmd: &ModulesCmd) -> Result<(), Failure> {
    let list_path = data.modules_file();
    match cmd {
        ModulesCmd::Approve { file, name, publisher_key, signature } => {
            let digest = file_digest(file)?;
            // What a worker would refuse to compile is not approved either.
            let bytes = crate::args::read(file)?;
            bitsage_sandbox::imports::check_encoding(&bytes).map_err(sandbox_failure)?;
            bitsage_sandbox::compile::check(&bytes, &Default::default()).map_err(sandbox_failure)?;
            let name = name
                .clone()
                .unwrap_or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
            let publisher = match (publisher_key, signature) {
                (Some(key), Some(signature)) => {
                    Some(PublisherSignature { key: key.clone(), signature: signature.clone() })
                }
                _ => None,
            };
            let mut list = Allowlist::load(&list_path).map_err(modules_failure)?;
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let entry = list.approve(&digest, &name, publisher, now).map_err(modules_failure)?.clone();
            list.save(&list_path).map_err(modules_failure)?;
            if as_json {
                println!("{}", json!({ "ok": true, "approved": entry, "list": list_path }));
            } else {
                let signed = if entry.publisher.is_some() { " (publisher signature verified)" } else { "" };
                println!("approved  {} as `{}`{signed} in {}", entry.sha256, entry.name, list_path.display());
            }
        }
        ModulesCmd::List => {
            let list = Allowlist::load(&list_path).map_err(modules_failure)?;
            if as_json {
                println!("{}", json!({ "ok": true, "modules": list.modules }));
            } else if list.modules.is_empty() {
                println!("no approved modules ({})", list_path.display());
            } else {
                for m in &list.modules {
                    let signed = m
                        .publisher
                        .as_ref()
                        .map(|p| format!("signed by {}", p.key))
                        .unwrap_or_else(|| "unsigned".into());
                    println!("{}  {:<20} {signed}", m.sha256, m.name);
                }
            }
        }
        ModulesCmd::Revoke { name_or_digest } => {
            let mut list = Allowlist::load(&list_path).map_err(modules_failure)?;
            let gone = list.revoke(name_or_digest).map_err(modules_failure)?;
            list.save(&list_path).map_err(modules_failure)?;
            if as_json {
                println!("{}", json!({ "ok": true, "revoked": gone }));
            } else {
                println!("revoked   {} (`{}`)", gone.sha256, gone.name);
            }
        }
        ModulesCmd::Keygen { out } => {
            if out.exists() {
                return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("{} already exists", out.display()) });
            }
            let key = modules::generate_key().map_err(modules_failure)?;
            write_secret(out, &hex::encode(key.to_bytes()))?;
            let public = hex::encode(key.verifying_key().to_bytes());
            if as_json {
                println!("{}", json!({ "ok": true, "secret_key_file": out, "public_key": public }));
            } else {
                println!("secret key {} \npublic key {public}", out.display());
            }
        }
        ModulesCmd::Sign { file, key } => {
            let digest = file_digest(file)?;
            let key = modules::read_signing_key(key).map_err(modules_failure)?;
            let sig = modules::sign(&key, &digest);
            if as_json {
                println!(
                    "{}",
                    json!({ "ok": true, "sha256": hex::encode(digest), "publisher_key": sig.key, "signature": sig.signature })
                );
            } else {
                println!(
                    "sha256        {}\npublisher-key {}\nsignature     {}",
                    hex::encode(digest),
                    sig.key,
                    sig.signature
                );
            }
        }
    }
    Ok(())
}

fn write_secret(path: &Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display())).map_err(fail(Exit::Io))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display())).map_err(fail(Exit::Io))
}
