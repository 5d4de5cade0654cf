//! The malicious-module suite: every attack runs in one long-lived sandbox,
//! which reports a distinct typed error for each and still runs an honest
//! workload afterwards.

use std::time::{Duration, Instant};

use bitsage_sandbox::{Limits, Sandbox, SandboxConfig, SandboxError};
use bitsage_tests::guests;
use obelysk_vm::ExecError;

fn case(sandbox: &Sandbox, module: &bitsage_sandbox::Module, name: &str, limits: Limits) -> SandboxError {
    let input = format!(r#"{{"case": "{name}"}}"#);
    match sandbox.run_with(module, input.as_bytes(), limits) {
        Ok(_) => panic!("attack `{name}` succeeded"),
        Err(e) => e,
    }
}

#[test]
fn hostile_guests_get_typed_errors_and_the_host_survives() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let base = *sandbox.limits();
    let evil = sandbox.load(&guests::bytes("hostile_misbehave")).expect("the hostile guest is a valid component");
    let mut kinds = Vec::new();

    // Infinite loop: the fuel budget stops it, deterministically.
    let e = case(&sandbox, &evil, "spin", Limits { fuel: 50_000_000, ..base });
    assert!(matches!(e, SandboxError::FuelExhausted { budget: 50_000_000 }), "{e}");
    kinds.push(e.kind());

    // Busy loop with fuel to spare: the wall-clock deadline stops it.
    let t = Instant::now();
    let e = case(&sandbox, &evil, "spin", Limits { fuel: u64::MAX / 2, timeout: Duration::from_millis(300), ..base });
    assert!(matches!(e, SandboxError::Deadline { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "deadline took {:?}", t.elapsed());
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "memory-bomb", Limits { memory_bytes: 64 << 20, ..base });
    assert!(matches!(e, SandboxError::MemoryLimit { limit } if limit == 64 << 20), "{e}");
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "stack-overflow", base);
    assert!(matches!(e, SandboxError::StackOverflow { .. }), "{e}");
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "huge-output", base);
    assert!(matches!(e, SandboxError::OutputTooLarge { limit, .. } if limit == base.output_bytes), "{e}");
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "log-flood", base);
    assert!(matches!(e, SandboxError::LogLimit { .. }), "{e}");
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "panic", base);
    assert!(
        matches!(&e, SandboxError::GuestPanic { message } if message.contains("the guest gave up on purpose")),
        "{e}"
    );
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "bad-program", base);
    assert!(matches!(e, SandboxError::Vm(ExecError::InvalidProgram(_))), "{e}");
    kinds.push(e.kind());
    // Through the SDK the same program never reaches the host: the shared
    // builder refuses it in the guest, with the host's own wording.
    let e = case(&sandbox, &evil, "sdk-bad-program", base);
    assert!(
        matches!(&e, SandboxError::GuestError { message }
            if message == "invalid program: pc 0: jump target 2 is outside the program (length 2)"),
        "{e}"
    );

    let e = case(&sandbox, &evil, "input-exhausted", base);
    assert!(matches!(e, SandboxError::Vm(ExecError::InputExhausted { .. })), "{e}");

    let e = case(&sandbox, &evil, "vm-forever", Limits { trace_rows: 10_000, ..base });
    assert!(matches!(e, SandboxError::TraceLimit { limit: 10_000 }), "{e}");
    kinds.push(e.kind());

    let e = case(&sandbox, &evil, "execute-twice", base);
    assert!(matches!(e, SandboxError::ExecutedTwice), "{e}");
    kinds.push(e.kind());

    // Imports outside the sandbox's WASI subset are refused before running,
    // and the error names the import.
    let e = sandbox.load(&guests::bytes("hostile_fs")).err().expect("fs guest refused");
    assert!(matches!(&e, SandboxError::DisallowedImport { name, .. } if name.starts_with("wasi:filesystem/")), "{e}");
    kinds.push(e.kind());
    let e = sandbox.load(&guests::bytes("hostile_net")).err().expect("net guest refused");
    let SandboxError::DisallowedImport { name, others, .. } = &e else { panic!("{e}") };
    assert!(std::iter::once(name).chain(others).any(|n| n.starts_with("wasi:sockets/")), "{e}");

    // Random bytes, a core module, a truncated component.
    let mut noise = vec![0u8; 4096];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let e = sandbox.load(&noise).err().expect("noise refused");
    assert!(matches!(e, SandboxError::Malformed(_)), "{e}");
    kinds.push(e.kind());
    let e = sandbox.load(b"\0asm\x01\0\0\0").err().expect("core module refused");
    assert!(matches!(e, SandboxError::NotAComponent), "{e}");
    kinds.push(e.kind());
    let good = guests::bytes("custom");
    let e = sandbox.load(&good[..good.len() / 2]).err().expect("truncated component refused");
    assert!(matches!(e, SandboxError::Compile(_)), "{e}");
    kinds.push(e.kind());

    let e =
        sandbox.run_with(&evil, &vec![b' '; 2 << 20], Limits { input_bytes: 1 << 20, ..base }).err().expect("too big");
    assert!(matches!(e, SandboxError::InputTooLarge { .. }), "{e}");
    kinds.push(e.kind());

    // Every case had its own error kind.
    let mut distinct = kinds.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), kinds.len(), "error kinds repeat: {kinds:?}");

    // The host survived all of it: an honest workload still runs, twice.
    let module = sandbox.load(&good).expect("custom loads");
    for _ in 0..2 {
        let run = sandbox.run(&module, b"[1, 2]").expect("honest run after the attacks");
        assert_eq!(run.recorded.trace.output, vec![obelysk_vm::M31(3)]);
    }
}

