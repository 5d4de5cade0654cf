//! Settlement on a real local Starknet (starknet-devnet 0.10.1): our
//! contracts deployed from `scripts/build-contracts.sh`'s output, the real
//! `bitsage-host` binary for every role (deployer, worker node, client,
//! three validators), and direct contract calls for what the CLI never
//! sends (unauthorised calls, replays).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use bitsage_prover::receipt::AttestationRecord;
use bitsage_prover::Receipt;
use bitsage_settle::attest::{attest, attest_receipt, attested_for, check_receipt, JobSpec};
use bitsage_settle::chain::{Chain, ChainError, Deployment, JobState, Wallet, UNIT};
use bitsage_settle::keystore::WorkerKey;
use bitsage_settle::tee::Evidence;
use bitsage_settle::validator::ReceiptSource;
use bitsage_settle::Felt;
use bitsage_tests::devnet::{contracts_dir, Devnet, STRK};
use bitsage_tests::guests;
use bitsage_tests::node::{apikey, get, host_bin, serve_with_env, TempDir};
use serde_json::Value;
use starknet_rust::core::types::Call;
use starknet_rust::core::utils::get_selector_from_name;

const PASSWORD: &str = "correct horse";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        let last = self.stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs `bitsage-host` with the chain settings of one role.
struct Role {
    name: &'static str,
    dir: PathBuf,
    address: String,
    rpc: String,
    deployment: PathBuf,
}

