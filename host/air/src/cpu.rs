//! The CPU component: one row per executed instruction.
//!
//! Rows are not linked by transition constraints. Instead each row consumes
//! the state `(pc, clk, in_ptr, out_ptr)` and produces the next one through
//! the `State` relation; the verifier supplies the initial state and `halt`
//! produces none. Because `clk` rises by one along every edge, the rows form a
//! single path from the initial state to one `halt`, in any row order.
//!
//! Memory: registers `a`, `b`, `dst` (and RAM for load/store) are accessed at
//! timestamps `4·clk + slot`. Each access consumes `(space, addr, value,
//! ts_prev)` and produces `(space, addr, value', ts)`, and `ts - ts_prev - 1`
//! is range-checked (see [`TS_HI_SHIFT`]). With the boundary component this
//! makes every read return the last value written.

use obelysk_vm::isa::Opcode;
use stwo::core::fields::m31::M31;

use crate::relations::{Lookup, Rel};
use crate::{c, columns, AirValue};

/// Timestamp gaps `g = ts - ts_prev - 1` are checked as `lo + 2^16·hi` with
/// `lo` and `64·hi` in the range table. `64·hi = v < 2^16` makes
/// `2^16·hi = 2^10·v` in the field, so the accepted set is exactly
/// `{lo + 2^10·v : lo, v < 2^16} = [0, 2^26 + 2^16 - 2^10)`, every element
/// below 2^27. That is enough: every timestamp is `4·clk + slot < 2^26`
/// (`clk < 2^23`, `MAX_CPU_LOG_SIZE`), so `ts_prev = ts - 1 - g` is
/// negative as an integer for any other `g`, i.e. above `p - 2^27` in the
/// field, which no produced timestamp is. A read can only see a strictly
/// earlier write. (Checking `hi` itself too would cost four lookups a row
/// and reject nothing that matters.)
pub const TS_HI_SHIFT: u32 = 1 << 6;
/// `lt` differences `r` are checked as `lo + 2^16·hi` with `lo`, `hi` and
/// `8·hi` in the range table: `hi < 2^16` as an integer, so `8·hi` does not
/// wrap and `8·hi < 2^16` means `hi < 2^13`. The accepted set is exactly
/// `[0, 2^29)`, the ISA's definition (`obelysk_vm::isa::LT_BITS`).
pub const LT_HI_SHIFT: u32 = 1 << 3;
pub const N_FLAGS: usize = Opcode::COUNT;
/// Range checks per CPU row ([`CpuCols::range_checks`]).
pub const N_RANGE_CHECKS: usize = 11;

columns!(
    /// The CPU row. `flags` is the one-hot opcode (all zero on padding rows).
    CpuCols {
        pc, clk, in_ptr, out_ptr, next_pc,
        imm_mode, dst, a, b, imm,
        x, xa_lo, xa_hi,
        y_reg, yb_lo, yb_hi,
        y, prod,
        m_old, m_new, m_lo, m_hi,
        d_old, d_new, d_lo, d_hi,
        w, inv, isz, lt, r_lo, r_hi,
        tgt, taken,
    } [ flags: N_FLAGS ]
);

impl<F: AirValue> CpuCols<F> {
    pub fn f(&self, op: Opcode) -> F {
        self.flags[op as usize].clone()
    }
    pub fn is_real(&self) -> F {
        sum(&self.flags)
    }
    pub fn opcode(&self) -> F {
        let mut acc = self.flags[1].clone();
        for (k, f) in self.flags.iter().enumerate().skip(2) {
            acc = acc + f.clone() * M31::from(k as u32);
        }
        acc
    }
    fn ts(&self) -> F {
        self.clk.clone() * M31(4)
    }
    fn prev_ts(&self, slot: u32, lo: &F, hi: &F) -> F {
        self.ts() + c(slot) - c(1) - lo.clone() - hi.clone() * M31(1 << 16)
    }
    pub fn ram_mult(&self) -> F {
        self.f(Opcode::Load) + self.f(Opcode::Store)
    }

