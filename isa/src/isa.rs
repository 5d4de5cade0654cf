//! The ObelyskVM instruction set.
//!
//! Every instruction has the same shape: `op dst, a, b|imm`. The second
//! operand `y` is either register `b` or the immediate, chosen by
//! `imm_mode`. Keeping one shape makes the AIR a single flat row layout.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::field::M31;
use crate::word::{de, is_canonical};

/// Number of general-purpose registers. All start at zero.
pub const NUM_REGISTERS: usize = 16;
/// Width of the Poseidon2 state the `hash` instruction permutes in RAM.
pub const HASH_WIDTH: usize = 16;
/// `lt` is defined when `|a - b| < 2^LT_BITS` (both unsigned below 2^29, or
/// both signed in `[-2^28, 2^28)`). The AIR range-checks the difference.
pub const LT_BITS: u32 = 29;

/// Opcodes. The discriminant is the value committed in the program table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Opcode {
    /// `d = x + y`
    Add = 0,
    /// `d = x - y`
    Sub = 1,
    /// `d = x * y`
    Mul = 2,
    /// `d = d + x * y` (multiply-accumulate)
    Mac = 3,
    /// `d = y` (move, or load immediate)
    Mov = 4,
    /// `d = (x == y)`
    Eq = 5,
    /// `d = (x < y)`, range-checked (see [`LT_BITS`])
    Lt = 6,
    /// `d = ram[x + imm]`
    Load = 7,
    /// `ram[x + imm] = reg[b]`
    Store = 8,
    /// `pc = imm`
    Jmp = 9,
    /// `if x != 0 { pc = imm }`
    Jnz = 10,
    /// `if x == 0 { pc = imm }`
    Jz = 11,
    /// `d = pc + 1; pc = imm` (call)
    Jal = 12,
    /// `pc = x` (return)
    Jr = 13,
    /// `d = next public input word`
    Read = 14,
    /// `d = next private advice word` (unconstrained witness)
    Advice = 15,
    /// append `x` to the public output
    Write = 16,
    /// `d = table[imm][x]`
    Lookup = 17,
    /// `ram[x+imm .. x+imm+16] = poseidon2(ram[x+imm .. x+imm+16])`
    Hash = 18,
    /// stop; the only way an execution ends
    Halt = 19,
}

impl Opcode {
    /// All opcodes, indexed by discriminant.
    pub const ALL: [Opcode; 20] = [
        Opcode::Add,
        Opcode::Sub,
        Opcode::Mul,
        Opcode::Mac,
        Opcode::Mov,
        Opcode::Eq,
        Opcode::Lt,
        Opcode::Load,
        Opcode::Store,
        Opcode::Jmp,
        Opcode::Jnz,
        Opcode::Jz,
        Opcode::Jal,
        Opcode::Jr,
        Opcode::Read,
        Opcode::Advice,
        Opcode::Write,
        Opcode::Lookup,
        Opcode::Hash,
        Opcode::Halt,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn from_u8(v: u8) -> Option<Opcode> {
        Self::ALL.get(v as usize).copied()
    }

    pub fn mnemonic(self) -> &'static str {
        match self {
            Opcode::Add => "add",
            Opcode::Sub => "sub",
            Opcode::Mul => "mul",
            Opcode::Mac => "mac",
            Opcode::Mov => "mov",
            Opcode::Eq => "eq",
            Opcode::Lt => "lt",
            Opcode::Load => "load",
            Opcode::Store => "store",
            Opcode::Jmp => "jmp",
            Opcode::Jnz => "jnz",
            Opcode::Jz => "jz",
            Opcode::Jal => "jal",
            Opcode::Jr => "jr",
            Opcode::Read => "read",
            Opcode::Advice => "advice",
            Opcode::Write => "write",
            Opcode::Lookup => "lookup",
            Opcode::Hash => "hash",
            Opcode::Halt => "halt",
        }
    }

    pub fn from_mnemonic(s: &str) -> Option<Opcode> {
        Self::ALL.iter().copied().find(|o| o.mnemonic() == s)
    }

    /// Whether the instruction writes register `dst`.
    pub fn writes_dst(self) -> bool {
        matches!(
            self,
            Opcode::Add
                | Opcode::Sub
                | Opcode::Mul
                | Opcode::Mac
                | Opcode::Mov
                | Opcode::Eq
                | Opcode::Lt
                | Opcode::Load
                | Opcode::Jal
                | Opcode::Read
                | Opcode::Advice
                | Opcode::Lookup
        )
    }

    /// Whether `imm` is a jump target (so must be a valid pc).
    pub fn imm_is_target(self) -> bool {
        matches!(self, Opcode::Jmp | Opcode::Jnz | Opcode::Jz | Opcode::Jal)
    }

