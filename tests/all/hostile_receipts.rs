//! Crafted proofs and receipts, as a hostile worker would send them: none
//! may crash, abort or stall a verifier.
//!
//! - Every structural element of a valid proof is changed (every vector
//!   length in the proof and the claim, counts per tree, column and point, a
//!   word `>= p` in the field slots). Each batch verifies in a child process
//!   of this test binary, so an abort (a panic while unwinding) is seen as a
//!   signal instead of killing the run; a panic hook counts panics, caught or
//!   not. Required: no abort, no panic, every mutation rejected.
//! - A seeded fuzz of the receipt decoder with 100k inputs (random frames,
//!   mutated compressed files, mutated decompressed content).
//! - Oversized receipts (a zstd bomb, 16M declared input words, lying length
//!   prefixes, a proof larger than its claim allows) are refused within a
//!   time and peak-memory budget, measured in a child process.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bincode::Options;
use bitsage_air::verify::{Proof, VerifyError};
use bitsage_air::Statement;
use bitsage_prover::{Receipt, ReceiptError};
use bitsage_tests::*;
use stwo::core::fields::m31::{M31, P};
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::line::LinePoly;

const CHILD: &str = "BITSAGE_HOSTILE_CHILD";

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_limit(64 << 20)
}

/// The honest proof every mutation departs from: a program that touches
/// every component (RAM, a table, a hash).
fn honest() -> (Statement, Proof) {
    let p = asm(
        ".table sq 0:0 1:1 2:4 3:9\nread r1\nlookup r2, sq, r1\nstore [r0 + 3], r2\nhash [r0 + 0]\nload r4, [r0 + 5]\nlt r5, r4, r1\nwrite r4\nwrite r5\nhalt\n",
    );
    honest_proof(&p, &[3])
}

type Mutation = (String, Box<dyn Fn(&mut Proof)>);

fn bad_word() -> M31 {
    M31(P)
}

fn bad_qm31() -> SecureField {
    SecureField::from_m31(M31(1), M31(P), M31(2), M31(u32::MAX))
}

