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
