//! The AIR's constraints per component, where Stwo tests them (its
//! `assert_constraints_on_polys`, as in Stwo's `wide_fibonacci` tests), not
//! only through whole proofs:
//! - every component's honest trace satisfies every constraint, its LogUp
//!   running sum included;
//! - a tampered main cell fails at its row, and Stwo names the constraint
//!   that the AIR's own `air()` says the cell breaks;
//! - a tampered LogUp cell fails a LogUp constraint (the ones after the
//!   component's own).
//!
//! A failing assertion inside a component with LogUp entries aborts the
//! process (the unfinished LogUp row asserts again while unwinding), so each
//! tampered case runs in a child process of this test binary, and the
//! parent reads Stwo's `row: #r, constraint #k` from its output.

use std::process::Command;

use bitsage_air::cpu::{CpuCols, CpuEval};
use bitsage_air::hash::{HashCols, HashEval};
use bitsage_air::memory::{MemCols, MemEval};
use bitsage_air::range::{RangeCols, RangeEval};
use bitsage_air::relations::{Lookup, Relations};
use bitsage_air::rom::{RomCols, RomEval};
use bitsage_prover::tracegen::{build_main_trace, interaction_trace, ComponentTrace};
use obelysk_vm::exec::{execute, ExecLimits};
use obelysk_vm::isa::Opcode;
use obelysk_vm::samples::every_opcode_loop;
use stwo::core::channel::Blake2sChannel;
use stwo::core::fields::m31::M31;
use stwo::core::pcs::TreeVec;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::simd::m31::PackedM31;
use stwo::prover::backend::Column;
use stwo_constraint_framework::{assert_constraints_on_polys, FrameworkEval};

type Lookups = fn(&mut dyn FnMut() -> PackedM31) -> Vec<Lookup<PackedM31>>;

/// One component's trace, its evaluator and its lookups, with optional
/// tampering of a main cell `(column, row, delta)` or of a LogUp cell.
struct Case<E: FrameworkEval> {
    eval: E,
    trace: ComponentTrace,
    lookups: Lookups,
}

enum Tamper {
    None,
    Main { col: usize, row: usize },
    Logup { col: usize, row: usize },
}

/// Runs Stwo's constraint assertion on the component (it panics, or
/// aborts, at the first constraint a row breaks).
fn assert_component<E: FrameworkEval + Sync>(case: &Case<E>, rels: &Relations, tamper: &Tamper) {
    let main = match *tamper {
        Tamper::Main { col, row } => bumped(&case.trace, col, row),
        _ => case.trace.clone(),
    };
    // The LogUp columns follow the (possibly tampered) main trace, so only a
    // constraint of the component itself can catch a main cell.
    let (mut itrace, sum) = interaction_trace(&main, rels, case.lookups);
    if let Tamper::Logup { col, row } = *tamper {
        let v = itrace[col].values.at(row);
        itrace[col].values.set(row, v + M31(1));
    }
    let polys = TreeVec::new(vec![
        vec![],
        main.evals().into_iter().map(|e| e.interpolate()).collect(),
        itrace.into_iter().map(|e| e.interpolate()).collect(),
    ]);
    assert_constraints_on_polys(
        &polys,
        CanonicCoset::new(main.log_size),
        |e| {
            case.eval.evaluate(e);
        },
        sum,
    );
}

/// Asserts `component`'s constraints on the every-opcode trace, tampered as
/// `tamper` says.
fn check(component: &str, tamper: &Tamper) {
    let (main, rels) = setup();
    // One arm per component: its evaluator, columns and main trace.
    macro_rules! run {
        ($eval:ident, $cols:ident, $trace:expr) => {{
            let trace: ComponentTrace = $trace;
            let eval = $eval { log_size: trace.log_size, rels: rels.clone() };
            assert_component(&Case { eval, trace, lookups: |n| $cols::read(n).lookups() }, &rels, tamper)
        }};
    }
    match component {
        "cpu" => run!(CpuEval, CpuCols, main.cpu.clone()),
        "rom" => run!(RomEval, RomCols, main.rom.clone()),
        "memory" => run!(MemEval, MemCols, main.mem.clone()),
        "range" => run!(RangeEval, RangeCols, main.range.clone()),
        "hash" => run!(HashEval, HashCols, main.hash.clone().expect("the every-opcode loop hashes")),
        other => panic!("no component {other}"),
    }
}

/// The child's side: `BITSAGE_TAMPER=component:main|logup:col:row`.
#[test]
fn tampered_case_in_a_child() {
    let Ok(spec) = std::env::var("BITSAGE_TAMPER") else { return };
    let parts: Vec<&str> = spec.split(':').collect();
    let (col, row) = (parts[2].parse().expect("col"), parts[3].parse().expect("row"));
    let tamper = if parts[1] == "main" { Tamper::Main { col, row } } else { Tamper::Logup { col, row } };
    check(parts[0], &tamper);
    println!("NO FAILURE");
}

/// Runs one tampered case in a child process; returns Stwo's `(row, constraint)`.
fn tampered(component: &str, kind: &str, col: usize, row: usize) -> (usize, usize) {
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["tampered_case_in_a_child", "--exact", "--nocapture", "--test-threads", "1"])
        .env("BITSAGE_TAMPER", format!("{component}:{kind}:{col}:{row}"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("runs the child");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && !text.contains("NO FAILURE"), "{component} {kind} {col} {row} passed:\n{text}");
    match (row_index(&text), constraint_index(&text)) {
        (Some(r), Some(k)) => (r, k),
        _ => panic!("{component} {kind} {col} {row}: no failing constraint named:\n{text}"),
    }
}