    /// Whether the second operand may be an immediate.
    pub fn allows_imm_operand(self) -> bool {
        matches!(self, Opcode::Add | Opcode::Sub | Opcode::Mul | Opcode::Mac | Opcode::Mov | Opcode::Eq | Opcode::Lt)
    }
}

/// One instruction. Unused fields are zero, so every instruction has exactly
/// one encoding and the program digest is canonical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instr {
    pub op: Opcode,
    pub dst: u8,
    pub a: u8,
    pub b: u8,
    /// When set, the second operand `y` is `imm`, not `reg[b]`.
    pub imm_mode: bool,
    /// Canonical (decoding refuses anything else).
    pub imm: M31,
}

impl Instr {
    pub fn new(op: Opcode) -> Self {
        Instr { op, dst: 0, a: 0, b: 0, imm_mode: false, imm: M31(0) }
    }
}

/// A lookup table for a non-linear function: `key -> value`, keys distinct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    #[serde(deserialize_with = "de_table_name")]
    pub name: String,
    #[serde(deserialize_with = "de_entries")]
    pub entries: Vec<(M31, M31)>,
}

/// A program: instructions plus the lookup tables they use. Both are part of
/// the statement, so the verifier sees them in full.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    #[serde(deserialize_with = "de_instrs")]
    pub instrs: Vec<Instr>,
    #[serde(deserialize_with = "de_tables")]
    pub tables: Vec<Table>,
}

// Decoding refuses what `validate` would refuse about sizes and words, before
// it allocates: a program arrives inside receipts and HTTP bodies.
fn de_instrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Instr>, D::Error> {
    let v = de::bounded::<D, de::Plain<Instr>>(d, MAX_PROGRAM_LEN, "instructions")?;
    Ok(v.into_iter().map(|i| i.0).collect())
}
fn de_tables<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Table>, D::Error> {
    let v = de::bounded::<D, de::Plain<Table>>(d, MAX_TABLES, "tables")?;
    Ok(v.into_iter().map(|t| t.0).collect())
}
fn de_table_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de::short_string(d, MAX_TABLE_NAME_LEN, "table name")
}
fn de_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(M31, M31)>, D::Error> {
    let v = de::bounded::<D, de::WordPair>(d, MAX_PROGRAM_LEN, "table entries")?;
    Ok(v.into_iter().map(|e| e.0).collect())
}

/// Why a program is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("program is empty")]
    Empty,
    #[error("pc {pc}: register r{reg} does not exist (there are {NUM_REGISTERS})")]
    BadRegister { pc: usize, reg: u8 },
    #[error("pc {pc}: jump target {target} is outside the program (length {len})")]
    JumpOutOfRange { pc: usize, target: u32, len: usize },
    #[error("pc {pc}: `{op}` does not take an immediate second operand")]
    ImmNotAllowed { pc: usize, op: &'static str },
    #[error("pc {pc}: lookup names table {table}, but the program has {n_tables}")]
    UnknownTable { pc: usize, table: u32, n_tables: usize },
    #[error("table `{name}` has key {key} twice")]
    DuplicateKey { name: String, key: u32 },
    #[error("pc {pc}: field `{field}` must be zero for `{op}` (canonical encoding)")]
    NonCanonical { pc: usize, field: &'static str, op: &'static str },
    #[error("program has {0} instructions; the limit is {MAX_PROGRAM_LEN}")]
    TooLong(usize),
    #[error("pc {pc}: immediate {value} is not a canonical field element (must be below 2^31 - 1)")]
    NonCanonicalImm { pc: usize, value: u32 },
    #[error("table `{name}`: word {value} is not a canonical field element (must be below 2^31 - 1)")]
    NonCanonicalTableWord { name: String, value: u32 },
    #[error("program has {0} tables; the limit is {MAX_TABLES}")]
    TooManyTables(usize),
    #[error("a table name of {0} bytes exceeds the limit of {MAX_TABLE_NAME_LEN}")]
    TableNameTooLong(usize),
}

/// Upper bound on program size (instructions plus table entries).
pub const MAX_PROGRAM_LEN: usize = 1 << 20;
/// Upper bound on the number of lookup tables.
pub const MAX_TABLES: usize = 256;
/// Upper bound on a table name, in bytes.
pub const MAX_TABLE_NAME_LEN: usize = 64;

