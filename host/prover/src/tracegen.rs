//! Builds the main and interaction traces from an execution [`Trace`].
//!
//! Values are derived from what the trace *claims* (it may be hand-edited
//! by the soundness tests); nothing here checks the execution. That is the
//! verifier's job.

use std::borrow::Cow;
use std::collections::HashMap;

use bitsage_air::cpu::{CpuCols, LT_HI_SHIFT, N_FLAGS, TS_HI_SHIFT};
use bitsage_air::hash::HashCols;
use bitsage_air::memory::{MemCols, SPACE_RAM, SPACE_REG};
use bitsage_air::range::{rows_log_size, RangeCols, MAX_RANGE_LOG_SIZE, MIN_RANGE_LOG_SIZE, RANGE_LANES};
use bitsage_air::relations::{Lookup, Relations};
use bitsage_air::rom::{instr_tuple, rom_tuples, table_tuple, RomCols};
use bitsage_air::statement::Claim;
use bitsage_air::{felt, MIN_LOG_SIZE};
use obelysk_vm::exec::{HashCall, Step, Trace};
use obelysk_vm::isa::{Opcode, Program};
use obelysk_vm::poseidon2::WIDTH;
use rayon::prelude::*;
use stwo::core::fields::m31::M31;
use stwo::core::fields::qm31::SecureField;
use stwo::core::poly::circle::CanonicCoset;
use stwo::prover::backend::simd::column::BaseColumn;
use stwo::prover::backend::simd::m31::{PackedM31, LOG_N_LANES};
use stwo::prover::backend::simd::qm31::PackedSecureField;
use stwo::prover::backend::simd::SimdBackend;
use stwo::prover::backend::Column;
use stwo::prover::poly::circle::CircleEvaluation;
use stwo::prover::poly::BitReversedOrder;
use stwo_constraint_framework::LogupTraceGenerator;

pub type Eval = CircleEvaluation<SimdBackend, M31, BitReversedOrder>;

/// The main trace of one component, column-major.
#[derive(Clone)]
pub struct ComponentTrace {
    pub log_size: u32,
    pub columns: Vec<BaseColumn>,
}

impl ComponentTrace {
    fn from_rows(log_size: u32, n_cols: usize, rows: Vec<M31>) -> Self {
        let n = 1usize << log_size;
        debug_assert_eq!(rows.len(), n * n_cols);
        let columns = build_columns(
            log_size,
            n_cols,
            || (),
            |r, out, _| out.extend_from_slice(&rows[r * n_cols..(r + 1) * n_cols]),
        )
        .0;
        ComponentTrace { log_size, columns }
    }

    pub fn evals(&self) -> Vec<Eval> {
        let domain = CanonicCoset::new(self.log_size).circle_domain();
        self.columns.iter().map(|c| CircleEvaluation::new(domain, c.clone())).collect()
    }

    /// The packed values of row-block `r` (16 rows), in column order.
    fn packed_row(&self, r: usize) -> impl FnMut() -> PackedM31 + '_ {
        let mut i = 0;
        move || {
            let v = self.columns[i].data[r];
            i += 1;
            v
        }
    }
}

/// Rows per parallel task when building columns.
const ROWS_PER_TASK: usize = 1 << 10;

/// Builds `n_cols` packed columns of `2^log_size` rows in parallel: `row(r,
/// out, state)` appends row `r`'s values in column order. Each task fills a
/// block of rows of every column, so each value is written once, in place,
/// with no row-major copy to transpose. `state` is per rayon split (e.g.
/// lookup counts), returned for the caller to merge.
fn build_columns<S: Send>(
    log_size: u32,
    n_cols: usize,
    init: impl Fn() -> S + Sync + Send,
    row: impl Fn(usize, &mut Vec<M31>, &mut S) + Sync + Send,
) -> (Vec<BaseColumn>, Vec<S>) {
    let n = 1usize << log_size;
    let rows_per_task = ROWS_PER_TASK.min(n);
    // SAFETY: every row of every column is written below (the tasks cover all rows).
    let mut cols: Vec<BaseColumn> = (0..n_cols).map(|_| unsafe { BaseColumn::uninitialized(n) }).collect();
    let mut tasks: Vec<Vec<&mut [M31]>> = (0..n.div_ceil(rows_per_task)).map(|_| Vec::with_capacity(n_cols)).collect();
    for col in cols.iter_mut() {
        for (t, chunk) in col.as_mut_slice().chunks_mut(rows_per_task).enumerate() {
            tasks[t].push(chunk);
        }
    }
    let states = tasks
        .into_par_iter()
        .enumerate()
        .fold(
            || (init(), Vec::with_capacity(n_cols)),
            |(mut state, mut buf), (t, mut slices)| {
                let len = slices.first().map_or(0, |s| s.len());
                for i in 0..len {
                    buf.clear();
                    row(t * rows_per_task + i, &mut buf, &mut state);
                    debug_assert_eq!(buf.len(), n_cols);
                    for (slice, v) in slices.iter_mut().zip(&buf) {
                        slice[i] = *v;
                    }
                }
                (state, buf)
            },
        )
        .map(|(state, _)| state)
        .collect();
    (cols, states)
}

