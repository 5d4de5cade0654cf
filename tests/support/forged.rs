//! The soundness suite's bad runs, built by bypassing the honest executor:
//! each is a statement and a trace (or an edited main trace) that no honest
//! prover can prove. `all/soundness.rs` requires that every prover's proof of
//! them is rejected; `all/onchain.rs` has the chain reject the same forgeries.

use bitsage_air::Statement;
use bitsage_prover::tracegen::{build_main_trace, MainTrace};
use obelysk_vm::exec::Trace;
use obelysk_vm::{Opcode, M31};
use stwo::core::fields::m31::M31 as Felt;
use stwo::prover::backend::Column;

use crate::{asm, cpu_columns, run, statement};

/// An edit to an honest run's main trace.
pub type Edit = fn(&Trace, &mut MainTrace<'_>);

/// A bad run: at the level of the VM's trace, or an edit of the main trace
/// built from an honest one.
pub enum Bad {
    Trace(Statement, Trace),
    Main(Statement, Trace, Edit),
}

impl Bad {
    /// The statement and the main trace a forging prover commits to.
    pub fn main(&self) -> (&Statement, MainTrace<'_>) {
        match self {
            Bad::Trace(st, t) => (st, build_main_trace(&st.program, t)),
            Bad::Main(st, t, edit) => {
                let mut main = build_main_trace(&st.program, t);
                edit(t, &mut main);
                (st, main)
            }
        }
    }
}

/// Every class, by name.
pub fn all() -> Vec<(&'static str, Bad)> {
    vec![
        ("wrong arithmetic", wrong_arithmetic()),
        ("a skipped instruction", skipped_instruction()),
        ("a stale memory read", stale_memory_read()),
        ("a jump to a disallowed pc", disallowed_jump()),
        ("a fetched jump that lands elsewhere", jump_landing_elsewhere()),
        ("a padding row turned into a write", padding_row_write()),
        ("a hashing run without its hash component", hash_component_left_out()),
        ("a range table smaller than the run's values", small_range_table()),
    ]
}

/// Runs `sub` honestly, then claims the row was the program's `add`.
pub fn wrong_arithmetic() -> Bad {
    let claimed = asm("read r1\nread r2\nadd r3, r1, r2\nwrite r3\nhalt\n");
    let actual = asm("read r1\nread r2\nsub r3, r1, r2\nwrite r3\nhalt\n");
    let mut t = run(&actual, &[20, 22]);
    t.steps[2].instr.op = Opcode::Add;
    let st = statement(&claimed, &[20, 22], &t.output);
    Bad::Trace(st, t)
}

/// The program increments r1 before writing it; the trace skips the add.
pub fn skipped_instruction() -> Bad {
    let claimed = asm("mov r1, 5\nadd r1, r1, 1\nwrite r1\nhalt\n");
    let actual = asm("mov r1, 5\nwrite r1\nhalt\n");
    let mut t = run(&actual, &[]);
    t.steps[0].next_pc = 2;
    t.steps[1].pc = 2;
    t.steps[1].next_pc = 3;
    t.steps[2].pc = 3;
    let st = statement(&claimed, &[], &t.output);
    Bad::Trace(st, t)
}

/// A load returns the first store's value, with that store's timestamp.
pub fn stale_memory_read() -> Bad {
    let p = asm("mov r1, 7\nstore [r0 + 10], r1\nmov r1, 9\nstore [r0 + 10], r1\nload r2, [r0 + 10]\nwrite r2\nhalt\n");
    let mut t = run(&p, &[]);
    assert_eq!(t.output, vec![M31(9)]);
    let first_store_ts = 4 * t.steps[1].clk + 2;
    if let Some(load) = t.steps[4].mem.as_mut() {
        load.old = M31(7);
        load.new = M31(7);
        load.old_ts = first_store_ts;
    }
    t.steps[4].d_new = M31(7);
    t.steps[5].x = M31(7);
    t.registers[2].value = M31(7);
    t.ram[10].value = M31(7);
    t.output = vec![M31(7)];
    let st = statement(&p, &[], &t.output);
    Bad::Trace(st, t)
}

const JUMPS: &str = "mov r1, 1\njmp skip\nmov r1, 2\nskip: write r1\nhalt\n";
/// The same program, but its jump lands on pc 2, which the program forbids.
const JUMPS_TO_2: &str = "mov r1, 1\njmp 2\nmov r1, 2\nwrite r1\nhalt\n";

/// Execution follows another program's jump to a pc this one forbids.
pub fn disallowed_jump() -> Bad {
    let t = run(&asm(JUMPS_TO_2), &[]);
    let st = statement(&asm(JUMPS), &[], &t.output);
    Bad::Trace(st, t)
}

/// The program's own `jmp skip` fetched, but execution continuing at pc 2:
/// only the control-flow constraint can catch it.
pub fn jump_landing_elsewhere() -> Bad {
    let mut t = run(&asm(JUMPS_TO_2), &[]);
    t.steps[1].instr.imm = M31(3);
    assert_eq!(t.steps[1].next_pc, 2);
    let st = statement(&asm(JUMPS), &[], &t.output);
    Bad::Trace(st, t)
}

/// A padding row of an honest trace turned into a second `write`, so the
/// claimed output gains a word the program never wrote.
pub fn padding_row_write() -> Bad {
    let p = asm("mov r1, 5\nwrite r1\nhalt\n");
    let t = run(&p, &[]);
    let st = statement(&p, &[], &[M31(5), M31(6)]);
    Bad::Main(st, t, |t, main| {
        let cols = cpu_columns();
        let row = t.steps.len(); // first padding row
        for (col, v) in [
            (cols.flags[Opcode::Write as usize], 1),
            (cols.pc, 1),
            (cols.clk, 2),
            (cols.out_ptr, 1),
            (cols.next_pc, 2),
            (cols.x, 6),
            (cols.w, 6),
            (cols.isz, 0),
            (cols.inv, Felt(6).inverse().0),
            (cols.r_lo, 6),
            (cols.prod, 0),
        ] {
            main.cpu.columns[col].set(row, Felt(v));
        }
    })
}

/// A run with `hash` calls, proved without the Poseidon2 component: the
/// CPU's `HashCall` entries are left unconsumed.
pub fn hash_component_left_out() -> Bad {
    let p = asm("mov r1, 7\nstore [r0 + 0], r1\nhash [r0 + 0]\nload r2, [r0 + 1]\nwrite r2\nhalt\n");
    let t = run(&p, &[]);
    let st = statement(&p, &[], &t.output);
    assert_eq!(t.hashes.len(), 1);
    Bad::Main(st, t, |_, main| {
        assert!(main.claim.hash_log_size.is_some());
        main.hash = None;
        main.claim.hash_log_size = None;
    })
}

/// A run with a timestamp gap above 2^8 (r5 is read again after 400 steps
/// in which it is untouched) claiming the smallest range table, with the
/// honest table's first 256 values: the CPU's lookups of the larger values
/// are left unmatched.
pub fn small_range_table() -> Bad {
    use bitsage_air::range::{MIN_RANGE_LOG_SIZE, RANGE_LANES_LOG};
    use stwo::prover::backend::simd::column::BaseColumn;
    let p = asm("mov r5, 7\nread r1\nloop:\nsub r1, r1, 1\njnz r1, loop\nadd r5, r5, 1\nwrite r5\nhalt\n");
    let t = run(&p, &[200]);
    let st = statement(&p, &[200], &t.output);
    Bad::Main(st, t, |_, main| {
        assert!(main.claim.range_log_size > MIN_RANGE_LOG_SIZE, "the run's values fit 0..2^8");
        let rows = 1usize << (MIN_RANGE_LOG_SIZE - RANGE_LANES_LOG);
        main.range.log_size = MIN_RANGE_LOG_SIZE - RANGE_LANES_LOG;
        for col in main.range.columns.iter_mut() {
            *col = col.to_cpu()[..rows].iter().copied().collect::<BaseColumn>();
        }
        main.claim.range_log_size = MIN_RANGE_LOG_SIZE;
    })
}