    /// The row's range checks, as `(multiplicity, value)` of its `Range`
    /// lookups: the one list the constraints ([`Self::lookups`]), the host's
    /// range counts and the GPU row kernel's counts (generated from it) read.
    /// A check made has multiplicity `-1` (the row consumes a table entry),
    /// one not made `0`.
    pub fn range_checks(&self) -> [(F, F); N_RANGE_CHECKS] {
        let neg = |v: F| c::<F>(0) - v;
        let neg_real = neg(self.is_real());
        let neg_ram = neg(self.ram_mult());
        let neg_lt = neg(self.f(Opcode::Lt));
        let ts_shift = M31(TS_HI_SHIFT);
        [
            // The timestamp differences.
            (neg_real.clone(), self.xa_lo.clone()),
            (neg_real.clone(), self.xa_hi.clone() * ts_shift),
            (neg_real.clone(), self.yb_lo.clone()),
            (neg_real.clone(), self.yb_hi.clone() * ts_shift),
            (neg_ram.clone(), self.m_lo.clone()),
            (neg_ram, self.m_hi.clone() * ts_shift),
            (neg_real.clone(), self.d_lo.clone()),
            (neg_real, self.d_hi.clone() * ts_shift),
            // lt: the difference is below 2^29. `r_hi` itself is checked as
            // well as `8·r_hi`: the scaled check alone holds for field
            // elements `v/8` that are no integer below 2^13, and so admitted
            // differences up to 2^29 + 2^16 - 2^13 (see `LT_HI_SHIFT`).
            (neg_lt.clone(), self.r_lo.clone()),
            (neg_lt.clone(), self.r_hi.clone() * M31(LT_HI_SHIFT)),
            (neg_lt, self.r_hi.clone()),
        ]
    }

    /// The LogUp entries of one row. Shared by the evaluator and the prover.
    pub fn lookups(&self) -> Vec<Lookup<F>> {
        let real = self.is_real();
        let neg_real = c::<F>(0) - real.clone();
        let ram = self.ram_mult();
        let neg = |v: F| c::<F>(0) - v;
        let ts = self.ts();
        let addr = self.x.clone() + self.imm.clone();
        let mut out = vec![
            Lookup::new(
                Rel::State,
                neg_real.clone(),
                vec![self.pc.clone(), self.clk.clone(), self.in_ptr.clone(), self.out_ptr.clone()],
            ),
            Lookup::new(
                Rel::State,
                real.clone() - self.f(Opcode::Halt),
                vec![
                    self.next_pc.clone(),
                    self.clk.clone() + c(1),
                    self.in_ptr.clone() + self.f(Opcode::Read),
                    self.out_ptr.clone() + self.f(Opcode::Write),
                ],
            ),
            Lookup::new(
                Rel::Rom,
                neg_real.clone(),
                vec![
                    c(0),
                    self.pc.clone(),
                    self.opcode(),
                    self.imm_mode.clone(),
                    self.dst.clone(),
                    self.a.clone(),
                    self.b.clone(),
                    self.imm.clone(),
                ],
            ),
            // Register a, slot 0.
            Lookup::new(
                Rel::Mem,
                neg_real.clone(),
                vec![c(0), self.a.clone(), self.x.clone(), self.prev_ts(0, &self.xa_lo, &self.xa_hi)],
            ),
            Lookup::new(Rel::Mem, real.clone(), vec![c(0), self.a.clone(), self.x.clone(), ts.clone()]),
            // Register b, slot 1.
            Lookup::new(
                Rel::Mem,
                neg_real.clone(),
                vec![c(0), self.b.clone(), self.y_reg.clone(), self.prev_ts(1, &self.yb_lo, &self.yb_hi)],
            ),
            Lookup::new(Rel::Mem, real.clone(), vec![c(0), self.b.clone(), self.y_reg.clone(), ts.clone() + c(1)]),
            // RAM, slot 2.
            Lookup::new(
                Rel::Mem,
                neg(ram.clone()),
                vec![c(1), addr.clone(), self.m_old.clone(), self.prev_ts(2, &self.m_lo, &self.m_hi)],
            ),
            Lookup::new(Rel::Mem, ram.clone(), vec![c(1), addr.clone(), self.m_new.clone(), ts.clone() + c(2)]),
            // Register dst, slot 3.
            Lookup::new(
                Rel::Mem,
                neg_real.clone(),
                vec![c(0), self.dst.clone(), self.d_old.clone(), self.prev_ts(3, &self.d_lo, &self.d_hi)],
            ),
            Lookup::new(Rel::Mem, real.clone(), vec![c(0), self.dst.clone(), self.d_new.clone(), ts + c(3)]),
        ];
        out.extend(self.range_checks().into_iter().map(|(m, v)| Lookup::new(Rel::Range, m, vec![v])));
        out.extend([
            // Table lookup for non-linear functions: (1 + table, key, value).
            Lookup::new(
                Rel::Rom,
                neg(self.f(Opcode::Lookup)),
                vec![self.imm.clone() + c(1), self.x.clone(), self.d_new.clone()],
            ),
            Lookup::new(Rel::Input, neg(self.f(Opcode::Read)), vec![self.in_ptr.clone(), self.d_new.clone()]),
            Lookup::new(Rel::Output, self.f(Opcode::Write), vec![self.out_ptr.clone(), self.x.clone()]),
            Lookup::new(Rel::HashCall, self.f(Opcode::Hash), vec![addr, self.clk.clone()]),
        ]);
        out
    }

