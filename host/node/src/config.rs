//! The node's configuration: one typed struct, read from `bitsage.toml`,
//! then overridden by `BITSAGE_*` environment variables and flags (the CLI
//! applies those, flags winning).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bitsage_prover::BackendChoice;
use bitsage_sandbox::Limits;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid setting `{key}`: {why}")]
    Invalid { key: &'static str, why: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address the HTTP API listens on.
    pub listen: String,
    /// Data directory: SQLite store, blobs, compile cache.
    pub data_dir: PathBuf,
    /// `postgres://…` for a cluster; unset means SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// Worker tasks inside `serve` (0: API only, workers run elsewhere).
    pub workers: usize,
    /// Prover backend: `cpu`, `cuda` (every GPU) or `auto`.
    pub backend: String,
    /// Largest request body accepted, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Requests per minute per API key (429 beyond).
    pub rate_limit_per_minute: u32,
    /// Requests a key may make at once before the per-minute rate applies.
    pub rate_burst: u32,
    /// Jobs queued or in progress across the node (503 beyond).
    pub max_queue: i64,
    /// Jobs queued or in progress per API key (429 beyond).
    pub max_active_per_key: i64,
    /// Accept modules that are not on the approved list.
    pub open_mode: bool,
    /// A worker's lease on a job; renewed every third of it.
    pub lease_secs: u64,
    /// Attempts per job (a worker dying mid-job costs one).
    pub max_attempts: i64,
    /// How often an idle worker polls the store, in milliseconds.
    pub poll_ms: u64,
    /// Blobs no job or approved module references are deleted once they are
    /// this old (an upload in flight is younger); the sweep runs this often,
    /// at most hourly.
    pub blob_gc_min_age_secs: u64,
    /// Proof security level in bits (96 or 128).
    pub security: u32,
    pub limits: LimitsConfig,
    pub settlement: SettlementConfig,
}

/// The worker's identity and chain. With `account` set and a keystore
/// (password from `BITSAGE_KEYSTORE_PASSWORD`), every receipt is attested;
/// with `rpc` and `deployment` too, proved jobs whose escrow is open are
/// settled on chain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementConfig {
    /// The worker's Starknet account address.
    pub account: Option<String>,
    /// The keystore (default `<data_dir>/keys/worker.json`).
    pub keystore: Option<PathBuf>,
    /// Starknet JSON-RPC endpoint.
    pub rpc: Option<String>,
    /// The deployment file `bitsage-host chain deploy` wrote.
    pub deployment: Option<PathBuf>,
}

/// Sandbox limits per job.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub fuel: u64,
    pub timeout_ms: u64,
    pub memory_mib: usize,
    pub max_rows: u64,
    pub input_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            fuel: l.fuel,
            timeout_ms: l.timeout.as_millis() as u64,
            memory_mib: l.memory_bytes >> 20,
            max_rows: l.trace_rows,
            input_bytes: 1 << 20,
        }
    }
}

impl LimitsConfig {
    pub fn limits(&self) -> Limits {
        Limits {
            fuel: self.fuel,
            timeout: Duration::from_millis(self.timeout_ms),
            memory_bytes: self.memory_mib << 20,
            trace_rows: self.max_rows,
            input_bytes: self.input_bytes,
            ..Limits::default()
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("bitsage-data"),
            database_url: None,
            workers: 1,
            backend: "cpu".into(),
            max_body_bytes: 32 << 20,
            rate_limit_per_minute: 600,
            rate_burst: 60,
            max_queue: 1000,
            max_active_per_key: 100,
            open_mode: false,
            lease_secs: 30,
            max_attempts: 3,
            poll_ms: 200,
            blob_gc_min_age_secs: 3600,
            security: 96,
            limits: LimitsConfig::default(),
            settlement: SettlementConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Reads a `bitsage.toml`; a missing file is the defaults.
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(e) })
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| ConfigError::Invalid { key: "listen", why: format!("{}: {e}", self.listen) })
    }

    pub fn backend_choice(&self) -> Result<BackendChoice, ConfigError> {
        match self.backend.as_str() {
            "cpu" => Ok(BackendChoice::Cpu),
            "cuda" => Ok(BackendChoice::Cuda),
            "auto" => Ok(BackendChoice::Auto),
            other => Err(ConfigError::Invalid { key: "backend", why: format!("`{other}` (use cpu, cuda or auto)") }),
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| crate::store::Store::sqlite_url(&self.data_dir))
    }

    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs.max(1))
    }

    /// Checks the values that have no valid default interpretation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.backend_choice()?;
        if !matches!(self.security, 96 | 128) {
            return Err(ConfigError::Invalid { key: "security", why: format!("{} (use 96 or 128)", self.security) });
        }
        if self.rate_limit_per_minute == 0 || self.rate_burst == 0 {
            return Err(ConfigError::Invalid { key: "rate_limit_per_minute", why: "must be positive".into() });
        }
        if self.settlement.rpc.is_some() != self.settlement.deployment.is_some() {
            return Err(ConfigError::Invalid {
                key: "settlement",
                why: "give both `rpc` and `deployment`, or neither".into(),
            });
        }
        if self.settlement.rpc.is_some() && self.settlement.account.is_none() {
            return Err(ConfigError::Invalid {
                key: "settlement.account",
                why: "settling needs the worker's account".into(),
            });
        }
        if self.max_attempts < 1 {
            return Err(ConfigError::Invalid { key: "max_attempts", why: "must be at least 1".into() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c: NodeConfig =
            toml::from_str("listen = \"0.0.0.0:9000\"\nopen_mode = true\n[limits]\nfuel = 5\n").expect("parses");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert!(c.open_mode);
        assert_eq!(c.limits.fuel, 5);
        assert_eq!(c.max_attempts, 3);
        assert!(toml::from_str::<NodeConfig>("lsiten = \"x\"").is_err());
        let bad = NodeConfig { backend: "tpu".into(), ..NodeConfig::default() };
        assert!(bad.validate().is_err());
    }
}
