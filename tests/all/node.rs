//! The node over real HTTP on loopback: real `bitsage-host serve` and
//! `worker` processes, SQLite and a real PostgreSQL server, Chromium for the
//! dashboard.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bitsage_prover::Receipt;
use bitsage_tests::guests::{self, WORKLOADS};
use bitsage_tests::node::{apikey, b64, get, post, post_json, serve, worker, Postgres, TempDir};
use serde_json::{json, Value};

fn example(file: &str) -> Value {
    serde_json::from_slice(&guests::example(file)).expect("example JSON")
}

/// A data-transform input 40x the example: a 2^17-row trace, about a second to prove.
fn long_job_input() -> Value {
    let mut v = example("data-transform.json");
    let csv = v["csv"].as_str().expect("csv").to_string();
    let mut lines = csv.trim_end().lines();
    let header = lines.next().expect("header").to_string();
    let rows: Vec<&str> = lines.collect();
    let mut out = header + "\n";
    for _ in 0..40 {
        for r in &rows {
            out.push_str(r);
            out.push('\n');
        }
    }
    v["csv"] = json!(out);
    v
}

fn receipt_of(node: &bitsage_tests::node::Node, key: &str, id: &str) -> Vec<u8> {
    let a = get(&node.at(&format!("/v1/jobs/{id}/receipt")), Some(key));
    assert_eq!(a.status, 200, "receipt of {id}");
    a.body
}

fn events_of(node: &bitsage_tests::node::Node, key: &str, id: &str) -> Vec<String> {
    let a = get(&node.at(&format!("/v1/jobs/{id}/events")), Some(key));
    assert_eq!(a.status, 200);
    a.json().as_array().expect("events").iter().map(|e| e["event"].as_str().unwrap_or_default().to_string()).collect()
}