pub fn log_size_for(rows: usize) -> u32 {
    rows.next_power_of_two().trailing_zeros().max(MIN_LOG_SIZE)
}

fn split16(v: M31) -> (M31, M31) {
    (M31(v.0 & 0xffff), M31(v.0 >> 16))
}

/// `4·clk + slot - 1 - prev_ts`, the range-checked timestamp gap.
fn ts_gap(clk: u32, slot: u32, prev: u32) -> (M31, M31) {
    split16(M31::from(4 * clk + slot) - M31(1) - M31::from(prev))
}

/// The value whose inverse (or zero test) a CPU row carries: `x` for the
/// conditional jumps, `x - y` otherwise.
fn cpu_w(s: &Step) -> M31 {
    if matches!(s.instr.op, Opcode::Jz | Opcode::Jnz) {
        felt(s.x)
    } else {
        felt(s.x) - felt(s.y())
    }
}

/// `1 / cpu_w(s)` for every step (zero where it is zero), by batch
/// inversion in parallel blocks: one field inversion per block.
fn cpu_w_inverses(steps: &[Step]) -> Vec<M31> {
    const BLOCK: usize = 1 << 12;
    let mut out = vec![M31(0); steps.len()];
    out.par_chunks_mut(BLOCK).zip(steps.par_chunks(BLOCK)).for_each(|(out, steps)| {
        // Zeros become ones for the batch, and zero again after.
        let w: Vec<M31> = steps.iter().map(cpu_w).map(|w| if w.0 == 0 { M31(1) } else { w }).collect();
        stwo::core::fields::batch_inverse_in_place(&w, out);
        for (o, s) in out.iter_mut().zip(steps) {
            if cpu_w(s).0 == 0 {
                *o = M31(0);
            }
        }
    });
    out
}

/// The CPU row of step `s`; `inv` is `1 / cpu_w(s)` (any value when that is zero).
/// The split timestamp gaps of a step's four slots (registers a, b; RAM,
/// zero without a RAM access; register dst).
fn step_gaps(s: &Step) -> [(M31, M31); 4] {
    let ram = s.mem.map_or((M31(0), M31(0)), |m| ts_gap(s.clk, 2, m.old_ts));
    [ts_gap(s.clk, 0, s.x_ts), ts_gap(s.clk, 1, s.y_ts), ram, ts_gap(s.clk, 3, s.d_ts)]
}

/// A step's `lt` column and split difference. On `lt` rows the claimed
/// result picks the range-checked difference; on other rows the columns
/// only need to satisfy the (unchecked) identity.
fn step_lt(s: &Step) -> (M31, (M31, M31)) {
    let (x, y, d) = (felt(s.x), felt(s.y()), felt(s.d_new));
    if s.instr.op == Opcode::Lt {
        let r = if d == M31(1) { y - x - M31(1) } else { x - y };
        (d, split16(r))
    } else {
        (M31(0), (x - y, M31(0)))
    }
}

/// Adds the range checks of a CPU row, as the AIR lists them
/// ([`CpuCols::range_checks`]: multiplicity `-1` for a check made), to `f`.
fn for_each_range_check(row: &CpuCols<M31>, mut f: impl FnMut(M31)) {
    for (mult, v) in row.range_checks() {
        for _ in 0..(M31(0) - mult).0 {
            f(v);
        }
    }
}

