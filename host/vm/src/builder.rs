//! A Rust API for writing programs, with labels and loops. The guest SDK
//! mirrors it over the WIT interface.

use stwo::core::fields::m31::M31;

use crate::isa::{Instr, Opcode, Program, ProgramError, Table};

/// A register, `r0`..`r15`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg(pub u8);

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("label {0} is used but never bound")]
    UnboundLabel(usize),
    #[error("label {0} is bound twice")]
    Rebound(usize),
    #[error(transparent)]
    Program(#[from] ProgramError),
}

/// Builds a [`Program`] instruction by instruction.
#[derive(Default)]
pub struct ProgramBuilder {
    instrs: Vec<Instr>,
    tables: Vec<Table>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
    rebound: Option<usize>,
}

impl ProgramBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The pc the next instruction will get.
    pub fn pc(&self) -> usize {
        self.instrs.len()
    }

    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) -> &mut Self {
        if self.labels[l.0].is_some() {
            self.rebound.get_or_insert(l.0);
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

    /// Declares a lookup table for a non-linear function.
    pub fn table(&mut self, name: &str, entries: impl IntoIterator<Item = (M31, M31)>) -> TableId {
        self.tables.push(Table { name: name.to_string(), entries: entries.into_iter().collect() });
        TableId(self.tables.len() as u32 - 1)
    }

    fn alu(&mut self, op: Opcode, dst: Reg, a: Reg, y: Operand) -> &mut Self {
        let mut i = Instr::new(op);
        i.dst = dst.0;
        if op != Opcode::Mov {
            i.a = a.0;
        }
        match y {
            Operand::Reg(b) => i.b = b.0,
            Operand::Imm(v) => {
                i.imm_mode = true;
                i.imm = v;
            }
        }
        self.push(i)
    }

    pub fn push(&mut self, i: Instr) -> &mut Self {
        self.instrs.push(i);
        self
    }

    pub fn add(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Add, d, a, y.into())
    }
    pub fn sub(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Sub, d, a, y.into())
    }
    pub fn mul(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mul, d, a, y.into())
    }
    /// `d += a * y`
    pub fn mac(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mac, d, a, y.into())
    }
    /// `d = y` (register move or load immediate)
    pub fn mov(&mut self, d: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Mov, d, Reg(0), y.into())
    }
    pub fn eq(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Eq, d, a, y.into())
    }
    pub fn lt(&mut self, d: Reg, a: Reg, y: impl Into<Operand>) -> &mut Self {
        self.alu(Opcode::Lt, d, a, y.into())
    }
    /// `d = ram[a + offset]`
    pub fn load(&mut self, d: Reg, a: Reg, offset: u32) -> &mut Self {
        let mut i = Instr::new(Opcode::Load);
        (i.dst, i.a, i.imm) = (d.0, a.0, M31::from(offset));
        self.push(i)
    }
    /// `ram[a + offset] = v`
    pub fn store(&mut self, a: Reg, offset: u32, v: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Store);
        (i.a, i.b, i.imm) = (a.0, v.0, M31::from(offset));
        self.push(i)
    }
    fn jump(&mut self, op: Opcode, a: Reg, dst: Reg, target: Label) -> &mut Self {
        let mut i = Instr::new(op);
        (i.a, i.dst) = (a.0, dst.0);
        self.fixups.push((self.instrs.len(), target));
        self.push(i)
    }
    pub fn jmp(&mut self, target: Label) -> &mut Self {
        self.jump(Opcode::Jmp, Reg(0), Reg(0), target)
    }
    pub fn jnz(&mut self, a: Reg, target: Label) -> &mut Self {
        self.jump(Opcode::Jnz, a, Reg(0), target)
    }
    pub fn jz(&mut self, a: Reg, target: Label) -> &mut Self {
        self.jump(Opcode::Jz, a, Reg(0), target)
    }
    /// Call: `link = pc + 1; pc = target`.
    pub fn jal(&mut self, link: Reg, target: Label) -> &mut Self {
        self.jump(Opcode::Jal, Reg(0), link, target)
    }
    /// Return: `pc = a`.
    pub fn jr(&mut self, a: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Jr);
        i.a = a.0;
        self.push(i)
    }
    /// `d = next public input word`
    pub fn read(&mut self, d: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Read);
        i.dst = d.0;
        self.push(i)
    }
    /// `d = next private advice word`
    pub fn advice(&mut self, d: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Advice);
        i.dst = d.0;
        self.push(i)
    }
    /// Appends `a` to the public output.
    pub fn write(&mut self, a: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Write);
        i.a = a.0;
        self.push(i)
    }
    /// `d = table[a]`
    pub fn lookup(&mut self, d: Reg, t: TableId, a: Reg) -> &mut Self {
        let mut i = Instr::new(Opcode::Lookup);
        (i.dst, i.a, i.imm) = (d.0, a.0, M31(t.0));
        self.push(i)
    }
    /// Permutes `ram[a + offset .. a + offset + 16]` with Poseidon2.
    pub fn hash(&mut self, a: Reg, offset: u32) -> &mut Self {
        let mut i = Instr::new(Opcode::Hash);
        (i.a, i.imm) = (a.0, M31::from(offset));
        self.push(i)
    }
    pub fn halt(&mut self) -> &mut Self {
        self.push(Instr::new(Opcode::Halt))
    }

    /// Runs `body` `n` times, counting down in `counter` (which `body` must
    /// not write). `n` must be at least 1.
    pub fn repeat(&mut self, counter: Reg, n: u32, body: impl FnOnce(&mut Self)) -> &mut Self {
        self.mov(counter, n);
        let top = self.here();
        body(self);
        self.sub(counter, counter, 1u32);
        self.jnz(counter, top)
    }

    /// Resolves labels and validates the program.
    pub fn build(&self) -> Result<Program, BuildError> {
        if let Some(l) = self.rebound {
            return Err(BuildError::Rebound(l));
        }
        let mut instrs = self.instrs.clone();
        for (pc, l) in &self.fixups {
            let target = self.labels[l.0].ok_or(BuildError::UnboundLabel(l.0))?;
            instrs[*pc].imm = M31::from(target as u32);
        }
        let p = Program { instrs, tables: self.tables.clone() };
        p.validate()?;
        Ok(p)
    }
}
