//! Reference programs used by the CLI examples, tests and benchmarks.

use stwo::core::fields::m31::M31;

use crate::builder::{ProgramBuilder, Reg};
use crate::isa::Program;

/// A multiply-accumulate loop: reads `n` and `x` from the public input,
/// computes `acc = Σ_{i=1..n} x·i` with `mac`, and writes `acc`.
///
/// Executes `4 + 3n` instructions, so `n ≈ rows / 3` fills a trace.
pub fn mac_loop() -> Program {
    let (n, x, acc) = (Reg(1), Reg(2), Reg(3));
    let mut b = ProgramBuilder::new();
    b.read(n).read(x);
    let top = b.here();
    b.mac(acc, x, n).sub(n, n, 1u32).jnz(n, top);
    b.write(acc).halt();
    b.build().expect("mac_loop is well formed")
}

/// Expected output of [`mac_loop`].
pub fn mac_loop_expected(n: u32, x: M31) -> M31 {
    let mut acc = M31(0);
    for i in 1..=n {
        acc += x * M31::from(i);
    }
    acc
}

/// Number of iterations of [`mac_loop`] whose trace is just below `rows`.
pub fn mac_loop_iterations_for_rows(rows: usize) -> u32 {
    ((rows.saturating_sub(4)) / 3).max(1) as u32
}

/// `n` iterations (from the public input) of a body that runs every opcode:
/// both outcomes of `lt` and `jz`, a call and return, RAM, a table lookup,
/// a hash and an advice word (the advice input's first word). Writes one
/// word per iteration and the hashed RAM word at the end; about 24 rows per
/// iteration. For checks that must cover every kind of CPU row.
pub fn every_opcode_loop() -> Program {
    let (n, a, b, c, d, link, p, z) = (Reg(1), Reg(2), Reg(3), Reg(4), Reg(5), Reg(6), Reg(7), Reg(0));
    let mut bl = ProgramBuilder::new();
    let squares = bl.table("squares", (0..16).map(|i| (M31(i), M31(i * i))));
    let (func, top, skip) = (bl.label(), bl.label(), bl.label());
    bl.read(n).advice(a).jmp(top);
    bl.bind(func).mul(c, c, 3u32).jr(link);
    bl.bind(top).add(b, n, 5u32).sub(c, b, a).mul(d, b, c).mac(d, b, 2u32).mov(p, 7u32);
    bl.lt(c, n, 40u32).lt(d, a, b).eq(c, n, 3u32).jz(c, skip).mov(d, 1u32);
    bl.bind(skip).store(z, 8, b).load(c, z, 8).mov(p, 3u32).lookup(d, squares, p).hash(z, 16);
    bl.jal(link, func).write(d).sub(n, n, 1u32).jnz(n, top);
    bl.load(d, z, 16).write(d).halt();
    bl.build().expect("every_opcode_loop is well formed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::{execute, ExecLimits};
    use crate::isa::Opcode;

    #[test]
    fn every_opcode_loop_runs_every_opcode_and_both_branch_outcomes() {
        let p = every_opcode_loop();
        let t = execute(&p, &[M31(50)], &[M31(11)], ExecLimits::default()).expect("runs");
        for op in Opcode::ALL {
            assert!(t.steps.iter().any(|s| s.instr.op == op), "{op:?} never ran");
        }
        // lt both ways (n < 40 only late in the loop), jz taken and not (n == 3 once).
        let outcomes = |op: Opcode| t.steps.iter().filter(|s| s.instr.op == op).map(|s| s.d_new.0).collect::<Vec<_>>();
        assert!(outcomes(Opcode::Lt).contains(&0) && outcomes(Opcode::Lt).contains(&1));
        let jz: Vec<bool> =
            t.steps.iter().filter(|s| s.instr.op == Opcode::Jz).map(|s| s.next_pc != s.pc + 1).collect();
        assert!(jz.contains(&true) && jz.contains(&false));
        assert_eq!(t.output.len(), 51);
    }
}
