//! Bad traces, built by bypassing the honest executor, must be rejected by
//! the verifier. Each case makes every lookup balance where it can, so that
//! the constraint (or argument) under test is the one that catches it.

use bitsage_air::verify::VerifyError;
use bitsage_prover::tracegen::build_main_trace;
use bitsage_tests::*;
use obelysk_vm::{Opcode, M31};
use stwo::core::fields::m31::M31 as Felt;
use stwo::core::fields::qm31::SecureField;
use stwo::prover::backend::Column;

#[test]
fn honest_traces_are_accepted() {
    // The baseline every tampering case is compared against.
    let p = asm("read r1\nread r2\nadd r3, r1, r2\nwrite r3\nhalt\n");
    let (st, _) = honest_proof(&p, &[20, 22]);
    assert_eq!(st.output, vec![M31(42)]);
}

#[test]
fn wrong_arithmetic_is_rejected() {
    // Run `sub` honestly, then claim the row was the program's `add`.
    let claimed = asm("read r1\nread r2\nadd r3, r1, r2\nwrite r3\nhalt\n");
    let actual = asm("read r1\nread r2\nsub r3, r1, r2\nwrite r3\nhalt\n");
    let mut t = run(&actual, &[20, 22]);
    t.steps[2].instr.op = Opcode::Add;
    let st = statement(&claimed, &[20, 22], &t.output);
    assert_eq!(st.output, vec![M31(20) - M31(22)]);
    let errs = assert_rejected(&st, &t);
    assert!(errs.iter().all(|e| matches!(e, VerifyError::Stark(_))), "{errs:?}");
}

#[test]
fn skipped_instruction_is_rejected() {
    // The program increments r1 before writing it; the trace skips the add.
    let claimed = asm("mov r1, 5\nadd r1, r1, 1\nwrite r1\nhalt\n");
    let actual = asm("mov r1, 5\nwrite r1\nhalt\n");
    let mut t = run(&actual, &[]);
    t.steps[0].next_pc = 2;
    t.steps[1].pc = 2;
    t.steps[1].next_pc = 3;
    t.steps[2].pc = 3;
    let st = statement(&claimed, &[], &t.output);
    assert_eq!(st.output, vec![M31(5)]);
    assert_rejected(&st, &t);
}

#[test]
fn stale_memory_read_is_rejected() {
    let p = asm("mov r1, 7\nstore [r0 + 10], r1\nmov r1, 9\nstore [r0 + 10], r1\nload r2, [r0 + 10]\nwrite r2\nhalt\n");
    let mut t = run(&p, &[]);
    assert_eq!(t.output, vec![M31(9)]);
    // The load returns the first store's value, with that store's timestamp.
    let first_store_ts = 4 * t.steps[1].clk + 2;
    let load = t.steps[4].mem.as_mut().unwrap();
    load.old = M31(7);
    load.new = M31(7);
    load.old_ts = first_store_ts;
    t.steps[4].d_new = M31(7);
    t.steps[5].x = M31(7);
    t.registers[2].value = M31(7);
    t.ram[10].value = M31(7);
    t.output = vec![M31(7)];
    let st = statement(&p, &[], &t.output);
    let errs = assert_rejected(&st, &t);
    assert!(matches!(errs[0], VerifyError::LogupImbalance), "{errs:?}");
    assert!(matches!(errs[1], VerifyError::Stark(_)), "{errs:?}");
}

#[test]
fn jump_to_disallowed_pc_is_rejected() {
    let claimed = asm("mov r1, 1\njmp skip\nmov r1, 2\nskip: write r1\nhalt\n");
    // Same program but the jump lands on pc 2, which the program forbids.
    let actual = asm("mov r1, 1\njmp 2\nmov r1, 2\nwrite r1\nhalt\n");
    let t = run(&actual, &[]);
    let st = statement(&claimed, &[], &t.output);
    assert_eq!(st.output, vec![M31(2)]);
    let errs = assert_rejected(&st, &t);
    assert!(matches!(errs[0], VerifyError::LogupImbalance), "{errs:?}");

    // And with the program's own `jmp skip` fetched, but execution still
    // continuing at pc 2: only the control-flow constraint can catch it.
    let mut t = run(&actual, &[]);
    t.steps[1].instr.imm = M31(3);
    assert_eq!(t.steps[1].next_pc, 2);
    assert_rejected(&st, &t);
}

#[test]
fn changed_public_output_or_input_is_rejected() {
    let (st, proof) = honest_proof(&obelysk_vm::samples::mac_loop(), &[9, 4]);

    let mut bad = st.clone();
    bad.output[0] += M31(1);
    assert!(bitsage_air::verify(&bad, &proof).is_err());
    let mut bad = st.clone();
    bad.output.push(M31(0));
    assert!(bitsage_air::verify(&bad, &proof).is_err());
    let mut bad = st.clone();
    bad.input[1] = M31(5);
    assert!(bitsage_air::verify(&bad, &proof).is_err());
    let mut bad = st.clone();
    bad.security = bitsage_air::SecurityLevel::Bits128;
    assert!(matches!(bitsage_air::verify(&bad, &proof), Err(VerifyError::ConfigMismatch)));
}