#[test]
fn stdout_is_captured_and_truncated() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let evil = sandbox.load(&guests::bytes("hostile_misbehave")).expect("loads");
    let run = sandbox.run(&evil, br#"{"case": "stdout-flood"}"#).expect("printing is allowed");
    assert_eq!(run.stdout.len(), sandbox.limits().stdio_bytes);
    assert!(run.stdout.starts_with("line 0: zzz"));
    assert!(run.stdio_dropped > 0);
}

#[test]
fn fuel_use_is_deterministic() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let module = sandbox.load(&guests::bytes("data_transform")).expect("loads");
    let input = guests::example("data-transform.json");
    let a = sandbox.run(&module, &input).expect("runs");
    let b = sandbox.run(&module, &input).expect("runs");
    assert_eq!(a.fuel_used, b.fuel_used);
    assert!(a.fuel_used > 0);
    assert_eq!(a.report, b.report);
}

#[test]
fn compile_cache_round_trips_and_recovers_from_corruption() {
    let dir = std::env::temp_dir().join(format!("bitsage-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sandbox =
        Sandbox::new(SandboxConfig { cache_dir: Some(dir.clone()), ..SandboxConfig::default() }).expect("sandbox");
    let bytes = guests::bytes("custom");
    assert!(!sandbox.load(&bytes).expect("compiles").from_cache);
    let cached = sandbox.load(&bytes).expect("loads");
    assert!(cached.from_cache);
    assert!(sandbox.run(&cached, b"[2, 3]").is_ok());

    // Corrupt the compiled bytes: the checksum catches it and it recompiles.
    let entry = std::fs::read_dir(&dir)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .expect("a cache entry");
    let mut code = std::fs::read(&entry).expect("read");
    let mid = code.len() / 2;
    code[mid] ^= 0xff;
    std::fs::write(&entry, code).expect("write");
    // The sandbox that loaded it keeps it in memory; a new process (a new sandbox) reads the disk.
    assert!(sandbox.load(&bytes).expect("in memory").from_cache);
    let fresh =
        Sandbox::new(SandboxConfig { cache_dir: Some(dir.clone()), ..SandboxConfig::default() }).expect("sandbox");
    let again = fresh.load(&bytes).expect("recompiles");
    assert!(!again.from_cache);
    assert!(fresh.run(&again, b"[2, 3]").is_ok());
    let fresh =
        Sandbox::new(SandboxConfig { cache_dir: Some(dir.clone()), ..SandboxConfig::default() }).expect("sandbox");
    assert!(fresh.load(&bytes).expect("cached again").from_cache);
    std::fs::remove_dir_all(dir).ok();
}

/// A sandbox keeps each component it loaded, by the digest of its bytes:
/// the same bytes come back linked and ready, other bytes are their own
/// module, and bytes that fail a check fail every time (a failure is not
/// kept).
#[test]
fn a_sandbox_keeps_loaded_components_by_digest_and_never_a_failure() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let custom = guests::bytes("custom");
    let first = sandbox.load(&custom).expect("compiles");
    let kept = sandbox.loaded(&first.digest).expect("kept");
    assert_eq!(kept.digest, first.digest);
    let again = sandbox.load(&custom).expect("loads");
    assert!(again.from_cache);
    assert_eq!(
        sandbox.run(&again, b"[2, 3]").expect("runs").report,
        sandbox.run(&first, b"[2, 3]").expect("runs").report
    );

    let other = sandbox.load(&guests::bytes("ml_inference")).expect("compiles");
    assert_ne!(other.digest, first.digest);
    assert!(sandbox.loaded(&other.digest).is_some() && sandbox.loaded(&first.digest).is_some());

    let broken = custom[..custom.len() / 2].to_vec();
    for _ in 0..2 {
        assert!(sandbox.load(&broken).is_err(), "a truncated component is refused every time");
    }
    let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &broken)).into();
    assert!(sandbox.loaded(&digest).is_none());
}

