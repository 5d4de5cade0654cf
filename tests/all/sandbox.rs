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
    let again = sandbox.load(&bytes).expect("recompiles");
    assert!(!again.from_cache);
    assert!(sandbox.run(&again, b"[2, 3]").is_ok());
    assert!(sandbox.load(&bytes).expect("cached again").from_cache);
    std::fs::remove_dir_all(dir).ok();
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