impl Program {
    /// Checks that every instruction is well formed and canonically encoded.
    pub fn validate(&self) -> Result<(), ProgramError> {
        if self.instrs.is_empty() {
            return Err(ProgramError::Empty);
        }
        let total = self.instrs.len() + self.tables.iter().map(|t| t.entries.len()).sum::<usize>();
        if total > MAX_PROGRAM_LEN {
            return Err(ProgramError::TooLong(total));
        }
        if self.tables.len() > MAX_TABLES {
            return Err(ProgramError::TooManyTables(self.tables.len()));
        }
        let len = self.instrs.len();
        for (pc, ins) in self.instrs.iter().enumerate() {
            for reg in [ins.dst, ins.a, ins.b] {
                if reg as usize >= NUM_REGISTERS {
                    return Err(ProgramError::BadRegister { pc, reg });
                }
            }
            let op = ins.op.mnemonic();
            if !is_canonical(ins.imm) {
                return Err(ProgramError::NonCanonicalImm { pc, value: ins.imm.0 });
            }
            if ins.imm_mode && !ins.op.allows_imm_operand() {
                return Err(ProgramError::ImmNotAllowed { pc, op });
            }
            if ins.op.imm_is_target() && ins.imm.0 as usize >= len {
                return Err(ProgramError::JumpOutOfRange { pc, target: ins.imm.0, len });
            }
            if ins.op == Opcode::Lookup && ins.imm.0 as usize >= self.tables.len() {
                return Err(ProgramError::UnknownTable { pc, table: ins.imm.0, n_tables: self.tables.len() });
            }
            let uses = operand_use(ins);
            let zero_if = |used: bool, v: u32, field: &'static str| {
                if !used && v != 0 {
                    Err(ProgramError::NonCanonical { pc, field, op })
                } else {
                    Ok(())
                }
            };
            zero_if(uses.dst, ins.dst as u32, "dst")?;
            zero_if(uses.a, ins.a as u32, "a")?;
            zero_if(uses.b, ins.b as u32, "b")?;
            zero_if(uses.imm, ins.imm.0, "imm")?;
        }
        for t in &self.tables {
            if t.name.len() > MAX_TABLE_NAME_LEN {
                return Err(ProgramError::TableNameTooLong(t.name.len()));
            }
            if let Some(&(k, v)) = t.entries.iter().find(|(k, v)| !is_canonical(*k) || !is_canonical(*v)) {
                let value = if is_canonical(k) { v.0 } else { k.0 };
                return Err(ProgramError::NonCanonicalTableWord { name: t.name.clone(), value });
            }
            let mut keys: Vec<u32> = t.entries.iter().map(|(k, _)| k.0).collect();
            keys.sort_unstable();
            if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
                return Err(ProgramError::DuplicateKey { name: t.name.clone(), key: w[0] });
            }
        }
        Ok(())
    }

    /// SHA-256 over the canonical encoding: the identifier receipts are
    /// checked against.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"obelysk-program-v1");
        h.update((self.instrs.len() as u64).to_le_bytes());
        for i in &self.instrs {
            h.update([i.op as u8, i.dst, i.a, i.b, i.imm_mode as u8]);
            h.update(i.imm.0.to_le_bytes());
        }
        h.update((self.tables.len() as u64).to_le_bytes());
        for t in &self.tables {
            h.update((t.name.len() as u64).to_le_bytes());
            h.update(t.name.as_bytes());
            h.update((t.entries.len() as u64).to_le_bytes());
            for (k, v) in &t.entries {
                h.update(k.0.to_le_bytes());
                h.update(v.0.to_le_bytes());
            }
        }
        h.finalize().into()
    }

    pub fn table_index(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name == name)
    }
}

/// Which fields an instruction reads; the rest must be zero.
pub struct OperandUse {
    pub dst: bool,
    pub a: bool,
    pub b: bool,
    pub imm: bool,
}

pub fn operand_use(ins: &Instr) -> OperandUse {
    use Opcode::*;
    let y_is_imm = ins.imm_mode;
    match ins.op {
        Add | Sub | Mul | Mac | Eq | Lt => OperandUse { dst: true, a: true, b: !y_is_imm, imm: y_is_imm },
        Mov => OperandUse { dst: true, a: false, b: !y_is_imm, imm: y_is_imm },
        Load => OperandUse { dst: true, a: true, b: false, imm: true },
        Store => OperandUse { dst: false, a: true, b: true, imm: true },
        Jmp => OperandUse { dst: false, a: false, b: false, imm: true },
        Jnz | Jz => OperandUse { dst: false, a: true, b: false, imm: true },
        Jal => OperandUse { dst: true, a: false, b: false, imm: true },
        Jr => OperandUse { dst: false, a: true, b: false, imm: false },
        Read | Advice => OperandUse { dst: true, a: false, b: false, imm: false },
        Write => OperandUse { dst: false, a: true, b: false, imm: false },
        Lookup => OperandUse { dst: true, a: true, b: false, imm: true },
        Hash => OperandUse { dst: false, a: true, b: false, imm: true },
        Halt => OperandUse { dst: false, a: false, b: false, imm: false },
    }
}