#[test]
fn node_proves_every_workload_over_http_and_receipts_verify_locally() {
    let dir = TempDir::new("node-e2e");
    let op = apikey(&dir.0, None, "ops", "operator");
    let client = apikey(&dir.0, None, "alice", "client");
    let node = serve(&dir.0, &["--workers", "2"]);

    // The OpenAPI document names every route.
    let doc = get(&node.at("/v1/openapi.json"), None).json();
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/receipt",
        "/v1/jobs/{id}/proof",
        "/v1/verify",
        "/v1/modules",
        "/health",
        "/v1/gpu",
        "/metrics",
        "/v1/history",
    ] {
        assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
    }

    let mut ids = Vec::new();
    for (name, input) in WORKLOADS {
        let digest = node.approve(&op, name);
        let a = node.submit(&client, &json!({ "module_digest": digest, "input": example(input) }));
        assert_eq!(a.status, 202, "{name}: {}", String::from_utf8_lossy(&a.body));
        ids.push((name, a.json()["id"].as_str().expect("id").to_string(), digest));
    }
    for (name, id, digest) in &ids {
        let job = node.wait(&client, id, Duration::from_secs(300));
        assert_eq!(job["state"], "proved", "{name}: {job}");
        assert!(job["fuel_used"].as_i64().unwrap_or(0) > 0 && job["cpu_rows"].as_i64().unwrap_or(0) >= 16, "{job}");
        // The client checks the proof itself.
        let bytes = receipt_of(&node, &client, id);
        let receipt = Receipt::from_bytes(&bytes).expect("decodes");
        receipt.verify().unwrap_or_else(|e| panic!("{name}: receipt does not verify: {e}"));
        assert_eq!(receipt.body.module.map(hex::encode).as_deref(), Some(digest.as_str()));
        let out: Vec<u32> = receipt.body.statement.output.iter().map(|w| w.0).collect();
        assert_eq!(json!(out).to_string(), job["output"].as_str().expect("output"), "{name}");
        // The node's verifier agrees, and rejects a flipped byte.
        let v = post(&node.at("/v1/verify"), Some(&client), "application/octet-stream", &bytes, &[]).json();
        assert_eq!(v["valid"], true, "{v}");
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 1;
        let v = post(&node.at("/v1/verify"), Some(&client), "application/octet-stream", &bad, &[]).json();
        assert_eq!(v["valid"], false, "{name}: a flipped receipt byte was accepted");
        // The proof alone is the receipt's proof.
        let proof = get(&node.at(&format!("/v1/jobs/{id}/proof")), Some(&client));
        assert_eq!(proof.status, 200);
        assert_eq!(proof.body, receipt.proof_encoded().expect("encodes"));
        assert_eq!(events_of(&node, &client, id), ["submitted", "claimed", "proving", "proved"]);
    }

    // Another client cannot see alice's jobs; an operator can.
    let bob = apikey(&dir.0, None, "bob", "client");
    assert_eq!(get(&node.at(&format!("/v1/jobs/{}", ids[0].1)), Some(&bob)).status, 404);
    assert_eq!(get(&node.at(&format!("/v1/jobs/{}", ids[0].1)), Some(&op)).status, 200);
    assert!(get(&node.at("/v1/jobs"), Some(&bob)).json().as_array().expect("list").is_empty());

    // Dev mode executes without a proof.
    let custom = ids.iter().find(|(name, ..)| *name == "custom").map(|(.., digest)| digest.clone()).expect("custom");
    let a = node.submit(&client, &json!({ "module_digest": custom, "input": [1, 2], "mode": "dev" }));
    let job = node.wait(&client, a.json()["id"].as_str().expect("id"), Duration::from_secs(60));
    assert_eq!(job["state"], "executed");
    assert_eq!(job["output"], "[3]");
    assert_eq!(
        get(&node.at(&format!("/v1/jobs/{}/receipt", job["id"].as_str().unwrap_or_default())), Some(&client)).status,
        409
    );

    let metrics = String::from_utf8(get(&node.at("/metrics"), None).body).expect("utf8");
    assert!(metrics.contains("bitsage_proofs_total{backend=\"cpu (SIMD)\"} 5"), "{metrics}");
    assert!(metrics.contains("bitsage_jobs{state=\"proved\"} 5"), "{metrics}");
    assert!(metrics.contains("bitsage_proving_seconds_count"), "{metrics}");
    let gpu = get(&node.at("/v1/gpu"), Some(&client)).json();
    assert_eq!(gpu["local"][0]["device"]["kind"], "cpu");
    assert_eq!(gpu["local"][0]["proofs"], 5);
    assert_history(&node, &client, &[("proved", 5), ("executed", 1)], 5);

    // SIGTERM: a graceful stop, exit status 0.
    let mut node = node;
    let killed = std::process::Command::new("kill").args(["-TERM", &node.proc.pid().to_string()]).status();
    assert!(killed.map(|s| s.success()).unwrap_or(false));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = node.proc.child.try_wait().expect("wait") {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "serve exited with {status}");
}