/// Every mutation of `proof`'s structure, in a fixed order (children rebuild
/// the same list from the same proof).
fn mutations(proof: &Proof) -> Vec<Mutation> {
    let mut out: Vec<Mutation> = Vec::new();
    let mut add = |name: String, f: Box<dyn Fn(&mut Proof)>| out.push((name, f));

    // The claim: every log size out of bounds and off by one; RAM words.
    for (i, field) in ["cpu", "rom", "mem", "hash", "range"].into_iter().enumerate() {
        // 17: above the largest range table, within the others' bounds.
        for v in [0u32, 3, 17, 24, 31, u32::MAX, 1, 2] {
            add(
                format!("claim.{field}_log_size = {v}"),
                Box::new(move |p: &mut Proof| {
                    let c = &mut p.claim;
                    let mut hash = c.hash_log_size.unwrap_or(4);
                    let s = [
                        &mut c.cpu_log_size,
                        &mut c.rom_log_size,
                        &mut c.mem_log_size,
                        &mut hash,
                        &mut c.range_log_size,
                    ];
                    match v {
                        1 => *s.into_iter().nth(i).unwrap() += 1,
                        2 => *s.into_iter().nth(i).unwrap() -= 1,
                        v => *s.into_iter().nth(i).unwrap() = v,
                    }
                    if i == 3 {
                        c.hash_log_size = Some(hash);
                    }
                }),
            );
        }
    }
    // The hash component taken away (this proof hashes): with its sum left
    // behind, or moved onto the CPU's so the sums still balance.
    add("claim.hash_log_size = None".into(), Box::new(|p: &mut Proof| p.claim.hash_log_size = None));
    add(
        "claim.hash_log_size = None, its sum moved to the CPU's".into(),
        Box::new(|p: &mut Proof| {
            p.claim.hash_log_size = None;
            p.interaction.cpu += p.interaction.hash;
            p.interaction.hash = SecureField::default();
        }),
    );
    for v in [u32::MAX, P, 1 << 20] {
        add(format!("claim.ram_words = {v}"), Box::new(move |p: &mut Proof| p.claim.ram_words = v));
    }
    add("claim.ram_words + 1".into(), Box::new(|p: &mut Proof| p.claim.ram_words += 1));
    // The LogUp sums: a word >= p in every coordinate of every sum.
    for (i, name) in ["cpu", "rom", "mem", "range", "hash"].into_iter().enumerate() {
        for coord in 0..4 {
            add(
                format!("interaction.{name}[{coord}] >= p"),
                Box::new(move |p: &mut Proof| {
                    let s = &mut p.interaction;
                    let v = [&mut s.cpu, &mut s.rom, &mut s.mem, &mut s.range, &mut s.hash].into_iter().nth(i).unwrap();
                    let mut c = v.to_m31_array();
                    c[coord] = if coord % 2 == 0 { bad_word() } else { M31(u32::MAX) };
                    *v = SecureField::from_m31_array(c);
                }),
            );
        }
    }
    // The configuration and the proof of work.
    add("config.pow_bits".into(), Box::new(|p: &mut Proof| p.stark.0.config.pow_bits += 1));
    add("config.n_queries - 1".into(), Box::new(|p: &mut Proof| p.stark.0.config.fri_config.n_queries -= 1));
    add("config.fold_step".into(), Box::new(|p: &mut Proof| p.stark.0.config.fri_config.fold_step = 3));
    add("config.log_blowup".into(), Box::new(|p: &mut Proof| p.stark.0.config.fri_config.log_blowup_factor = 2));
    add(
        "config.last_layer".into(),
        Box::new(|p: &mut Proof| p.stark.0.config.fri_config.log_last_layer_degree_bound = 1),
    );
    add("config.lifting".into(), Box::new(|p: &mut Proof| p.stark.0.config.lifting_log_size = Some(30)));
    add("proof_of_work".into(), Box::new(|p: &mut Proof| p.stark.0.proof_of_work ^= 1));

    let s = &proof.stark;
    // Commitments, and the per-tree vectors: one fewer, one more.
    add(
        "commitments - 1".into(),
        Box::new(|p: &mut Proof| {
            p.stark.0.commitments.pop();
        }),
    );
    add(
        "commitments + 1".into(),
        Box::new(|p: &mut Proof| {
            let c = p.stark.0.commitments[0];
            p.stark.0.commitments.push(c)
        }),
    );
    add(
        "sampled trees - 1".into(),
        Box::new(|p: &mut Proof| {
            p.stark.0.sampled_values.pop();
        }),
    );
    add("sampled trees + 1".into(), Box::new(|p: &mut Proof| p.stark.0.sampled_values.push(vec![])));
    add(
        "queried trees - 1".into(),
        Box::new(|p: &mut Proof| {
            p.stark.0.queried_values.pop();
        }),
    );
    add("queried trees + 1".into(), Box::new(|p: &mut Proof| p.stark.0.queried_values.push(vec![])));
    add(
        "decommitments - 1".into(),
        Box::new(|p: &mut Proof| {
            p.stark.0.decommitments.pop();
        }),
    );
    add(
        "decommitments + 1".into(),
        Box::new(|p: &mut Proof| {
            let d = p.stark.0.decommitments[1].clone();
            p.stark.0.decommitments.push(d)
        }),
    );
    for t in 0..s.sampled_values.len() {
        add(
            format!("sampled tree {t}: columns - 1"),
            Box::new(move |p: &mut Proof| {
                p.stark.0.sampled_values[t].pop();
            }),
        );
        add(
            format!("sampled tree {t}: columns + 1"),
            Box::new(move |p: &mut Proof| p.stark.0.sampled_values[t].push(vec![])),
        );
        add(
            format!("queried tree {t}: columns - 1"),
            Box::new(move |p: &mut Proof| {
                p.stark.0.queried_values[t].pop();
            }),
        );
        add(
            format!("queried tree {t}: columns + 1"),
            Box::new(move |p: &mut Proof| {
                let col = p.stark.0.queried_values[t].first().cloned().unwrap_or_default();
                p.stark.0.queried_values[t].push(col)
            }),
        );
        add(
            format!("decommitment {t}: hashes - 1"),
            Box::new(move |p: &mut Proof| {
                p.stark.0.decommitments[t].hash_witness.pop();
            }),
        );
        add(
            format!("decommitment {t}: hashes + 1"),
            Box::new(move |p: &mut Proof| {
                let c = p.stark.0.commitments[0];
                p.stark.0.decommitments[t].hash_witness.push(c)
            }),
        );
        // Every column: one point fewer and one more (the LogUp columns of
        // tree 2 are the observed abort), one queried row fewer and more.
        for c in 0..s.sampled_values[t].len() {
            add(
                format!("sampled tree {t} column {c}: points - 1"),
                Box::new(move |p: &mut Proof| {
                    p.stark.0.sampled_values[t][c].pop();
                }),
            );
            add(
                format!("sampled tree {t} column {c}: points + 1"),
                Box::new(move |p: &mut Proof| p.stark.0.sampled_values[t][c].push(SecureField::from(M31(1)))),
            );
            for k in 0..s.sampled_values[t][c].len() {
                add(
                    format!("sampled tree {t} column {c} point {k} >= p"),
                    Box::new(move |p: &mut Proof| p.stark.0.sampled_values[t][c][k] = bad_qm31()),
                );
            }
        }
        for c in 0..s.queried_values[t].len() {
            let rows = s.queried_values[t][c].len();
            add(
                format!("queried tree {t} column {c}: rows - 1"),
                Box::new(move |p: &mut Proof| {
                    p.stark.0.queried_values[t][c].pop();
                }),
            );
            add(
                format!("queried tree {t} column {c}: rows + 1"),
                Box::new(move |p: &mut Proof| p.stark.0.queried_values[t][c].push(M31(0))),
            );
            // A word >= p in the first, a middle and the last row of every
            // column.
            let mut ks = vec![0, rows / 2, rows.saturating_sub(1)];
            ks.dedup();
            for k in ks {
                add(
                    format!("queried tree {t} column {c} row {k} >= p"),
                    Box::new(move |p: &mut Proof| p.stark.0.queried_values[t][c][k] = bad_word()),
                );
            }
        }
    }
    // FRI: layer count, the last layer's size, every witness length, every
    // witness word.
    let fri = &s.fri_proof;
    add(
        "fri inner layers - 1".into(),
        Box::new(|p: &mut Proof| {
            p.stark.0.fri_proof.inner_layers.pop();
        }),
    );
    add(
        "fri inner layers + 1".into(),
        Box::new(|p: &mut Proof| {
            let l = p.stark.0.fri_proof.first_layer.clone();
            p.stark.0.fri_proof.inner_layers.push(l)
        }),
    );
    add(
        "fri last layer doubled".into(),
        Box::new(|p: &mut Proof| {
            let mut c = p.stark.0.fri_proof.last_layer_poly.to_vec();
            c.extend(c.clone());
            p.stark.0.fri_proof.last_layer_poly = LinePoly::new(c);
        }),
    );
    // The stored size disagrees with the coefficients (Stwo reads both).
    for log_size in [1u32, 5, u32::MAX] {
        add(
            format!("fri last layer log_size field = {log_size}"),
            Box::new(move |p: &mut Proof| {
                let mut b = codec().serialize(&p.stark.0.fri_proof.last_layer_poly).unwrap();
                let n = b.len();
                b[n - 4..].copy_from_slice(&log_size.to_le_bytes());
                p.stark.0.fri_proof.last_layer_poly = codec().deserialize(&b).unwrap();
            }),
        );
    }
    add("fri last layer >= p".into(), Box::new(|p: &mut Proof| p.stark.0.fri_proof.last_layer_poly[0] = bad_qm31()));
    let n_layers = 1 + fri.inner_layers.len();
    for l in 0..n_layers {
        let witness_len =
            if l == 0 { fri.first_layer.fri_witness.len() } else { fri.inner_layers[l - 1].fri_witness.len() };
        fn pick(
            p: &mut Proof,
            l: usize,
        ) -> &mut stwo::core::fri::FriLayerProof<stwo::core::vcs_lifted::blake2_merkle::Blake2sMerkleHasher> {
            let f = &mut p.stark.0.fri_proof;
            if l == 0 {
                &mut f.first_layer
            } else {
                &mut f.inner_layers[l - 1]
            }
        }
        add(
            format!("fri layer {l}: witness - 1"),
            Box::new(move |p: &mut Proof| {
                pick(p, l).fri_witness.pop();
            }),
        );
        add(
            format!("fri layer {l}: witness + 1"),
            Box::new(move |p: &mut Proof| pick(p, l).fri_witness.push(SecureField::from(M31(0)))),
        );
        add(
            format!("fri layer {l}: hashes - 1"),
            Box::new(move |p: &mut Proof| {
                pick(p, l).decommitment.hash_witness.pop();
            }),
        );
        add(
            format!("fri layer {l}: hashes + 1"),
            Box::new(move |p: &mut Proof| {
                let h = pick(p, l).commitment;
                pick(p, l).decommitment.hash_witness.push(h)
            }),
        );
        for k in 0..witness_len {
            add(
                format!("fri layer {l} witness {k} >= p"),
                Box::new(move |p: &mut Proof| pick(p, l).fri_witness[k] = bad_qm31()),
            );
        }
    }
    out
}

