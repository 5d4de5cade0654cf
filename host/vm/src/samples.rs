//! Reference programs used by the CLI examples, tests and benchmarks.

use obelysk_isa::M31;

use crate::builder::{Operand, ProgramBuilder, Reg};
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

/// A deterministic pseudo-random stream (SplitMix64), seeded: for
/// [`random_program`] and for tests that generate inputs.
pub struct Stream(pub u64);

impl Stream {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform enough below `n` (`n > 0`).
    pub fn below(&mut self, n: u32) -> u32 {
        (self.next() % u64::from(n)) as u32
    }
}

/// A random program, fixed by `seed`, for checks that should not rest on one
/// program's shape: a loop run `n` times (`n` from the public input) whose
/// body is `body_len` instructions drawn from every opcode, with random
/// registers and immediates, kept where the VM defines them: `lt` compares
/// the loop counter with a small immediate, RAM is read and written at
/// small addresses, lookups use keys of the program's table, conditional
/// jumps skip the next instruction forward, and calls go to a function that
/// returns. Reads one advice word before the loop.
pub fn random_program(seed: u64, body_len: usize) -> RandomProgram {
    let (n, link, p, z) = (Reg(1), Reg(14), Reg(13), Reg(0));
    // Registers the body may write (never the counter, the link, the base).
    let dst = |r: &mut Stream| Reg(2 + r.below(10) as u8);
    let any = |r: &mut Stream| Reg(r.below(13) as u8);
    let operand = |r: &mut Stream| -> Operand {
        if r.below(2) == 0 {
            Operand::Reg(any(r))
        } else {
            Operand::Imm(M31(r.below(0x7fff_ffff)))
        }
    };
    let mut r = Stream(seed);
    let mut b = ProgramBuilder::new();
    let table = b.table("random", (0..32).map(|k| (M31(k), M31(r.below(1 << 30)))));
    let (func, top) = (b.label(), b.label());
    b.read(n).advice(Reg(2)).jmp(top);
    b.bind(func).mul(Reg(11), Reg(11), 3u32).add(Reg(12), Reg(12), Reg(11)).jr(link);
    b.bind(top);
    let body_start = b.pc();
    let mut calls = 0;
    for _ in 0..body_len {
        match r.below(16) {
            0 => b.add(dst(&mut r), any(&mut r), operand(&mut r)),
            1 => b.sub(dst(&mut r), any(&mut r), operand(&mut r)),
            2 => b.mul(dst(&mut r), any(&mut r), operand(&mut r)),
            3 => b.mac(dst(&mut r), any(&mut r), operand(&mut r)),
            4 => b.mov(dst(&mut r), operand(&mut r)),
            5 => b.eq(dst(&mut r), any(&mut r), operand(&mut r)),
            6 => b.lt(dst(&mut r), n, r.below(1 << 20)),
            7 => b.load(dst(&mut r), z, r.below(64)),
            8 => b.store(z, r.below(64), any(&mut r)),
            9 => b.mov(p, r.below(32)).lookup(dst(&mut r), table, p),
            10 => b.hash(z, r.below(48)),
            11 | 12 => {
                let skip = b.label();
                let c = any(&mut r);
                if r.below(2) == 0 {
                    b.jz(c, skip);
                } else {
                    b.jnz(c, skip);
                }
                b.add(dst(&mut r), any(&mut r), operand(&mut r)).bind(skip)
            }
            13 => {
                calls += 1;
                b.jal(link, func)
            }
            14 => b.write(any(&mut r)),
            _ => b.mac(dst(&mut r), any(&mut r), any(&mut r)),
        };
    }
    b.sub(n, n, 1u32).jnz(n, top);
    // Each body instruction runs at most once an iteration, a call adds the
    // function's three, and the loop's own two.
    let rows_per_iteration = b.pc() - body_start + 3 * calls;
    b.write(Reg(12)).halt();
    RandomProgram { program: b.build().expect("random_program is well formed"), rows_per_iteration }
}

/// A program from [`random_program`] and the most rows one iteration of its
/// loop can take.
pub struct RandomProgram {
    pub program: Program,
    pub rows_per_iteration: usize,
}

impl RandomProgram {
    /// The most iterations whose trace stays within `rows` (the code before
    /// and after the loop takes 5).
    pub fn iterations_for_rows(&self, rows: usize) -> u32 {
        (rows.saturating_sub(5) / self.rows_per_iteration).max(1) as u32
    }
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

    #[test]
    fn random_programs_run_every_opcode_within_their_row_budget() {
        for seed in 0..20 {
            let p = random_program(seed, 32);
            let iters = p.iterations_for_rows(1 << 12);
            let t = execute(&p.program, &[M31(iters)], &[M31(5)], ExecLimits::default())
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert!(t.steps.len() <= 1 << 12, "seed {seed}: {} steps", t.steps.len());
            assert!(t.steps.len() > 1 << 10, "seed {seed}: only {} steps", t.steps.len());
            let ops: std::collections::HashSet<Opcode> = t.steps.iter().map(|s| s.instr.op).collect();
            assert!(ops.len() >= 12, "seed {seed}: only {ops:?}");
        }
        // The seed fixes the program.
        assert_eq!(random_program(7, 32).program, random_program(7, 32).program);
        assert_ne!(random_program(7, 32).program, random_program(8, 32).program);
    }
}