#[test]
fn node_refuses_bad_requests_with_typed_errors() {
    let dir = TempDir::new("node-bad");
    let op = apikey(&dir.0, None, "ops", "operator");
    let alice = apikey(&dir.0, None, "alice", "client");
    let bob = apikey(&dir.0, None, "bob", "client");
    let carol = apikey(&dir.0, None, "carol", "client");
    // No workers, so submitted jobs stay queued and the queue caps can be hit.
    let node = serve(
        &dir.0,
        &[
            "--workers",
            "0",
            "--max-body-bytes",
            "1000000",
            "--max-queue",
            "3",
            "--max-active-per-key",
            "2",
            "--rate-limit",
            "60",
            "--rate-burst",
            "25",
        ],
    );
    let jobs = node.at("/v1/jobs");
    let custom = guests::bytes("custom");

    assert_eq!(get(&jobs, None).status, 401);
    assert_eq!(get(&jobs, Some("bsk_not_a_key")).kind(), "unauthorized");
    let a = post_json(&node.at("/v1/modules"), Some(&alice), &json!({ "name": "x", "module": b64(&custom) }));
    assert_eq!((a.status, a.kind().as_str()), (403, "forbidden"));
    // An unapproved module is refused.
    let a = node.submit(&alice, &json!({ "module": b64(&custom), "input": [1, 2] }));
    assert_eq!((a.status, a.kind().as_str()), (403, "module-not-approved"));
    // A body over the limit: 413, and the node goes on serving.
    let big = vec![b'x'; 1_500_000];
    let a = post(&jobs, Some(&alice), "application/json", &big, &[]);
    assert_eq!(a.status, 413, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.kind(), "body-too-large");
    assert_eq!(post(&jobs, Some(&alice), "application/json", b"{not json", &[]).kind(), "bad-json");
    let a = node.submit(&alice, &json!({ "module_digest": "zz", "input": [1, 2] }));
    assert_eq!(a.kind(), "bad-digest");

    let digest = node.approve(&op, "custom");
    let body = json!({ "module_digest": digest, "input": [1, 2] });
    // Idempotency: the same key twice is one job.
    let first =
        post(&jobs, Some(&alice), "application/json", body.to_string().as_bytes(), &[("Idempotency-Key", "k1")]);
    let again =
        post(&jobs, Some(&alice), "application/json", body.to_string().as_bytes(), &[("Idempotency-Key", "k1")]);
    assert_eq!((first.status, again.status), (202, 200));
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(again.json()["duplicate"], true);
    // Per-key cap: alice's second job is fine, her third is 429 with Retry-After.
    assert_eq!(node.submit(&alice, &body).status, 202);
    let a = node.submit(&alice, &body);
    assert_eq!((a.status, a.kind().as_str()), (429, "too-many-jobs"));
    assert!(a.retry_after.is_some());
    // A replay of an earlier submission still gets its job, cap or not.
    let replay =
        post(&jobs, Some(&alice), "application/json", body.to_string().as_bytes(), &[("Idempotency-Key", "k1")]);
    assert_eq!((replay.status, &replay.json()["id"]), (200, &first.json()["id"]));
    // Node-wide cap: three jobs queued, so bob's second is 503 with Retry-After.
    assert_eq!(node.submit(&bob, &body).status, 202);
    let a = node.submit(&bob, &body);
    assert_eq!((a.status, a.kind().as_str()), (503, "queue-full"));
    assert!(a.retry_after.is_some());
    // Rate limit: carol's burst of 25 runs out.
    let statuses: Vec<u16> = (0..40).map(|_| get(&jobs, Some(&carol)).status).collect();
    assert!(statuses.iter().take(25).all(|&s| s == 200), "{statuses:?}");
    let limited = get(&jobs, Some(&carol));
    assert_eq!((limited.status, limited.kind().as_str()), (429, "rate-limited"));
    assert!(limited.retry_after.is_some());
    // Other keys are unaffected, and the node still serves.
    assert_eq!(get(&jobs, Some(&bob)).status, 200);
    assert_eq!(get(&node.at("/health"), None).status, 200);
}

