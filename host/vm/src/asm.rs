//! Text assembly (`.obk`) and the disassembler.
//!
//! ```text
//! ; comments start with ';' or '#'
//! .table relu 0:0 1:1 2147483646:0   ; key:value pairs, may repeat the directive
//! start:
//!     read  r1                 ; public input
//!     mov   r2, 10             ; immediate
//! loop:
//!     mac   r3, r1, r1
//!     sub   r2, r2, 1
//!     jnz   r2, loop
//!     load  r4, [r1 + 3]
//!     store [r1 + 3], r3
//!     lookup r5, relu, r4
//!     hash  [r1 + 0]
//!     write r3
//!     halt
//! ```

use std::collections::{BTreeSet, HashMap};

use obelysk_isa::{M31, P};

use crate::isa::{Instr, Opcode, Program, ProgramError, Table};

/// An assembly error, with the 1-based line it occurred on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("line {line}: {msg}")]
    Syntax { line: usize, msg: String },
    #[error("line {line}: unknown label `{label}`")]
    UnknownLabel { line: usize, label: String },
    #[error("line {line}: label `{label}` defined twice")]
    DuplicateLabel { line: usize, label: String },
    #[error("line {line}: unknown table `{table}`")]
    UnknownTable { line: usize, table: String },
    #[error(transparent)]
    Program(#[from] ProgramError),
}

fn syntax(line: usize, msg: impl Into<String>) -> AsmError {
    AsmError::Syntax { line, msg: msg.into() }
}

/// Parses an integer literal (decimal, `0x` hex, optional `-`) into M31.
pub fn parse_word(s: &str) -> Option<M31> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let v: u64 = match digits.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok()?,
        None => digits.parse().ok()?,
    };
    if v >= P as u64 {
        return None;
    }
    let m = M31(v as u32);
    Some(if neg { -m } else { m })
}

fn parse_reg(line: usize, s: &str) -> Result<u8, AsmError> {
    s.strip_prefix('r')
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| (*n as usize) < crate::isa::NUM_REGISTERS)
        .ok_or_else(|| syntax(line, format!("expected a register r0..r15, found `{s}`")))
}

/// `[rA + imm]`, `[rA]` or `[rA - imm]`.
fn parse_mem(line: usize, s: &str) -> Result<(u8, M31), AsmError> {
    let inner = s
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .ok_or_else(|| syntax(line, format!("expected `[rA + offset]`, found `{s}`")))?;
    let inner: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
    let (reg, off) = match inner.find(['+', '-']) {
        Some(i) => {
            let off = parse_word(inner[i + 1..].trim()).ok_or_else(|| syntax(line, format!("bad offset in `{s}`")))?;
            (&inner[..i], if &inner[i..i + 1] == "-" { -off } else { off })
        }
        None => (inner.as_str(), M31(0)),
    };
    Ok((parse_reg(line, reg)?, off))
}