/// A paid job's statement comes from the client's own dev run and the
/// node's: both must reach the same program and VM input, and validators
/// re-running the module compare fuel-independent results. The run must not
/// depend on the allocator (the CLI's on-demand one, the node's pooling
/// one), the limits it stays within, or repetition.
#[test]
fn a_run_does_not_depend_on_the_allocator_the_limits_or_repetition() {
    let module = guests::bytes("ml_inference");
    let input = guests::example("ml-inference.json");
    let run = |config: SandboxConfig, limits: Limits| {
        let sandbox = Sandbox::new(config).expect("sandbox");
        let m = sandbox.load(&module).expect("loads");
        let r = sandbox.run_with(&m, &input, limits).expect("runs");
        (r.fuel_used, r.recorded.program.digest(), r.recorded.input.clone(), r.recorded.trace.output.clone())
    };
    let base = Limits::default();
    let first = run(SandboxConfig::default(), base);
    assert_eq!(first, run(SandboxConfig::default(), base), "repetition");
    assert_eq!(first, run(SandboxConfig { pooling: Some(2), ..SandboxConfig::default() }, base), "pooling allocator");
    let roomy = Limits { fuel: base.fuel * 4, memory_bytes: base.memory_bytes * 2, timeout: base.timeout * 3, ..base };
    assert_eq!(first, run(SandboxConfig::default(), roomy), "other limits");
}