#[test]
fn bad_jobs_fail_alone_with_typed_reasons_while_others_complete() {
    let dir = TempDir::new("node-hostile");
    let client = apikey(&dir.0, None, "alice", "client");
    // Open mode: any module may be uploaded; limits small enough to hit.
    let node = serve(
        &dir.0,
        &["--workers", "1", "--open-mode", "--fuel", "1000000000", "--timeout-ms", "10000", "--memory-mib", "64"],
    );
    let custom = b64(&guests::bytes("custom"));
    let hostile = b64(&guests::bytes("hostile_misbehave"));
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "module": hostile, "input": { "case": "spin" } }), "fuel-exhausted"),
        (json!({ "module": hostile, "input": { "case": "memory-bomb" } }), "memory-limit"),
        (json!({ "module": b64(&guests::bytes("hostile_fs")), "input": {} }), "disallowed-import"),
        (json!({ "module": hostile, "input": { "case": "panic" } }), "guest-panic"),
        // A paid job commits to its statement: a run that gives another is
        // never proved.
        (json!({ "module": custom, "input": [7, 1], "nonce": "n-1", "spec_hash": "0x1234" }), "statement-mismatch"),
    ];
    let mut ids = Vec::new();
    for (i, (body, kind)) in cases.iter().enumerate() {
        let a = node.submit(&client, body);
        assert_eq!(a.status, 202, "case {kind}: {}", String::from_utf8_lossy(&a.body));
        ids.push((a.json()["id"].as_str().expect("id").to_string(), Some(*kind)));
        // An honest job after each bad one.
        let a = node.submit(&client, &json!({ "module": custom, "input": [i, 1] }));
        ids.push((a.json()["id"].as_str().expect("id").to_string(), None));
    }
    for (id, kind) in ids {
        let job = node.wait(&client, &id, Duration::from_secs(300));
        match kind {
            Some(k) => {
                assert_eq!(job["state"], "failed", "{job}");
                assert_eq!(job["error_kind"], k, "{job}");
                assert_eq!(job["attempts"], 1, "a guest's failure is not retried: {job}");
            }
            None => assert_eq!(job["state"], "proved", "an honest job after a bad one: {job}"),
        }
    }
    let metrics = String::from_utf8(get(&node.at("/metrics"), None).body).expect("utf8");
    assert!(metrics.contains("bitsage_sandbox_limit_hits_total{kind=\"fuel-exhausted\"} 1"), "{metrics}");
    // Bytes that are no component, and components over the compile limits,
    // are refused at submission, before anything is stored.
    let a = node.submit(&client, &json!({ "module": b64(b"\0asm this is not a component"), "input": {} }));
    assert_eq!((a.status, a.kind()), (400, "malformed-wasm".to_string()));
    let text = format!("(component (core module (func (local {}))))", "i64 ".repeat(60_000));
    let locals = wat::parse_str(&text).expect("wat");
    let a = node.submit(&client, &json!({ "module": b64(&locals), "input": {} }));
    assert_eq!((a.status, a.kind()), (422, "compile-limit".to_string()));
    // An input over the node's cap is refused at submission, and nothing of
    // it is stored.
    let blobs = |dir: &std::path::Path| walk(&dir.join("blobs"));
    let before = blobs(&dir.0);
    let a = node.submit(&client, &json!({ "module": custom, "input_base64": b64(&vec![b'1'; 2 << 20]) }));
    assert_eq!((a.status, a.kind()), (413, "input-too-large".to_string()));
    assert_eq!(blobs(&dir.0), before, "the refused input left a blob");
    // A nonce the chain cannot hold, and a spec hash that is no felt, are
    // refused at submission.
    let a = node.submit(&client, &json!({ "module": custom, "input": [1, 1], "nonce": "x".repeat(32) }));
    assert_eq!((a.status, a.kind()), (400, "bad-nonce".to_string()));
    let a = node.submit(&client, &json!({ "module": custom, "input": [1, 1], "spec_hash": "not-a-felt" }));
    assert_eq!((a.status, a.kind()), (400, "bad-spec-hash".to_string()));
}

#[test]
fn kill_9_mid_proof_then_restart_completes_the_job_exactly_once() {
    let dir = TempDir::new("node-crash");
    let op = apikey(&dir.0, None, "ops", "operator");
    let client = apikey(&dir.0, None, "alice", "client");
    let mut node = serve(&dir.0, &["--workers", "1"]);
    let digest = node.approve(&op, "data_transform");
    let id = node.submit_accepted(&client, &json!({ "module_digest": digest, "input": long_job_input() }));
    let other =
        node.submit_accepted(&client, &json!({ "module_digest": digest, "input": example("data-transform.json") }));
    let t0 = Instant::now();
    while node.job(&client, &id)["state"] != "proving" {
        assert!(t0.elapsed() < Duration::from_secs(120), "the job never reached proving");
        std::thread::sleep(Duration::from_millis(10));
    }
    node.proc.kill9();

    let node = serve(&dir.0, &["--workers", "1"]);
    for j in [&id, &other] {
        let job = node.wait(&client, j, Duration::from_secs(300));
        assert_eq!(job["state"], "proved", "{job}");
        Receipt::from_bytes(&receipt_of(&node, &client, j)).expect("decodes").verify().expect("verifies");
    }
    let events = events_of(&node, &client, &id);
    assert_eq!(events.iter().filter(|e| *e == "proved").count(), 1, "{events:?}");
    assert!(events.contains(&"requeued".to_string()), "{events:?}");
    assert_eq!(node.job(&client, &id)["attempts"], 2);
    // Nothing lost or duplicated: exactly the two jobs exist.
    let all = get(&node.at("/v1/jobs"), Some(&op)).json();
    assert_eq!(all.as_array().expect("list").len(), 2, "{all}");
}

