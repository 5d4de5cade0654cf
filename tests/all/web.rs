//! The browser verifier: the `check` API natively, the same API compiled to
//! wasm32 and run in Node.js (it must give the native report, field for
//! field), and the standalone `/verify` page in headless Chromium.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bitsage_prover::Receipt;
use bitsage_tests::node::{serve, TempDir};
use bitsage_tests::web::{package_dir, workload_receipts};
use bitsage_verify_wasm::{check, Expected, Rejection, Report};
use serde_json::Value;

/// The five workloads' attested receipts, made once for this module.
fn receipts() -> &'static [(&'static str, Vec<u8>)] {
    static R: OnceLock<Vec<(&'static str, Vec<u8>)>> = OnceLock::new();
    R.get_or_init(workload_receipts)
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 1;
    b
}

fn program_hex(bytes: &[u8]) -> String {
    hex::encode(Receipt::from_bytes(bytes).expect("decodes").program_digest())
}

fn rejected(r: &Report) -> Rejection {
    assert!(!r.valid, "accepted: {r:?}");
    assert!(r.error.as_deref().is_some_and(|e| !e.is_empty()), "no reason: {r:?}");
    r.error_kind.expect("a rejection names its kind")
}

/// A receipt with its attestation's `s` changed (re-encoded, so it decodes).
fn bent_attestation(bytes: &[u8]) -> Vec<u8> {
    let mut r = Receipt::from_bytes(bytes).expect("decodes");
    r.attestation.as_mut().expect("attested").s[31] ^= 1;
    r.to_bytes().expect("encodes")
}

#[test]
fn the_verifier_api_reports_each_receipt_like_the_cli() {
    let all = receipts();
    for (name, bytes) in all {
        let r = check(bytes, &Expected::default());
        let native = Receipt::from_bytes(bytes).expect("decodes");
        assert!(r.valid, "{name}: {r:?}");
        assert_eq!(r.program_digest.as_deref(), Some(program_hex(bytes).as_str()));
        assert_eq!(r.output, Some(native.body.statement.output.iter().map(|w| w.0).collect()));
        assert_eq!(r.module, native.body.module.map(hex::encode));
        let a = r.attestation.as_ref().expect("the attestation is shown");
        let checked = bitsage_settle::attest::check_receipt(&native).expect("native attestation check");
        assert_eq!(a.job_id, format!("{:#x}", checked.job_id));
        assert_eq!((a.evidence.as_str(), a.nonce.as_str()), ("software-signed", "web-test"));
        // Pinned to its own program and module: still valid.
        let own = Expected { program_digest: r.program_digest.clone(), module: r.module.clone() };
        assert!(check(bytes, &own).valid, "{name}");
    }
    let (_, custom) = &all[0];
    let (_, ml) = &all[1];
    // A byte flipped anywhere in the compressed frame: never valid with
    // other content. (zstd's encoding is not unique: a flip in an entropy
    // table's description can decode to the very same bytes, which is the
    // same receipt; every byte of that content is signed or checked, see
    // hostile_receipts::no_bit_of_an_attestation_record_changes_without_rejection.)
    let content = Receipt::content_of(custom).expect("content");
    let mut same = 0;
    for at in (10..custom.len()).step_by(custom.len() / 97) {
        let f = flipped(custom, at);
        let r = check(&f, &Expected::default());
        if r.valid {
            assert_eq!(Receipt::content_of(&f).ok().as_ref(), Some(&content), "byte {at}: valid with other content");
            same += 1;
            continue;
        }
        let k = rejected(&r);
        // (A flip in the attestation's bytes decodes, and fails its check.)
        assert!(
            matches!(k, Rejection::Malformed | Rejection::ProofRejected | Rejection::AttestationRejected),
            "byte {at}: {k:?}"
        );
    }
    assert!(same < 5, "{same} of 97 flips decode to the same content");
    // Another program's receipt, or another module's.
    let other = Expected { program_digest: Some(program_hex(ml)), ..Expected::default() };
    assert_eq!(rejected(&check(custom, &other)), Rejection::WrongProgram);
    let other = Expected { module: Some("ab".repeat(32)), ..Expected::default() };
    assert_eq!(rejected(&check(custom, &other)), Rejection::WrongModule);
    let junk = Expected { program_digest: Some("not hex".into()), ..Expected::default() };
    assert_eq!(rejected(&check(custom, &junk)), Rejection::BadExpectation);
    // A signature that does not verify, over an otherwise valid receipt.
    let r = check(&bent_attestation(custom), &Expected::default());
    assert_eq!(rejected(&r), Rejection::AttestationRejected);
    assert!(r.error.as_deref().is_some_and(|e| e.contains("signature")), "{r:?}");
    // Not a receipt at all, and a truncated one.
    assert_eq!(rejected(&check(b"hello", &Expected::default())), Rejection::Malformed);
    assert_eq!(rejected(&check(&custom[..custom.len() / 2], &Expected::default())), Rejection::Malformed);
}

/// A receipt file's header, then a zstd frame of `zeros` zero bytes made by a
/// streaming encoder (no declared content size) at `level`, with the window
/// `window_log` when given.
fn zstd_frame(zeros: usize, level: i32, window_log: Option<u32>) -> Vec<u8> {
    use std::io::Write;
    let mut out = bitsage_prover::receipt::MAGIC.to_vec();
    out.extend_from_slice(&bitsage_prover::receipt::FORMAT_VERSION.to_le_bytes());
    let mut enc = zstd::Encoder::new(out, level).expect("encoder");
    if let Some(w) = window_log {
        enc.window_log(w).expect("window log");
        enc.long_distance_matching(true).expect("long distance matching");
    }
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros >> 20 {
        enc.write_all(&chunk).expect("compress");
    }
    enc.finish().expect("frame")
}

/// The cases the wasm build must judge exactly as the native build does.
fn cases(dir: &Path) -> Vec<(String, PathBuf, Vec<u8>)> {
    let all = receipts();
    let mut cases: Vec<(String, Vec<u8>)> = all.iter().map(|(n, b)| (n.to_string(), b.clone())).collect();
    let custom = &all[0].1;
    cases.push(("flipped".into(), flipped(custom, custom.len() / 2)));
    cases.push(("flipped-header".into(), flipped(custom, 12)));
    cases.push(("truncated".into(), custom[..custom.len() - 100].to_vec()));
    cases.push(("bent-attestation".into(), bent_attestation(custom)));
    cases.push(("empty".into(), Vec::new()));
    // The decoder's caps, on the wasm build's own zstd decoder too: a bomb
    // (zeros past what the format allows) and a frame that asks for a
    // 128 MiB window.
    cases.push(("zstd-bomb".into(), zstd_frame(64 << 20, 3, None)));
    cases.push(("zstd-window-2^27".into(), zstd_frame(9 << 20, 1, Some(27))));
    cases
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(format!("{name}.receipt"));
            std::fs::write(&path, &bytes).expect("write receipt");
            (name, path, bytes)
        })
        .collect()
}