/// `t` with cell `(col, row)` increased by one.
fn bumped(t: &ComponentTrace, col: usize, row: usize) -> ComponentTrace {
    let mut out = t.clone();
    let v = out.columns[col].at(row);
    out.columns[col].set(row, v + M31(1));
    out
}

/// The index of the first of `cons` (a row's constraint values) that is not zero.
fn first_broken(cons: &[M31]) -> Option<usize> {
    cons.iter().position(|c| c.0 != 0)
}

fn row_of<T>(trace: &ComponentTrace, row: usize, read: impl FnOnce(&mut dyn FnMut() -> M31) -> T) -> T {
    let mut cols = trace.columns.iter();
    read(&mut || cols.next().map_or(M31(0), |c| c.at(row)))
}

fn setup() -> (bitsage_prover::tracegen::MainTrace<'static>, Relations) {
    let program = every_opcode_loop();
    let trace = execute(&program, &[obelysk_vm::M31(30)], &[obelysk_vm::M31(11)], ExecLimits::default()).expect("runs");
    let trace: &'static _ = Box::leak(Box::new(trace));
    let main = build_main_trace(&program, trace);
    let rels = Relations::draw(&mut Blake2sChannel::default());
    (main, rels)
}

#[test]
fn every_component_satisfies_its_constraints_and_logup() {
    for component in ["cpu", "rom", "memory", "range", "hash"] {
        check(component, &Tamper::None);
    }
}

#[test]
fn a_tampered_logup_cell_fails_a_logup_constraint() {
    // In every component (the program table and the range table have no
    // constraints of their own); the LogUp constraints come after the
    // component's own.
    let (main, _) = setup();
    let own = [
        ("rom", 0, row_of(&main.rom, 0, |n| RomCols::read(n)).air(&mut |v| v).0.len()),
        ("range", 5, row_of(&main.range, 0, |n| RangeCols::read(n)).air(&mut |v| v).0.len()),
        ("memory", 2, row_of(&main.mem, 0, |n| MemCols::read(n)).constraints().len()),
        ("cpu", 7, row_of(&main.cpu, 0, |n| CpuCols::read(n)).constraints().len()),
    ];
    for (component, col, n_own) in own {
        let (_, k) = tampered(component, "logup", col, 1);
        assert!(k >= n_own, "{component}: a LogUp cell broke constraint #{k}, one of the component's {n_own} own");
    }
}

/// `k` of Stwo's `constraint #k`.
fn constraint_index(msg: &str) -> Option<usize> {
    let at = msg.find("constraint #")? + "constraint #".len();
    msg[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// `r` of Stwo's `row: #r`.
fn row_index(msg: &str) -> Option<usize> {
    let at = msg.find("row: #")? + "row: #".len();
    msg[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[test]
fn a_tampered_cell_fails_at_its_row_naming_the_constraint_the_air_says() {
    let (main, _) = setup();
    let cols = {
        let mut i = 0;
        CpuCols::read(|| {
            i += 1;
            i - 1
        })
    };
    let steps_of = |op: Opcode| {
        (0..1usize << main.cpu.log_size)
            .find(|&r| row_of(&main.cpu, r, |n| CpuCols::read(n)).flags[op as usize] == M31(1))
            .unwrap_or_else(|| panic!("no {op:?} row"))
    };
    // CPU cells, each on a row where it is constrained: a product, a
    // comparison result, a memory write, the next pc of a jump, a flag.
    let cpu_cases = [
        ("prod on a mul row", cols.prod, steps_of(Opcode::Mul)),
        ("lt on an lt row", cols.lt, steps_of(Opcode::Lt)),
        ("d_new on an add row", cols.d_new, steps_of(Opcode::Add)),
        ("next_pc on a jmp row", cols.next_pc, steps_of(Opcode::Jmp)),
        ("the hash flag on a store row", cols.flags[Opcode::Hash as usize], steps_of(Opcode::Store)),
    ];
    for (what, col, row) in cpu_cases {
        let tampered_row = row_of(&bumped(&main.cpu, col, row), row, |n| CpuCols::read(n));
        let want = first_broken(&tampered_row.constraints())
            .unwrap_or_else(|| panic!("{what}: the AIR's own constraints do not see it"));
        assert_eq!(tampered("cpu", "main", col, row), (row, want), "{what}");
    }
    // A memory boundary row's `is_real`, and a Poseidon2 S-box output.
    let want = first_broken(&row_of(&bumped(&main.mem, 0, 0), 0, |n| MemCols::read(n)).constraints());
    assert_eq!(tampered("memory", "main", 0, 0), (0, want.expect("is_real is boolean")), "memory is_real 1 -> 2");
    let hash = main.hash.clone().expect("the every-opcode loop hashes");
    let sbox = HashCols::<M31>::N_COLUMNS - 1; // the last partial round's output
    let (cons, _) = row_of(&bumped(&hash, sbox, 0), 0, |n| HashCols::read(n)).air(&mut |v| v);
    let want = first_broken(&cons).expect("the S-box constraint sees it");
    assert_eq!(tampered("hash", "main", sbox, 0), (0, want), "a Poseidon2 S-box output");
}
