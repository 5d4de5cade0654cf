//! Statements hold canonical words only, and `lt` proves exactly what the
//! ISA defines: each entry point refuses a word `>= p` with a typed error,
//! and the forging prover cannot make a proof of an `lt` difference of 2^29.

use bitsage_air::cpu::CpuCols;
use bitsage_air::range::RANGE_LANES;
use bitsage_air::relations::Rel;
use bitsage_air::verify::VerifyError;
use bitsage_air::StatementError;
use bitsage_prover::tracegen::{build_main_trace, MainTrace};
use bitsage_prover::{prove, Forgery, ProveError, ProveOptions, Receipt, ReceiptError};
use bitsage_tests::*;
use obelysk_vm::exec::{execute, ExecError, ExecLimits};
use obelysk_vm::isa::{ProgramError, Table};
use obelysk_vm::M31;
use stwo::core::fields::m31::{M31 as Felt, P};
use stwo::prover::backend::Column;

fn rejected_statement(st: &bitsage_air::Statement, proof: &bitsage_air::verify::Proof) -> StatementError {
    match bitsage_air::verify(st, proof) {
        Err(VerifyError::Statement(e)) => e,
        other => panic!("expected a statement error, got {other:?}"),
    }
}

#[test]
fn an_output_word_at_or_above_p_is_refused() {
    // A program that writes 0 cannot be claimed to write p (= 0 mod p).
    let (st, proof) = honest_proof(&asm("mov r1, 0\nwrite r1\nhalt\n"), &[]);
    let mut bad = st.clone();
    bad.output = vec![M31(P)];
    let e = rejected_statement(&bad, &proof);
    assert_eq!(e, StatementError::NonCanonical { part: "output", index: 0, value: P });
    // Nor one that writes 42 to write p + 42.
    let (st, proof) = honest_proof(&asm("mov r1, 42\nwrite r1\nhalt\n"), &[]);
    let mut bad = st.clone();
    bad.output = vec![M31(P + 42)];
    assert!(matches!(rejected_statement(&bad, &proof), StatementError::NonCanonical { value, .. } if value == P + 42));
    // Input too.
    let (st, proof) = honest_proof(&asm("read r1\nwrite r1\nhalt\n"), &[7]);
    let mut bad = st.clone();
    bad.input = vec![M31(P + 7)];
    assert!(matches!(rejected_statement(&bad, &proof), StatementError::NonCanonical { part: "input", .. }));
}

#[test]
fn table_words_and_immediates_at_or_above_p_are_refused() {
    // `{0 -> 10, p -> 20}` would make one key prove two values.
    let mut p = asm(".table t 0:10 1:20\nread r1\nlookup r2, t, r1\nwrite r2\nhalt\n");
    p.tables[0].entries[1].0 = M31(P);
    assert!(matches!(p.validate(), Err(ProgramError::NonCanonicalTableWord { value, .. }) if value == P));
    let mut q = asm(".table t 0:10 1:20\nread r1\nlookup r2, t, r1\nwrite r2\nhalt\n");
    q.tables[0].entries[0].1 = M31(u32::MAX);
    assert!(matches!(q.validate(), Err(ProgramError::NonCanonicalTableWord { value, .. }) if value == u32::MAX));
    // An immediate equal to p would make `eq` prove what the executor does
    // not compute.
    let mut r = asm("read r1\neq r2, r1, 0\nwrite r2\nhalt\n");
    r.instrs[1].imm = M31(P);
    assert_eq!(r.validate(), Err(ProgramError::NonCanonicalImm { pc: 1, value: P }));
    assert!(matches!(execute(&r, &[M31(0)], &[], ExecLimits::default()), Err(ExecError::InvalidProgram(_))));
    // The verifier refuses such a program in a statement before the proof.
    let (st, proof) = honest_proof(&asm("read r1\neq r2, r1, 0\nwrite r2\nhalt\n"), &[0]);
    let mut bad = st.clone();
    bad.program = r;
    assert!(matches!(rejected_statement(&bad, &proof), StatementError::Program(ProgramError::NonCanonicalImm { .. })));
    // The assembler refuses it too.
    assert!(obelysk_vm::asm::assemble("mov r1, 2147483647\nhalt\n").is_err());
    assert!(obelysk_vm::asm::assemble(".table t 2147483647:1\nhalt\n").is_err());
}

#[test]
fn the_executor_and_the_prover_refuse_non_canonical_words() {
    let p = asm("read r1\nwrite r1\nhalt\n");
    let e = execute(&p, &[M31(P)], &[], ExecLimits::default()).unwrap_err();
    assert_eq!(e, ExecError::NonCanonicalWord { what: "input", index: 0, value: P });
    let e = execute(&asm("advice r1\nwrite r1\nhalt\n"), &[], &[M31(P + 1)], ExecLimits::default()).unwrap_err();
    assert!(matches!(e, ExecError::NonCanonicalWord { what: "advice", .. }));
    // A statement over its caps or with a bad word is refused before proving.
    let t = run(&p, &[5]);
    let mut st = statement(&p, &[5], &t.output);
    st.output = vec![M31(P + 5)];
    assert!(matches!(prove_with(&st, &t, Forgery::None), Err(ProveError::Statement(_))));
    let mut long = statement(&p, &[5], &t.output);
    long.input = vec![M31(0); bitsage_air::MAX_PUBLIC_WORDS + 1];
    assert!(matches!(long.validate(), Err(StatementError::TooLong { part: "input", .. })));
    assert!(matches!(prove(&p, &[M31(P)], &[], &ProveOptions::default()), Err(ProveError::Exec(_))));
}

