//! data-transform: filter, group-by and aggregate over a private CSV table.
//!
//! The rows are private advice. The VM hashes every row into a commitment
//! (with an optional client salt), applies the filter, groups the matching
//! rows and aggregates one numeric column (count, sum, min, max). Public
//! output: the commitment, the row count, the matched-row count, the group
//! count, then per group its key words and the four aggregates. The verifier
//! never sees the rows.
//!
//! Encoding (what the commitment is over): a numeric column is one word (an
//! integer in `[0, 2^28)`); a text column is four words, its UTF-8 bytes (at
//! most 12) packed three per word, big-endian, zero-padded. Each row is
//! absorbed in blocks of eight words, padded with zeros, after a first block
//! holding the salt; the sponge's capacity starts with the domain tag
//! `TABLE` and the column count.
use std::collections::HashMap;

use bitsage_guest::gadgets::{select, Sponge, DIGEST_WORDS, RATE};
use bitsage_guest::prelude::*;

pub const TABLE: u32 = 5;
const NUM_BOUND: u32 = 1 << 28;
const TEXT_BYTES: usize = 12;
const TEXT_WORDS: usize = 4;
const MAX_COLUMNS: usize = 32;

const SPONGE: Sponge = Sponge::at(0);
/// RAM: the current row at 16.., the group table at 256...
const ROW: u32 = 16;
const GROUPS: u32 = 256;

#[derive(Deserialize)]
struct Filter {
    column: String,
    op: String,
    value: u32,
}

#[derive(Deserialize)]
struct Query {
    #[serde(default)]
    filter: Option<Filter>,
    group_by: String,
    aggregate: String,
}

#[derive(Deserialize)]
struct Input {
    csv: String,
    query: Query,
    #[serde(default)]
    salt: [u32; DIGEST_WORDS],
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Text,
}

struct Column {
    name: String,
    kind: Kind,
    /// Word offset within an encoded row.
    at: u32,
}

impl Column {
    fn width(&self) -> u32 {
        match self.kind {
            Kind::Number => 1,
            Kind::Text => TEXT_WORDS as u32,
        }
    }
}

struct Table {
    columns: Vec<Column>,
    width: u32,
    rows: Vec<Vec<M31>>,
}

fn pack_text(s: &str) -> Result<Vec<M31>, Error> {
    let b = s.as_bytes();
    if b.len() > TEXT_BYTES {
        return Err(Error::new(format!("text value `{s}` is longer than {TEXT_BYTES} bytes")));
    }
    let mut padded = [0u8; TEXT_BYTES];
    padded[..b.len()].copy_from_slice(b);
    Ok(padded.chunks(3).map(|c| M31::from(u32::from_be_bytes([0, c[0], c[1], c[2]]))).collect())
}

fn unpack_text(ws: &[M31]) -> String {
    let bytes: Vec<u8> = ws.iter().flat_map(|w| w.value().to_be_bytes()[1..].to_vec()).filter(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn parse_number(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|&v| v < NUM_BOUND)
}

fn parse_table(csv: &str) -> Result<Table, Error> {
    let mut lines = csv.lines().map(str::trim).filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().ok_or("the CSV is empty")?.split(',').map(str::trim).collect();
    if header.len() > MAX_COLUMNS {
        return Err(Error::new(format!("at most {MAX_COLUMNS} columns")));
    }
    let cells: Vec<Vec<&str>> = lines.map(|l| l.split(',').map(str::trim).collect()).collect();
    if cells.is_empty() {
        return Err(Error::new("the CSV has no rows"));
    }
    if let Some((i, r)) = cells.iter().enumerate().find(|(_, r)| r.len() != header.len()) {
        return Err(Error::new(format!("row {} has {} fields, the header has {}", i + 1, r.len(), header.len())));
    }
    let mut columns = Vec::new();
    let mut at = 0;
    for (c, name) in header.iter().enumerate() {
        let kind = if cells.iter().all(|r| parse_number(r[c]).is_some()) { Kind::Number } else { Kind::Text };
        let col = Column { name: name.to_string(), kind, at };
        at += col.width();
        columns.push(col);
    }
    let mut rows = Vec::new();
    for r in &cells {
        let mut row = Vec::new();
        for (col, cell) in columns.iter().zip(r) {
            match col.kind {
                Kind::Number => row.push(M31::from(parse_number(cell).ok_or("unreachable: checked numeric")?)),
                Kind::Text => row.extend(pack_text(cell)?),
            }
        }
        rows.push(row);
    }
    Ok(Table { columns, width: at, rows })
}

impl Table {
    fn column(&self, name: &str) -> Result<&Column, Error> {
        self.columns.iter().find(|c| c.name == name).ok_or_else(|| Error::new(format!("no column named `{name}`")))
    }
}

#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn parse(s: &str) -> Result<Op, Error> {
        Ok(match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            _ => return Err(Error::new(format!("unknown filter op `{s}` (use == != < <= > >=)"))),
        })
    }

    fn holds(self, x: u32, v: u32) -> bool {
        match self {
            Op::Eq => x == v,
            Op::Ne => x != v,
            Op::Lt => x < v,
            Op::Le => x <= v,
            Op::Gt => x > v,
            Op::Ge => x >= v,
        }
    }

    /// `cond = x op v` for `x` in `x_reg`; overwrites `tmp`.
    fn emit(self, p: &mut Program, cond: Reg, x: Reg, v: u32, tmp: Reg) {
        match self {
            Op::Eq => {
                p.eq(cond, x, v);
            }
            Op::Ne => {
                p.eq(tmp, x, v).mov(cond, 1u32).sub(cond, cond, tmp);
            }
            Op::Lt => {
                p.lt(cond, x, v);
            }
            Op::Le => {
                p.lt(cond, x, v + 1);
            }
            Op::Gt => {
                p.mov(tmp, v).lt(cond, tmp, x);
            }
            Op::Ge => {
                p.lt(tmp, x, v).mov(cond, 1u32).sub(cond, cond, tmp);
            }
        }
    }
}

