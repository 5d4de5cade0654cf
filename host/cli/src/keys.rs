//! `setup` and `export`: the worker's identity for settlement.

use std::path::PathBuf;

use anyhow::Context;
use bitsage_settle::keystore::{KeyError, WorkerKey};
use serde_json::json;

use crate::args::{parse_felt, DataDir};
use crate::exit::Exit;
use crate::{fail, Failure};

#[derive(clap::Args)]
pub struct SetupArgs {
    /// Where to write the keystore (default: `<data dir>/keys/worker.json`).
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Import an existing Stark private key (from `BITSAGE_IMPORT_KEY`, or
    /// a prompt) instead of generating one, e.g. an account's signer key.
    #[arg(long)]
    import: bool,
    #[command(flatten)]
    data: DataDir,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Where to write the backup (the keystore, still encrypted).
    #[arg(long)]
    out: PathBuf,
    /// The keystore to back up (default: `<data dir>/keys/worker.json`).
    #[arg(long)]
    keystore: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) fn keystore_path(explicit: &Option<PathBuf>, data: &DataDir) -> PathBuf {
    explicit.clone().unwrap_or_else(|| data.path().join("keys").join("worker.json"))
}

/// `BITSAGE_KEYSTORE_PASSWORD`, or a prompt on the terminal (twice when
/// creating a key).
pub(crate) fn password(confirm: bool) -> Result<String, Failure> {
    if let Ok(p) = std::env::var("BITSAGE_KEYSTORE_PASSWORD") {
        return Ok(p);
    }
    let p =
        rpassword::prompt_password("keystore password: ").context("reading the password").map_err(fail(Exit::Usage))?;
    if confirm {
        let again = rpassword::prompt_password("again: ").context("reading the password").map_err(fail(Exit::Usage))?;
        if again != p {
            return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("the passwords differ") });
        }
    }
    Ok(p)
}

pub(crate) fn key_failure(e: KeyError) -> Failure {
    let code = match e {
        KeyError::Io { .. } => Exit::Io,
        _ => Exit::Usage,
    };
    Failure { code, err: anyhow::Error::new(e) }
}

fn evidence_line() -> String {
    let tees = bitsage_settle::tee::detect();
    if tees.is_empty() {
        "software-signed (no TDX, SEV-SNP or NVIDIA confidential computing found)".into()
    } else {
        format!("TEE present: {tees:?}; receipts are software-signed until quote binding lands")
    }
}

pub fn cmd_setup(as_json: bool, a: &SetupArgs) -> Result<(), Failure> {
    let path = keystore_path(&a.keystore, &a.data);
    if path.exists() {
        return Err(key_failure(KeyError::Exists { path }));
    }
    let key = if a.import {
        let text = match std::env::var("BITSAGE_IMPORT_KEY") {
            Ok(t) => t,
            Err(_) => rpassword::prompt_password("private key (0x-hex): ")
                .context("reading the key")
                .map_err(fail(Exit::Usage))?,
        };
        let secret = parse_felt(&text, "private key")?;
        if secret == bitsage_settle::Felt::ZERO {
            return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("the private key is zero") });
        }
        WorkerKey::from_secret(secret)
    } else {
        WorkerKey::generate()
    };
    let password = password(true)?;
    key.save(&path, &password).map_err(key_failure)?;
    let public = format!("{:#x}", key.public_key());
    if as_json {
        println!("{}", json!({ "keystore": path, "public_key": public, "evidence": evidence_line() }));
    } else {
        println!("keystore   {} (encrypted, mode 0600; starkli reads it)", path.display());
        println!("public key {public}");
        println!("evidence   {}", evidence_line());
    }
    Ok(())
}

pub fn cmd_export(as_json: bool, a: &ExportArgs) -> Result<(), Failure> {
    let path = keystore_path(&a.keystore, &a.data);
    let password = password(false)?;
    let public = WorkerKey::export(&path, &password, &a.out).map_err(key_failure)?;
    if as_json {
        println!("{}", json!({ "backup": a.out, "public_key": format!("{public:#x}") }));
    } else {
        println!("backup of {} written to {} (still encrypted, mode 0600)", path.display(), a.out.display());
    }
    Ok(())
}
