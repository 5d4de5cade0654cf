//! A bounded load test of the node (a bench, not a test): N concurrent
//! clients each submit M dev-mode jobs (execute in the sandbox, no proof)
//! over loopback HTTP and poll each (every 5 ms) to its end. Runs once against SQLite
//! and once against a real PostgreSQL server, and prints throughput and
//! p50/p99 latency of the submission and of the whole job.
//!
//! `./scripts/build-workloads.sh && cargo build -p bitsage-host &&
//!  cargo bench -p bitsage-tests --bench node_load -- [clients] [jobs-per-client] [workers]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitsage_tests::node::{apikey, serve, Postgres, TempDir};
use serde_json::json;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Row {
    store: &'static str,
    jobs: usize,
    wall: Duration,
    submit: Vec<f64>,
    total: Vec<f64>,
}

fn run(store: &'static str, db: Option<&str>, clients: usize, per_client: usize, workers: usize) -> Row {
    let dir = TempDir::new("load");
    let op = apikey(&dir.0, db, "ops", "operator");
    let key = apikey(&dir.0, db, "load", "client");
    let w = workers.to_string();
    let mut args = vec!["--workers", w.as_str(), "--max-queue", "100000", "--max-active-per-key", "100000"];
    if let Some(db) = db {
        args.extend(["--db", db]);
    }
    let node = Arc::new(serve(&dir.0, &args));
    let digest = node.approve(&op, "custom");
    // Warm the compile cache so every measured job is the steady state.
    let warm = node.submit(&key, &json!({ "module_digest": digest, "input": [1, 1], "mode": "dev" }));
    node.wait(&key, warm.json()["id"].as_str().unwrap_or_default(), Duration::from_secs(60));

    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let node = node.clone();
            let key = key.clone();
            let digest = digest.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                for j in 0..per_client {
                    let s = Instant::now();
                    let a = node.submit(&key, &json!({ "module_digest": digest, "input": [c, j], "mode": "dev" }));
                    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
                    let submit = s.elapsed().as_secs_f64() * 1e3;
                    let id = a.json()["id"].as_str().unwrap_or_default().to_string();
                    let job = node.wait_every(&key, &id, Duration::from_secs(300), Duration::from_millis(5));
                    assert_eq!(job["state"], "executed", "{job}");
                    lat.push((submit, s.elapsed().as_secs_f64() * 1e3));
                }
                lat
            })
        })
        .collect();
    let lat: Vec<(f64, f64)> = handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect();
    let wall = t0.elapsed();
    let mut submit: Vec<f64> = lat.iter().map(|l| l.0).collect();
    let mut total: Vec<f64> = lat.iter().map(|l| l.1).collect();
    submit.sort_by(f64::total_cmp);
    total.sort_by(f64::total_cmp);
    Row { store, jobs: lat.len(), wall, submit, total }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clients = args.first().copied().unwrap_or(8);
    let per_client = args.get(1).copied().unwrap_or(25);
    let workers = args.get(2).copied().unwrap_or(4);
    println!("node load: {clients} clients x {per_client} dev-mode jobs (custom workload), {workers} worker tasks, loopback HTTP");
    let sqlite = run("SQLite", None, clients, per_client, workers);
    let pg = Postgres::start();
    let postgres = run("PostgreSQL", Some(&pg.url), clients, per_client, workers);
    println!();
    println!("| store | jobs | wall s | jobs/s | submit p50 ms | submit p99 ms | job p50 ms | job p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in [sqlite, postgres] {
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.store,
            r.jobs,
            r.wall.as_secs_f64(),
            r.jobs as f64 / r.wall.as_secs_f64(),
            percentile(&r.submit, 0.5),
            percentile(&r.submit, 0.99),
            percentile(&r.total, 0.5),
            percentile(&r.total, 0.99)
        );
    }
}