#[test]
fn postgres_cluster_completes_every_job_exactly_once_when_a_worker_dies() {
    let pg = Postgres::start();
    let dir = TempDir::new("cluster");
    let op = apikey(&dir.0, Some(&pg.url), "ops", "operator");
    let client = apikey(&dir.0, Some(&pg.url), "alice", "client");
    // One API node (no workers of its own) and three worker processes, each
    // with its own data dir as if on its own machine; they share only PostgreSQL.
    let api = serve(&dir.0, &["--workers", "0", "--db", &pg.url, "--lease-secs", "3"]);
    let mut workers: Vec<_> = (0..3)
        .map(|i| {
            let d = dir.0.join(format!("worker{i}"));
            std::fs::create_dir_all(&d).expect("dir");
            worker(&d, &pg.url, &["--lease-secs", "3"])
        })
        .collect();
    let digest = api.approve(&op, "data_transform");
    let custom = api.approve(&op, "custom");
    let mut ids = Vec::new();
    for i in 0..6 {
        let body = if i % 2 == 0 {
            json!({ "module_digest": digest, "input": long_job_input() })
        } else {
            json!({ "module_digest": custom, "input": [i, 1] })
        };
        let a = api.submit(&client, &body);
        assert_eq!(a.status, 202);
        ids.push(a.json()["id"].as_str().expect("id").to_string());
    }
    // Kill a worker that is proving a long job (a custom job's proof takes
    // milliseconds, so its worker may finish it before the kill lands).
    let t0 = Instant::now();
    let (victim_job, victim_worker) = loop {
        let busy = ids.iter().step_by(2).map(|id| api.job(&op, id)).find(|j| j["state"] == "proving");
        if let Some(j) = busy {
            break (
                j["id"].as_str().unwrap_or_default().to_string(),
                j["worker_id"].as_str().unwrap_or_default().to_string(),
            );
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no job reached proving");
        std::thread::sleep(Duration::from_millis(10));
    };
    let process_id = victim_worker.split('/').next().unwrap_or_default().to_string();
    let rows = get(&api.at("/v1/workers"), Some(&op)).json();
    let pid = rows
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["id"] == process_id.as_str())
        .and_then(|w| w["pid"].as_u64())
        .expect("the victim's pid");
    let w = workers.iter_mut().find(|w| w.pid() as u64 == pid).expect("the victim is one of ours");
    w.kill9();

    let mut done_by: HashMap<String, String> = HashMap::new();
    for id in &ids {
        let job = api.wait(&client, id, Duration::from_secs(300));
        assert_eq!(job["state"], "proved", "{job}");
        Receipt::from_bytes(&receipt_of(&api, &client, id)).expect("decodes").verify().expect("verifies");
        let events = events_of(&api, &op, id);
        assert_eq!(events.iter().filter(|e| *e == "proved").count(), 1, "{id}: {events:?}");
        done_by.insert(id.clone(), job["worker_id"].as_str().unwrap_or_default().to_string());
    }
    let victim = api.job(&op, &victim_job);
    assert!(victim["attempts"].as_i64().unwrap_or(0) >= 2, "the killed worker's job was claimed again: {victim}");
    assert!(!done_by[&victim_job].starts_with(&process_id), "a dead worker finished a job");
    assert_eq!(get(&api.at("/v1/jobs"), Some(&op)).json().as_array().map(Vec::len), Some(6));
    assert_history(&api, &op, &[("proved", 6)], 6);
}

/// `/v1/history` counts `jobs` (state, n) finished in the last hour and
/// `proofs` proofs in the histogram and across the devices, each device's
/// busy fraction within [0, 1] and positive in some minute.
fn assert_history(node: &bitsage_tests::node::Node, key: &str, jobs: &[(&str, i64)], proofs: i64) {
    let h = get(&node.at("/v1/history"), Some(key)).json();
    assert_eq!(h["buckets"], 60, "{h}");
    for (state, n) in jobs {
        let per_minute = h["jobs"][state].as_array().unwrap_or_else(|| panic!("no {state} series: {h}"));
        assert_eq!(per_minute.len(), 60);
        assert_eq!(per_minute.iter().filter_map(Value::as_i64).sum::<i64>(), *n, "{state}: {h}");
    }
    assert_eq!(h["prove_counts"].as_array().map(|c| c.iter().filter_map(Value::as_i64).sum::<i64>()), Some(proofs));
    let devices = h["devices"].as_array().expect("devices");
    assert_eq!(devices.iter().filter_map(|d| d["proofs"].as_i64()).sum::<i64>(), proofs, "{h}");
    for d in devices {
        let busy: Vec<f64> = d["busy"].as_array().expect("busy").iter().filter_map(Value::as_f64).collect();
        assert!(busy.iter().all(|b| (0.0..=1.0).contains(b)) && busy.iter().any(|b| *b > 0.0), "{d}");
    }
    // Outside 1 to 1440 minutes: a typed refusal.
    assert_eq!(get(&node.at("/v1/history?minutes=0"), Some(key)).kind(), "bad-window");
}