struct Plan<'a> {
    table: &'a Table,
    filter: Option<(&'a Column, Op, u32)>,
    group: &'a Column,
    agg: &'a Column,
    groups: u32,
}

impl Plan<'_> {
    fn key_width(&self) -> u32 {
        self.group.width()
    }
    /// Slot layout: key words, count, sum, min, max.
    fn stride(&self) -> u32 {
        self.key_width() + 4
    }
}

/// Registers: R1 row counter, R7 groups created, R14 rows matched; the rest
/// are scratch.
fn program(plan: &Plan) -> Program {
    let t = plan.table;
    let (k, stride) = (plan.key_width(), plan.stride());
    let mut p = Program::new();
    // Salt block, with the domain and column count in the capacity.
    SPONGE.reset(&mut p, TABLE, R2);
    p.mov(R2, t.columns.len() as u32);
    SPONGE.set(&mut p, RATE + 1, R2);
    for i in 0..DIGEST_WORDS as u32 {
        p.advice(R2);
        SPONGE.absorb(&mut p, i, R2, R3);
    }
    SPONGE.permute(&mut p);

    p.repeat(R1, t.rows.len() as u32, |p| {
        // Read, range-check and absorb the row.
        for col in &t.columns {
            let bound = if col.kind == Kind::Number { NUM_BOUND } else { 1 << 24 };
            for w in col.at..col.at + col.width() {
                p.advice(R2).assert_range(R3, R2, bound).store(R0, ROW + w, R2);
                SPONGE.absorb(p, w % RATE, R2, R3);
                if w % RATE == RATE - 1 {
                    SPONGE.permute(p);
                }
            }
        }
        if t.width % RATE != 0 {
            SPONGE.permute(p);
        }
        let skip = p.label();
        if let Some((col, op, v)) = plan.filter {
            p.load(R2, R0, ROW + col.at);
            op.emit(p, R4, R2, v, R3);
            p.jz(R4, skip);
        }
        p.add(R14, R14, 1u32);
        // The slot index is advice: 0 <= g < groups, slot address in R6.
        p.advice(R5).assert_range(R3, R5, plan.groups.max(1));
        p.mul(R6, R5, stride).add(R6, R6, GROUPS);
        let (create, aggregate) = (p.label(), p.label());
        p.eq(R4, R5, R7).jnz(R4, create);
        // An existing group: g < created, and its key matches the row's.
        p.assert_lt(R3, R5, R7);
        for w in 0..k {
            p.load(R9, R6, w).load(R10, R0, ROW + plan.group.at + w).assert_eq(R9, R9, R10);
        }
        p.jmp(aggregate);
        // A new group: its key differs from every existing group's key.
        p.bind(create);
        let init = p.label();
        p.jz(R7, init).mov(R11, GROUPS).mov(R12, R7);
        let scan = p.here();
        p.mov(R13, 1u32);
        for w in 0..k {
            p.load(R9, R11, w).load(R10, R0, ROW + plan.group.at + w).eq(R9, R9, R10).mul(R13, R13, R9);
        }
        p.assert_zero(R13).add(R11, R11, stride).sub(R12, R12, 1u32).jnz(R12, scan);
        p.bind(init);
        for w in 0..k {
            p.load(R9, R0, ROW + plan.group.at + w).store(R6, w, R9);
        }
        p.load(R8, R0, ROW + plan.agg.at);
        p.store(R6, k, R0).store(R6, k + 1, R0).store(R6, k + 2, R8).store(R6, k + 3, R8);
        p.add(R7, R7, 1u32);
        // Aggregate: count, sum (kept below 2^28), min, max.
        p.bind(aggregate);
        p.load(R8, R0, ROW + plan.agg.at);
        p.load(R9, R6, k).add(R9, R9, 1u32).store(R6, k, R9);
        p.load(R9, R6, k + 1).add(R9, R9, R8).assert_range(R10, R9, NUM_BOUND).store(R6, k + 1, R9);
        p.load(R9, R6, k + 2).lt(R10, R8, R9);
        select(p, R11, R10, R8, R9);
        p.store(R6, k + 2, R11);
        p.load(R9, R6, k + 3).lt(R10, R9, R8);
        select(p, R11, R10, R8, R9);
        p.store(R6, k + 3, R11);
        p.bind(skip);
    });
    // Every declared group was created.
    p.assert_eq(R9, R7, plan.groups);
    SPONGE.squeeze(&mut p, [R2, R3, R4, R5]);
    p.write(R2).write(R3).write(R4).write(R5);
    p.mov(R2, t.rows.len() as u32).write(R2).write(R14).mov(R2, plan.groups).write(R2);
    if plan.groups > 0 {
        p.mov(R11, GROUPS);
        p.repeat(R12, plan.groups, |p| {
            for w in 0..stride {
                p.load(R9, R11, w).write(R9);
            }
            p.add(R11, R11, stride);
        });
    }
    p.halt();
    p
}