/// Runs `f` in a child process of this test binary (the test named `test`,
/// with `BITSAGE_SANDBOX_CHILD` set) and returns its stdout, so the peak RSS
/// it reports is the child's alone.
fn in_child(test: &str) -> String {
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env("BITSAGE_SANDBOX_CHILD", "1")
        .output()
        .expect("child starts");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// Peak RSS growth (MiB) while `f` runs, from `/proc/self/status` after
/// resetting the mark; meaningful in a child process only.
fn peak_rss_growth_mib(f: impl FnOnce()) -> f64 {
    let kib = |field: &str| -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    let base = kib("VmRSS:");
    f();
    kib("VmHWM:").saturating_sub(base) as f64 / 1024.0
}

#[test]
fn blocking_calls_guest_text_and_the_vm_are_bounded_by_the_job() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let base = *sandbox.limits();
    let evil = sandbox.load(&guests::bytes("hostile_misbehave")).expect("loads");

    // A 10 s sleep under a 1 s deadline: timers are expired at once.
    let t = Instant::now();
    let run = sandbox
        .run_with(&evil, br#"{"case": "sleep"}"#, Limits { timeout: Duration::from_secs(1), ..base })
        .expect("a sleep returns at once");
    assert_eq!(run.report, br#""slept""#);
    assert!(t.elapsed() < Duration::from_secs(1), "sleeping took {:?}", t.elapsed());

    // Sleeping forever: the deadline ends it, on time.
    let t = Instant::now();
    let e = case(
        &sandbox,
        &evil,
        "sleep-forever",
        Limits { timeout: Duration::from_millis(500), fuel: u64::MAX / 2, ..base },
    );
    assert!(matches!(e, SandboxError::Deadline { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "the deadline took {:?}", t.elapsed());

    // A 100 MiB error string leaves the sandbox as 4 KiB, marked.
    let e = case(&sandbox, &evil, "huge-error", base);
    let SandboxError::GuestError { message } = &e else { panic!("{e}") };
    assert!(message.len() <= bitsage_sandbox::GUEST_TEXT_BYTES + 64, "{} bytes", message.len());
    assert!(message.ends_with(&format!("[truncated: {} bytes]", 100 << 20)), "{}", &message[message.len() - 40..]);

    // Millions of `hash` steps in one `vm.execute`: the job's deadline stops
    // the VM itself.
    let t = Instant::now();
    let e =
        case(&sandbox, &evil, "hash-storm", Limits { timeout: Duration::from_secs(1), trace_rows: 1 << 22, ..base });
    assert!(matches!(e, SandboxError::Deadline { .. } | SandboxError::MemoryLimit { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "the VM ran {:?} past a 1 s deadline", t.elapsed());

    // One `vm.execute` per job, whether the first succeeded or not.
    let e = case(&sandbox, &evil, "execute-after-failure", base);
    assert!(matches!(e, SandboxError::ExecutedTwice), "{e}");

    // An honest job right after.
    let module = sandbox.load(&guests::bytes("custom")).expect("custom loads");
    let run = sandbox.run(&module, b"[1, 2]").expect("honest run");
    assert_eq!(run.recorded.trace.output, vec![obelysk_vm::M31(3)]);
}

/// Components of core modules with big memories and tables: the memory cap
/// is one cap on everything a job's store allocates.
fn greedy_component(cores: usize, memories_per_core: usize, pages: u32, table_elements: u32) -> Vec<u8> {
    let memories: String = (0..memories_per_core).map(|_| format!("(memory {pages})")).collect();
    let table = if table_elements > 0 { format!("(table {table_elements} funcref)") } else { String::new() };
    let instances: String = (0..cores).map(|i| format!("(core instance $g{i} (instantiate $greedy))")).collect();
    // A well-typed `run` export (never reached: instantiating the greedy
    // instances is what the cap refuses).
    let text = format!(
        r#"(component
            (core module $greedy {memories} {table})
            (core module $m
                (memory (export "mem") 1)
                (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
                (func (export "run") (param i32 i32) (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            {instances}
            (type $result (result (list u8) (error string)))
            (func (export "run") (param "input" (list u8)) (result $result)
                (canon lift (core func $i "run") (memory $i "mem") (realloc (func $i "realloc")))))"#
    );
    wat::parse_str(&text).expect("valid component text")
}

#[test]
fn one_memory_cap_covers_every_memory_and_table_of_a_job() {
    const TEST: &str = "sandbox::one_memory_cap_covers_every_memory_and_table_of_a_job";
    if std::env::var("BITSAGE_SANDBOX_CHILD").is_err() {
        let text = in_child(TEST);
        print!("{text}");
        return;
    }
    for pooling in [None, Some(4)] {
        let limits = Limits { memory_bytes: 256 << 20, ..Limits::default() };
        let sandbox = Sandbox::new(SandboxConfig { limits, pooling, ..SandboxConfig::default() }).expect("sandbox");
        let cases = [
            ("15 memories of 250 MiB in one core module", greedy_component(1, 15, 4000, 0)),
            ("3 core instances of 200 MiB each", greedy_component(3, 1, 3200, 0)),
            ("a table of 20M elements", greedy_component(1, 0, 0, 20_000_000)),
        ];
        for (name, bytes) in cases {
            let m = match sandbox.load(&bytes) {
                Ok(m) => m,
                // The pooling allocator refuses some shapes at load time.
                Err(e) => {
                    println!("{name} (pooling {pooling:?}): refused at load: {e}");
                    continue;
                }
            };
            let mut outcome = None;
            let peak = peak_rss_growth_mib(|| outcome = Some(sandbox.run(&m, b"{}")));
            let Err(e) = outcome.expect("ran") else { panic!("{name}: over the cap, yet it ran") };
            println!("{name} (pooling {pooling:?}): {e}; peak RSS growth {peak:.1} MiB");
            assert!(
                matches!(e, SandboxError::MemoryLimit { limit } if limit == 256 << 20)
                    || (pooling.is_some() && matches!(e, SandboxError::Instantiate(_))),
                "{name}: {e}"
            );
            assert!(peak < 300.0, "{name}: peak RSS grew {peak:.1} MiB");
        }
        // A job within the cap still runs.
        let honest = sandbox.load(&guests::bytes("custom")).expect("loads");
        sandbox.run(&honest, b"[2, 2]").expect("honest job");
    }
}

#[test]
fn the_row_budget_covers_every_component_and_unread_input_is_refused() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let base = *sandbox.limits();
    let evil = sandbox.load(&guests::bytes("hostile_misbehave")).expect("loads");
    let e = case(&sandbox, &evil, "unread-input", base);
    assert!(matches!(e, SandboxError::Vm(ExecError::UnreadInput { read: 1, len: 2 })), "{e}");
    assert_eq!(e.kind(), "unread-input");
    let t = Instant::now();
    let e = case(&sandbox, &evil, "huge-program", Limits { trace_rows: 1 << 16, ..base });
    assert!(matches!(e, SandboxError::TraceLimit { limit } if limit == 1 << 16), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "refusing took {:?}", t.elapsed());
}

#[test]
fn compilation_is_bounded_before_cranelift_sees_a_component() {
    let sandbox = Sandbox::new(SandboxConfig::default()).expect("sandbox");
    let cases = [
        (
            "50,000 locals in one function",
            format!("(component (core module (func (local {}))))", "i64 ".repeat(50_000)),
        ),
        ("200,000 functions", format!("(component (core module {}))", "(func)".repeat(200_000))),
        ("a 2 MiB function", format!("(component (core module (func {})))", "(drop (i32.const 1))".repeat(600_000))),
    ];
    for (name, text) in cases {
        let bytes = wat::parse_str(&text).expect("valid component text");
        let t = Instant::now();
        let e = sandbox.load(&bytes).err().expect("refused");
        assert!(matches!(e, SandboxError::CompileLimit(_)), "{name}: {e}");
        assert_eq!(e.kind(), "compile-limit");
        assert!(t.elapsed() < Duration::from_secs(2), "{name}: refusing took {:?}", t.elapsed());
    }
    // Our workloads are far inside the limits.
    let limits = bitsage_sandbox::compile::CompileLimits::default();
    for w in ["ml_inference", "data_transform", "privacy_transfer", "batch_verify", "custom"] {
        let shape = bitsage_sandbox::compile::check(&guests::bytes(w), &limits).expect("within the limits");
        println!("{w}: {shape:?}");
        assert!(
            shape.max_locals * 4 < limits.locals_per_function && shape.functions * 10 < limits.functions,
            "{w}: {shape:?}"
        );
    }
    // A compile past its wall-clock budget is abandoned with the same kind.
    let e = bitsage_sandbox::compile::within(Duration::from_millis(50), || {
        std::thread::sleep(Duration::from_secs(1));
        Ok(())
    })
    .expect_err("over the budget");
    assert!(matches!(e, SandboxError::CompileLimit(_)), "{e}");
    // An honest workload right after.
    let module = sandbox.load(&guests::bytes("custom")).expect("custom loads");
    assert_eq!(sandbox.run(&module, b"[4, 5]").expect("runs").recorded.trace.output, vec![obelysk_vm::M31(9)]);
}
