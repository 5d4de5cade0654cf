//! The browser verifier's cost, side by side in one run: the wasm bundle's
//! size, and per workload receipt the time to check it natively (the same
//! `check` the wasm build runs: decode, verify, attestation), in Node.js
//! (wasm) and in headless Chromium (wasm, through the `/verify` page's
//! package). Also the native proof verification alone, which is what
//! `bitsage-host verify` reports as its time.
//!
//!     ./scripts/build-workloads.sh && ./scripts/build-web.sh && cargo build -p bitsage-host &&
//!     cargo bench -p bitsage-tests --bench web_verify [-- RUNS]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use bitsage_prover::Receipt;
use bitsage_tests::node::{serve, TempDir};
use bitsage_tests::web::{package_dir, workload_receipts};
use bitsage_verify_wasm::{check, Expected};
use serde_json::Value;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(15);
    let pkg = package_dir();
    let wasm = pkg.join("pkg/bitsage_verify_wasm_bg.wasm");
    let raw = std::fs::metadata(&wasm).expect("wasm").len();
    let gz = Command::new("gzip").arg("-9").arg("-c").arg(&wasm).output().expect("gzip").stdout.len();
    let glue = std::fs::metadata(pkg.join("pkg/bitsage_verify_wasm.js")).expect("glue").len();
    println!(
        "wasm bundle: {raw} bytes ({:.0} KiB), {gz} bytes gzipped ({:.0} KiB); JS glue {glue} bytes",
        raw as f64 / 1024.0,
        gz as f64 / 1024.0
    );

    let receipts = workload_receipts();
    let dir = TempDir::new("web-bench");
    let files: Vec<PathBuf> = receipts
        .iter()
        .map(|(name, bytes)| {
            let p = dir.0.join(format!("{name}.receipt"));
            std::fs::write(&p, bytes).expect("write");
            p
        })
        .collect();

    // Node.js: each file RUNS + 1 times in one process; the first is warm-up.
    let mut node_ms = Vec::new();
    for f in &files {
        let out = Command::new("node")
            .arg(pkg.join("cli.mjs"))
            .args(std::iter::repeat_n(f, runs + 1))
            .output()
            .expect("node");
        let ms: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str::<Value>(l).expect("report")["verify_ms"].as_f64().expect("ms"))
            .collect();
        node_ms.push(median(ms));
    }

    // Chromium: the /verify page of a node, RUNS timed checks per receipt
    // after the page's own first check.
    let node = serve(&dir.0, &["--workers", "0"]);
    let spec: Vec<Value> =
        receipts.iter().zip(&files).map(|((name, _), f)| serde_json::json!({ "name": name, "file": f })).collect();
    let spec_file = dir.0.join("cases.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).expect("json")).expect("write");
    let out = Command::new("node")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/verify_page.cjs"))
        .arg(&node.url)
        .arg(&spec_file)
        .arg(runs.to_string())
        .arg(dir.0.join("shot.png"))
        .output()
        .expect("chromium script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chromium: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("line")).collect();

    println!("median of {runs} runs per cell, ms");
    println!("| workload | receipt KiB | native check | native proof verify only | Node.js wasm check | Chromium wasm check | Chromium / native |");
    println!("|---|---|---|---|---|---|---|");
    for (i, (name, bytes)) in receipts.iter().enumerate() {
        let native = timed(runs, || assert!(check(bytes, &Expected::default()).valid));
        let receipt = Receipt::from_bytes(bytes).expect("decodes");
        let proof_only = timed(runs, || receipt.verify().expect("verifies"));
        let page = &chromium[i];
        assert_eq!(page["cls"], "valid", "{page}");
        let ms: Vec<f64> = page["ms"].as_array().expect("ms").iter().filter_map(Value::as_f64).collect();
        let browser = median(ms);
        println!(
            "| {name} | {:.0} | {native:.2} | {proof_only:.2} | {:.2} | {browser:.2} | {:.1}x |",
            bytes.len() as f64 / 1024.0,
            node_ms[i],
            browser / native
        );
    }
}