#[test]
fn dashboard_submits_opens_and_verifies_in_headless_chromium() {
    let dir = TempDir::new("dashboard");
    let op = apikey(&dir.0, None, "ops", "operator");
    let client = apikey(&dir.0, None, "alice", "client");
    let node = serve(&dir.0, &["--workers", "1"]);
    node.approve(&op, "custom");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/dashboard.cjs");
    let shot = std::env::var_os("BITSAGE_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.0.join("dashboard.png"));
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(&node.url)
        .arg(&client)
        .arg(&shot)
        .output()
        .expect("running node (Node.js) for the dashboard test");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dashboard script failed:\n{log}");
    assert!(log.contains("verdict: valid"), "{log}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "not a real screenshot");
}

/// Every file under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn queue_caps_hold_under_simultaneous_submissions() {
    let dir = TempDir::new("node-caps");
    let alice = apikey(&dir.0, None, "alice", "client");
    let bob = apikey(&dir.0, None, "bob", "client");
    // No workers: every admitted job stays queued, so the caps are exact.
    let node = serve(&dir.0, &["--workers", "0", "--open-mode", "--max-active-per-key", "3", "--max-queue", "5"]);
    let custom = b64(&guests::bytes("custom"));
    let burst = |key: &str, n: usize| -> (usize, Vec<u16>) {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (url, key, body) =
                    (node.at("/v1/jobs"), key.to_string(), json!({ "module": custom, "input": [i, 1] }));
                std::thread::spawn(move || post_json(&url, Some(&key), &body).status)
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().expect("client")).collect();
        (statuses.iter().filter(|s| **s == 202).count(), statuses)
    };
    let (a, statuses) = burst(&alice, 40);
    assert_eq!(a, 3, "40 at once with a per-key cap of 3: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202 || *s == 429), "{statuses:?}");
    let (b, statuses) = burst(&bob, 40);
    assert_eq!(b, 2, "the queue cap of 5 leaves bob 2: {statuses:?}");
    assert!(statuses.iter().all(|s| *s == 202 || *s == 429 || *s == 503), "{statuses:?}");
    let queued = get(&node.at("/v1/jobs"), Some(&alice)).json().as_array().map(Vec::len);
    assert_eq!(queued, Some(3));
}

#[test]
fn verify_answers_do_not_grow_with_the_statement() {
    let dir = TempDir::new("node-verify-echo");
    let client = apikey(&dir.0, None, "alice", "client");
    let node = serve(&dir.0, &["--workers", "0"]);
    let p = obelysk_vm::asm::assemble("mov r1, 1000\nloop: write r1\nsub r1, r1, 1\njnz r1, loop\nhalt\n")
        .expect("assembles");
    let (proof, st, _) = bitsage_prover::prove(&p, &[], &[], &bitsage_prover::ProveOptions::default()).expect("proves");
    assert_eq!(st.output.len(), 1000);
    let bytes = Receipt::new(st, proof).expect("receipt").to_bytes().expect("encodes");
    let a = post(&node.at("/v1/verify"), Some(&client), "application/octet-stream", &bytes, &[]);
    assert_eq!(a.status, 200);
    let v = a.json();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["output_len"], 1000);
    assert_eq!(v["output"].as_array().map(Vec::len), Some(64));
    assert!(a.body.len() < 4096, "a {}-byte answer", a.body.len());
    // A receipt whose statement holds a word >= p is refused at the word.
    let (proof, mut st, _) =
        bitsage_prover::prove(&p, &[], &[], &bitsage_prover::ProveOptions::default()).expect("proves");
    st.output[0] = obelysk_vm::M31((1 << 31) - 1);
    let bytes = Receipt::new(st, proof).expect("receipt").to_bytes().expect("encodes");
    let v = post(&node.at("/v1/verify"), Some(&client), "application/octet-stream", &bytes, &[]).json();
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| e.contains("canonical")), "{v}");
}

