//! The five workloads, run as components in the sandbox, proved and
//! verified; each receipt rejects a changed output and flipped proof bytes.
//! Every expected value is computed here independently of the guest.

use std::sync::OnceLock;

use bitsage_prover::{prove_trace, ProveOptions, Receipt};
use bitsage_sandbox::{Run, Sandbox, SandboxConfig, SandboxError};
use bitsage_tests::merkle::{self, hash};
use bitsage_tests::{assert_byte_flips_rejected, guests};
use obelysk_vm::M31;
use serde_json::{json, Value};

fn sandbox() -> &'static Sandbox {
    static S: OnceLock<Sandbox> = OnceLock::new();
    S.get_or_init(|| Sandbox::new(SandboxConfig::default()).expect("sandbox"))
}

fn run(name: &str, input: &[u8]) -> Result<Run, SandboxError> {
    let module = sandbox().load(&guests::bytes(name))?;
    sandbox().run(&module, input)
}

fn report(run: &Run) -> Value {
    serde_json::from_slice(&run.report).expect("workloads report JSON")
}

/// Proves the run, checks the receipt verifies and survives a round trip
/// through its file format, then tampers with it.
fn prove_and_tamper(name: &str, run: &Run) {
    let rec = &run.recorded;
    let st = bitsage_tests::statement_of(rec);
    let (proof, _) = prove_trace(&st, &rec.trace, &ProveOptions::default()).expect("honest run proves");
    let digest = [7u8; 32];
    let receipt = Receipt::with_module(st.clone(), proof.clone(), Some(digest)).expect("encodes");
    let again = Receipt::from_bytes(&receipt.to_bytes().expect("compresses")).expect("decodes");
    again.verify().unwrap_or_else(|e| panic!("{name}: honest receipt rejected: {e}"));
    assert_eq!(again.body.module, Some(digest));

    // A changed public output word, a changed input word, a changed program.
    let mut bad = st.clone();
    bad.output[0] += M31(1);
    assert!(bitsage_air::verify(&bad, &proof).is_err(), "{name}: changed output accepted");
    if !st.input.is_empty() {
        let mut bad = st.clone();
        bad.input[0] += M31(1);
        assert!(bitsage_air::verify(&bad, &proof).is_err(), "{name}: changed input accepted");
    }
    let mut bad = st.clone();
    bad.program.instrs.swap(0, 1);
    assert!(bitsage_air::verify(&bad, &proof).is_err(), "{name}: changed program accepted");
    // Proof bytes across the whole proof.
    assert_byte_flips_rejected(&st, &proof, |len| (0..len).step_by(len / 40).collect());
}

#[test]
fn custom_template_adds() {
    let r = run("custom", b"[20, 22]").expect("runs");
    assert_eq!(r.recorded.trace.output, vec![M31(42)]);
    assert_eq!(report(&r), json!({ "sum": 42 }));
    prove_and_tamper("custom", &r);
}

#[derive(serde::Deserialize)]
struct Heldout {
    images: Vec<Vec<u32>>,
    labels: Vec<u32>,
    scores: Vec<Vec<i64>>,
}

fn signed(v: M31) -> i64 {
    if v.0 > (1 << 30) {
        v.0 as i64 - ((1i64 << 31) - 1)
    } else {
        v.0 as i64
    }
}

#[test]
fn ml_inference_matches_the_quantised_reference_on_every_heldout_digit() {
    let h: Heldout =
        serde_json::from_str(include_str!("../../workloads/ml-inference/heldout.json")).expect("heldout.json");
    let module = sandbox().load(&guests::bytes("ml_inference")).expect("loads");
    let mut correct = 0;
    for (i, image) in h.images.iter().enumerate() {
        let input = serde_json::to_vec(&json!({ "image": image })).expect("json");
        let r = sandbox().run(&module, &input).unwrap_or_else(|e| panic!("image {i}: {e}"));
        let out = &r.recorded.trace.output;
        let scores: Vec<i64> = out[..10].iter().map(|&v| signed(v)).collect();
        assert_eq!(scores, h.scores[i], "image {i}: VM scores differ from the numpy reference");
        let class = out[10].0;
        let reference =
            h.scores[i].iter().enumerate().fold(0, |best, (k, &s)| if s > h.scores[i][best] { k } else { best });
        assert_eq!(class as usize, reference, "image {i}: argmax");
        correct += (class == h.labels[i]) as usize;
    }
    let accuracy = correct as f64 / h.images.len() as f64;
    assert!(accuracy >= 0.90, "accuracy {accuracy:.3} below 0.90");
    assert!(h.images.len() >= 300, "the held-out set is the 20% split");
}