/// The part of a reason both builds word alike: a zstd frame that does not
/// decode is described by each decoder in its own words after the prefix.
fn common_reason(reason: &str) -> &str {
    match reason.find(bitsage_prover::receipt::ZSTD_ERROR) {
        Some(i) => &reason[..i + bitsage_prover::receipt::ZSTD_ERROR.len()],
        None => reason,
    }
}

/// A report as JSON, without the timing and file the Node.js CLI adds, and
/// with its reason cut to [`common_reason`].
fn comparable(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("verify_ms");
        o.remove("file");
        if let Some(e) = o.get("error").and_then(Value::as_str).map(|e| common_reason(e).to_string()) {
            o.insert("error".into(), Value::from(e));
        }
    }
    v
}

#[test]
fn the_wasm_build_gives_the_native_report_in_nodejs() {
    let pkg = package_dir();
    let dir = TempDir::new("web-node");
    let cases = cases(&dir.0);
    let run = |extra: &[&str], files: &[&PathBuf]| -> Vec<Value> {
        let out = std::process::Command::new("node")
            .arg(pkg.join("cli.mjs"))
            .args(extra)
            .args(files)
            .output()
            .expect("running node (Node.js)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.stderr.is_empty(), "node wrote to stderr: {}", String::from_utf8_lossy(&out.stderr));
        stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON report per line")).collect()
    };
    let files: Vec<&PathBuf> = cases.iter().map(|(_, p, _)| p).collect();
    let reports = run(&[], &files);
    assert_eq!(reports.len(), cases.len());
    for ((name, _, bytes), wasm) in cases.iter().zip(reports) {
        assert!(wasm["verify_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{name}: {wasm}");
        let native = serde_json::to_value(check(bytes, &Expected::default())).expect("serialises");
        let expect_error = match name.as_str() {
            "zstd-bomb" => Some("decodes to more than the format allows"),
            "zstd-window-2^27" => Some(bitsage_prover::receipt::ZSTD_ERROR),
            _ => None,
        };
        if let Some(expect_error) = expect_error {
            let error = wasm["error"].as_str().unwrap_or_default();
            assert!(error.contains(expect_error), "{name}: {error}");
        }
        assert_eq!(comparable(wasm), comparable(native), "{name}: the wasm verifier disagrees with the native one");
    }
    // Pinned to another program: the same rejection, in the same words.
    let other = program_hex(&receipts()[1].1);
    let wasm = run(&["--program", &other], &[&cases[0].1]).remove(0);
    let expected = Expected { program_digest: Some(other), ..Expected::default() };
    let native = serde_json::to_value(check(&cases[0].2, &expected)).expect("serialises");
    assert_eq!(comparable(wasm), comparable(native.clone()));
    assert_eq!(native["error_kind"], "wrong-program");
}

#[test]
fn the_verify_page_checks_receipts_in_headless_chromium() {
    package_dir();
    let dir = TempDir::new("web-chromium");
    let node = serve(&dir.0, &["--workers", "0"]);
    let cases = cases(&dir.0);
    let other = program_hex(&receipts()[1].1);
    let mut spec: Vec<Value> =
        cases.iter().map(|(name, path, _)| serde_json::json!({ "name": name, "file": path })).collect();
    spec.push(serde_json::json!({ "name": "other-program", "file": cases[0].1, "expect_program": other }));
    let spec_file = dir.0.join("cases.json");
    std::fs::write(&spec_file, serde_json::to_vec(&spec).expect("json")).expect("write cases");
    let shot = dir.0.join("verify.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboard/verify_page.cjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(&node.url)
        .arg(&spec_file)
        .arg("3")
        .arg(&shot)
        .output()
        .expect("running node (Node.js) for the Chromium script");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "verify page script failed:\n{log}");
    let seen: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(seen.len(), spec.len(), "{log}");
    for (case, page) in spec.iter().zip(&seen) {
        let name = case["name"].as_str().unwrap_or_default();
        let bytes =
            cases.iter().find(|(n, ..)| n == name).map(|(.., b)| b.clone()).unwrap_or_else(|| cases[0].2.clone());
        let expected = Expected { program_digest: case["expect_program"].as_str().map(String::from), module: None };
        let native = check(&bytes, &expected);
        let cls = if native.valid { "valid" } else { "invalid" };
        assert_eq!(page["cls"], cls, "{name}: {page}");
        let kind = native.error_kind.map(|k| serde_json::to_value(k).expect("kind")).unwrap_or(Value::from(""));
        assert_eq!(page["kind"], kind, "{name}: {page}");
        let text = page["text"].as_str().unwrap_or_default();
        match &native.error {
            // The page shows the reason.
            Some(reason) => assert!(text.contains(common_reason(reason)), "{name}: {text}"),
            None => {
                assert!(text.starts_with("valid: "), "{name}: {text}");
                assert_eq!(page["program"].as_str(), native.program_digest.as_deref(), "{name}");
            }
        }
        assert_eq!(page["ms"].as_array().map(Vec::len), Some(3), "{name}: {page}");
    }
    // The five workloads were valid, the others not.
    assert_eq!(seen.iter().filter(|p| p["cls"] == "valid").count(), 5, "{log}");
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "not a real screenshot");
}

#[test]
fn the_node_serves_the_verifier_and_its_wasm_module() {
    package_dir();
    let dir = TempDir::new("web-serve");
    let node = serve(&dir.0, &["--workers", "0"]);
    let get = |path: &str| ureq::get(&node.at(path)).call().map_err(|e| format!("{path}: {e}"));
    let page = get("/verify").expect("page");
    assert!(page.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/html")));
    let mut wasm = get("/verifier/pkg/bitsage_verify_wasm_bg.wasm").expect("wasm");
    assert_eq!(wasm.headers().get("content-type").map(|v| v.as_bytes()), Some(&b"application/wasm"[..]));
    let body = wasm.body_mut().with_config().limit(16 << 20).read_to_vec().expect("wasm body");
    let built = std::fs::read(package_dir().join("pkg/bitsage_verify_wasm_bg.wasm")).expect("built wasm");
    assert_eq!(body, built, "the node serves another build of the verifier than web/verifier/pkg");
    for js in ["/verifier/index.js", "/verifier/report.js", "/verifier/pkg/bitsage_verify_wasm.js"] {
        let r = get(js).expect("js");
        assert!(r.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/javascript")), "{js}");
    }
}