#[test]
fn idle_and_slow_connections_cannot_exhaust_the_node() {
    use std::io::{Read, Write};
    let dir = TempDir::new("node-conns");
    let node = serve(&dir.0, &["--workers", "0"]);
    let addr = node.url.trim_start_matches("http://").to_string();
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", node.proc.pid())).map(|d| d.count()).unwrap_or(0);
    let base = fds();
    // 600 connections (over the 512 cap) that never finish their headers.
    let start = Instant::now();
    let mut idle: Vec<std::net::TcpStream> = (0..600)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).expect("connect");
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let held = fds();
    assert!(held <= base + 512 + 8, "the node holds {held} descriptors (base {base})");
    // The header timeout closes them all within 10 s (+ margin)...
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap_or(0);
        // Closed, or told 408 and then closed.
        assert!(n == 0 || buf.starts_with(b"HTTP/1.1 408"), "{:?}", String::from_utf8_lossy(&buf[..n]));
    }
    assert!(start.elapsed() < Duration::from_secs(30), "closing took {:?}", start.elapsed());
    drop(idle);
    // ...and the node serves again.
    let a = get(&node.at("/health"), None);
    assert_eq!(a.status, 200);
}

#[test]
fn refused_uploads_leave_no_blobs_behind() {
    let dir = TempDir::new("node-blob-gc");
    let client = apikey(&dir.0, None, "alice", "client");
    let config = dir.0.join("bitsage.toml");
    std::fs::write(&config, "blob_gc_min_age_secs = 1\n").expect("config");
    let node = serve(
        &dir.0,
        &["--workers", "0", "--open-mode", "--max-queue", "1", "--config", config.to_str().expect("utf8")],
    );
    let custom = b64(&guests::bytes("custom"));
    assert_eq!(node.submit(&client, &json!({ "module": custom, "input": [1, 1] })).status, 202);
    // Refused after its input was stored: the sweep removes that input.
    let a = node.submit(&client, &json!({ "module": custom, "input": [5, 5] }));
    assert_eq!((a.status, a.kind()), (503, "queue-full".to_string()));
    let start = Instant::now();
    while walk(&dir.0.join("blobs")).len() != 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "blobs left: {:?}", walk(&dir.0.join("blobs")));
        std::thread::sleep(Duration::from_millis(200));
    }
    // The admitted job's module and input stay.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(walk(&dir.0.join("blobs")).len(), 2);
}