/// Visits the values step `s`'s CPU row looks up in the range table: what
/// [`cpu_component`] counts and [`range_log_size`] bounds. These are the
/// checks [`CpuCols::range_checks`] lists for a real row (the four timestamp
/// gaps, the RAM one on loads and stores only; the `lt` difference on `lt`
/// rows), computed from the step without building the row;
/// `range_counts_are_the_range_lookups_of_the_air` holds them to the AIR.
fn for_each_cpu_range(s: &Step, mut f: impl FnMut(M31)) {
    let (ts_shift, lt_shift) = (M31(TS_HI_SHIFT), M31(LT_HI_SHIFT));
    let ram = matches!(s.instr.op, Opcode::Load | Opcode::Store);
    for (slot, (lo, hi)) in step_gaps(s).into_iter().enumerate() {
        if slot != 2 || ram {
            f(lo);
            f(hi * ts_shift);
        }
    }
    if s.instr.op == Opcode::Lt {
        let (_, (lo, hi)) = step_lt(s);
        f(lo);
        f(hi * lt_shift);
        f(hi);
    }
}

/// The largest value step `s`'s CPU row looks up in the range table.
fn cpu_range_max(s: &Step) -> u32 {
    let mut max = 0;
    for_each_cpu_range(s, |v| max = max.max(v.0));
    max
}

/// The range table's log size for `trace`, given the largest value its CPU
/// rows look up (`cpu_max`, from [`cpu_range_max`]): the smallest table (at
/// least [`MIN_RANGE_LOG_SIZE`], at most [`MAX_RANGE_LOG_SIZE`]) holding
/// every value its CPU and hash rows look up. A short run's timestamp gaps
/// are small, so its table is too. Computed from the steps alone, without
/// building rows, so a backend that builds the CPU rows itself knows the
/// size first.
fn range_log_size(cpu_max: u32, trace: &Trace) -> u32 {
    let hash = trace.hashes.iter().flat_map(hash_range_values).map(|v| v.0).max().unwrap_or(0);
    let bits = u32::BITS - cpu_max.max(hash).leading_zeros();
    bits.clamp(MIN_RANGE_LOG_SIZE, MAX_RANGE_LOG_SIZE)
}

fn cpu_row(s: &Step, inv: M31) -> CpuCols<M31> {
    let z = M31(0);
    let mut flags = [z; N_FLAGS];
    flags[s.instr.op as usize] = M31(1);
    let op = s.instr.op;
    let (x, y) = (felt(s.x), felt(s.y()));
    let [(xa_lo, xa_hi), (yb_lo, yb_hi), (m_lo, m_hi), (d_lo, d_hi)] = step_gaps(s);
    let (m_old, m_new) = s.mem.map_or((z, z), |m| (felt(m.old), felt(m.new)));
    let w = cpu_w(s);
    let (inv, isz) = if w.0 == 0 { (z, M31(1)) } else { (inv, z) };
    let (lt, (r_lo, r_hi)) = step_lt(s);
    let tgt = felt(if op == Opcode::Jr { s.x } else { s.instr.imm });
    let taken = match op {
        Opcode::Jz => isz,
        Opcode::Jnz => M31(1) - isz,
        Opcode::Jmp | Opcode::Jal | Opcode::Jr => M31(1),
        _ => z,
    };
    CpuCols {
        pc: M31(s.pc),
        clk: M31(s.clk),
        in_ptr: M31(s.in_ptr),
        out_ptr: M31(s.out_ptr),
        next_pc: M31(s.next_pc),
        imm_mode: M31(s.instr.imm_mode as u32),
        dst: M31(s.instr.dst as u32),
        a: M31(s.instr.a as u32),
        b: M31(s.instr.b as u32),
        imm: felt(s.instr.imm),
        x,
        xa_lo,
        xa_hi,
        y_reg: felt(s.y_reg),
        yb_lo,
        yb_hi,
        y,
        prod: x * y,
        m_old,
        m_new,
        m_lo,
        m_hi,
        d_old: felt(s.d_old),
        d_new: felt(s.d_new),
        d_lo,
        d_hi,
        w,
        inv,
        isz,
        lt,
        r_lo,
        r_hi,
        tgt,
        taken,
        flags,
    }
}

