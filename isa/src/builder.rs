//! The program builder: labels, loops, tables and assertion gadgets. The
//! host's tests and tools and the guest SDK build programs with this one
//! type, so a program reads the same on both sides of the sandbox.

use crate::field::M31;
use crate::isa::{Instr, Opcode, Program, ProgramError, Table, LT_BITS};

/// A register, `r0`..`r15`. All start at zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);
pub const R6: Reg = Reg(6);
pub const R7: Reg = Reg(7);
pub const R8: Reg = Reg(8);
pub const R9: Reg = Reg(9);
pub const R10: Reg = Reg(10);
pub const R11: Reg = Reg(11);
pub const R12: Reg = Reg(12);
pub const R13: Reg = Reg(13);
pub const R14: Reg = Reg(14);
pub const R15: Reg = Reg(15);

/// The second operand of an ALU instruction: a register or an immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    Reg(Reg),
    Imm(M31),
}

impl From<Reg> for Operand {
    fn from(r: Reg) -> Self {
        Operand::Reg(r)
    }
}
impl From<M31> for Operand {
    fn from(v: M31) -> Self {
        Operand::Imm(v)
    }
}
impl From<u32> for Operand {
    fn from(v: u32) -> Self {
        Operand::Imm(M31::from(v))
    }
}
impl From<i32> for Operand {
    fn from(v: i32) -> Self {
        Operand::Imm(M31::from(v))
    }
}

/// A jump target, bound to a pc with [`ProgramBuilder::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// A lookup table handle returned by [`ProgramBuilder::table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableId(u32);

/// Why [`ProgramBuilder::build`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("label {0} is used but never bound")]
    UnboundLabel(usize),
    #[error("label {0} is bound twice")]
    Rebound(usize),
    #[error("assert_range bound {0} is above 2^28")]
    RangeBound(u32),
    #[error("invalid program: {0}")]
    Program(#[from] ProgramError),
}

/// The largest bound [`ProgramBuilder::assert_range`] takes: both of its
/// comparisons must stay within `lt`'s range-checked distance (`2^LT_BITS`).
pub const MAX_RANGE_BOUND: u32 = 1 << (LT_BITS - 1);