fn split_operands(s: &str) -> Vec<String> {
    // Commas separate operands, except inside brackets.
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

enum Target {
    Label(String),
    Pc(M31),
}

/// Assembles `.obk` source into a validated [`Program`].
pub fn assemble(src: &str) -> Result<Program, AsmError> {
    let mut tables: Vec<Table> = Vec::new();
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut instrs: Vec<(usize, Instr, Option<Target>, Option<String>)> = Vec::new();

    for (idx, raw) in src.lines().enumerate() {
        let line = idx + 1;
        let text = raw.split([';', '#']).next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if let Some(rest) = text.strip_prefix(".table") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().ok_or_else(|| syntax(line, ".table needs a name"))?;
            let pos = match tables.iter().position(|t| t.name == name) {
                Some(p) => p,
                None => {
                    tables.push(Table { name: name.to_string(), entries: Vec::new() });
                    tables.len() - 1
                }
            };
            for kv in parts {
                let (k, v) = kv
                    .split_once(':')
                    .and_then(|(k, v)| Some((parse_word(k)?, parse_word(v)?)))
                    .ok_or_else(|| syntax(line, format!("bad table entry `{kv}`, expected key:value")))?;
                tables[pos].entries.push((k, v));
            }
            continue;
        }
        let mut text = text;
        while let Some((lab, rest)) = text.split_once(':') {
            let lab = lab.trim();
            if lab.is_empty() || !lab.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                break;
            }
            if labels.insert(lab.to_string(), instrs.len()).is_some() {
                return Err(AsmError::DuplicateLabel { line, label: lab.to_string() });
            }
            text = rest.trim();
        }
        if text.is_empty() {
            continue;
        }
        let (mn, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let op = Opcode::from_mnemonic(&mn.to_ascii_lowercase())
            .ok_or_else(|| syntax(line, format!("unknown instruction `{mn}`")))?;
        let ops = split_operands(rest);
        let want = |n: usize| -> Result<(), AsmError> {
            if ops.len() == n {
                Ok(())
            } else {
                Err(syntax(line, format!("`{mn}` takes {n} operand(s), found {}", ops.len())))
            }
        };
        let target = |s: &str| match parse_word(s) {
            Some(v) => Target::Pc(v),
            None => Target::Label(s.to_string()),
        };
        let mut ins = Instr::new(op);
        let mut tgt = None;
        let mut table = None;
        let set_y = |ins: &mut Instr, s: &str| -> Result<(), AsmError> {
            if s.starts_with('r') && parse_reg(line, s).is_ok() {
                ins.b = parse_reg(line, s)?;
            } else {
                ins.imm = parse_word(s).ok_or_else(|| syntax(line, format!("bad operand `{s}`")))?;
                ins.imm_mode = true;
            }
            Ok(())
        };
        use Opcode::*;
        match op {
            Add | Sub | Mul | Mac | Eq | Lt => {
                want(3)?;
                ins.dst = parse_reg(line, &ops[0])?;
                ins.a = parse_reg(line, &ops[1])?;
                set_y(&mut ins, &ops[2])?;
            }
            Mov => {
                want(2)?;
                ins.dst = parse_reg(line, &ops[0])?;
                set_y(&mut ins, &ops[1])?;
            }
            Load => {
                want(2)?;
                ins.dst = parse_reg(line, &ops[0])?;
                (ins.a, ins.imm) = parse_mem(line, &ops[1])?;
            }
            Store => {
                want(2)?;
                (ins.a, ins.imm) = parse_mem(line, &ops[0])?;
                ins.b = parse_reg(line, &ops[1])?;
            }
            Jmp => {
                want(1)?;
                tgt = Some(target(&ops[0]));
            }
            Jnz | Jz => {
                want(2)?;
                ins.a = parse_reg(line, &ops[0])?;
                tgt = Some(target(&ops[1]));
            }
            Jal => {
                want(2)?;
                ins.dst = parse_reg(line, &ops[0])?;
                tgt = Some(target(&ops[1]));
            }
            Jr | Write => {
                want(1)?;
                ins.a = parse_reg(line, &ops[0])?;
            }
            Read | Advice => {
                want(1)?;
                ins.dst = parse_reg(line, &ops[0])?;
            }
            Lookup => {
                want(3)?;
                ins.dst = parse_reg(line, &ops[0])?;
                table = Some(ops[1].clone());
                ins.a = parse_reg(line, &ops[2])?;
            }
            Hash => {
                want(1)?;
                (ins.a, ins.imm) = parse_mem(line, &ops[0])?;
            }
            Halt => want(0)?,
        }
        instrs.push((line, ins, tgt, table));
    }

    let mut out = Vec::with_capacity(instrs.len());
    for (line, mut ins, tgt, table) in instrs {
        match tgt {
            Some(Target::Pc(v)) => ins.imm = v,
            Some(Target::Label(l)) => {
                let pc = *labels.get(&l).ok_or(AsmError::UnknownLabel { line, label: l.clone() })?;
                ins.imm = M31::from(pc as u32);
            }
            None => {}
        }
        if let Some(t) = table {
            let idx =
                tables.iter().position(|x| x.name == t).ok_or(AsmError::UnknownTable { line, table: t.clone() })?;
            ins.imm = M31::from(idx as u32);
        }
        out.push(ins);
    }
    let p = Program { instrs: out, tables };
    p.validate()?;
    Ok(p)
}

/// Renders a program back to assembly that [`assemble`] accepts; jump
/// targets get labels `L<pc>`.
pub fn disassemble(p: &Program) -> String {
    let mut s = String::new();
    for t in &p.tables {
        s.push_str(&format!(".table {}", t.name));
        for (i, (k, v)) in t.entries.iter().enumerate() {
            if i > 0 && i % 8 == 0 {
                s.push_str(&format!("\n.table {}", t.name));
            }
            s.push_str(&format!(" {}:{}", k.0, v.0));
        }
        s.push('\n');
    }
    let targets: BTreeSet<u32> = p.instrs.iter().filter(|i| i.op.imm_is_target()).map(|i| i.imm.0).collect();
    for (pc, i) in p.instrs.iter().enumerate() {
        if targets.contains(&(pc as u32)) {
            s.push_str(&format!("L{pc}:\n"));
        }
        s.push_str(&format!("    {}\n", format_instr(p, i)));
    }
    s
}

fn y_operand(i: &Instr) -> String {
    if i.imm_mode {
        i.imm.0.to_string()
    } else {
        format!("r{}", i.b)
    }
}

/// One instruction in assembly syntax (jump targets as `L<pc>`).
pub fn format_instr(p: &Program, i: &Instr) -> String {
    use Opcode::*;
    let mn = i.op.mnemonic();
    let mem = |a: u8, off: M31| format!("[r{a} + {}]", off.0);
    match i.op {
        Add | Sub | Mul | Mac | Eq | Lt => format!("{mn:<6} r{}, r{}, {}", i.dst, i.a, y_operand(i)),
        Mov => format!("{mn:<6} r{}, {}", i.dst, y_operand(i)),
        Load => format!("{mn:<6} r{}, {}", i.dst, mem(i.a, i.imm)),
        Store => format!("{mn:<6} {}, r{}", mem(i.a, i.imm), i.b),
        Jmp => format!("{mn:<6} L{}", i.imm.0),
        Jnz | Jz => format!("{mn:<6} r{}, L{}", i.a, i.imm.0),
        Jal => format!("{mn:<6} r{}, L{}", i.dst, i.imm.0),
        Jr | Write => format!("{mn:<6} r{}", i.a),
        Read | Advice => format!("{mn:<6} r{}", i.dst),
        Lookup => {
            let name = p.tables.get(i.imm.0 as usize).map(|t| t.name.as_str()).unwrap_or("?");
            format!("{mn:<6} r{}, {name}, r{}", i.dst, i.a)
        }
        Hash => format!("{mn:<6} {}", mem(i.a, i.imm)),
        Halt => mn.to_string(),
    }
}