/// `GET /v1/jobs/{id}?wait_ms=` holds the answer until the job ends, and no
/// longer than asked; `bitsage-host load` drives a node with concurrent
/// clients, each verifying every receipt it gets.
#[test]
fn the_long_poll_answers_when_a_job_ends_and_the_load_bench_verifies_every_receipt() {
    let dir = TempDir::new("node-load");
    let op = apikey(&dir.0, None, "ops", "operator");
    let client = apikey(&dir.0, None, "alice", "client");
    let node = serve(&dir.0, &["--workers", "2", "--rate-limit", "100000", "--rate-burst", "10000"]);
    let digest = node.approve(&op, "data_transform");

    // A job of about a second: a short wait answers with it still going, a long one with its end.
    let id = node.submit_accepted(&client, &json!({ "module_digest": digest, "input": long_job_input() }));
    let t = Instant::now();
    let j = get(&node.at(&format!("/v1/jobs/{id}?wait_ms=150")), Some(&client)).json();
    let waited = t.elapsed();
    assert!(["queued", "running", "proving"].contains(&j["state"].as_str().unwrap_or_default()), "{j}");
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(5), "{waited:?}");
    let t = Instant::now();
    let j = get(&node.at(&format!("/v1/jobs/{id}?wait_ms=30000")), Some(&client)).json();
    assert_eq!(j["state"], "proved", "one long poll sees the end: {j}");
    assert!(t.elapsed() < Duration::from_secs(30), "answered at the end, not at the deadline");
    // An ended job answers at once; another client's job is not found, without waiting.
    let t = Instant::now();
    assert_eq!(get(&node.at(&format!("/v1/jobs/{id}?wait_ms=30000")), Some(&client)).json()["state"], "proved");
    let bob = apikey(&dir.0, None, "bob", "client");
    assert_eq!(get(&node.at(&format!("/v1/jobs/{id}?wait_ms=30000")), Some(&bob)).status, 404);
    assert!(t.elapsed() < Duration::from_secs(5));
    // A bad wait is a typed 400, not a hang.
    assert_eq!(get(&node.at(&format!("/v1/jobs/{id}?wait_ms=soon")), Some(&client)).status, 400);

    // The load bench: two runs, every receipt verified by its client.
    node.approve(&op, "custom");
    let wasm = guests::dir().join("custom.wasm");
    let input = dir.0.join("custom.json");
    std::fs::write(&input, guests::example("custom.json")).expect("input");
    let out = std::process::Command::new(bitsage_tests::node::host_bin())
        .args(["--json", "load", "--url", &node.at(""), "--key", &client, "--clients", "1,3", "--jobs", "6"])
        .arg(&wasm)
        .arg("--input")
        .arg(&input)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs: Value = serde_json::from_slice(&out.stdout).expect("JSON table");
    let runs = runs.as_array().expect("one row per --clients value");
    assert_eq!(runs.len(), 2);
    for (r, clients) in runs.iter().zip([1, 3]) {
        assert_eq!(
            (r["clients"].as_u64(), r["verified"].as_u64(), r["failed"].as_u64()),
            (Some(clients), Some(6), Some(0)),
            "{r}"
        );
        assert!(r["jobs_per_s"].as_f64().unwrap_or(0.0) > 0.0 && r["p50_ms"].as_f64().unwrap_or(0.0) > 0.0, "{r}");
        // The receipt is in hand before the client verifies it: a shorter median, and a positive one.
        let (got, all) = (r["receipt_p50_ms"].as_f64().unwrap_or(0.0), r["p50_ms"].as_f64().unwrap_or(0.0));
        assert!(got > 0.0 && got <= all, "{r}");
    }
    // A module the node refuses fails the bench with the node's reason, and a clear exit status.
    let out = std::process::Command::new(bitsage_tests::node::host_bin())
        .args(["load", "--url", &node.at(""), "--key", &client, "--jobs", "2"])
        .arg(guests::dir().join("ml_inference.wasm"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403")
            || String::from_utf8_lossy(&out.stderr).contains("approved")
    );
}

/// A key cannot hold more than `WAITS_PER_KEY` long polls: the rest are
/// answered at once, so a client cannot pin the node's connections and
/// store reads with waits.
#[test]
fn long_polls_beyond_a_key_s_cap_are_answered_at_once() {
    let dir = TempDir::new("node-waits");
    let op = apikey(&dir.0, None, "ops", "operator");
    let client = apikey(&dir.0, None, "alice", "client");
    // No workers: the job stays queued, so every long poll runs to its deadline.
    let node = serve(&dir.0, &["--workers", "0", "--rate-limit", "100000", "--rate-burst", "10000"]);
    let digest = node.approve(&op, "custom");
    let id = node.submit_accepted(&client, &json!({ "module_digest": digest, "input": example("custom.json") }));
    let n = bitsage_node::api::WAITS_PER_KEY + 8;
    let url = node.at(&format!("/v1/jobs/{id}?wait_ms=3000"));
    let took: Vec<(u16, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let t = Instant::now();
                    let a = get(&url, Some(&client));
                    (a.status, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("poll")).collect()
    });
    assert!(took.iter().all(|(status, _)| *status == 200), "{took:?}");
    let quick = took.iter().filter(|(_, d)| *d < Duration::from_millis(1500)).count();
    let held = took.iter().filter(|(_, d)| *d >= Duration::from_millis(2900)).count();
    assert!(quick >= 8, "only {quick} of {n} polls were answered at once");
    assert!(held <= bitsage_node::api::WAITS_PER_KEY, "{held} polls were held");
    // The slots come back: a poll after them waits again.
    let t = Instant::now();
    assert_eq!(get(&node.at(&format!("/v1/jobs/{id}?wait_ms=400")), Some(&client)).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(400), "a freed slot is taken again");
}
