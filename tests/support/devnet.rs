//! A real local Starknet for settlement tests: `starknet-devnet` 0.10.1
//! (`.ci/run` installs it under `~/.cache/bitsage/tools`), seed 0, with its
//! predeployed accounts, STRK token and universal deployer as they are.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::node::Proc;

/// STRK on every devnet.
pub const STRK: &str = "0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d";

/// The devnet binary: `$BITSAGE_DEVNET`, `~/.cache/bitsage/tools/bin`, or PATH.
pub fn devnet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BITSAGE_DEVNET") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/bitsage/tools/bin/starknet-devnet");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("starknet-devnet")
}

pub struct Account {
    pub address: String,
    pub private_key: String,
}

pub struct Devnet {
    _proc: Proc,
    pub url: String,
    pub accounts: Vec<Account>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Devnet {
    /// Starts a devnet with `accounts` predeployed accounts and waits until
    /// it answers JSON-RPC.
    pub fn start(accounts: usize) -> Devnet {
        let port = free_port();
        let child = Command::new(devnet_bin())
            .args(["--seed", "0", "--port", &port.to_string(), "--accounts", &accounts.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {}: {e} (.ci/run installs starknet-devnet 0.10.1)", devnet_bin().display())
            });
        let proc = Proc { child };
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        let mut devnet = Devnet { _proc: proc, url, accounts: Vec::new() };
        loop {
            if let Ok(v) = devnet.try_rpc("devnet_getPredeployedAccounts", json!({})) {
                devnet.accounts = v
                    .as_array()
                    .expect("accounts")
                    .iter()
                    .map(|a| Account {
                        address: a["address"].as_str().expect("address").to_string(),
                        private_key: a["private_key"].as_str().expect("private_key").to_string(),
                    })
                    .collect();
                return devnet;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the devnet did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        self.try_rpc_raw(method, &params.to_string())
    }

    fn try_rpc_raw(&self, method: &str, params: &str) -> Result<Value, String> {
        let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#);
        let mut resp = ureq::post(&self.url)
            .header("content-type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| e.to_string())?;
        let v: Value = resp.body_mut().read_json().map_err(|e| e.to_string())?;
        match v.get("result") {
            Some(r) => Ok(r.clone()),
            None => Err(v.to_string()),
        }
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// Mints `tokens` whole STRK to `address`.
    pub fn mint(&self, address: &str, tokens: u128) {
        // The amount exceeds a u64, so the JSON is written by hand.
        let amount = tokens * 1_000_000_000_000_000_000;
        let params = format!(r#"{{"address":"{address}","amount":{amount},"unit":"FRI"}}"#);
        self.try_rpc_raw("devnet_mint", &params).unwrap_or_else(|e| panic!("devnet_mint: {e}"));
    }

    /// Moves the chain's clock forward (devnet mines a block for it).
    pub fn increase_time(&self, secs: u64) {
        self.rpc("devnet_increaseTime", json!({ "time": secs }));
    }
}

/// Where `scripts/build-contracts.sh` writes the compiled classes
/// (`$CARGO_TARGET_DIR/contracts`), or a panic that says how to build them.
pub fn contracts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("contracts");
    assert!(
        dir.join("JobEscrow.contract_class.json").exists(),
        "{} lacks the compiled contracts: run ./scripts/build-contracts.sh",
        dir.display()
    );
    dir
}
