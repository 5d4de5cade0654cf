//! A program builder with labels, loops and tables. It mirrors the host's
//! `obelysk_vm::builder::ProgramBuilder`, so a program reads the same on both
//! sides of the sandbox.

use crate::bindings::bitsage::workload::types::{self as wit, Opcode};
use crate::field::M31;
use crate::Error;

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

/// A jump target, bound to a pc with [`Program::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// A lookup table handle returned by [`Program::table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableId(u32);

/// Builds an ObelyskVM program instruction by instruction.
///
/// ```
/// use bitsage_guest::prelude::*;
///
/// let mut p = Program::new();
/// p.read(R1).read(R2).add(R3, R1, R2).write(R3).halt();
/// ```
#[derive(Default)]
pub struct Program {
    instrs: Vec<wit::Instr>,
    tables: Vec<wit::Table>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
}

impl Program {
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

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) -> &mut Self {
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
        let entries = entries.into_iter().map(|(k, v)| (k.value(), v.value())).collect();
        self.tables.push(wit::Table { name: name.to_string(), entries });
        TableId(self.tables.len() as u32 - 1)
    }

    /// Appends `op dst, a, b` with immediate field `imm` (not an operand).
    fn emit(&mut self, op: Opcode, dst: Reg, a: Reg, b: Reg, imm: u32) -> &mut Self {
        self.instrs.push(wit::Instr { op, dst: dst.0, a: a.0, b: b.0, imm_mode: false, imm });
        self
    }

    fn alu(&mut self, op: Opcode, d: Reg, a: Reg, y: Operand) -> &mut Self {
        let (b, imm_mode, imm) = match y {
            Operand::Reg(b) => (b, false, 0),
            Operand::Imm(v) => (R0, true, v.value()),
        };
        self.instrs.push(wit::Instr { op, dst: d.0, a: a.0, b: b.0, imm_mode, imm });
        self
    }

    /// A jump whose target is patched in by [`Program::build`].
    fn branch(&mut self, op: Opcode, d: Reg, a: Reg, target: Label) -> &mut Self {
        self.fixups.push((self.instrs.len(), target));
        self.emit(op, d, a, R0, 0)
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
        self.emit(Opcode::Load, d, a, R0, offset)
    }
    /// `ram[a + offset] = v`
    pub fn store(&mut self, a: Reg, offset: u32, v: Reg) -> &mut Self {
        self.emit(Opcode::Store, R0, a, v, offset)
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
        self.emit(Opcode::Jr, R0, a, R0, 0)
    }
    /// `d = next public input word`
    pub fn read(&mut self, d: Reg) -> &mut Self {
        self.emit(Opcode::Read, d, R0, R0, 0)
    }
    /// `d = next private advice word` (a witness the program must check)
    pub fn advice(&mut self, d: Reg) -> &mut Self {
        self.emit(Opcode::Advice, d, R0, R0, 0)
    }
    /// Appends `a` to the public output.
    pub fn write(&mut self, a: Reg) -> &mut Self {
        self.emit(Opcode::Write, R0, a, R0, 0)
    }
    /// `d = table[a]`; fails (and cannot be proven) when `a` is not a key.
    pub fn lookup(&mut self, d: Reg, t: TableId, a: Reg) -> &mut Self {
        self.emit(Opcode::Lookup, d, a, R0, t.0)
    }
    /// Permutes `ram[a + offset .. a + offset + 16]` with Poseidon2.
    pub fn hash(&mut self, a: Reg, offset: u32) -> &mut Self {
        self.emit(Opcode::Hash, R0, a, R0, offset)
    }
    /// Stops; the only way an execution ends.
    pub fn halt(&mut self) -> &mut Self {
        self.emit(Opcode::Halt, R0, R0, R0, 0)
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

    /// The table with exactly this name and these entries, declared on first use.
    fn constant_table(&mut self, name: &str, entries: &[(u32, u32)]) -> TableId {
        match self.tables.iter().position(|t| t.name == name && t.entries == entries) {
            Some(i) => TableId(i as u32),
            None => {
                self.tables.push(wit::Table { name: name.to_string(), entries: entries.to_vec() });
                TableId(self.tables.len() as u32 - 1)
            }
        }
    }

    /// Fails unless `a < y` (range-checked); overwrites `tmp`.
    pub fn assert_lt(&mut self, tmp: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.lt(tmp, a, y).sub(tmp, tmp, 1u32).assert_zero(tmp)
    }

    /// Fails unless `0 <= a < bound` (as integers; `bound <= 2^28`);
    /// overwrites `tmp`. Two range-checked comparisons: `!(a < 0)` and
    /// `a < bound`.
    pub fn assert_range(&mut self, tmp: Reg, a: Reg, bound: u32) -> &mut Self {
        assert!(bound <= 1 << 28, "assert_range bound must be at most 2^28");
        self.lt(tmp, a, 0u32).assert_zero(tmp);
        self.assert_lt(tmp, a, bound)
    }

    /// Resolves labels. The host validates the rest (registers, targets,
    /// tables) and reports `invalid-program` with the reason.
    pub fn build(&self) -> Result<wit::Program, Error> {
        let mut instrs = self.instrs.clone();
        for &(pc, l) in &self.fixups {
            let target =
                self.labels[l.0].ok_or_else(|| Error::new(format!("label {} is used but never bound", l.0)))?;
            instrs[pc].imm = target as u32;
        }
        Ok(wit::Program { instrs, tables: self.tables.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_resolve_and_loops_count_down() {
        let mut p = Program::new();
        let end = p.label();
        p.jz(R1, end);
        p.repeat(R2, 3, |p| {
            p.add(R3, R3, 1u32);
        });
        p.bind(end).halt();
        let w = p.build().unwrap();
        // jz -> pc of halt; the loop's jnz -> the loop body.
        assert_eq!(w.instrs[0].imm, w.instrs.len() as u32 - 1);
        let jnz = &w.instrs[w.instrs.len() - 2];
        assert_eq!((jnz.op, jnz.a, jnz.imm), (Opcode::Jnz, 2, 2));
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut p = Program::new();
        let nowhere = p.label();
        p.jmp(nowhere);
        assert!(p.build().is_err());
    }

    #[test]
    fn assertion_tables_are_declared_once() {
        let mut p = Program::new();
        p.assert_zero(R1).assert_eq(R2, R3, 5u32).assert_bit(R4).assert_bit(R5);
        let w = p.build().unwrap();
        assert_eq!(w.tables.len(), 2);
        assert_eq!(w.tables[0].entries, vec![(0, 0)]);
        assert_eq!(w.tables[1].entries, vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn immediates_are_reduced_field_elements() {
        let mut p = Program::new();
        p.mov(R1, -1i32).mac(R2, R1, 7u32);
        let w = p.build().unwrap();
        assert!(w.instrs[0].imm_mode);
        assert_eq!(w.instrs[0].imm, crate::field::P - 1);
    }
}