impl Role {
    fn cmd(&self, args: &[&str], password: &str) -> Out {
        let mut cmd = Command::new(host_bin());
        cmd.args(args);
        if !matches!(args[0], "verify" | "spec-hash") {
            cmd.arg("--data-dir").arg(&self.dir);
        }
        let out = cmd
            .env("BITSAGE_KEYSTORE_PASSWORD", password)
            .env("BITSAGE_RPC", &self.rpc)
            .env("BITSAGE_ACCOUNT", &self.address)
            .env("BITSAGE_DEPLOYMENT", &self.deployment)
            .env("BITSAGE_LOG", "warn")
            .output()
            .expect("running bitsage-host");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> Out {
        let o = self.cmd(args, PASSWORD);
        assert_eq!(o.code, 0, "{}: bitsage-host {args:?} failed:\n{}\n{}", self.name, o.stdout, o.stderr);
        o
    }

    /// Expects exit `code` with `message` in stderr.
    fn refused(&self, args: &[&str], code: i32, message: &str) {
        let o = self.cmd(args, PASSWORD);
        assert_eq!(o.code, code, "{}: bitsage-host {args:?}: {}\n{}", self.name, o.stdout, o.stderr);
        assert!(o.stderr.contains(message), "{}: {args:?}: wanted {message:?} in {}", self.name, o.stderr);
    }

    fn key(&self) -> WorkerKey {
        WorkerKey::load(&self.dir.join("keys/worker.json"), PASSWORD).expect("keystore opens")
    }

    fn felt(&self) -> Felt {
        Felt::from_hex(&self.address).expect("address")
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime")
}

fn call(to: Felt, name: &str, calldata: Vec<Felt>) -> Call {
    Call { to, selector: get_selector_from_name(name).expect("selector"), calldata }
}

fn reverted(r: Result<Felt, ChainError>, reason: &str) {
    match r {
        Err(ChainError::Reverted { reason: got }) => assert_eq!(got, reason),
        other => panic!("wanted a revert with {reason:?}, got {other:?}"),
    }
}

fn tokens(n: u128) -> u128 {
    n * UNIT
}

/// One role per devnet account, each with its keystore imported by `setup
/// --import` (checked not to hold the key in the clear).
fn roles(devnet: &Devnet, tmp: &TempDir, deployment: &std::path::Path, names: &[&'static str]) -> Vec<Role> {
    let roles: Vec<Role> = names
        .iter()
        .zip(&devnet.accounts)
        .map(|(name, acct)| Role {
            name,
            dir: tmp.0.join(name),
            address: acct.address.clone(),
            rpc: devnet.url.clone(),
            deployment: deployment.to_path_buf(),
        })
        .collect();
    for (role, acct) in roles.iter().zip(&devnet.accounts) {
        let out = Command::new(host_bin())
            .args(["setup", "--import", "--data-dir"])
            .arg(&role.dir)
            .env("BITSAGE_IMPORT_KEY", &acct.private_key)
            .env("BITSAGE_KEYSTORE_PASSWORD", PASSWORD)
            .output()
            .expect("setup");
        assert!(out.status.success(), "setup --import: {}", String::from_utf8_lossy(&out.stderr));
        // The key is never in the clear on disk.
        let file = std::fs::read_to_string(role.dir.join("keys/worker.json")).expect("keystore");
        let secret = acct.private_key.trim_start_matches("0x").trim_start_matches('0');
        assert!(!file.to_ascii_lowercase().contains(secret), "{}: the keystore holds the key in the clear", role.name);
    }
    roles
}

/// `chain deploy` by `deployer`, with `treasury` and `pool` as the payees:
/// unbonding 100 s, validators need 1,000 staked, a rejected result costs 500.
fn deploy(deployer: &Role, treasury: &Role, pool: &Role) -> Deployment {
    let contracts = contracts_dir();
    deployer.ok(&[
        "chain",
        "deploy",
        "--token",
        STRK,
        "--treasury",
        &treasury.address,
        "--stakers-pool",
        &pool.address,
        "--unbonding-secs",
        "100",
        "--min-validator-stake",
        "1000",
        "--slash-amount",
        "500",
        "--contracts",
        contracts.to_str().expect("utf8"),
        "--deployment",
        deployer.deployment.to_str().expect("utf8"),
    ]);
    Deployment::load(&deployer.deployment).expect("deployment file")
}

#[test]
fn settlement_lifecycle_on_a_real_devnet() {
    let devnet = Devnet::start(8);
    let tmp = TempDir::new("settle");
    let deployment = tmp.0.join("deployment.json");
    let names = ["deployer", "worker", "validator-a", "validator-b", "validator-c", "client", "treasury", "pool"];
    let roles = roles(&devnet, &tmp, &deployment, &names);
    for role in &roles[..6] {
        devnet.mint(&role.address, 100_000);
    }
    let [deployer, worker, va, vb, vc, client, treasury, pool] = &roles[..] else { unreachable!() };

    let d = deploy(deployer, treasury, pool);
    let rt = rt();
    let chain = Chain::new(&devnet.url, Some(d.clone())).expect("chain");
    let balance = |who: &Role| rt.block_on(chain.balance_of(d.token, who.felt())).expect("balance");
    // A role's account, for the calls the CLI never makes.
    let wallet = |who: &Role| {
        let chain = Chain::new(&devnet.url, Some(d.clone())).expect("chain");
        rt.block_on(Wallet::connect(chain, who.felt(), &who.key())).expect("wallet")
    };

    // Worker: wrong password, more than it holds, then a Workstation stake.
    let o = worker.cmd(&["stake", "--amount", "2500"], "wrong password");
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("password is wrong"), "{}", o.stderr);
    worker.refused(&["stake", "--amount", "200000"], 24, "insufficient balance");
    worker.ok(&["stake", "--amount", "2500"]);
    let info = worker.ok(&["info", "--json"]).json();
    assert_eq!(info["stake"], "2500");
    assert_eq!(info["tier"], "Workstation");
    assert_eq!(info["public_key"].as_str(), Some(format!("{:#x}", worker.key().public_key()).as_str()));
    // Staking below the minimum does not make a validator.
    va.ok(&["stake", "--amount", "999"]);
    va.refused(&["validator", "register"], 24, "stake below minimum");
    va.ok(&["stake", "--amount", "1"]);
    for v in [va, vb, vc] {
        if v.name != "validator-a" {
            v.ok(&["stake", "--amount", "1000"]);
        }
        v.ok(&["validator", "register"]);
    }
    assert_eq!(rt.block_on(chain.validator_count()).expect("count"), 3);

    // The worker's node: attests every receipt and settles on chain.
    let node = serve_with_env(
        &worker.dir,
        &[
            "--open-mode",
            "--account",
            &worker.address,
            "--rpc",
            &devnet.url,
            "--deployment",
            deployment.to_str().expect("utf8"),
        ],
        &[("BITSAGE_KEYSTORE_PASSWORD", PASSWORD)],
    );
    let key = apikey(&worker.dir, None, "client", "client");
    let wasm = guests::dir().join("privacy_transfer.wasm");
    let input = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/privacy-transfer.json"));

    // Client: escrow 100, submit, wait for the verified receipt.
    let client_before = balance(client);
    let escrow_before = rt.block_on(chain.balance_of(d.token, d.escrow)).expect("escrow balance");
    let receipt_file = tmp.0.join("paid.receipt");
    let submitted = client
        .ok(&[
            "submit",
            wasm.to_str().expect("utf8"),
            "--input",
            input.to_str().expect("utf8"),
            "--pay",
            "100",
            "--url",
            &node.url,
            "--key",
            &key,
            "--wait",
            receipt_file.to_str().expect("utf8"),
            "--json",
        ])
        .json();
    assert_eq!(rt.block_on(chain.balance_of(d.token, d.escrow)).expect("escrow"), escrow_before + tokens(100));
    assert!(client_before - balance(client) > tokens(100), "the client paid the deposit and its fees");
    let job_id = submitted["id"].as_str().expect("job id").to_string();
    let spec = submitted["spec_hash"].as_str().expect("spec hash").to_string();
    let spec_felt = Felt::from_hex(&spec).expect("felt");

    // The node submitted the attested result: the job is settling.
    let start = Instant::now();
    let job = loop {
        let j = get(&node.at(&format!("/v1/jobs/{job_id}")), Some(&key)).json();
        if j["state"] == "settling" {
            break j;
        }
        assert!(j["state"] != "failed" && start.elapsed() < Duration::from_secs(120), "{j}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(job["settle_tx"].is_string(), "{job}");
    let escrowed = rt.block_on(chain.job(spec_felt)).expect("job");
    assert_eq!(escrowed.state, JobState::Submitted);
    assert_eq!(escrowed.worker, worker.felt());
    // The receipt the client got carries the attestation the chain holds.
    let receipt = Receipt::from_bytes(&std::fs::read(&receipt_file).expect("receipt")).expect("decodes");
    let checked = check_receipt(&receipt).expect("attestation verifies");
    assert_eq!((checked.job_id, checked.worker_address), (spec_felt, worker.felt()));
    assert_eq!(checked.message_hash, escrowed.result_hash);
    assert_eq!(checked.evidence, "software-signed");
    // A replayed result is refused.
    let replay_file = tmp.0.join("replay.bin");
    std::fs::write(&replay_file, receipt.to_bytes().expect("encodes")).expect("write");
    worker.refused(&["settle", replay_file.to_str().expect("utf8")], 24, "job not open");

    // Validators fetch the receipt from the node, verify and vote; two of
    // three is the quorum. Nothing the worker does moves its balance meanwhile.
    let (w0, t0, p0) = (balance(worker), balance(treasury), balance(pool));
    let voted = va.ok(&["validator", "run", "--once", "--node", &node.url, "--json"]);
    assert!(voted.stdout.contains("\"valid\":true"), "{}", voted.stdout);
    assert_eq!(rt.block_on(chain.job(spec_felt)).expect("job").state, JobState::Submitted, "one vote is no quorum");
    vb.ok(&["validator", "run", "--once", "--node", &node.url]);
    let paid = rt.block_on(chain.job(spec_felt)).expect("job");
    assert_eq!((paid.state, paid.valid_votes), (JobState::Paid, 2));
    assert_eq!(balance(worker) - w0, tokens(80), "80% to the worker");
    assert_eq!(balance(treasury) - t0, tokens(18), "18% to the treasury");
    assert_eq!(balance(pool) - p0, tokens(2), "2% to the stakers' pool");
    assert_eq!(rt.block_on(chain.balance_of(d.token, d.escrow)).expect("escrow"), escrow_before);
    // The third validator finds nothing left to judge.
    let late = vc.ok(&["validator", "run", "--once", "--node", &node.url]);
    assert!(late.stdout.trim().is_empty(), "{}", late.stdout);
    // The node sees the payment.
    let start = Instant::now();
    while get(&node.at(&format!("/v1/jobs/{job_id}")), Some(&key)).json()["state"] != "settled" {
        assert!(start.elapsed() < Duration::from_secs(30), "the node never saw the payment");
        std::thread::sleep(Duration::from_millis(200));
    }
    let info = worker.ok(&["info", "--json"]).json();
    assert_eq!((info["earnings"].as_str(), info["pending_jobs"].as_array().map(Vec::len)), (Some("80"), Some(0)));
    let status = worker.ok(&["status", "--json"]).json();
    assert_eq!((status["validators"].as_u64(), status["jobs"]["paid"].as_u64()), (Some(3), Some(1)));
    assert_eq!(status["account"]["earnings"], "80");

    // A deposit that arrives after the node proved the job: the node sees
    // the Deposited event and settles it then.
    let late = client
        .ok(&[
            "submit",
            wasm.to_str().expect("utf8"),
            "--input",
            input.to_str().expect("utf8"),
            "--nonce",
            "late-1",
            "--url",
            &node.url,
            "--key",
            &key,
            "--wait",
            tmp.0.join("late.bin").to_str().expect("utf8"),
            "--json",
        ])
        .json();
    let late_id = late["id"].as_str().expect("id").to_string();
    let late_spec = late["spec_hash"].as_str().expect("spec").to_string();
    assert_eq!(get(&node.at(&format!("/v1/jobs/{late_id}")), Some(&key)).json()["state"], "proved");
    let spec_args =
        ["spec-hash", wasm.to_str().expect("utf8"), "--input", input.to_str().expect("utf8"), "--nonce", "late-1"];
    let computed = client.ok(&spec_args).stdout.trim().to_string();
    assert_eq!(
        Felt::from_hex(&computed).ok(),
        Felt::from_hex(&late_spec).ok(),
        "client and node agree on the spec hash"
    );
    let deposit = |nonce: &str, amount: &str| {
        vec![
            "deposit".to_string(),
            wasm.to_str().expect("utf8").to_string(),
            "--input".into(),
            input.to_str().expect("utf8").into(),
            "--nonce".into(),
            nonce.into(),
            "--amount".into(),
            amount.into(),
        ]
    };
    let dep = deposit("late-1", "50");
    client.ok(&dep.iter().map(String::as_str).collect::<Vec<_>>());
    let start = Instant::now();
    while get(&node.at(&format!("/v1/jobs/{late_id}")), Some(&key)).json()["state"] != "settling" {
        assert!(start.elapsed() < Duration::from_secs(30), "the node never settled the late deposit");
        std::thread::sleep(Duration::from_millis(200));
    }
    for v in [vc, va] {
        v.ok(&["validator", "run", "--once", "--node", &node.url]);
    }
    assert_eq!(rt.block_on(chain.job(Felt::from_hex(&late_spec).expect("felt"))).expect("job").state, JobState::Paid);

    // A lying worker: the receipt's public output is changed after proving
    // and the lie is signed. The chain accepts the signature; the validators
    // run the verifier, reject it, and the worker is slashed.
    let lie = tmp.0.join("lie");
    std::fs::create_dir_all(&lie).expect("dir");
    let honest = tmp.0.join("honest.bin");
    worker.ok(&[
        "run",
        wasm.to_str().expect("utf8"),
        "--input",
        input.to_str().expect("utf8"),
        "--out",
        honest.to_str().expect("utf8"),
        "--attest",
        "--nonce",
        "lie-1",
    ]);
    let honest_receipt = Receipt::from_bytes(&std::fs::read(&honest).expect("read")).expect("decodes");
    let spec_lie = check_receipt(&honest_receipt).expect("attested").job_id;
    let mut statement = honest_receipt.body.statement.clone();
    statement.output[0].0 ^= 1;
    let mut forged = Receipt::with_module(statement, honest_receipt.body.proof.clone(), honest_receipt.body.module)
        .expect("receipt");
    let rec = honest_receipt.attestation.clone().expect("record");
    attest_receipt(&mut forged, &worker.key(), worker.felt(), rec.input, &rec.nonce, Evidence::SoftwareSigned)
        .expect("the worker signs its lie");
    let forged_file = lie.join(ReceiptSource::file_name(spec_lie));
    std::fs::write(&forged_file, forged.to_bytes().expect("encodes")).expect("write");
    let v = worker.cmd(&["verify", forged_file.to_str().expect("utf8")], PASSWORD);
    assert_eq!(v.code, 1, "the verifier must reject the changed output: {}", v.stdout);
    let dep = deposit("lie-1", "100");
    let dep: Vec<&str> = dep.iter().map(String::as_str).collect();
    let deposited = client.ok(&[&dep[..], &["--json"]].concat()).json();
    assert_eq!(deposited["job_id"].as_str().and_then(|h| Felt::from_hex(h).ok()), Some(spec_lie));
    client.refused(&dep, 24, "job exists");
    // The escrow holds the statement the job pays for.
    let committed = rt.block_on(chain.job_spec(spec_lie)).expect("spec");
    let lie_spec = JobSpec::of_receipt(&honest_receipt, "lie-1").expect("spec");
    assert_eq!(committed, lie_spec.felts().expect("felts"));
    worker.ok(&["settle", forged_file.to_str().expect("utf8")]);
    let (c0, s0) = (balance(client), rt.block_on(chain.stake_of(worker.felt())).expect("stake"));
    let judged = va.ok(&["validator", "run", "--once", "--receipts", lie.to_str().expect("utf8"), "--json"]);
    assert!(
        judged.stdout.contains("\"valid\":false") && judged.stdout.contains("does not verify"),
        "{}",
        judged.stdout
    );
    // A second vote from the same validator is refused.
    let va_wallet = wallet(va);
    reverted(rt.block_on(va_wallet.vote(spec_lie, false)), "already voted");
    vb.ok(&["validator", "run", "--once", "--receipts", lie.to_str().expect("utf8")]);
    let rejected = rt.block_on(chain.job(spec_lie)).expect("job");
    assert_eq!((rejected.state, rejected.invalid_votes), (JobState::Rejected, 2));
    assert_eq!(s0 - rt.block_on(chain.stake_of(worker.felt())).expect("stake"), tokens(500), "slashed 500");
    assert_eq!(balance(client) - c0, tokens(100 + 500), "refund plus the slashed stake");
    assert_eq!(worker.ok(&["info", "--json"]).json()["tier"], "Consumer");

    // A cheating worker: for a paid job it proves another program, one that
    // reads the same input and writes the desired output, and signs that
    // receipt for the job. The proof verifies and the signature is good;
    // the statement is not the one the job pays for, so the validators vote
    // it invalid and the worker is slashed.
    let cheat_dir = tmp.0.join("cheat");
    std::fs::create_dir_all(&cheat_dir).expect("dir");
    let dep = deposit("cheat-1", "100");
    let cheat_job = Felt::from_hex(
        client.ok(&[&dep.iter().map(String::as_str).collect::<Vec<_>>()[..], &["--json"]].concat()).json()["job_id"]
            .as_str()
            .expect("job id"),
    )
    .expect("felt");
    let honest_st = &honest_receipt.body.statement;
    let mut src = String::new();
    for _ in &honest_st.input {
        src.push_str("read r1\n");
    }
    for w in &honest_st.output {
        src.push_str(&format!("mov r2, {}\nwrite r2\n", w.0));
    }
    src.push_str("halt\n");
    let other = obelysk_vm::asm::assemble(&src).expect("assembles");
    assert_ne!(other.digest(), honest_st.program.digest());
    let opts = bitsage_prover::ProveOptions { security: honest_st.security, ..Default::default() };
    let (proof, st, _) = bitsage_prover::prove(&other, &honest_st.input, &[], &opts).expect("proves");
    assert_eq!(st.output, honest_st.output, "the other program writes the desired output");
    let mut cheat = Receipt::with_module(st, proof, honest_receipt.body.module).expect("receipt");
    cheat.verify().expect("the other program's proof is valid");
    let what = attested_for(&cheat, cheat_job, worker.felt(), rec.input).expect("digests");
    let signed = attest(&worker.key(), &what, Evidence::SoftwareSigned).expect("sign");
    cheat.attestation = Some(AttestationRecord {
        job_id: cheat_job.to_bytes_be(),
        worker_address: worker.felt().to_bytes_be(),
        public_key: signed.public_key.to_bytes_be(),
        r: signed.r.to_bytes_be(),
        s: signed.s.to_bytes_be(),
        evidence: "software-signed".into(),
        input: rec.input,
        nonce: "cheat-1".into(),
    });
    std::fs::write(cheat_dir.join(ReceiptSource::file_name(cheat_job)), cheat.to_bytes().expect("encodes"))
        .expect("write");
    // The chain takes the signed result (the escrow cannot see the proof).
    rt.block_on(wallet(worker).submit_result(&what, signed.r, signed.s)).expect("submitted");
    let (c0, s0) = (balance(client), rt.block_on(chain.stake_of(worker.felt())).expect("stake"));
    let judged = va.ok(&["validator", "run", "--once", "--receipts", cheat_dir.to_str().expect("utf8"), "--json"]);
    assert!(
        judged.stdout.contains("\"valid\":false")
            && judged.stdout.contains("proves another statement")
            && judged.stdout.contains("program"),
        "{}",
        judged.stdout
    );
    vb.ok(&["validator", "run", "--once", "--receipts", cheat_dir.to_str().expect("utf8")]);
    let rejected = rt.block_on(chain.job(cheat_job)).expect("job");
    assert_eq!((rejected.state, rejected.invalid_votes), (JobState::Rejected, 2));
    assert_eq!(s0 - rt.block_on(chain.stake_of(worker.felt())).expect("stake"), tokens(500), "slashed 500");
    assert_eq!(balance(client) - c0, tokens(100 + 500), "refund plus the slashed stake");

    // Collusion: a client commits to the other program's statement for this
    // module and input, and the worker proves exactly that. Proof, signature
    // and commitment agree; only re-running the module shows it does not
    // make that program of that input. A validator without the module votes
    // valid; two that re-run it from the worker node's blob store (which
    // holds the module and the input document) vote invalid.
    let collude_dir = tmp.0.join("collude");
    std::fs::create_dir_all(&collude_dir).expect("dir");
    let collude_spec = JobSpec::of_receipt(&cheat, "collude-1").expect("spec");
    let collude_job = collude_spec.job_id().expect("job id");
    let deadline = rt.block_on(chain.now()).expect("now") + 3600;
    rt.block_on(wallet(client).deposit(&collude_spec, tokens(100), deadline)).expect("deposit");
    let mut collude = cheat.clone();
    let what = attested_for(&collude, collude_job, worker.felt(), rec.input).expect("digests");
    let signed = attest(&worker.key(), &what, Evidence::SoftwareSigned).expect("sign");
    collude.attestation = Some(AttestationRecord {
        job_id: collude_job.to_bytes_be(),
        r: signed.r.to_bytes_be(),
        s: signed.s.to_bytes_be(),
        nonce: "collude-1".into(),
        ..cheat.attestation.clone().expect("record")
    });
    check_receipt(&collude).expect("a well-formed attestation");
    std::fs::write(collude_dir.join(ReceiptSource::file_name(collude_job)), collude.to_bytes().expect("encodes"))
        .expect("write");
    rt.block_on(wallet(worker).submit_result(&what, signed.r, signed.s)).expect("submitted");
    let collude_args = ["validator", "run", "--once", "--receipts", collude_dir.to_str().expect("utf8"), "--json"];
    let blind = vc.ok(&collude_args);
    assert!(blind.stdout.contains("\"valid\":true"), "without the module nothing is wrong: {}", blind.stdout);
    let blobs = worker.dir.join("blobs");
    let rerun = [&collude_args[..], &["--rerun", blobs.to_str().expect("utf8")]].concat();
    for v in [va, vb] {
        let judged = v.ok(&rerun);
        assert!(
            judged.stdout.contains("\"valid\":false") && judged.stdout.contains("re-running the module"),
            "{}",
            judged.stdout
        );
    }
    let rejected = rt.block_on(chain.job(collude_job)).expect("job");
    assert_eq!((rejected.state, rejected.valid_votes, rejected.invalid_votes), (JobState::Rejected, 1, 2));

    // Calls from accounts that may not make them.
    let (client_wallet, deployer_wallet, worker_wallet) = (wallet(client), wallet(deployer), wallet(worker));
    reverted(rt.block_on(client_wallet.vote(spec_lie, true)), "not a validator");
    let slash = call(d.staking, "slash", vec![worker.felt(), Felt::from(tokens(1)), Felt::ZERO, client.felt()]);
    reverted(rt.block_on(client_wallet.invoke(vec![slash.clone()])), "only the slasher");
    reverted(rt.block_on(deployer_wallet.invoke(vec![slash])), "only the slasher");
    reverted(
        rt.block_on(deployer_wallet.invoke(vec![call(d.staking, "set_slasher", vec![deployer.felt()])])),
        "slasher already set",
    );
    reverted(
        rt.block_on(client_wallet.invoke(vec![call(d.staking, "set_slasher", vec![client.felt()])])),
        "only the admin",
    );
    // An unstaked account cannot submit a result, and a signature by a key
    // other than the registered one is refused.
    let x_spec = JobSpec::of_receipt(&honest_receipt, "x").expect("spec");
    let spec_x = x_spec.job_id().expect("job id");
    // The escrow checks that the job id is the spec's hash.
    let x_felts = x_spec.felts().expect("felts");
    let deadline = rt.block_on(chain.now()).expect("now") + 100;
    reverted(
        rt.block_on(client_wallet.deposit_raw(spec_x + Felt::ONE, &x_felts, tokens(10), deadline)),
        "job id is not its spec hash",
    );
    rt.block_on(client_wallet.deposit(&x_spec, tokens(10), deadline)).expect("deposit");
    let what = attested_for(&honest_receipt, spec_x, client.felt(), [0; 32]).expect("digests");
    let (r, s) = client.key().sign(&what.message_hash()).expect("sign");
    reverted(rt.block_on(client_wallet.submit_result(&what, r, s)), "worker not staked");
    let what = attested_for(&honest_receipt, spec_x, worker.felt(), [0; 32]).expect("digests");
    let (r, s) = WorkerKey::generate().sign(&what.message_hash()).expect("sign");
    reverted(rt.block_on(worker_wallet.submit_result(&what, r, s)), "bad attestation");

    // Deadline: no refund before it, none of a result after it, a refund
    // once, never twice.
    client.refused(&["refund", "--job-id", &format!("{spec_x:#x}")], 24, "deadline not reached");
    devnet.increase_time(200);
    let (r, s) = worker.key().sign(&what.message_hash()).expect("sign");
    reverted(rt.block_on(worker_wallet.submit_result(&what, r, s)), "deadline passed");
    let escrow0 = rt.block_on(chain.balance_of(d.token, d.escrow)).expect("escrow");
    client.ok(&["refund", "--job-id", &format!("{spec_x:#x}")]);
    assert_eq!(escrow0 - rt.block_on(chain.balance_of(d.token, d.escrow)).expect("escrow"), tokens(10));
    assert_eq!(rt.block_on(chain.job(spec_x)).expect("job").state, JobState::Refunded);
    client.refused(&["refund", "--job-id", &format!("{spec_x:#x}")], 24, "job not open");

    // Unstake: unbonding, a claim too early is refused, then paid out.
    worker.refused(&["unstake", "--amount", "5000"], 24, "insufficient stake");
    worker.ok(&["unstake", "--amount", "1000"]);
    worker.refused(&["claim"], 24, "still unbonding");
    devnet.increase_time(101);
    let before = balance(worker);
    let claimed = worker.ok(&["claim", "--json"]).json();
    assert_eq!(claimed["claimed"], "1000");
    assert!(balance(worker) > before + tokens(999), "the claim paid the worker");
    worker.refused(&["claim"], 24, "nothing to claim");
    drop(node);
}

/// What a user runs to be paid on a proof the chain checks, for every
/// workload: the client deposits; the worker runs the job with `--channel
/// poseidon252 --attest` and `settle --onchain`s the receipt, which the
/// verifier contract checks over several transactions (each within
/// mainnet's limits) before the escrow pays 80/18/2, with no validator.
/// `verify --onchain` runs the same checks as calls, for anyone.
#[test]
fn workloads_are_verified_on_chain_and_paid_through_the_cli() {
    // Mainnet's limits per transaction (blockifier's versioned constants
    // 0.14.4): Sierra gas to execute, and calldata felts.
    const MAX_L2_GAS: u64 = 1_110_000_000;
    const MAX_CALLDATA: u64 = 5_000;
    let devnet = Devnet::start(5);
    let tmp = TempDir::new("settle-onchain");
    let deployment = tmp.0.join("deployment.json");
    let roles = roles(&devnet, &tmp, &deployment, &["deployer", "worker", "client", "treasury", "pool"]);
    let [deployer, worker, client, treasury, pool] = &roles[..] else { unreachable!() };
    for role in [deployer, worker, client] {
        devnet.mint(&role.address, 100_000);
    }
    let d = deploy(deployer, treasury, pool);
    let rt = rt();
    let chain = Chain::new(&devnet.url, Some(d.clone())).expect("chain");
    let balance = |who: &Role| rt.block_on(chain.balance_of(d.token, who.felt())).expect("balance");
    worker.ok(&["stake", "--amount", "100"]);
    let examples = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples"));

    for (k, (name, input)) in guests::WORKLOADS.iter().enumerate() {
        // Every workload, ml-inference's 4,461-instruction program included
        // (its statement goes in program parts of its own).
        let wasm = guests::dir().join(format!("{name}.wasm"));
        let (wasm, input) = (wasm.to_str().expect("utf8"), examples.join(input));
        let input = input.to_str().expect("utf8");
        let nonce = format!("onchain-{k}");
        let deposited =
            client.ok(&["deposit", wasm, "--input", input, "--nonce", &nonce, "--amount", "100", "--json"]).json();
        let job = Felt::from_hex(deposited["job_id"].as_str().expect("job id")).expect("felt");
        let file = tmp.0.join(format!("{name}.receipt"));
        let file = file.to_str().expect("utf8");
        let ran = worker
            .ok(&[
                "run",
                wasm,
                "--input",
                input,
                "--channel",
                "poseidon252",
                "--attest",
                "--nonce",
                &nonce,
                "--out",
                file,
                "--json",
            ])
            .json();
        assert_eq!(ran["channel"], "poseidon252", "{name}");
        // Anyone can check it with calls first: nothing is recorded.
        let checked = client.ok(&["verify", file, "--onchain", "--json"]).json();
        assert_eq!(
            (checked["ok"].as_bool(), checked["agree"].as_bool()),
            (Some(true), Some(true)),
            "{name}: {checked}"
        );
        assert_eq!(checked["verified_by"], "0x0", "{name}: a call recorded something");

        let (w0, t0, p0) = (balance(worker), balance(treasury), balance(pool));
        let settled = worker.ok(&["settle", "--onchain", file, "--json"]).json();
        let steps = settled["steps"].as_array().expect("steps");
        assert!(steps.len() >= 4, "{name}: {settled}");
        for s in steps {
            let (gas, felts) = (s["l2_gas"].as_u64().expect("gas"), s["calldata_felts"].as_u64().expect("felts"));
            assert!(gas <= MAX_L2_GAS && felts <= MAX_CALLDATA, "{name}: {s} is over mainnet's limits");
        }
        assert_eq!(settled["transactions"].as_u64(), Some(steps.len() as u64 + 1), "{name}");
        assert_eq!(rt.block_on(chain.job(job)).expect("job").state, JobState::Paid, "{name}");
        // The worker got 80, less the fees of every transaction it sent (in STRK, the staked token).
        let fees: u128 = settled["fee_fri"].as_str().and_then(|f| f.parse().ok()).expect("fee");
        assert_eq!(balance(worker), w0 + tokens(80) - fees, "{name}: the worker got 80 less its fees");
        assert_eq!(balance(treasury), t0 + tokens(18), "{name}: the treasury got 18");
        assert_eq!(balance(pool), p0 + tokens(2), "{name}: the stakers' pool got 2");
        eprintln!(
            "{name}: verified on chain in {} transactions, {} L2 gas, fee {} fri",
            steps.len(),
            settled["l2_gas"],
            settled["fee_fri"]
        );
        // Now the chain names the worker; settling again pays nothing more.
        let checked = client.ok(&["verify", file, "--onchain", "--json"]).json();
        assert_eq!(checked["verified_by"].as_str(), Some(format!("{:#x}", worker.felt()).as_str()), "{name}");
        worker.refused(&["settle", "--onchain", file], 24, "job not open");
    }

    // A Blake2s receipt is not for the chain, and says how to make one.
    let wasm = guests::dir().join("custom.wasm");
    let blake = tmp.0.join("blake.receipt");
    let custom_input = examples.join("custom.json");
    let custom_input = custom_input.to_str().expect("utf8");
    worker.ok(&["run", wasm.to_str().expect("utf8"), "--input", custom_input, "--out", blake.to_str().expect("utf8")]);
    worker.refused(&["settle", "--onchain", blake.to_str().expect("utf8")], 2, "--channel poseidon252");
    client.refused(&["verify", blake.to_str().expect("utf8"), "--onchain"], 2, "--channel poseidon252");
    // The CUDA backend proves over the Poseidon252 channel too: on a machine
    // with a GPU the receipt is made there (and verifies); without one the
    // run fails as any `--backend cuda` run does, with exit 7 naming the GPU.
    let gpu_receipt = tmp.0.join("gpu-poseidon.receipt");
    let gpu_receipt = gpu_receipt.to_str().expect("utf8");
    let o = worker.cmd(
        &[
            "run",
            wasm.to_str().expect("utf8"),
            "--input",
            custom_input,
            "--channel",
            "poseidon252",
            "--backend",
            "cuda",
            "--out",
            gpu_receipt,
        ],
        PASSWORD,
    );
    if o.code == 0 {
        assert!(o.stdout.contains("cuda ("), "{}", o.stdout);
        client.ok(&["verify", gpu_receipt]);
    } else {
        assert!(o.code == 7 && o.stderr.contains("GPU 0"), "{}\n{}", o.stdout, o.stderr);
        assert!(!o.stderr.contains("Blake2s channel only"), "{}", o.stderr);
    }
}