static PANICS: AtomicUsize = AtomicUsize::new(0);

/// The child's side: verify mutations `from..to`, one line each.
fn run_mutation_batch(dir: &std::path::Path, from: usize, to: usize) {
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        println!("PANIC {info}");
    }));
    let st: Statement = codec().deserialize(&std::fs::read(dir.join("statement")).unwrap()).unwrap();
    let proof: Proof = codec().deserialize(&std::fs::read(dir.join("proof")).unwrap()).unwrap();
    let list = mutations(&proof);
    let original = codec().serialize(&proof).unwrap();
    for (i, (name, f)) in list.iter().enumerate().take(to).skip(from) {
        println!("BEGIN {i}");
        let mut p = proof.clone();
        f(&mut p);
        // Popping an empty list changes nothing: not a mutation.
        if codec().serialize(&p).unwrap() == original {
            println!("NOOP {i} {name}");
            continue;
        }
        let r = bitsage_air::verify(&st, &p);
        let panics = PANICS.swap(0, Ordering::SeqCst);
        match r {
            Ok(()) => println!("ACCEPTED {i} {name}"),
            Err(e) if panics > 0 => println!("PANICKED {i} {name}: {e}"),
            Err(VerifyError::Malformed(m)) if m.contains("panick") => println!("PANICKED {i} {name}: {m}"),
            Err(e) => println!("REJECTED {i} {}", kind(&e)),
        }
    }
    println!("DONE");
}

