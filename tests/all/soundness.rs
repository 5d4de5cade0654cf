//! Bad traces, built by bypassing the honest executor, must be rejected by
//! the verifier. Each case makes every lookup balance where it can, so that
//! the constraint (or argument) under test is the one that catches it.

use bitsage_air::verify::VerifyError;
use bitsage_tests::forged::{self, Bad};
use bitsage_tests::*;
use obelysk_vm::M31;
use stwo::core::fields::qm31::SecureField;

#[test]
fn honest_traces_are_accepted() {
    // The baseline every tampering case is compared against.
    let p = asm("read r1\nread r2\nadd r3, r1, r2\nwrite r3\nhalt\n");
    let (st, _) = honest_proof(&p, &[20, 22]);
    assert_eq!(st.output, vec![M31(42)]);
}

#[test]
fn wrong_arithmetic_is_rejected() {
    let Bad::Trace(st, t) = forged::wrong_arithmetic() else { unreachable!() };
    assert_eq!(st.output, vec![M31(20) - M31(22)]);
    let errs = assert_rejected(&st, &t);
    assert!(errs.iter().all(|e| matches!(e, VerifyError::Stark(_))), "{errs:?}");
}

#[test]
fn skipped_instruction_is_rejected() {
    let Bad::Trace(st, t) = forged::skipped_instruction() else { unreachable!() };
    assert_eq!(st.output, vec![M31(5)]);
    assert_rejected(&st, &t);
}

#[test]
fn stale_memory_read_is_rejected() {
    let Bad::Trace(st, t) = forged::stale_memory_read() else { unreachable!() };
    let errs = assert_rejected(&st, &t);
    assert!(matches!(errs[0], VerifyError::LogupImbalance), "{errs:?}");
    assert!(matches!(errs[1], VerifyError::Stark(_)), "{errs:?}");
}

#[test]
fn jump_to_disallowed_pc_is_rejected() {
    let Bad::Trace(st, t) = forged::disallowed_jump() else { unreachable!() };
    assert_eq!(st.output, vec![M31(2)]);
    let errs = assert_rejected(&st, &t);
    assert!(matches!(errs[0], VerifyError::LogupImbalance), "{errs:?}");
    // And with the program's own `jmp skip` fetched, but execution still
    // continuing at pc 2: only the control-flow constraint can catch it.
    let Bad::Trace(st, t) = forged::jump_landing_elsewhere() else { unreachable!() };
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
    let bad = forged::padding_row_write();
    let (st, main) = bad.main();
    assert_main_rejected(st, &main, "a padding row turned into a write");
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
    let bad = forged::hash_component_left_out();
    let (st, main) = bad.main();
    assert_main_rejected(st, &main, "a hashing run without its hash component");
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
    // The honest prover refuses and both forging provers are rejected.
    let bad = forged::small_range_table();
    let (st, main) = bad.main();
    assert_main_rejected(st, &main, "a range table of 0..2^8 for a run that checks larger values");
}