/// A padding row: every flag zero (so no lookups), and the few always-on
/// identities satisfied (`w = 0` means `isz = 1`; `next_pc = pc + 1`).
fn padding_cpu_row() -> CpuCols<M31> {
    let mut row = CpuCols::read(|| M31(0));
    row.isz = M31(1);
    row.next_pc = M31(1);
    row
}

/// All main traces plus the multiplicities they imply.
pub struct MainTrace<'t> {
    pub claim: Claim,
    pub cpu: ComponentTrace,
    pub rom: ComponentTrace,
    pub mem: ComponentTrace,
    pub range: ComponentTrace,
    /// Present when the run made `hash` calls (see [`Claim::hash_log_size`]).
    pub hash: Option<ComponentTrace>,
    /// Set by [`build_main_trace_deferred`]: the steps whose CPU rows a
    /// backend builds where the trace is committed (a GPU, from the steps
    /// uploaded, instead of the wider rows). `cpu.columns` is then empty and
    /// `range`'s multiplicities leave out the CPU rows' range checks.
    pub cpu_steps: Option<&'t [Step]>,
    /// Set with `cpu_steps`: the hash calls whose rows the backend builds
    /// (from [`hash_given`]). `hash.columns` is then empty; `range` counts
    /// their range checks already.
    pub hash_calls: Option<&'t [HashCall]>,
    /// What the backend uploaded of `cpu_steps` while the host built the
    /// rest (the CUDA backend's packed steps on the device), for its
    /// [`crate::ProverBackend::convert_main`]; `None` from [`build`].
    pub staged: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl MainTrace<'_> {
    /// The present components as built here, in allocation order (the hash
    /// component last, when present): what a backend commits when it does
    /// not build the CPU rows itself.
    pub fn components(&self) -> Vec<&ComponentTrace> {
        let mut v = vec![&self.cpu, &self.rom, &self.mem, &self.range];
        v.extend(&self.hash);
        v
    }

    /// Every present component with its rows on the host: for a trace whose
    /// CPU rows were deferred, they are built here, and the range
    /// multiplicities completed with their range checks.
    pub fn host_components(&self) -> Vec<Cow<'_, ComponentTrace>> {
        let hash = match (self.hash_calls, self.claim.hash_log_size) {
            (Some(calls), Some(log_size)) => Some(Cow::Owned(hash_component(calls, log_size))),
            _ => self.hash.as_ref().map(Cow::Borrowed),
        };
        let (cpu, range) = match self.cpu_steps {
            None => (Cow::Borrowed(&self.cpu), Cow::Borrowed(&self.range)),
            Some(steps) => {
                let (cpu, counts) = cpu_component(steps, self.claim.cpu_log_size);
                let mut range = self.range.clone();
                add_range_counts(&mut range, &counts);
                (Cow::Owned(cpu), Cow::Owned(range))
            }
        };
        let mut v = vec![cpu, Cow::Borrowed(&self.rom), Cow::Borrowed(&self.mem), range];
        v.extend(hash);
        v
    }

    /// The evaluations of every column (CPU rows built here if deferred).
    pub fn evals(&self) -> Vec<Eval> {
        self.host_components().iter().flat_map(|c| c.evals()).collect()
    }

    pub fn n_columns(&self) -> usize {
        let cpu = if self.cpu_steps.is_some() { CpuCols::<M31>::N_COLUMNS } else { 0 };
        let hash = if self.hash_calls.is_some() { HashCols::<M31>::N_COLUMNS } else { 0 };
        self.components().iter().map(|c| c.columns.len()).sum::<usize>() + cpu + hash
    }
}

/// Adds per-task lookup counts into `total`.
fn add_counts(total: &mut [u32], parts: Vec<Vec<u32>>) {
    for part in parts {
        total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    }
}

/// Adds `counts` (indexed by value) to a range component's multiplicity
/// columns: value `16·r + j` is row `r`, lane `j`.
pub fn add_range_counts(range: &mut ComponentTrace, counts: &[u32]) {
    for (j, col) in range.columns[1..].iter_mut().enumerate() {
        for (r, m) in col.as_mut_slice().iter_mut().enumerate() {
            if let Some(c) = counts.get(r * RANGE_LANES + j) {
                *m += M31(*c);
            }
        }
    }
}

