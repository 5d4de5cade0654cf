//! `bitsage-host load`: a load bench of a running node with real clients.
//! Each client submits jobs over HTTP, waits for each (the node's long
//! poll), downloads the receipt and verifies it here, as `submit --wait`
//! does; the table gives jobs per second and the latency a client sees,
//! from its submission to a verified receipt, at each concurrency, and the
//! part of it before the client's own verification (the receipt in hand).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::exit::Exit;
use crate::node::Remote;
use crate::{fail, Failure};

#[derive(clap::Args)]
pub struct LoadArgs {
    #[command(flatten)]
    remote: Remote,
    /// The workload component (uploaded with the warm-up job; the node must
    /// accept it: approved, or any module on a node that takes uploads).
    #[arg(conflicts_with = "module_digest", required_unless_present = "module_digest")]
    workload: Option<PathBuf>,
    /// A module already on the node.
    #[arg(long)]
    module_digest: Option<String>,
    /// The input of every job (JSON file).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Concurrent clients, one run per value: `1,8,32`.
    #[arg(long, value_delimiter = ',', default_value = "8")]
    clients: Vec<usize>,
    /// Jobs per run (shared among its clients).
    #[arg(long, default_value = "64")]
    jobs: usize,
    /// Execute only (no proof, no receipt).
    #[arg(long)]
    dev: bool,
}

/// One run's figures.
#[derive(Serialize)]
struct Run {
    clients: usize,
    jobs: usize,
    /// Receipts (or, with --dev, executions) the clients accepted.
    verified: usize,
    failed: usize,
    wall_s: f64,
    jobs_per_s: f64,
    /// Client-side latency, submission to verified receipt, ms.
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// Time to verify one receipt here, median, ms.
    verify_p50_ms: f64,
    /// Submission to the receipt in hand (downloaded, not yet verified
    /// here): the node's latency as its client sees it, median, ms.
    receipt_p50_ms: f64,
    /// The first failures' messages.
    errors: Vec<String>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n - 1) as f64 * p).round() as usize],
    }
}

/// Submits one job and follows it to a verified receipt; returns the
/// verification time.
fn one_job(remote: &Remote, body: &Value, dev: bool) -> Result<Duration, String> {
    let job = remote.call("POST", "/v1/jobs", Some(body.clone())).map_err(|f| f.err.to_string())?;
    let id = job["id"].as_str().ok_or("the node answered without a job id")?.to_string();
    let job = remote.wait_ended(&id).map_err(|f| f.err.to_string())?;
    if dev {
        return Ok(Duration::ZERO);
    }
    if !job["receipt_digest"].is_string() {
        return Err(format!("job {id} ended {} without a receipt", job["state"]));
    }
    let bytes = remote.get_bytes(&format!("/v1/jobs/{id}/receipt")).map_err(|f| f.err.to_string())?;
    let t = Instant::now();
    let receipt = bitsage_prover::Receipt::from_bytes(&bytes).map_err(|e| format!("job {id}: receipt: {e}"))?;
    receipt.verify().map_err(|e| format!("job {id}: the receipt does not verify: {e}"))?;
    Ok(t.elapsed())
}