#[test]
fn ml_inference_proves() {
    let r = run("ml_inference", &guests::example("ml-inference.json")).expect("runs");
    assert_eq!(report(&r)["class"], json!(9));
    prove_and_tamper("ml-inference", &r);
}

#[test]
fn ml_inference_refuses_a_malformed_image() {
    let e = run("ml_inference", br#"{"image": [1, 2, 3]}"#).unwrap_err();
    assert!(matches!(&e, SandboxError::GuestError { message } if message.contains("64 pixels")), "{e}");
}

/// What the data-transform example's query should give, computed from the CSV.
fn expected_groups(csv: &str, min_amount: u32) -> Vec<Value> {
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    for line in csv.lines().skip(1).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let amount: u32 = f[3].parse().expect("number");
        if amount < min_amount {
            continue;
        }
        match groups.iter_mut().find(|(k, _)| k == f[0]) {
            Some((_, v)) => v.push(amount),
            None => groups.push((f[0].to_string(), vec![amount])),
        }
    }
    groups
        .into_iter()
        .map(|(k, v)| {
            json!({ "key": k, "count": v.len(), "sum": v.iter().sum::<u32>(),
                    "min": v.iter().min(), "max": v.iter().max() })
        })
        .collect()
}

#[test]
fn data_transform_aggregates_privately() {
    let input = guests::example("data-transform.json");
    let r = run("data_transform", &input).expect("runs");
    let rep = report(&r);
    let csv =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/data-transform.csv")).expect("csv");
    assert_eq!(rep["groups"], json!(expected_groups(&csv, 800)));
    assert_eq!(rep["rows"], json!(12));
    assert_eq!(rep["matched"], json!(10));
    // The statement holds no row: no public input, and no output word is a
    // raw amount except the aggregates.
    assert!(r.recorded.input.is_empty());
    // A different salt gives a different commitment over the same rows.
    let mut other: Value = serde_json::from_slice(&input).expect("json");
    other["salt"] = json!([1, 2, 3, 4]);
    let r2 = run("data_transform", &serde_json::to_vec(&other).expect("json")).expect("runs");
    assert_ne!(report(&r2)["commitment"], rep["commitment"]);
    assert_eq!(report(&r2)["groups"], rep["groups"]);
    prove_and_tamper("data-transform", &r);
}

#[test]
fn privacy_transfer_outputs_only_commitments() {
    let r = run("privacy_transfer", &guests::example("privacy-transfer.json")).expect("runs");
    let commit = |balance: u32, salt: [u32; 4]| {
        let w: Vec<M31> = std::iter::once(balance).chain(salt).map(M31).collect();
        hash(1, &w).to_vec()
    };
    let expected: Vec<M31> = [
        commit(1000, [11, 22, 33, 44]),
        commit(250, [55, 66, 77, 88]),
        commit(700, [101, 202, 303, 404]),
        commit(550, [505, 606, 707, 808]),
    ]
    .concat();
    assert_eq!(r.recorded.trace.output, expected);
    assert!(r.recorded.input.is_empty());
    prove_and_tamper("privacy-transfer", &r);
}

#[test]
fn privacy_transfer_cannot_overdraw() {
    let mut input: Value = serde_json::from_slice(&guests::example("privacy-transfer.json")).expect("json");
    input["amount"] = json!(1001);
    let e = run("privacy_transfer", &serde_json::to_vec(&input).expect("json")).unwrap_err();
    assert!(matches!(&e, SandboxError::GuestError { .. }), "{e}");
}

#[test]
fn batch_verify_checks_membership() {
    let r = run("batch_verify", &guests::example("batch-verify.json")).expect("runs");
    let accounts: Vec<u32> = (0..16).map(|i| 100_000 + 7919 * i).collect();
    let root = merkle::Tree::new(&accounts, 4).root();
    assert_eq!(&r.recorded.trace.output[..4], &root);
    assert_eq!(r.recorded.trace.output[8], M31(4));
    prove_and_tamper("batch-verify", &r);
}

#[test]
fn batch_verify_rejects_a_non_member() {
    let accounts: Vec<u32> = (0..16).map(|i| 100_000 + 7919 * i).collect();
    let mut input = merkle::batch_input(&accounts, 4, &[3]);
    input["proofs"][0]["leaf"] = json!(424242);
    let e = run("batch_verify", &serde_json::to_vec(&input).expect("json")).unwrap_err();
    assert!(matches!(&e, SandboxError::Vm(obelysk_vm::ExecError::LookupMiss { .. })), "{e}");
    // A wrong direction bit fails the same way.
    let mut input = merkle::batch_input(&accounts, 4, &[3]);
    input["proofs"][0]["index"] = json!(2);
    let e = run("batch_verify", &serde_json::to_vec(&input).expect("json")).unwrap_err();
    assert!(matches!(&e, SandboxError::Vm(_)), "{e}");
}