/// The columns of a hash row that come from the call itself (`is_real`,
/// `base`, `clk`, `input`, `ts_lo`, `ts_hi`, in column order); the rest
/// are the permutation's S-boxes, computed from `input`.
pub const HASH_GIVEN: usize = 3 + 3 * WIDTH;

/// The given columns of the hash row of `call` (a padding row is all zero).
pub fn hash_given(call: &HashCall) -> [M31; HASH_GIVEN] {
    let mut v = [M31(0); HASH_GIVEN];
    (v[0], v[1], v[2]) = (M31(1), M31(call.base), M31(call.clk));
    for i in 0..WIDTH {
        v[3 + i] = felt(call.before[i]);
        (v[3 + WIDTH + i], v[3 + 2 * WIDTH + i]) = ts_gap(call.clk, 2, call.before_ts[i]);
    }
    v
}

/// The hash component of `calls` at `2^log_size` rows.
fn hash_component(calls: &[HashCall], log_size: u32) -> ComponentTrace {
    let z = M31(0);
    let (columns, _) = build_columns(
        log_size,
        HashCols::<M31>::N_COLUMNS,
        || (),
        |r, out, _| {
            let mut given = calls.get(r).map(hash_given).unwrap_or([z; HASH_GIVEN]).into_iter();
            let mut row = HashCols::read(|| given.next().unwrap_or(z));
            row.fill_permutation();
            row.push_to(out);
        },
    );
    ComponentTrace { log_size, columns }
}

/// The values one hash call looks up in the range table (its timestamp gaps).
fn hash_range_values(h: &HashCall) -> impl Iterator<Item = M31> + '_ {
    (0..WIDTH).flat_map(move |i| {
        let (lo, hi) = ts_gap(h.clk, 2, h.before_ts[i]);
        [lo, hi * M31(TS_HI_SHIFT)]
    })
}

/// The range-table lookups the hash rows of `calls` make.
fn hash_range_counts(calls: &[HashCall]) -> Vec<u32> {
    let mut counts = vec![0u32; 1 << MAX_RANGE_LOG_SIZE];
    for v in calls.iter().flat_map(hash_range_values) {
        if let Some(c) = counts.get_mut(v.0 as usize) {
            *c += 1;
        }
    }
    counts
}

/// The CPU component of `steps` at `2^log_size` rows, and the range-table
/// lookups its rows make.
fn cpu_component(steps: &[Step], log_size: u32) -> (ComponentTrace, Vec<u32>) {
    debug_assert!(steps.len() <= 1 << log_size);
    let pad = padding_cpu_row();
    let inverses = cpu_w_inverses(steps);
    let (columns, counts) = build_columns(
        log_size,
        CpuCols::<M31>::N_COLUMNS,
        || vec![0u32; 1 << MAX_RANGE_LOG_SIZE],
        |r, out, counts| match steps.get(r) {
            Some(s) => {
                let row = cpu_row(s, inverses[r]);
                for_each_range_check(&row, |v| {
                    if let Some(c) = counts.get_mut(v.0 as usize) {
                        *c += 1;
                    }
                });
                row.push_to(out);
            }
            None => pad.push_to(out),
        },
    );
    let mut range_counts = vec![0u32; 1 << MAX_RANGE_LOG_SIZE];
    add_counts(&mut range_counts, counts);
    (ComponentTrace { log_size, columns }, range_counts)
}

/// The main trace of an execution, every component built here.
pub fn build_main_trace<'t>(program: &Program, trace: &'t Trace) -> MainTrace<'t> {
    build(program, trace, false)
}

/// The main trace of an execution with the wide rows, CPU and hash, left
/// to the backend (see [`MainTrace::cpu_steps`] and [`MainTrace::hash_calls`]).
pub fn build_main_trace_deferred<'t>(program: &Program, trace: &'t Trace) -> MainTrace<'t> {
    build(program, trace, true)
}