fn run(a: &LoadArgs, base: &Value, clients: usize) -> Run {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<(f64, f64), String>>> = Mutex::new(Vec::with_capacity(a.jobs));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients.max(1) {
            s.spawn(|| {
                let remote = a.remote.clone();
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= a.jobs {
                        break;
                    }
                    let mut body = base.clone();
                    // Every job its own statement: the nonce is in the spec hash.
                    body["nonce"] = json!(format!("load-{clients}-{j}"));
                    let start = Instant::now();
                    let r = one_job(&remote, &body, a.dev)
                        .map(|verify| (start.elapsed().as_secs_f64() * 1e3, verify.as_secs_f64() * 1e3));
                    results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                }
            });
        }
    });
    let wall = t0.elapsed().as_secs_f64();
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut lat: Vec<f64> = results.iter().filter_map(|r| r.as_ref().ok().map(|r| r.0)).collect();
    let mut ver: Vec<f64> = results.iter().filter_map(|r| r.as_ref().ok().map(|r| r.1)).collect();
    let mut got: Vec<f64> = results.iter().filter_map(|r| r.as_ref().ok().map(|r| r.0 - r.1)).collect();
    lat.sort_by(f64::total_cmp);
    ver.sort_by(f64::total_cmp);
    got.sort_by(f64::total_cmp);
    let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().cloned()).collect();
    Run {
        clients,
        jobs: a.jobs,
        verified: lat.len(),
        failed: errors.len(),
        wall_s: wall,
        jobs_per_s: lat.len() as f64 / wall,
        p50_ms: percentile(&lat, 0.5),
        p90_ms: percentile(&lat, 0.9),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        verify_p50_ms: percentile(&ver, 0.5),
        receipt_p50_ms: percentile(&got, 0.5),
        errors: errors.into_iter().take(5).collect(),
    }
}

pub fn cmd_load(as_json: bool, a: &LoadArgs) -> Result<(), Failure> {
    if a.jobs == 0 || a.clients.contains(&0) {
        return Err(Failure {
            code: Exit::Usage,
            err: anyhow::anyhow!("--jobs and every --clients value must be positive"),
        });
    }
    let input = match &a.input {
        Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display())).map_err(fail(Exit::Io))?,
        None => b"{}".to_vec(),
    };
    let mut base = json!({
        "mode": if a.dev { "dev" } else { "prove" },
        "input_base64": base64::engine::general_purpose::STANDARD.encode(&input),
    });
    // A job's input is sent as its exact bytes; refuse a file that is not JSON before any job.
    serde_json::from_slice::<Value>(&input).context("the --input file is not JSON").map_err(fail(Exit::Usage))?;
    // The warm-up job uploads the module (or checks the digest) and lets the node compile what it needs.
    let mut warm = base.clone();
    warm["nonce"] = json!("load-warm-up");
    match (&a.workload, &a.module_digest) {
        (Some(p), _) => {
            let bytes = crate::args::read(p)?;
            warm["module"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        (None, Some(d)) => warm["module_digest"] = json!(d),
        (None, None) => {
            return Err(Failure { code: Exit::Usage, err: anyhow::anyhow!("give a workload file or --module-digest") })
        }
    }
    let t = Instant::now();
    let job = a.remote.call("POST", "/v1/jobs", Some(warm.clone()))?;
    let digest = job["module_digest"].as_str().unwrap_or_default().to_string();
    let id = job["id"].as_str().unwrap_or_default().to_string();
    a.remote.wait_ended(&id).map_err(|f| Failure { code: f.code, err: f.err.context("the warm-up job") })?;
    if !as_json {
        eprintln!("warm-up job {id} done in {:.1} s; module {digest}", t.elapsed().as_secs_f64());
    }
    base["module_digest"] = json!(digest);

    let runs: Vec<Run> = a.clients.iter().map(|&c| run(a, &base, c)).collect();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&runs).unwrap_or_default());
    } else {
        let what = if a.dev { "executed" } else { "verified" };
        println!(
            "| clients | jobs | {what} | failed | wall s | jobs/s | p50 ms | p90 ms | p99 ms | max ms | verify p50 ms | receipt p50 ms |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &runs {
            println!(
                "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} |",
                r.clients,
                r.jobs,
                r.verified,
                r.failed,
                r.wall_s,
                r.jobs_per_s,
                r.p50_ms,
                r.p90_ms,
                r.p99_ms,
                r.max_ms,
                r.verify_p50_ms,
                r.receipt_p50_ms
            );
        }
        for r in &runs {
            for e in &r.errors {
                eprintln!("{} clients: {e}", r.clients);
            }
        }
    }
    match runs.iter().map(|r| r.failed).sum::<usize>() {
        0 => Ok(()),
        n => {
            Err(Failure { code: Exit::Rejected, err: anyhow::anyhow!("{n} job(s) did not end in a verified receipt") })
        }
    }
}
