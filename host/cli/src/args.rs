//! Argument types and parsers the commands share: where operator state
//! lives, the sandbox limits, and felts. Every command module imports from
//! here; this module imports no command module.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bitsage_sandbox::Limits;
use bitsage_settle::Felt;

use anyhow::Context;

use crate::exit::Exit;
use crate::{fail, Failure};

/// Where operator state lives: the approved-module list and the compile cache.
#[derive(clap::Args, Clone)]
pub struct DataDir {
    /// Data directory (approved modules, compile cache).
    #[arg(long, env = "BITSAGE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

impl DataDir {
    pub fn path(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("bitsage")
    }

    pub fn modules_file(&self) -> PathBuf {
        self.path().join("modules.json")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.path().join("cache").join("components")
    }
}

/// Sandbox limits; defaults are `bitsage_sandbox::Limits::default()`.
#[derive(clap::Args, Clone)]
pub struct LimitArgs {
    /// Fuel budget (about one unit per wasm instruction).
    #[arg(long, env = "BITSAGE_FUEL")]
    pub fuel: Option<u64>,
    /// Wall-clock deadline for the guest, in milliseconds.
    #[arg(long, env = "BITSAGE_TIMEOUT_MS")]
    pub timeout_ms: Option<u64>,
    /// Linear memory cap, in MiB.
    #[arg(long, env = "BITSAGE_MEMORY_MIB")]
    pub memory_mib: Option<usize>,
    /// Cap on ObelyskVM steps (CPU trace rows).
    #[arg(long, env = "BITSAGE_MAX_ROWS")]
    pub max_rows: Option<u64>,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        let mut l = Limits::default();
        if let Some(f) = self.fuel {
            l.fuel = f;
        }
        if let Some(t) = self.timeout_ms {
            l.timeout = Duration::from_millis(t);
        }
        if let Some(m) = self.memory_mib {
            l.memory_bytes = m << 20;
        }
        if let Some(r) = self.max_rows {
            l.trace_rows = r;
        }
        l
    }
}

/// `s` as a felt (0x-hex or decimal); exit 2 naming `what` otherwise.
pub fn parse_felt(s: &str, what: &str) -> Result<Felt, Failure> {
    bitsage_settle::parse_felt(s).ok_or_else(|| Failure {
        code: Exit::Usage,
        err: anyhow::anyhow!("{what} {s:?} is not a felt (0x-hex or decimal)"),
    })
}

/// A file's bytes; exit 6 naming it otherwise.
pub fn read(p: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display())).map_err(fail(Exit::Io))
}

/// A job's input document's bytes (`{}` without one).
pub fn read_input(input: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match input {
        Some(p) => read(p),
        None => Ok(b"{}".to_vec()),
    }
}

/// SHA-256 of a job's input document (`{}` without one).
pub fn input_digest(input: Option<&Path>) -> Result<[u8; 32], Failure> {
    use sha2::Digest;
    Ok(sha2::Sha256::digest(read_input(input)?).into())
}