fn build<'t>(program: &Program, trace: &'t Trace, defer: bool) -> MainTrace<'t> {
    let mut range_counts = vec![0u32; 1 << MAX_RANGE_LOG_SIZE];

    // CPU.
    let cpu_log = log_size_for(trace.steps.len());
    let cpu = if defer {
        ComponentTrace { log_size: cpu_log, columns: Vec::new() }
    } else {
        let (cpu, counts) = cpu_component(&trace.steps, cpu_log);
        add_counts(&mut range_counts, vec![counts]);
        cpu
    };

    // Program table with fetch and lookup multiplicities.
    let tuples = rom_tuples(program);
    let index: HashMap<[M31; 8], usize> = tuples.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let n_instrs = program.instrs.len();
    // One pass over the steps (a 2^20-step trace is about 100 MB) for the
    // program table's multiplicities and the largest value the CPU rows
    // look up in the range table.
    let (mult, cpu_range) = trace
        .steps
        .par_iter()
        .fold(
            || (vec![0u32; tuples.len()], 0u32),
            |(mut mult, max), s| {
                // The tuple of the instruction at `pc` is row `pc`; a step
                // claiming another instruction there matches no row.
                let pc = s.pc as usize;
                if pc < n_instrs && tuples[pc] == instr_tuple(s.pc, &s.instr) {
                    mult[pc] += 1;
                }
                if s.instr.op == Opcode::Lookup {
                    if let Some(&k) = index.get(&table_tuple(s.instr.imm.0, felt(s.x), felt(s.d_new))) {
                        mult[k] += 1;
                    }
                }
                (mult, max.max(cpu_range_max(s)))
            },
        )
        .reduce(
            || (vec![0u32; tuples.len()], 0),
            |(mut a, ma), (b, mb)| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                (a, ma.max(mb))
            },
        );
    let rom_log = log_size_for(tuples.len());
    let mut flat = Vec::with_capacity((1 << rom_log) * RomCols::<M31>::N_COLUMNS);
    for r in 0..1usize << rom_log {
        let row = match tuples.get(r) {
            Some(t) => RomCols { is_def: M31(1), mult: M31(mult[r]), e: *t },
            None => RomCols { is_def: M31(0), mult: M31(0), e: [M31(0); 8] },
        };
        row.push_to(&mut flat);
    }
    let rom = ComponentTrace::from_rows(rom_log, RomCols::<M31>::N_COLUMNS, flat);

    // Memory boundary: registers then RAM.
    let n_mem = trace.registers.len() + trace.ram.len();
    let mem_log = log_size_for(n_mem);
    let mut flat = Vec::with_capacity((1 << mem_log) * MemCols::<M31>::N_COLUMNS);
    let cells = trace
        .registers
        .iter()
        .enumerate()
        .map(|(i, c)| (SPACE_REG, i, c))
        .chain(trace.ram.iter().enumerate().map(|(i, c)| (SPACE_RAM, i, c)));
    for (space, addr, cell) in cells {
        let row = MemCols {
            is_real: M31(1),
            space: M31(space),
            addr: M31::from(addr as u32),
            value: felt(cell.value),
            ts: M31::from(cell.ts),
        };
        row.push_to(&mut flat);
    }
    let z = M31(0);
    for _ in n_mem..1usize << mem_log {
        let row = MemCols { is_real: z, space: z, addr: z, value: z, ts: z };
        row.push_to(&mut flat);
    }
    let mem = ComponentTrace::from_rows(mem_log, MemCols::<M31>::N_COLUMNS, flat);

    // Hash rows, when the run hashed.
    let hash_log = (!trace.hashes.is_empty()).then(|| log_size_for(trace.hashes.len()));
    add_counts(&mut range_counts, vec![hash_range_counts(&trace.hashes)]);
    let hash = hash_log.map(|log_size| {
        if defer {
            ComponentTrace { log_size, columns: Vec::new() }
        } else {
            hash_component(&trace.hashes, log_size)
        }
    });

    // Range table: every looked-up value is below 2^range_log (for the
    // deferred CPU rows too, which are counted where they are built).
    let range_log = range_log_size(cpu_range, trace);
    let mut flat = Vec::with_capacity((1 << range_log) / RANGE_LANES * RangeCols::<M31>::N_COLUMNS);
    for (r, counts) in range_counts[..1 << range_log].chunks_exact(RANGE_LANES).enumerate() {
        let row = RangeCols { v: M31((r * RANGE_LANES) as u32), mult: std::array::from_fn(|j| M31(counts[j])) };
        row.push_to(&mut flat);
    }
    let range = ComponentTrace::from_rows(rows_log_size(range_log), RangeCols::<M31>::N_COLUMNS, flat);

    MainTrace {
        claim: Claim {
            cpu_log_size: cpu_log,
            rom_log_size: rom_log,
            mem_log_size: mem_log,
            hash_log_size: hash_log,
            range_log_size: range_log,
            ram_words: trace.ram.len() as u32,
        },
        cpu,
        rom,
        mem,
        range,
        hash,
        cpu_steps: defer.then_some(&trace.steps[..]),
        hash_calls: (defer && hash_log.is_some()).then_some(&trace.hashes[..]),
        staged: None,
    }
}

