//! The deterministic executor. It runs a [`Program`] on public input and
//! private advice and records everything the prover needs in a [`Trace`].
//!
//! Memory model used by the proof: every register and RAM word carries the
//! timestamp of its last access. Instruction `clk` (starting at 1) touches its
//! operands at timestamps `4·clk + slot`, with slot 0 = `a`, 1 = `b`,
//! 2 = RAM (load/store/hash), 3 = `dst`. The trace stores, for each access,
//! the value and timestamp it found, which is what the memory argument
//! consumes.

use obelysk_isa::M31;
use serde::{Deserialize, Serialize};

use crate::isa::{Instr, Opcode, Program, ProgramError, HASH_WIDTH, LT_BITS, NUM_REGISTERS};
use crate::poseidon2;

/// Largest number of steps a trace may have: timestamps `4·clk + 3` must stay
/// below `2^26`, the bound the AIR range-checks.
pub const MAX_STEPS: u64 = (1 << 23) - 1;
/// Default RAM size in words.
pub const DEFAULT_RAM_WORDS: u32 = 1 << 20;

/// Limits for one execution.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct ExecLimits {
    /// Maximum instructions executed (including the final `halt`).
    pub max_steps: u64,
    /// RAM words addressable, `0..ram_words`.
    pub ram_words: u32,
    /// Wall-clock time by which the run must end (checked every
    /// [`CHECK_EVERY`] steps): a host caller's job deadline.
    #[serde(skip)]
    pub deadline: Option<std::time::Instant>,
    /// Bytes the recorded trace (steps, hash calls, RAM) may occupy.
    #[serde(default)]
    pub max_trace_bytes: Option<u64>,
}

/// How often, in steps, the deadline and the trace's size are checked.
pub const CHECK_EVERY: u32 = 4096;

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits { max_steps: MAX_STEPS, ram_words: DEFAULT_RAM_WORDS, deadline: None, max_trace_bytes: None }
    }
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    InvalidProgram(#[from] ProgramError),
    #[error("pc {pc} is outside the program (length {len})")]
    PcOutOfRange { pc: u64, len: usize },
    #[error("step budget of {budget} instructions exceeded")]
    StepBudgetExceeded { budget: u64 },
    #[error("pc {pc}: read past the end of the public input ({len} words)")]
    InputExhausted { pc: usize, len: usize },
    #[error("pc {pc}: advice past the end of the private advice ({len} words)")]
    AdviceExhausted { pc: usize, len: usize },
    #[error("pc {pc}: RAM address {addr} is outside 0..{limit}")]
    MemoryOutOfBounds { pc: usize, addr: u64, limit: u32 },
    #[error("pc {pc}: lt operands {x} and {y} differ by 2^{LT_BITS} or more")]
    ComparisonOutOfRange { pc: usize, x: u32, y: u32 },
    #[error("pc {pc}: key {key} is not in table `{table}`")]
    LookupMiss { pc: usize, table: String, key: u32 },
    #[error("step limit {requested} is above the maximum the proof system supports ({MAX_STEPS})")]
    BudgetTooLarge { requested: u64 },
    #[error("{what} word {index} is {value}, not a canonical field element (must be below 2^31 - 1)")]
    NonCanonicalWord { what: &'static str, index: usize, value: u32 },
    #[error("the program halted after reading {read} of its {len} public input words; a proof covers exactly the input read")]
    UnreadInput { read: usize, len: usize },
    #[error("the execution passed its deadline after {steps} steps")]
    DeadlinePassed { steps: u64 },
    #[error("the recorded trace would exceed {limit} bytes")]
    TraceTooLarge { limit: u64 },
}

/// A RAM access by `load` or `store`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemAccess {
    pub addr: u32,
    pub old: M31,
    pub old_ts: u32,
    pub new: M31,
}

/// One executed instruction, with every value the AIR row needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub pc: u32,
    pub clk: u32,
    pub in_ptr: u32,
    pub out_ptr: u32,
    pub instr: Instr,
    /// `reg[a]` and when it was last accessed.
    pub x: M31,
    pub x_ts: u32,
    /// `reg[b]` and when it was last accessed.
    pub y_reg: M31,
    pub y_ts: u32,
    /// `reg[dst]` before and after, and when it was last accessed.
    pub d_old: M31,
    pub d_ts: u32,
    pub d_new: M31,
    pub mem: Option<MemAccess>,
    pub next_pc: u32,
}

impl Step {
    /// The second operand: the immediate or `reg[b]`.
    pub fn y(&self) -> M31 {
        if self.instr.imm_mode {
            self.instr.imm
        } else {
            self.y_reg
        }
    }
}

/// One `hash` instruction: the 16 RAM words before and after.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashCall {
    pub clk: u32,
    pub base: u32,
    pub before: [M31; HASH_WIDTH],
    pub before_ts: [u32; HASH_WIDTH],
    pub after: [M31; HASH_WIDTH],
}