#[test]
fn proof_checked_against_a_different_program_is_rejected() {
    let p = asm("read r1\nmul r2, r1, 3\nwrite r2\nhalt\n");
    let other = asm("read r1\nmul r2, r1, 4\nwrite r2\nhalt\n");
    let (st, proof) = honest_proof(&p, &[5]);
    let mut bad = st.clone();
    bad.program = other;
    assert!(bitsage_air::verify(&bad, &proof).is_err());
}

#[test]
fn padding_rows_cannot_alter_state() {
    // Turn a padding row of an honest trace into a second `write`, so the
    // claimed output gains a word the program never wrote.
    let p = asm("mov r1, 5\nwrite r1\nhalt\n");
    let t = run(&p, &[]);
    let st = statement(&p, &[], &[M31(5), M31(6)]);
    let mut main = build_main_trace(&p, &t);
    let cols = cpu_columns();
    let row = t.steps.len(); // first padding row
    let set = |main: &mut bitsage_prover::tracegen::MainTrace, col: usize, v: u32| {
        main.cpu.columns[col].set(row, Felt(v));
    };
    set(&mut main, cols.flags[Opcode::Write as usize], 1);
    set(&mut main, cols.pc, 1);
    set(&mut main, cols.clk, 2);
    set(&mut main, cols.out_ptr, 1);
    set(&mut main, cols.next_pc, 2);
    set(&mut main, cols.x, 6);
    set(&mut main, cols.w, 6);
    set(&mut main, cols.isz, 0);
    set(&mut main, cols.inv, Felt(6).inverse().0);
    set(&mut main, cols.r_lo, 6);
    set(&mut main, cols.prod, 0);
    assert_main_rejected(&st, &main, "a padding row turned into a write");
}

#[test]
fn flipping_proof_bytes_is_rejected() {
    let (st, proof) = honest_proof(&obelysk_vm::samples::mac_loop(), &[6, 2]);
    // Every byte of the claim and the first commitments, then a stride
    // through the rest (a full sweep is a benchmark, not a unit test).
    assert_byte_flips_rejected(&st, &proof, |len| {
        let stride = (len / 300).max(1);
        (0..256.min(len)).chain((256..len).step_by(stride)).collect()
    });
}

#[test]
fn a_run_that_hashes_cannot_leave_out_the_hash_component() {
    // The prover leaves the Poseidon2 component out of runs without `hash`
    // calls. A run with them, proved without it, leaves the CPU's `HashCall`
    // entries unconsumed: the honest prover refuses, and forged proofs (the
    // CPU's sum rewritten to balance, too) are rejected.
    let p = asm("mov r1, 7\nstore [r0 + 0], r1\nhash [r0 + 0]\nload r2, [r0 + 1]\nwrite r2\nhalt\n");
    let t = run(&p, &[]);
    assert_eq!(t.hashes.len(), 1);
    let st = statement(&p, &[], &t.output);
    let mut main = build_main_trace(&p, &t);
    assert!(main.claim.hash_log_size.is_some());
    main.hash = None;
    main.claim.hash_log_size = None;
    assert_main_rejected(&st, &main, "a hashing run without its hash component");
}

#[test]
fn the_hash_component_is_present_exactly_when_the_run_hashes() {
    let (_, plain) = honest_proof(&asm("read r1\nadd r1, r1, 1\nwrite r1\nhalt\n"), &[4]);
    assert_eq!(plain.claim.hash_log_size, None);
    assert!(plain.interaction.hash == SecureField::default());
    let hashing = asm("hash [r0 + 0]\nload r2, [r0 + 0]\nwrite r2\nhalt\n");
    let (_, proof) = honest_proof(&hashing, &[]);
    assert_eq!(proof.claim.hash_log_size, Some(bitsage_air::MIN_LOG_SIZE));
}

#[test]
fn a_range_table_smaller_than_the_runs_values_cannot_verify() {
    // A run with a timestamp gap above 2^8 (r5 is read again after 400
    // steps in which it is untouched) needs a range table beyond 0..2^8. Claiming
    // the smallest table, with the honest table's first 256 values, leaves
    // the CPU's lookups of the larger values unmatched: the honest prover
    // refuses and both forging provers are rejected.
    use bitsage_air::range::MIN_RANGE_LOG_SIZE;
    use stwo::prover::backend::simd::column::BaseColumn;
    let p = asm("mov r5, 7\nread r1\nloop:\nsub r1, r1, 1\njnz r1, loop\nadd r5, r5, 1\nwrite r5\nhalt\n");
    let t = run(&p, &[200]);
    let st = statement(&p, &[200], &t.output);
    let mut main = build_main_trace(&p, &t);
    assert!(main.claim.range_log_size > MIN_RANGE_LOG_SIZE, "the run's values fit 0..2^8");
    let rows = 1usize << (MIN_RANGE_LOG_SIZE - bitsage_air::range::RANGE_LANES_LOG);
    main.range.log_size = MIN_RANGE_LOG_SIZE - bitsage_air::range::RANGE_LANES_LOG;
    for col in main.range.columns.iter_mut() {
        *col = col.to_cpu()[..rows].iter().copied().collect::<BaseColumn>();
    }
    main.claim.range_log_size = MIN_RANGE_LOG_SIZE;
    assert_main_rejected(&st, &main, "a range table of 0..2^8 for a run that checks larger values");
}