/// The LogUp interaction traces of all components on the CPU (SIMD), in
/// component order, and their claimed sums.
pub fn cpu_interaction_trace(main: &MainTrace, rels: &Relations) -> (Vec<Eval>, [SecureField; 5]) {
    type Lookups = fn(&mut dyn FnMut() -> PackedM31) -> Vec<Lookup<PackedM31>>;
    // In component order; an absent component (the hash one, last) is
    // skipped and its sum stays zero.
    let lookups: [Lookups; 5] = [
        |n| CpuCols::read(n).lookups(),
        |n| RomCols::read(n).lookups(),
        |n| MemCols::read(n).lookups(),
        |n| RangeCols::read(n).lookups(),
        |n| HashCols::read(n).lookups(),
    ];
    let mut itrace = Vec::new();
    let mut sums = [SecureField::default(); 5];
    for (i, component) in main.host_components().iter().enumerate() {
        let (evals, sum) = interaction_trace(component, rels, lookups[i]);
        itrace.extend(evals);
        sums[i] = sum;
    }
    (itrace, sums)
}

/// The LogUp interaction trace of one component: fractions batched in
/// pairs, exactly as `add_lookups` constrains them.
pub fn interaction_trace(
    t: &ComponentTrace,
    rels: &Relations,
    lookups: impl Fn(&mut dyn FnMut() -> PackedM31) -> Vec<Lookup<PackedM31>> + Sync,
) -> (Vec<Eval>, SecureField) {
    let n_vec = 1usize << (t.log_size - LOG_N_LANES);
    let span = tracing::info_span!("logup_fractions", log_size = t.log_size).entered();
    let fracs: Vec<Vec<(PackedSecureField, PackedSecureField)>> = (0..n_vec)
        .into_par_iter()
        .map(|r| {
            let mut next = t.packed_row(r);
            let ls = lookups(&mut next);
            ls.chunks(2)
                .map(|pair| {
                    let f = |l: &Lookup<PackedM31>| {
                        let d: PackedSecureField = rels.combine(l.rel, &l.values);
                        (PackedSecureField::from(l.mult), d)
                    };
                    let (n0, d0) = f(&pair[0]);
                    match pair.get(1) {
                        Some(l1) => {
                            let (n1, d1) = f(l1);
                            (n0 * d1 + n1 * d0, d0 * d1)
                        }
                        None => (n0, d0),
                    }
                })
                .collect()
        })
        .collect();
    drop(span);
    let n_batches = fracs.first().map(|f| f.len()).unwrap_or(0);
    let mut gen = LogupTraceGenerator::new(t.log_size);
    {
        let _s = tracing::info_span!("logup_columns", batches = n_batches).entered();
        for b in 0..n_batches {
            gen.col_from_par_iter((0..n_vec).into_par_iter().map(|r| fracs[r][b]));
        }
    }
    let _s = tracing::info_span!("logup_finalize").entered();
    gen.finalize_last()
}

#[cfg(test)]
mod tests {
    use obelysk_vm::exec::{execute, ExecLimits};
    use obelysk_vm::samples::every_opcode_loop;
    use obelysk_vm::M31 as W;

    use super::*;