/// Builds a [`Program`] instruction by instruction.
///
/// ```
/// use obelysk_isa::{ProgramBuilder, R1, R2, R3};
///
/// let mut p = ProgramBuilder::new();
/// p.read(R1).read(R2).add(R3, R1, R2).write(R3).halt();
/// let program = p.build().unwrap();
/// assert_eq!(program.instrs.len(), 5);
/// ```
#[derive(Default)]
pub struct ProgramBuilder {
    instrs: Vec<Instr>,
    tables: Vec<Table>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
    /// The first misuse seen while building; `build` reports it.
    misuse: Option<BuildError>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The pc the next instruction will get.
    pub fn pc(&self) -> usize {
        self.instrs.len()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction. Binding a label twice is an error
    /// that [`build`](Self::build) reports.
    pub fn bind(&mut self, l: Label) -> &mut Self {
        if self.labels[l.0].is_some() {
            self.misuse.get_or_insert(BuildError::Rebound(l.0));
        }
        self.labels[l.0] = Some(self.instrs.len());
        self
    }

    /// A fresh label bound here.
    pub fn here(&mut self) -> Label {
        let l = self.label();
        self.bind(l);
        l
    }

    /// Declares a lookup table for a non-linear function (keys distinct).
    pub fn table(&mut self, name: &str, entries: impl IntoIterator<Item = (M31, M31)>) -> TableId {
        self.tables.push(Table { name: name.to_string(), entries: entries.into_iter().collect() });
        TableId(self.tables.len() as u32 - 1)
    }

    /// Appends an instruction as it is.
    pub fn push(&mut self, i: Instr) -> &mut Self {
        self.instrs.push(i);
        self
    }

    /// Appends `op dst, a, b` with the immediate field `imm` (not an operand).
    fn emit(&mut self, op: Opcode, dst: Reg, a: Reg, b: Reg, imm: M31) -> &mut Self {
        self.push(Instr { op, dst: dst.0, a: a.0, b: b.0, imm_mode: false, imm })
    }

    fn alu(&mut self, op: Opcode, dst: Reg, a: Reg, y: Operand) -> &mut Self {
        let (b, imm_mode, imm) = match y {
            Operand::Reg(b) => (b, false, M31::ZERO),
            Operand::Imm(v) => (R0, true, v),
        };
        self.push(Instr { op, dst: dst.0, a: a.0, b: b.0, imm_mode, imm })
    }

    /// A jump whose target [`build`](Self::build) patches in.
    fn branch(&mut self, op: Opcode, dst: Reg, a: Reg, target: Label) -> &mut Self {
        self.fixups.push((self.instrs.len(), target));
        self.emit(op, dst, a, R0, M31::ZERO)
    }

    /// `d = a + y`
    pub fn add(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Add, d, a, y.into())
    }
    /// `d = a - y`
    pub fn sub(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Sub, d, a, y.into())
    }
    /// `d = a * y`
    pub fn mul(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mul, d, a, y.into())
    }
    /// `d += a * y` (multiply-accumulate)
    pub fn mac(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mac, d, a, y.into())
    }
    /// `d = y` (register move or load immediate)
    pub fn mov(&mut self, d: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mov, d, R0, y.into())
    }
    /// `d = (a == y)`
    pub fn eq(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Eq, d, a, y.into())
    }
    /// `d = (a < y)`, defined when `|a - y| < 2^29` (range-checked by the proof).
    pub fn lt(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Lt, d, a, y.into())
    }
    /// `d = ram[a + offset]`
    pub fn load(&mut self, d: Reg, a: Reg, offset: u32) -> &mut Self {
        self.emit(Opcode::Load, d, a, R0, M31::from(offset))
    }
    /// `ram[a + offset] = v`
    pub fn store(&mut self, a: Reg, offset: u32, v: Reg) -> &mut Self {
        self.emit(Opcode::Store, R0, a, v, M31::from(offset))
    }
    pub fn jmp(&mut self, target: Label) -> &mut Self {
        self.branch(Opcode::Jmp, R0, R0, target)
    }
    /// Jump when `a != 0`.
    pub fn jnz(&mut self, a: Reg, target: Label) -> &mut Self {
        self.branch(Opcode::Jnz, R0, a, target)
    }
    /// Jump when `a == 0`.
    pub fn jz(&mut self, a: Reg, target: Label) -> &mut Self {
        self.branch(Opcode::Jz, R0, a, target)
    }
    /// Call: `link = pc + 1; pc = target`.
    pub fn jal(&mut self, link: Reg, target: Label) -> &mut Self {
        self.branch(Opcode::Jal, link, R0, target)
    }
    /// Return: `pc = a`.
    pub fn jr(&mut self, a: Reg) -> &mut Self {
        self.emit(Opcode::Jr, R0, a, R0, M31::ZERO)
    }
    /// `d = next public input word`
    pub fn read(&mut self, d: Reg) -> &mut Self {
        self.emit(Opcode::Read, d, R0, R0, M31::ZERO)
    }
    /// `d = next private advice word` (a witness the program must check)
    pub fn advice(&mut self, d: Reg) -> &mut Self {
        self.emit(Opcode::Advice, d, R0, R0, M31::ZERO)
    }
    /// Appends `a` to the public output.
    pub fn write(&mut self, a: Reg) -> &mut Self {
        self.emit(Opcode::Write, R0, a, R0, M31::ZERO)
    }
    /// `d = table[a]`; fails (and cannot be proven) when `a` is not a key.
    pub fn lookup(&mut self, d: Reg, t: TableId, a: Reg) -> &mut Self {
        self.emit(Opcode::Lookup, d, a, R0, M31(t.0))
    }
    /// Permutes `ram[a + offset .. a + offset + 16]` with Poseidon2.
    pub fn hash(&mut self, a: Reg, offset: u32) -> &mut Self {
        self.emit(Opcode::Hash, R0, a, R0, M31::from(offset))
    }
    /// Stops; the only way an execution ends.
    pub fn halt(&mut self) -> &mut Self {
        self.emit(Opcode::Halt, R0, R0, R0, M31::ZERO)
    }

    /// Runs `body` `n` times, counting down in `counter` (which `body` must
    /// not write). `n` must be at least 1.
    pub fn repeat(&mut self, counter: Reg, n: u32, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.mov(counter, n);
        let top = self.here();
        body(self);
        self.sub(counter, counter, 1u32).jnz(counter, top)
    }

    /// Fails the execution (so no proof exists) unless `a == 0`. A lookup
    /// into the one-entry table `{0 -> 0}`: the proof checks every lookup.
    pub fn assert_zero(&mut self, a: Reg) -> &mut Self {
        let t = self.constant_table("assert-zero", &[(0, 0)]);
        self.lookup(a, t, a)
    }

    /// Fails unless `a == y`; overwrites `tmp`.
    pub fn assert_eq(&mut self, tmp: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.sub(tmp, a, y).assert_zero(tmp)
    }

    /// Fails unless `a` is 0 or 1.
    pub fn assert_bit(&mut self, a: Reg) -> &mut Self {
        let t = self.constant_table("assert-bit", &[(0, 0), (1, 1)]);
        self.lookup(a, t, a)
    }

    /// Fails unless `a < y` (range-checked); overwrites `tmp`.
    pub fn assert_lt(&mut self, tmp: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.lt(tmp, a, y).sub(tmp, tmp, 1u32).assert_zero(tmp)
    }

    /// Fails unless `0 <= a < bound` as integers; overwrites `tmp`. Two
    /// range-checked comparisons, `!(a < 0)` and `a < bound`, so `bound` is at
    /// most [`MAX_RANGE_BOUND`]; a larger one is an error `build` reports.
    pub fn assert_range(&mut self, tmp: Reg, a: Reg, bound: u32) -> &mut Self {
        if bound > MAX_RANGE_BOUND {
            self.misuse.get_or_insert(BuildError::RangeBound(bound));
        }
        self.lt(tmp, a, 0u32).assert_zero(tmp);
        self.assert_lt(tmp, a, bound)
    }

    /// The table with exactly this name and these entries, declared on first use.
    fn constant_table(&mut self, name: &str, entries: &[(u32, u32)]) -> TableId {
        let entries: Vec<(M31, M31)> = entries.iter().map(|&(k, v)| (M31::new(k), M31::new(v))).collect();
        match self.tables.iter().position(|t| t.name == name && t.entries == entries) {
            Some(i) => TableId(i as u32),
            None => self.table(name, entries),
        }
    }

    /// Resolves labels and validates the program ([`Program::validate`]).
    pub fn build(&self) -> Result<Program, BuildError> {
        if let Some(e) = &self.misuse {
            return Err(e.clone());
        }
        let mut instrs = self.instrs.clone();
        for &(pc, l) in &self.fixups {
            let target = self.labels[l.0].ok_or(BuildError::UnboundLabel(l.0))?;
            instrs[pc].imm = M31::new(target as u32);
        }
        let p = Program { instrs, tables: self.tables.clone() };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::P;

    #[test]
    fn labels_resolve_and_loops_count_down() {
        let mut p = ProgramBuilder::new();
        let end = p.label();
        p.jz(R1, end);
        p.repeat(R2, 3, |p| {
            p.add(R3, R3, 1u32);
        });
        p.bind(end).halt();
        let w = p.build().unwrap();
        // jz -> pc of halt; the loop's jnz -> the loop body.
        assert_eq!(w.instrs[0].imm.0, w.instrs.len() as u32 - 1);
        let jnz = &w.instrs[w.instrs.len() - 2];
        assert_eq!((jnz.op, jnz.a, jnz.imm), (Opcode::Jnz, 2, M31(2)));
    }

    #[test]
    fn misuse_is_a_typed_error() {
        let mut p = ProgramBuilder::new();
        let nowhere = p.label();
        p.jmp(nowhere).halt();
        assert_eq!(p.build().unwrap_err(), BuildError::UnboundLabel(0));

        let mut p = ProgramBuilder::new();
        let l = p.here();
        p.halt();
        p.bind(l).halt();
        assert_eq!(p.build().unwrap_err(), BuildError::Rebound(0));

        let mut p = ProgramBuilder::new();
        p.assert_range(R1, R2, MAX_RANGE_BOUND + 1).halt();
        assert_eq!(p.build().unwrap_err(), BuildError::RangeBound(MAX_RANGE_BOUND + 1));

        // A label bound past the last instruction: the program is checked.
        let mut p = ProgramBuilder::new();
        let end = p.label();
        p.jmp(end).halt();
        p.bind(end);
        let e = p.build().unwrap_err();
        assert!(matches!(e, BuildError::Program(ProgramError::JumpOutOfRange { pc: 0, target: 2, len: 2 })), "{e}");
        assert_eq!(e.to_string(), "invalid program: pc 0: jump target 2 is outside the program (length 2)");
    }

    #[test]
    fn assertion_tables_are_declared_once() {
        let mut p = ProgramBuilder::new();
        p.assert_zero(R1).assert_eq(R2, R3, 5u32).assert_bit(R4).assert_bit(R5).halt();
        let w = p.build().unwrap();
        assert_eq!(w.tables.len(), 2);
        assert_eq!(w.tables[0].entries, vec![(M31(0), M31(0))]);
        assert_eq!(w.tables[1].entries, vec![(M31(0), M31(0)), (M31(1), M31(1))]);
    }

    #[test]
    fn immediates_are_reduced_field_elements() {
        let mut p = ProgramBuilder::new();
        p.mov(R1, -1i32).mac(R2, R1, 7u32).load(R3, R1, u32::MAX).halt();
        let w = p.build().unwrap();
        assert!(w.instrs[0].imm_mode);
        assert_eq!(w.instrs[0].imm, M31(P - 1));
        assert_eq!(w.instrs[2].imm, M31(1), "2^32 - 1 is 1 mod p");
    }
}