fn transform(input: Input) -> Result<Value, Error> {
    let table = parse_table(&input.csv)?;
    let q = &input.query;
    let group = table.column(&q.group_by)?;
    let agg = table.column(&q.aggregate)?;
    if agg.kind != Kind::Number {
        return Err(Error::new(format!("aggregate column `{}` is not numeric", agg.name)));
    }
    let filter = match &q.filter {
        Some(f) => {
            let col = table.column(&f.column)?;
            if col.kind != Kind::Number {
                return Err(Error::new(format!("filter column `{}` is not numeric", col.name)));
            }
            if f.value >= NUM_BOUND {
                return Err(Error::new("filter value must be below 2^28"));
            }
            Some((col, Op::parse(&f.op)?, f.value))
        }
        None => None,
    };

    // The witness: rows, and for each matching row the slot of its group.
    let mut advice: Vec<M31> = input.salt.iter().map(|&w| M31::from(w)).collect();
    let mut slots: HashMap<Vec<M31>, u32> = HashMap::new();
    for row in &table.rows {
        advice.extend(row);
        if let Some((col, op, v)) = filter {
            if !op.holds(row[col.at as usize].value(), v) {
                continue;
            }
        }
        let key = row[group.at as usize..(group.at + group.width()) as usize].to_vec();
        let next = slots.len() as u32;
        advice.push(M31::from(*slots.entry(key).or_insert(next)));
    }
    let plan = Plan { table: &table, filter, group, agg, groups: slots.len() as u32 };
    let run = execute(&program(&plan), &[], &advice)?;

    // The report, decoded from the proven output.
    let out = &run.output;
    let commitment: String = out[..DIGEST_WORDS].iter().map(|w| format!("{:08x}", w.value())).collect();
    let groups: Vec<Value> = out[DIGEST_WORDS + 3..]
        .chunks(plan.stride() as usize)
        .map(|g| {
            let k = plan.key_width() as usize;
            let key = match group.kind {
                Kind::Text => json!(unpack_text(&g[..k])),
                Kind::Number => json!(g[0].value()),
            };
            json!({ "key": key, "count": g[k].value(), "sum": g[k + 1].value(), "min": g[k + 2].value(), "max": g[k + 3].value() })
        })
        .collect();
    Ok(json!({
        "commitment": commitment,
        "rows": out[DIGEST_WORDS].value(),
        "matched": out[DIGEST_WORDS + 1].value(),
        "groups": groups,
        "program_digest": run.program_digest,
    }))
}

bitsage_guest::workload!(transform);
