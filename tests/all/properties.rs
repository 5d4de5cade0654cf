//! Random valid programs always prove and verify.

use bitsage_tests::*;
use obelysk_vm::builder::{ProgramBuilder, Reg};
use obelysk_vm::exec::{execute, ExecLimits};
use obelysk_vm::M31;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Alu(u8, u8, u8, Option<u32>, u8),
    Store(u8, u32),
    Load(u8, u32),
    Hash(u32),
    Write(u8),
    Read(u8),
    Lt(u8, u32),
    Lookup(u8, u32),
    Loop(u32, Vec<(u8, u8, u8)>),
}

fn reg() -> impl Strategy<Value = u8> {
    1u8..12
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (reg(), reg(), reg(), proptest::option::of(any::<u32>()), 0u8..6).prop_map(|(d, a, b, i, k)| Op::Alu(d, a, b, i, k)),
        1 => (reg(), 0u32..48).prop_map(|(r, a)| Op::Store(r, a)),
        1 => (reg(), 0u32..48).prop_map(|(r, a)| Op::Load(r, a)),
        1 => (0u32..32).prop_map(Op::Hash),
        1 => reg().prop_map(Op::Write),
        1 => reg().prop_map(Op::Read),
        1 => (reg(), 0u32..1000).prop_map(|(r, v)| Op::Lt(r, v)),
        1 => (reg(), 0u32..8).prop_map(|(r, v)| Op::Lookup(r, v)),
        1 => (1u32..6, proptest::collection::vec((reg(), reg(), reg()), 1..4)).prop_map(|(n, b)| Op::Loop(n, b)),
    ]
}

fn build(ops: &[Op]) -> obelysk_vm::Program {
    let mut b = ProgramBuilder::new();
    let sq = b.table("square", (0..8u32).map(|k| (M31(k), M31(k * k))));
    for o in ops {
        match o.clone() {
            Op::Alu(d, a, x, imm, k) => {
                let (d, a) = (Reg(d), Reg(a));
                let y: obelysk_vm::builder::Operand = match imm {
                    Some(v) => M31::from(v % (1 << 30)).into(),
                    None => Reg(x).into(),
                };
                match k {
                    0 => b.add(d, a, y),
                    1 => b.sub(d, a, y),
                    2 => b.mul(d, a, y),
                    3 => b.mac(d, a, y),
                    4 => b.mov(d, y),
                    _ => b.eq(d, a, y),
                };
            }
            Op::Store(r, a) => {
                b.store(Reg(0), a, Reg(r));
            }
            Op::Load(r, a) => {
                b.load(Reg(r), Reg(0), a);
            }
            Op::Hash(a) => {
                b.hash(Reg(0), a);
            }
            Op::Write(r) => {
                b.write(Reg(r));
            }
            Op::Read(r) => {
                b.read(Reg(r));
            }
            Op::Lt(r, v) => {
                b.mov(Reg(13), v).lt(Reg(r), Reg(13), 500u32);
            }
            Op::Lookup(r, v) => {
                b.mov(Reg(14), v).lookup(Reg(r), sq, Reg(14));
            }
            Op::Loop(n, body) => {
                b.repeat(Reg(15), n, |b| {
                    for (d, a, x) in &body {
                        b.mac(Reg(*d), Reg(*a), Reg(*x));
                    }
                });
            }
        }
    }
    b.halt();
    b.build().expect("generated programs are valid")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn random_programs_prove_and_verify(ops in proptest::collection::vec(op(), 1..40), input in proptest::collection::vec(any::<u32>(), 40)) {
        let p = build(&ops);
        // Reads are never inside a loop: each runs once, and a run reads
        // exactly its input.
        let reads = ops.iter().filter(|o| matches!(o, Op::Read(_))).count();
        let input: Vec<M31> = input.into_iter().take(reads).map(M31::from).collect();
        let t = execute(&p, &input, &[], ExecLimits::default()).expect("generated programs run");
        let st = bitsage_air::Statement { program: p.clone(), input: input.clone(), output: t.output.clone(), security: bitsage_air::SecurityLevel::Bits96 };
        let proof = prove_with(&st, &t, bitsage_prover::Forgery::None).expect("honest traces prove");
        prop_assert!(bitsage_air::verify(&st, &proof).is_ok());
    }
}

#[test]
fn builder_loops_execute_and_prove() {
    let (st, _) = honest_proof(&obelysk_vm::samples::mac_loop(), &[100, 3]);
    assert_eq!(st.output, vec![obelysk_vm::samples::mac_loop_expected(100, M31(3))]);
}
