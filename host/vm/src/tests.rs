use obelysk_isa::M31;

use crate::asm::{assemble, disassemble};
use crate::builder::{ProgramBuilder, Reg};
use crate::exec::{compare_lt, execute, ExecError, ExecLimits};
use crate::isa::{Instr, Opcode, Program, ProgramError};
use crate::{poseidon2, samples};

fn m(v: u32) -> M31 {
    M31(v)
}

#[test]
fn mac_loop_computes_sum() {
    let p = samples::mac_loop();
    let t = execute(&p, &[m(10), m(7)], &[], ExecLimits::default()).unwrap();
    assert_eq!(t.output, vec![samples::mac_loop_expected(10, m(7))]);
    assert_eq!(t.output, vec![m(7 * 55)]);
    assert_eq!(t.steps.len(), 4 + 3 * 10);
    // clk runs 1..=n and every step links to the next pc.
    for w in t.steps.windows(2) {
        assert_eq!(w[0].next_pc, w[1].pc);
        assert_eq!(w[0].clk + 1, w[1].clk);
    }
}

#[test]
fn assembly_round_trips_through_disassembly() {
    let src = r#"
        .table sq 0:0 1:1 2:4 3:9
        read r1
        mov r2, 3
    top:
        mac r3, r1, r2
        sub r2, r2, 1
        jnz r2, top
        store [r5 + 4], r3
        load r6, [r5 + 4]
        lookup r7, sq, r2
        hash [r5 + 32]
        jal r15, fn
        write r6
        halt
    fn: eq r8, r6, -1
        lt r9, r6, r8
        jr r15
    "#;
    let p = assemble(src).unwrap();
    let text = disassemble(&p);
    assert_eq!(assemble(&text).unwrap(), p, "{text}");
    let t = execute(&p, &[m(4)], &[], ExecLimits::default()).unwrap();
    assert_eq!(t.output, vec![m(4 * 6)]);
    assert_eq!(t.hashes.len(), 1);
}

#[test]
fn assembler_reports_line_numbers() {
    let e = assemble("mov r1, 1\nfrob r1\n").unwrap_err();
    assert!(matches!(e, crate::asm::AsmError::Syntax { line: 2, .. }), "{e}");
    let e = assemble("jmp nowhere\n").unwrap_err();
    assert!(matches!(e, crate::asm::AsmError::UnknownLabel { line: 1, .. }), "{e}");
    let e = assemble("mov r16, 1\n").unwrap_err();
    assert!(e.to_string().contains("r16"), "{e}");
}

#[test]
fn typed_execution_errors() {
    let mut b = ProgramBuilder::new();
    b.read(Reg(1)).read(Reg(1)).halt();
    let p = b.build().unwrap();
    assert_eq!(execute(&p, &[m(1)], &[], ExecLimits::default()), Err(ExecError::InputExhausted { pc: 1, len: 1 }));

    let mut b = ProgramBuilder::new();
    let l = b.here();
    b.jmp(l);
    let p = b.build().unwrap();
    let lim = ExecLimits { max_steps: 100, ..Default::default() };
    assert_eq!(execute(&p, &[], &[], lim), Err(ExecError::StepBudgetExceeded { budget: 100 }));

    let mut b = ProgramBuilder::new();
    b.mov(Reg(1), 99u32).jr(Reg(1));
    let p = b.build().unwrap();
    assert!(matches!(execute(&p, &[], &[], ExecLimits::default()), Err(ExecError::PcOutOfRange { pc: 99, .. })));

    let mut b = ProgramBuilder::new();
    b.mov(Reg(1), 1u32 << 30).lt(Reg(2), Reg(0), Reg(1)).halt();
    let p = b.build().unwrap();
    assert!(matches!(execute(&p, &[], &[], ExecLimits::default()), Err(ExecError::ComparisonOutOfRange { .. })));

    let mut b = ProgramBuilder::new();
    b.mov(Reg(1), 5000u32).load(Reg(2), Reg(1), 0).halt();
    let p = b.build().unwrap();
    let lim = ExecLimits { ram_words: 4096, ..Default::default() };
    assert!(matches!(execute(&p, &[], &[], lim), Err(ExecError::MemoryOutOfBounds { addr: 5000, .. })));

    let bad = Program {
        instrs: vec![Instr { op: Opcode::Jmp, dst: 0, a: 0, b: 0, imm_mode: false, imm: m(7) }],
        tables: vec![],
    };
    assert!(matches!(bad.validate(), Err(ProgramError::JumpOutOfRange { target: 7, .. })));
    let bad = Program {
        instrs: vec![Instr { op: Opcode::Halt, dst: 3, a: 0, b: 0, imm_mode: false, imm: m(0) }],
        tables: vec![],
    };
    assert!(matches!(bad.validate(), Err(ProgramError::NonCanonical { field: "dst", .. })));
}

#[test]
fn lt_is_signed_within_range() {
    assert_eq!(compare_lt(m(3), m(5)), Some(true));
    assert_eq!(compare_lt(m(5), m(5)), Some(false));
    assert_eq!(compare_lt(-m(1), m(0)), Some(true));
    assert_eq!(compare_lt(m(0), -m(1)), Some(false));
    assert_eq!(compare_lt(m(0), m(1 << 29)), Some(true));
    assert_eq!(compare_lt(m(0), m((1 << 29) + 1)), None);
}

#[test]
fn hash_instruction_matches_reference_permutation() {
    let mut b = ProgramBuilder::new();
    for i in 0..16u32 {
        b.mov(Reg(1), i * 3 + 1).store(Reg(0), 100 + i, Reg(1));
    }
    b.mov(Reg(2), 100u32).hash(Reg(2), 0);
    for i in 0..16u32 {
        b.load(Reg(3), Reg(0), 100 + i).write(Reg(3));
    }
    b.halt();
    let t = execute(&b.build().unwrap(), &[], &[], ExecLimits::default()).unwrap();
    let mut st: [M31; 16] = std::array::from_fn(|i| m(i as u32 * 3 + 1));
    poseidon2::permute(&mut st);
    assert_eq!(t.output, st.to_vec());
}

#[test]
fn memory_timestamps_always_increase() {
    let p = samples::mac_loop();
    let t = execute(&p, &[m(5), m(2)], &[], ExecLimits::default()).unwrap();
    for s in &t.steps {
        let ts = 4 * s.clk;
        assert!(s.x_ts < ts && s.y_ts < ts + 1 && s.d_ts < ts + 3);
    }
}