fn kind(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Statement(_) => "statement",
        VerifyError::BadClaim(_) => "bad-claim",
        VerifyError::ConfigMismatch => "config",
        VerifyError::LogupImbalance => "logup",
        VerifyError::Stark(_) => "stark",
        VerifyError::Malformed(_) => "malformed",
    }
}

/// Re-runs this test binary as a child for one named test, with `env`.
fn child(test: &str, env: &[(&str, String)]) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads", "1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("child test process starts")
}

#[test]
fn every_structural_mutation_of_a_proof_is_rejected_without_a_crash() {
    const TEST: &str = "hostile_receipts::every_structural_mutation_of_a_proof_is_rejected_without_a_crash";
    if let Ok(spec) = std::env::var(CHILD) {
        let mut parts = spec.split(',');
        let dir = std::path::PathBuf::from(parts.next().unwrap());
        let from = parts.next().unwrap().parse().unwrap();
        let to = parts.next().unwrap().parse().unwrap();
        run_mutation_batch(&dir, from, to);
        return;
    }
    let (st, proof) = honest();
    let dir = std::env::temp_dir().join(format!("bitsage-mutations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("statement"), codec().serialize(&st).unwrap()).unwrap();
    std::fs::write(dir.join("proof"), codec().serialize(&proof).unwrap()).unwrap();
    let n = mutations(&proof).len();
    assert!(n > 5_000, "only {n} mutations");
    // Two children at a time (the CI machine has two cores).
    let batches = 8;
    let per = n.div_ceil(batches);
    let ranges: Vec<(usize, usize)> = (0..batches).map(|b| (b * per, ((b + 1) * per).min(n))).collect();
    let mut outputs = Vec::new();
    for pair in ranges.chunks(2) {
        let handles: Vec<_> = pair
            .iter()
            .map(|&(from, to)| {
                let spec = format!("{},{from},{to}", dir.display());
                std::thread::spawn(move || (from, to, child(TEST, &[(CHILD, spec)])))
            })
            .collect();
        outputs.extend(handles.into_iter().map(|h| h.join().unwrap()));
    }
    std::fs::remove_dir_all(&dir).ok();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let (mut rejected, mut noop) = (0, 0);
    for (from, to, out) in outputs {
        let text = String::from_utf8_lossy(&out.stdout);
        let last_begun = text.lines().rev().find_map(|l| l.strip_prefix("BEGIN ")).unwrap_or("none").to_string();
        assert!(
            out.status.success() && text.contains("DONE"),
            "child for mutations {from}..{to} died ({:?}) during mutation {last_begun}:\n{}\n{}",
            out.status,
            text.lines().rev().take(12).collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        );
        for line in text.lines() {
            assert!(!line.starts_with("ACCEPTED"), "a mutated proof was accepted: {line}");
            assert!(!line.starts_with("PANIC"), "the verifier panicked: {line}");
            noop += line.starts_with("NOOP ") as usize;
            if let Some(rest) = line.strip_prefix("REJECTED ") {
                rejected += 1;
                *kinds.entry(rest.split(' ').nth(1).unwrap_or("?").to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(rejected + noop, n, "every mutation must be reported rejected");
    assert!(noop < 16, "{noop} mutations changed nothing");
    println!("{} mutations: zero aborts, zero panics, all rejected {kinds:?}", n - noop);
}

/// The seeded generator of the fuzz inputs.
struct Rng(obelysk_vm::samples::Stream);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n.clamp(1, u32::MAX as usize) as u32) as usize
    }
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        if bytes.is_empty() {
            bytes.push(rng.next() as u8);
            continue;
        }
        let i = rng.below(bytes.len());
        match rng.below(6) {
            0 => bytes[i] ^= 1 << rng.below(8),
            1 => bytes[i] = rng.next() as u8,
            2 => bytes.truncate(i),
            3 => bytes.insert(i, rng.next() as u8),
            4 => {
                // A plausible-looking length or count: a u64 at i.
                let v = match rng.below(4) {
                    0 => u64::MAX,
                    1 => 1 << rng.below(40),
                    2 => rng.next() & 0xffff,
                    _ => rng.next(),
                };
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = bytes.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
            _ => {
                // A word at or above p at i.
                let v = P + (rng.next() as u32 % 3);
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(x) = bytes.get_mut(i + k) {
                        *x = *b;
                    }
                }
            }
        }
    }
}

#[test]
fn receipt_decoder_survives_100k_generated_inputs() {
    let (st, proof) = honest();
    let receipt = Receipt::new(st, proof).unwrap();
    let file = receipt.to_bytes().unwrap();
    let content = Receipt::content_of(&file).unwrap();
    let mut header = bitsage_prover::receipt::MAGIC.to_vec();
    header.extend_from_slice(&bitsage_prover::receipt::FORMAT_VERSION.to_le_bytes());
    const N: usize = 100_000;
    let t0 = Instant::now();
    let counts: Vec<(usize, usize)> = (0..2u64)
        .map(|thread| {
            let (file, content, header) = (file.clone(), content.clone(), header.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(obelysk_vm::samples::Stream(0x5eed_0000 + thread));
                let (mut ok, mut verified) = (0, 0);
                for i in 0..N / 2 {
                    let decoded = match i % 4 {
                        // The compressed file, mutated.
                        0 => {
                            let mut b = file.clone();
                            mutate(&mut rng, &mut b);
                            Receipt::from_bytes(&b)
                        }
                        // The decompressed content, mutated (the bincode
                        // layer, where lengths and words live).
                        1 | 2 => {
                            let mut c = content.clone();
                            mutate(&mut rng, &mut c);
                            Receipt::from_content(c)
                        }
                        // Random frames: a valid header then noise, or a
                        // real zstd frame of noise.
                        _ => {
                            let mut noise: Vec<u8> = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
                            let mut b = header.clone();
                            if rng.below(2) == 0 {
                                noise = zstd::encode_all(&noise[..], 1).unwrap();
                            }
                            b.extend(noise);
                            Receipt::from_bytes(&b)
                        }
                    };
                    if let Ok(r) = decoded {
                        ok += 1;
                        // What decodes must also verify or be rejected
                        // without a crash (a sample: verifying is slower).
                        if ok % 50 == 1 {
                            let _ = r.verify();
                            verified += 1;
                        }
                    }
                }
                (ok, verified)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("the decoder never panics"))
        .collect();
    println!(
        "receipt decoder: {N} inputs in {:.1} s, {} decoded, {} of those verified (no crash)",
        t0.elapsed().as_secs_f64(),
        counts.iter().map(|c| c.0).sum::<usize>(),
        counts.iter().map(|c| c.1).sum::<usize>()
    );
}

/// A receipt file around `content` (the bincode `(body, attestation)`
/// pair), compressed by a streaming encoder fed `content` then `zeros`
/// zero bytes, so a huge declared size costs the test no memory.
fn frame(content: &[u8], zeros: u64, tail: &[u8]) -> Vec<u8> {
    let mut out = bitsage_prover::receipt::MAGIC.to_vec();
    out.extend_from_slice(&bitsage_prover::receipt::FORMAT_VERSION.to_le_bytes());
    let mut enc = zstd::Encoder::new(out, 19).unwrap();
    enc.write_all(content).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    enc.write_all(tail).unwrap();
    enc.finish().unwrap()
}

/// The oversized cases, each as a file, with the error they must get.
fn oversized_cases() -> Vec<(&'static str, Vec<u8>)> {
    let (st, proof) = honest();
    let receipt = Receipt::new(st.clone(), proof.clone()).unwrap();
    let content = Receipt::content_of(&receipt.to_bytes().unwrap()).unwrap();
    let program = codec().serialize(&st.program).unwrap();
    let mut cases = Vec::new();

    // 1. A zstd bomb: 1 GiB of zeros in a few kilobytes.
    cases.push(("zstd bomb (1 GiB of zeros)", frame(&[], 1 << 30, &[])));
    // 2. A statement that declares 16M input words, all present (zeros).
    let mut head = Vec::new();
    head.extend_from_slice(&(u64::MAX / 2).to_le_bytes()); // body length: whatever follows
    head.extend_from_slice(&program);
    head.extend_from_slice(&(16u64 << 20).to_le_bytes());
    cases.push(("16M input words", frame(&head, 64 << 20, &[])));
    // 3. Lying length prefixes: the body, the input, the program.
    let mut lie = content.clone();
    lie[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    cases.push(("body length 2^64 - 1", frame(&lie, 0, &[])));
    // A body whose own length is consistent, so decoding reaches the list.
    let body = |prefix: &[u8], zeros: u64| {
        let mut head = (prefix.len() as u64 + zeros).to_le_bytes().to_vec();
        head.extend_from_slice(prefix);
        frame(&head, zeros, &[])
    };
    let mut prefix = program.clone();
    prefix.extend_from_slice(&(1u64 << 40).to_le_bytes());
    cases.push(("input length 2^40", body(&prefix, 4096)));
    cases.push(("2^21 instructions", body(&(1u64 << 21).to_le_bytes(), 4096)));
    let mut prefix = program.clone();
    prefix.extend_from_slice(&(1u64 << 19).to_le_bytes());
    cases.push(("2^19 input words, all present", body(&prefix, 4 << 19)));
    // 4. A proof larger than its claim allows: the honest body with 8 MiB of
    // junk inside the last FRI layer's length.
    let stmt = codec().serialize(&st).unwrap();
    let claims = codec().serialize(&(proof.claim, proof.interaction)).unwrap();
    let mut head = Vec::new();
    head.extend_from_slice(&(u64::MAX / 2).to_le_bytes());
    head.extend_from_slice(&stmt);
    head.extend_from_slice(&claims);
    cases.push(("proof of 8 MiB for a small claim", frame(&head, 8 << 20, &[])));
    cases
}

fn vm_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn oversized_receipts_are_refused_fast_and_in_bounded_memory() {
    const TEST: &str = "hostile_receipts::oversized_receipts_are_refused_fast_and_in_bounded_memory";
    let cases = oversized_cases();
    if let Ok(spec) = std::env::var(CHILD) {
        // Child: decode one case, report time and peak RSS growth.
        let i: usize = spec.parse().unwrap();
        let (_, bytes) = &cases[i];
        let mut best = f64::MAX;
        let mut peak = 0;
        for _ in 0..3 {
            // Reset the peak-RSS mark, then decode.
            std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
            let base = vm_kib("VmRSS:");
            let t0 = Instant::now();
            let r = Receipt::from_bytes(bytes);
            best = best.min(t0.elapsed().as_secs_f64() * 1e3);
            peak = peak.max(vm_kib("VmHWM:").saturating_sub(base));
            let e = r.expect_err("an oversized receipt is refused");
            assert!(matches!(e, ReceiptError::TooLarge(_) | ReceiptError::Corrupt(_)), "{e}");
            println!("ERROR {e}");
        }
        println!("RESULT {best:.2} {peak}");
        return;
    }
    println!("{:<36} {:>10} {:>10} {:>14}", "case", "file KiB", "ms", "peak MiB");
    for (i, (name, bytes)) in cases.iter().enumerate() {
        let out = child(TEST, &[(CHILD, i.to_string())]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: child failed\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        let result = text.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("child reports");
        let mut it = result.split(' ');
        let ms: f64 = it.next().unwrap().parse().unwrap();
        let kib: u64 = it.next().unwrap().parse().unwrap();
        println!("{name:<36} {:>10} {ms:>10.2} {:>14.1}", bytes.len() / 1024, kib as f64 / 1024.0);
        assert!(ms <= 50.0, "{name}: refused after {ms:.1} ms (budget 50 ms)");
        assert!(kib <= 64 * 1024, "{name}: decoding peaked at {} MiB (budget 64 MiB)", kib / 1024);
    }
}

/// No byte of an attested receipt's attestation record can change while the
/// receipt still passes: each bit of the record (and of its presence tag) is
/// flipped in the decompressed content, recompressed into a well-formed
/// file, and the file must fail to decode or fail `check_receipt`. (The
/// signature covers the job id, worker, module, program, input and output
/// words, proof and input document; the nonce enters the job id; the
/// evidence kind must be a known one.)
#[test]
fn no_bit_of_an_attestation_record_changes_without_rejection() {
    use bitsage_settle::attest::{attest_receipt, check_receipt};
    use bitsage_settle::keystore::WorkerKey;
    use bitsage_settle::tee::Evidence;
    let (st, proof) = honest();
    let mut receipt = Receipt::with_module(st, proof, Some([7; 32])).unwrap();
    let worker = bitsage_settle::attest::Felt::from(0xb175a6e_u64);
    attest_receipt(&mut receipt, &WorkerKey::generate(), worker, [3; 32], "hostile-1", Evidence::SoftwareSigned)
        .expect("attests");
    let content = Receipt::content_of(&receipt.to_bytes().unwrap()).unwrap();
    let record = codec().serialize(receipt.attestation.as_ref().unwrap()).unwrap();
    check_receipt(&Receipt::from_bytes(&frame(&content, 0, &[])).unwrap()).expect("the honest record checks");
    let start = content.len() - record.len() - 1;
    assert_eq!(content[start], 1, "the record's Option tag precedes it");
    let mut tried = 0;
    for at in start..content.len() {
        for bit in 0..8 {
            let mut bent = content.clone();
            bent[at] ^= 1 << bit;
            if let Ok(r) = Receipt::from_bytes(&frame(&bent, 0, &[])) {
                let verdict = check_receipt(&r);
                assert!(verdict.is_err(), "byte {} bit {bit} of the record changed and it still checks", at - start);
            }
            tried += 1;
        }
    }
    assert_eq!(tried, (record.len() + 1) * 8);
}