#[test]
fn receipts_with_non_canonical_words_do_not_decode() {
    let (st, proof) = honest_proof(&asm("read r1\nwrite r1\nhalt\n"), &[9]);
    let good = Receipt::new(st.clone(), proof.clone()).unwrap().to_bytes().unwrap();
    Receipt::from_bytes(&good).unwrap().verify().unwrap();
    // Encoding does not check words; decoding does, at the word.
    let cases: Vec<(&str, bitsage_air::Statement)> = vec![
        ("output", {
            let mut s = st.clone();
            s.output = vec![M31(P + 9)];
            s
        }),
        ("input", {
            let mut s = st.clone();
            s.input = vec![M31(u32::MAX)];
            s
        }),
        ("immediate", {
            let mut s = st.clone();
            s.program.instrs[0].imm_mode = false;
            s.program.instrs[0].imm = M31(P);
            s
        }),
        ("table", {
            let mut s = st.clone();
            s.program.tables.push(Table { name: "t".into(), entries: vec![(M31(0), M31(10)), (M31(P), M31(20))] });
            s
        }),
    ];
    for (what, bad) in cases {
        let bytes = Receipt::new(bad, proof.clone()).unwrap().to_bytes().unwrap();
        match Receipt::from_bytes(&bytes) {
            Err(e @ ReceiptError::Corrupt(_)) => {
                // The refused word is named once, by the decoder's own error in the chain.
                let chain = bitsage_air::verify::error_chain(&e);
                assert!(chain.starts_with("receipt is truncated or corrupt: statement: "), "{what}: {chain}");
                assert_eq!(chain.matches("not a canonical field element").count(), 1, "{what}: {chain}");
            }
            other => panic!("{what}: expected a decoding error, got {:?}", other.map(|r| r.digest_hex())),
        }
    }
}

/// `lt(x, y)` with `x - y = 2^29` under the old check: the difference split
/// as `r_lo = 2^13` and `r_hi = (2^16 - 1) / 8` in the field, so that
/// `r_lo` and `8·r_hi` are both in the range table while `r_hi` is no
/// integer. The range multiplicities are made to match those two lookups.
#[test]
fn lt_difference_of_2_29_cannot_be_proved() {
    let claimed = asm("read r1\nread r2\nlt r3, r1, r2\nwrite r3\nhalt\n");
    // The executor refuses the run itself.
    let y = P - (1 << 29); // 0 - y = 2^29 in the field
    assert!(matches!(
        execute(&claimed, &[M31(0), M31(y)], &[], ExecLimits::default()),
        Err(ExecError::ComparisonOutOfRange { .. })
    ));
    // Run at y + 1 (difference 2^29 - 1, defined), then edit the trace to y.
    let mut t = run(&claimed, &[0, y + 1]);
    assert_eq!(t.output, vec![M31(0)]);
    t.steps[1].d_new = M31(y);
    t.steps[2].y_reg = M31(y);
    t.registers[2].value = M31(y);
    let st = statement(&claimed, &[0, y], &[M31(0)]);
    let mut main = build_main_trace(&claimed, &t);
    let cols = cpu_columns();
    let row = 2;
    let r_hi = Felt(65535) * Felt(8).inverse();
    assert_eq!(Felt(1 << 13) + r_hi * Felt(1 << 16), Felt(1 << 29));
    // The range-table values the AIR looks up on this row, from its own
    // `lookups()`: the honest split's are taken back from the range table's
    // multiplicities, the forged split's added (where the table has them).
    let range_values = |main: &MainTrace| {
        let mut i = 0;
        let row = CpuCols::<Felt>::read(|| {
            i += 1;
            main.cpu.columns[i - 1].at(row)
        });
        row.lookups()
            .into_iter()
            .filter(|l| l.rel == Rel::Range && l.mult != Felt(0))
            .map(|l| l.values[0].0 as usize)
            .filter(|&v| v < 1 << 16)
            .collect::<Vec<_>>()
    };
    let before = range_values(&main);
    main.cpu.columns[cols.r_lo].set(row, Felt(1 << 13));
    main.cpu.columns[cols.r_hi].set(row, r_hi);
    let after = range_values(&main);
    // Value v is row v / 16 of lane v % 16 (bitsage_air::range).
    assert_eq!(main.claim.range_log_size, 16);
    let bump = |main: &mut MainTrace, v: usize, d: i64| {
        let (r, lane) = (v / RANGE_LANES, 1 + v % RANGE_LANES);
        assert_eq!(main.range.columns[0].at(r).0 as usize, v - v % RANGE_LANES, "range row");
        let m = main.range.columns[lane].at(r).0 as i64 + d;
        main.range.columns[lane].set(r, Felt(m as u32));
    };
    before.iter().for_each(|&v| bump(&mut main, v, -1));
    after.iter().for_each(|&v| bump(&mut main, v, 1));
    // Both forged limbs the scaled check reads are in the table; under the
    // old AIR the forgery balanced and verified.
    assert!(after.contains(&(1 << 13)) && after.contains(&65535), "{after:?}");
    assert_main_rejected(&st, &main, "an lt difference of 2^29");
}

#[test]
fn lt_differences_up_to_2_29_minus_1_prove() {
    let p = asm("read r1\nread r2\nlt r3, r1, r2\nwrite r3\nhalt\n");
    // x - y = 2^29 - 1 (lt false), and y - x - 1 = 2^29 - 1 (lt true).
    let (st, _) = honest_proof(&p, &[0, P - ((1 << 29) - 1)]);
    assert_eq!(st.output, vec![M31(0)]);
    let (st, _) = honest_proof(&p, &[0, 1 << 29]);
    assert_eq!(st.output, vec![M31(1)]);
    // One further is outside the ISA.
    assert!(execute(&p, &[M31(0), M31((1 << 29) + 1)], &[], ExecLimits::default()).is_err());
}