/// Final value and last-access timestamp of a register or RAM word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    pub value: M31,
    pub ts: u32,
}

/// Everything an execution did. This is the prover's witness.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub steps: Vec<Step>,
    pub hashes: Vec<HashCall>,
    pub registers: [Cell; NUM_REGISTERS],
    /// RAM words `0..ram.len()`: every word up to the highest one touched.
    pub ram: Vec<Cell>,
    pub input: Vec<M31>,
    pub output: Vec<M31>,
}

/// Counts shown by `--dev` style runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExecStats {
    pub steps: u64,
    pub hashes: u64,
    pub ram_words: u64,
    pub by_opcode: Vec<(String, u64)>,
}

impl Trace {
    pub fn stats(&self) -> ExecStats {
        let mut counts = [0u64; Opcode::COUNT];
        for s in &self.steps {
            counts[s.instr.op as usize] += 1;
        }
        ExecStats {
            steps: self.steps.len() as u64,
            hashes: self.hashes.len() as u64,
            ram_words: self.ram.len() as u64,
            by_opcode: Opcode::ALL
                .iter()
                .zip(counts)
                .filter(|(_, c)| *c > 0)
                .map(|(o, c)| (o.mnemonic().to_string(), c))
                .collect(),
        }
    }
}

/// Outcome of `lt`: `Some(true)` if `x < y`, `Some(false)` if `x >= y`, `None`
/// when the operands are too far apart for the range-checked comparison.
pub fn compare_lt(x: M31, y: M31) -> Option<bool> {
    let bound = 1u32 << LT_BITS;
    let below = sub_u32(sub_u32(y.0, x.0), 1);
    let above = sub_u32(x.0, y.0);
    if below < bound {
        Some(true)
    } else if above < bound {
        Some(false)
    } else {
        None
    }
}

fn sub_u32(a: u32, b: u32) -> u32 {
    (M31(a) - M31(b)).0
}

struct Machine<'p> {
    program: &'p Program,
    regs: [Cell; NUM_REGISTERS],
    ram: Vec<Cell>,
    ram_words: u32,
}

impl Machine<'_> {
    fn reg(&mut self, r: u8, ts: u32) -> Cell {
        let c = self.regs[r as usize];
        self.regs[r as usize].ts = ts;
        c
    }

    fn ram_cell(&mut self, pc: usize, addr: M31) -> Result<&mut Cell, ExecError> {
        if addr.0 >= self.ram_words {
            return Err(ExecError::MemoryOutOfBounds { pc, addr: addr.0 as u64, limit: self.ram_words });
        }
        let a = addr.0 as usize;
        if a >= self.ram.len() {
            self.ram.resize(a + 1, Cell::default());
        }
        Ok(&mut self.ram[a])
    }
}