    #[test]
    fn deferred_rows_complete_to_the_host_built_trace() {
        let program = every_opcode_loop();
        let trace = execute(&program, &[W(60)], &[W(11)], ExecLimits::default()).expect("runs");
        assert!(!trace.hashes.is_empty());
        let full = build_main_trace(&program, &trace);
        let deferred = build_main_trace_deferred(&program, &trace);
        assert!(deferred.cpu.columns.is_empty() && deferred.hash.as_ref().is_some_and(|h| h.columns.is_empty()));
        assert_eq!(deferred.n_columns(), full.n_columns());
        // The range multiplicities differ until the CPU rows' checks are added.
        let mult = |m: &MainTrace| m.range.columns[1..].iter().map(|c| c.to_cpu()).collect::<Vec<_>>();
        assert_ne!(mult(&deferred), mult(&full));
        for (a, b) in deferred.host_components().iter().zip(full.components()) {
            assert_eq!(a.log_size, b.log_size);
            let cols = |c: &ComponentTrace| c.columns.iter().map(|c| c.to_cpu()).collect::<Vec<_>>();
            assert_eq!(cols(a), cols(b));
        }
    }

    #[test]
    fn the_range_table_is_the_smallest_that_holds_every_checked_value() {
        // A short run without `lt`: small gaps, a small table. The every-opcode
        // loop compares large values, so it needs the whole 16-bit table.
        let short = obelysk_vm::samples::mac_loop();
        for (program, input, advice) in
            [(short, vec![W(40), W(3)], vec![]), (every_opcode_loop(), vec![W(60)], vec![W(11)])]
        {
            let trace = execute(&program, &input, &advice, ExecLimits::default()).expect("runs");
            let main = build_main_trace(&program, &trace);
            let k = main.claim.range_log_size;
            assert_eq!(main.range.log_size, k - 4);
            let mult: Vec<M31> = main.range.columns[1..].iter().flat_map(|c| c.to_cpu()).collect();
            assert_eq!(mult.len(), 1 << k);
            // Every check the rows make is counted in the table: the CPU's and
            // hash's range lookups add up to the multiplicities.
            let counted: u64 = mult.iter().map(|m| m.0 as u64).sum();
            let mut full = vec![0u32; 1 << MAX_RANGE_LOG_SIZE];
            let (_, cpu) = cpu_component(&trace.steps, main.claim.cpu_log_size);
            add_counts(&mut full, vec![cpu, hash_range_counts(&trace.hashes)]);
            assert_eq!(counted, full.iter().map(|&c| c as u64).sum::<u64>());
            let top = full.iter().rposition(|&c| c != 0).unwrap_or(0) as u32;
            assert!(top < 1 << k);
            assert!(k == MIN_RANGE_LOG_SIZE || top >= 1 << (k - 1), "2^{k} is not the smallest table for {top}");
        }
        let mac = obelysk_vm::samples::mac_loop();
        let trace = execute(&mac, &[W(40), W(3)], &[], ExecLimits::default()).expect("runs");
        assert!(build_main_trace(&mac, &trace).claim.range_log_size < 10);
    }

    #[test]
    fn range_counts_are_the_range_lookups_of_the_air() {
        // `for_each_cpu_range` (the host's counts and the range size) lists
        // exactly the `Range` entries the AIR's `lookups()` makes, with their
        // multiplicities, for every kind of row.
        use bitsage_air::relations::Rel;
        let program = every_opcode_loop();
        let trace = execute(&program, &[W(30)], &[W(11)], ExecLimits::default()).expect("runs");
        let inverses = cpu_w_inverses(&trace.steps);
        for (s, inv) in trace.steps.iter().zip(inverses) {
            let row = cpu_row(s, inv);
            let mut from_air: Vec<u32> = Vec::new();
            for l in row.lookups() {
                if l.rel == Rel::Range {
                    // Consumers: multiplicity -1 per check made, 0 for none.
                    let times = (M31(0) - l.mult).0;
                    assert!(times <= 1, "{:?}: multiplicity {times}", s.instr.op);
                    from_air.extend(std::iter::repeat_n(l.values[0].0, times as usize));
                }
            }
            let mut counted = Vec::new();
            for_each_cpu_range(s, |v| counted.push(v.0));
            from_air.sort_unstable();
            counted.sort_unstable();
            assert_eq!(from_air, counted, "{:?}", s.instr.op);
        }
    }
}
