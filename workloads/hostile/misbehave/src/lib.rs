//! One component, many attacks; the input's `case` picks one.
use std::hint::black_box;

use bitsage_guest::prelude::*;

#[derive(Deserialize)]
struct Input {
    case: String,
}

/// Unbounded recursion on scalars only, so it grows the wasm call stack (not
/// the shadow stack in linear memory) until the engine's stack cap.
fn recurse(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        return 0;
    }
    recurse(n + 1).wrapping_add(black_box(n))
}

fn attack(input: Input) -> Result<Value, Error> {
    match input.case.as_str() {
        // Never returns: the fuel budget or the wall-clock deadline stops it.
        "spin" => {
            let mut x = 0u64;
            loop {
                x = black_box(x.wrapping_add(1));
            }
        }
        // Grows memory until the store's cap.
        "memory-bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
            }
        }
        "stack-overflow" => Ok(json!(recurse(0))),
        // A result far over the output cap.
        "huge-output" => Ok(json!("x".repeat(32 << 20))),
        "log-flood" => {
            for i in 0.. {
                log(Level::Info, &format!("line {i}: {}", "y".repeat(1000)));
            }
            Ok(json!(null))
        }
        "stdout-flood" => {
            for i in 0..100_000 {
                println!("line {i}: {}", "z".repeat(100));
            }
            let mut p = Program::new();
            p.halt();
            execute(&p, &[], &[])?;
            Ok(json!("printed"))
        }
        "panic" => panic!("the guest gave up on purpose"),
        // Jumps outside the program, past the SDK (whose `execute` would
        // refuse it before the host sees it): the raw WIT call, as any
        // component may make it.
        "bad-program" => {
            use bitsage_guest::bindings::bitsage::workload::{types as wit, vm};
            let instr = |op, imm| wit::Instr { op, dst: 0, a: 0, b: 0, imm_mode: false, imm };
            let p =
                wit::Program { instrs: vec![instr(wit::Opcode::Jmp, 2), instr(wit::Opcode::Halt, 0)], tables: vec![] };
            vm::execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        // The same program through the SDK: refused in the guest, typed.
        "sdk-bad-program" => {
            let mut p = Program::new();
            let nowhere = p.label();
            p.jmp(nowhere).halt();
            p.bind(nowhere);
            execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        // Reads more public input than it was given.
        "input-exhausted" => {
            let mut p = Program::new();
            p.read(R1).read(R2).halt();
            execute(&p, &[M31::ONE], &[])?;
            Ok(json!(null))
        }
        // A VM loop that never halts: the trace-row cap stops it.
        "vm-forever" => {
            let mut p = Program::new();
            let top = p.here();
            p.add(R1, R1, 1u32).jmp(top);
            execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        "execute-twice" => {
            let mut p = Program::new();
            p.halt();
            execute(&p, &[], &[])?;
            execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        // Blocks in WASI's poll on a timer: clocks are frozen, so it returns
        // at once and the job completes.
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(10));
            let mut p = Program::new();
            p.halt();
            execute(&p, &[], &[])?;
            Ok(json!("slept"))
        }
        // Sleeps forever, a century at a time: only the deadline ends it.
        "sleep-forever" => loop {
            std::thread::sleep(std::time::Duration::from_secs(100 * 365 * 24 * 3600));
        },
        // An error string far over what leaves the sandbox.
        "huge-error" => Err(Error::new("e".repeat(100 << 20))),
        // One `vm.execute` of millions of `hash` steps: the job's deadline
        // and memory cap stop it inside the VM.
        "hash-storm" => {
            let mut p = Program::new();
            let top = p.here();
            p.hash(R0, 0u32).jmp(top);
            execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        // A failed `vm.execute`, then another: a job gets one, whatever the
        // outcome of the first.
        "execute-after-failure" => {
            let mut p = Program::new();
            p.read(R1).halt();
            let first = execute(&p, &[], &[]);
            if first.is_ok() {
                return Err(Error::new("the first execution should fail"));
            }
            let mut q = Program::new();
            q.halt();
            execute(&q, &[], &[])?;
            Ok(json!("executed twice"))
        }
        // Public input the program never reads: no proof can cover it.
        "unread-input" => {
            let mut p = Program::new();
            p.read(R1).halt();
            execute(&p, &[M31::ONE, M31::ONE], &[])?;
            Ok(json!(null))
        }
        // A one-step run of a 2^20-instruction program: the program table is
        // proved whatever the run's length.
        "huge-program" => {
            let mut p = Program::new();
            p.halt();
            for _ in 0..(1 << 20) - 1 {
                p.halt();
            }
            execute(&p, &[], &[])?;
            Ok(json!(null))
        }
        other => Err(Error::new(format!("unknown case `{other}`"))),
    }
}

bitsage_guest::workload!(attack);