/// Runs `program` to `halt`.
pub fn execute(program: &Program, input: &[M31], advice: &[M31], limits: ExecLimits) -> Result<Trace, ExecError> {
    program.validate()?;
    for (what, ws) in [("input", input), ("advice", advice)] {
        crate::word::check_words(ws).map_err(|(index, w)| ExecError::NonCanonicalWord { what, index, value: w.0 })?;
    }
    if limits.max_steps > MAX_STEPS {
        return Err(ExecError::BudgetTooLarge { requested: limits.max_steps });
    }
    let tables: Vec<std::collections::HashMap<u32, M31>> =
        program.tables.iter().map(|t| t.entries.iter().map(|(k, v)| (k.0, *v)).collect()).collect();
    let mut m =
        Machine { program, regs: [Cell::default(); NUM_REGISTERS], ram: Vec::new(), ram_words: limits.ram_words };
    let mut steps = Vec::new();
    let mut hashes = Vec::new();
    let mut output = Vec::new();
    let (mut pc, mut in_ptr, mut out_ptr, mut adv_ptr) = (0usize, 0usize, 0usize, 0usize);
    let len = program.instrs.len();
    for clk in 1..=limits.max_steps {
        let clk = clk as u32;
        if clk.is_multiple_of(CHECK_EVERY) {
            if limits.deadline.is_some_and(|d| std::time::Instant::now() > d) {
                return Err(ExecError::DeadlinePassed { steps: clk as u64 });
            }
            if let Some(limit) = limits.max_trace_bytes {
                let bytes = steps.len() * std::mem::size_of::<Step>()
                    + hashes.len() * std::mem::size_of::<HashCall>()
                    + m.ram.len() * std::mem::size_of::<Cell>();
                if bytes as u64 > limit {
                    return Err(ExecError::TraceTooLarge { limit });
                }
            }
        }
        let ins: Instr = *m.program.instrs.get(pc).ok_or(ExecError::PcOutOfRange { pc: pc as u64, len })?;
        let ts = 4 * clk;
        let xa = m.reg(ins.a, ts);
        let yb = m.reg(ins.b, ts + 1);
        let x = xa.value;
        let y = if ins.imm_mode { ins.imm } else { yb.value };
        let mut mem = None;
        let mut next_pc = pc as u64 + 1;
        // The dst slot reads after a and b (ts + 3), so it sees their accesses.
        let d_cell = m.regs[ins.dst as usize];
        let d_old = d_cell.value;
        let d_new = match ins.op {
            Opcode::Add => x + y,
            Opcode::Sub => x - y,
            Opcode::Mul => x * y,
            Opcode::Mac => d_old + x * y,
            Opcode::Mov => y,
            Opcode::Eq => M31((x == y) as u32),
            Opcode::Lt => match compare_lt(x, y) {
                Some(b) => M31(b as u32),
                None => return Err(ExecError::ComparisonOutOfRange { pc, x: x.0, y: y.0 }),
            },
            Opcode::Load | Opcode::Store => {
                let addr = x + ins.imm;
                let cell = m.ram_cell(pc, addr)?;
                let old = *cell;
                let new = if ins.op == Opcode::Store { yb.value } else { old.value };
                *cell = Cell { value: new, ts: ts + 2 };
                mem = Some(MemAccess { addr: addr.0, old: old.value, old_ts: old.ts, new });
                if ins.op == Opcode::Load {
                    old.value
                } else {
                    d_old
                }
            }
            Opcode::Jmp => {
                next_pc = ins.imm.0 as u64;
                d_old
            }
            Opcode::Jnz | Opcode::Jz => {
                if (x.0 != 0) == (ins.op == Opcode::Jnz) {
                    next_pc = ins.imm.0 as u64;
                }
                d_old
            }
            Opcode::Jal => {
                next_pc = ins.imm.0 as u64;
                M31::from(pc as u32 + 1)
            }
            Opcode::Jr => {
                next_pc = x.0 as u64;
                d_old
            }
            Opcode::Read => {
                let v = *input.get(in_ptr).ok_or(ExecError::InputExhausted { pc, len: input.len() })?;
                in_ptr += 1;
                v
            }
            Opcode::Advice => {
                let v = *advice.get(adv_ptr).ok_or(ExecError::AdviceExhausted { pc, len: advice.len() })?;
                adv_ptr += 1;
                v
            }
            Opcode::Write => {
                output.push(x);
                out_ptr += 1;
                d_old
            }
            Opcode::Lookup => {
                let t = ins.imm.0 as usize;
                match tables[t].get(&x.0) {
                    Some(v) => *v,
                    None => return Err(ExecError::LookupMiss { pc, table: program.tables[t].name.clone(), key: x.0 }),
                }
            }
            Opcode::Hash => {
                let base = x + ins.imm;
                let mut before = [M31(0); HASH_WIDTH];
                let mut before_ts = [0u32; HASH_WIDTH];
                for i in 0..HASH_WIDTH {
                    let addr = base + M31(i as u32);
                    let c = *m.ram_cell(pc, addr)?;
                    before[i] = c.value;
                    before_ts[i] = c.ts;
                }
                let mut after = before;
                poseidon2::permute(&mut after);
                for (i, v) in after.iter().enumerate() {
                    let addr = base + M31(i as u32);
                    *m.ram_cell(pc, addr)? = Cell { value: *v, ts: ts + 2 };
                }
                hashes.push(HashCall { clk, base: base.0, before, before_ts, after });
                d_old
            }
            Opcode::Halt => d_old,
        };
        m.regs[ins.dst as usize] = Cell { value: d_new, ts: ts + 3 };
        steps.push(Step {
            pc: pc as u32,
            clk,
            in_ptr: in_ptr as u32 - (ins.op == Opcode::Read) as u32,
            out_ptr: out_ptr as u32 - (ins.op == Opcode::Write) as u32,
            instr: ins,
            x,
            x_ts: xa.ts,
            y_reg: yb.value,
            y_ts: yb.ts,
            d_old,
            d_ts: d_cell.ts,
            d_new,
            mem,
            // Every target is a field element or pc + 1, so it fits a u32.
            next_pc: next_pc as u32,
        });
        if ins.op == Opcode::Halt {
            // A proof says the run read exactly its public input: a run that
            // left some unread has no proof, so it is refused here, before
            // anyone spends a proof on it.
            if in_ptr != input.len() {
                return Err(ExecError::UnreadInput { read: in_ptr, len: input.len() });
            }
            return Ok(Trace { steps, hashes, registers: m.regs, ram: m.ram, input: input.to_vec(), output });
        }
        if next_pc >= len as u64 {
            return Err(ExecError::PcOutOfRange { pc: next_pc, len });
        }
        pc = next_pc as usize;
    }
    Err(ExecError::StepBudgetExceeded { budget: limits.max_steps })
}