    /// The polynomial constraints of one row, all of degree at most 2.
    pub fn air(&self, _name: &mut dyn FnMut(F) -> F) -> (Vec<F>, Vec<Lookup<F>>) {
        (self.constraints(), self.lookups())
    }

    pub fn constraints(&self) -> Vec<F> {
        use Opcode::*;
        let one = || c::<F>(1);
        let s = self;
        let real = s.is_real();
        let boolean = |v: &F| v.clone() * (v.clone() - one());
        let mut out: Vec<F> = s.flags.iter().map(boolean).collect();
        out.push(boolean(&real));
        out.push(boolean(&s.imm_mode));
        out.push(boolean(&s.lt));
        // y = imm_mode ? imm : reg[b]
        out.push(s.y.clone() - s.y_reg.clone() - s.imm_mode.clone() * (s.imm.clone() - s.y_reg.clone()));
        out.push(s.prod.clone() - s.x.clone() * s.y.clone());
        // w = x - y for eq; w = x for jz/jnz. isz = (w == 0).
        let jzs = s.f(Jz) + s.f(Jnz);
        out.push(s.w.clone() - s.x.clone() + s.y.clone() - jzs * s.y.clone());
        out.push(s.w.clone() * s.isz.clone());
        out.push(s.isz.clone() - one() + s.w.clone() * s.inv.clone());
        // lt: r = lt ? y - x - 1 : x - y, with r range-checked on lt rows.
        let diff = s.x.clone() - s.y.clone();
        out.push(
            diff.clone() + s.lt.clone() * (c::<F>(0) - diff.clone() - diff - one())
                - s.r_lo.clone()
                - s.r_hi.clone() * M31(1 << 16),
        );
        // Results.
        let d = || s.d_new.clone();
        out.push(s.f(Add) * (d() - s.x.clone() - s.y.clone()));
        out.push(s.f(Sub) * (d() - s.x.clone() + s.y.clone()));
        out.push(s.f(Mul) * (d() - s.prod.clone()));
        out.push(s.f(Mac) * (d() - s.d_old.clone() - s.prod.clone()));
        out.push(s.f(Mov) * (d() - s.y.clone()));
        out.push(s.f(Eq) * (d() - s.isz.clone()));
        out.push(s.f(Lt) * (d() - s.lt.clone()));
        out.push(s.f(Load) * (d() - s.m_old.clone()));
        out.push(s.f(Jal) * (d() - s.pc.clone() - one()));
        let keeps_dst = [Store, Jmp, Jnz, Jz, Jr, Write, Hash, Halt].iter().fold(c::<F>(0), |acc, op| acc + s.f(*op));
        out.push(keeps_dst * (d() - s.d_old.clone()));
        // RAM.
        out.push(s.f(Load) * (s.m_new.clone() - s.m_old.clone()));
        out.push(s.f(Store) * (s.m_new.clone() - s.y.clone()));
        // Control flow.
        out.push(s.tgt.clone() - s.imm.clone() - s.f(Jr) * (s.x.clone() - s.imm.clone()));
        out.push(s.f(Jz) * (s.taken.clone() - s.isz.clone()));
        out.push(s.f(Jnz) * (s.taken.clone() - one() + s.isz.clone()));
        out.push((s.f(Jmp) + s.f(Jal) + s.f(Jr)) * (s.taken.clone() - one()));
        let jumps = s.f(Jz) + s.f(Jnz) + s.f(Jmp) + s.f(Jal) + s.f(Jr);
        out.push((real - jumps) * s.taken.clone());
        out.push(s.next_pc.clone() - s.pc.clone() - one() - s.taken.clone() * (s.tgt.clone() - s.pc.clone() - one()));
        out
    }
}

fn sum<F: AirValue>(v: &[F]) -> F {
    v.iter().skip(1).fold(v[0].clone(), |acc, x| acc + x.clone())
}

crate::component_eval!(
    /// Evaluator for the CPU component.
    CpuEval,
    CpuCols
);
