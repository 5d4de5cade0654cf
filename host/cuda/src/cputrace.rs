//! The CPU component's main-trace rows built on the device from the
//! execution steps (`kernels/cpu_trace.cu`): the steps are packed straight
//! into the pinned staging buffer and uploaded (22 words a step instead of
//! the row's 55 columns), one thread builds each row, and the rows' range
//! checks are added into the range component's multiplicity column, already
//! on the device. The values are those of the host's `cpu_row` (the proof
//! bytes match the SIMD backend's, which builds them on the host).
//!
//! The kernel's column indices, step layout, opcodes and shifts come from a
//! header generated here from the Rust definitions.

use std::sync::Arc;

use bitsage_air::cpu::{CpuCols, N_FLAGS};
use bitsage_air::range::{MAX_RANGE_LOG_SIZE, RANGE_LANES, RANGE_LANES_LOG};
use cudarc::driver::{CudaSlice, PushKernelArg};
use obelysk_vm::exec::Step;
use obelysk_vm::isa::Opcode;
use stwo::core::fields::m31::M31;

use crate::backend::{gpu, DevCol};
use crate::compile::Source;
use crate::{launch_1d, Buf, CudaError, GeneratedModule, Gpu, PerDevice, Result};

/// The words of a packed step, in order (`S_<NAME>` in the kernel).
const STEP_FIELDS: [&str; 22] = [
    "PC", "CLK", "IN_PTR", "OUT_PTR", "NEXT_PC", "OP", "IMM_MODE", "DST", "A", "B", "IMM", "X", "X_TS", "Y_REG",
    "Y_TS", "D_OLD", "D_TS", "D_NEW", "HAS_MEM", "M_OLD", "M_NEW", "M_OLD_TS",
];

/// Words per packed step.
pub const STEP_WORDS: usize = STEP_FIELDS.len();

/// Step `s` as the kernel reads it, in the order of [`STEP_FIELDS`].
fn pack(s: &Step) -> [u32; STEP_WORDS] {
    let (has_mem, m_old, m_new, m_old_ts) = match s.mem {
        Some(m) => (1, m.old.0, m.new.0, m.old_ts),
        None => (0, 0, 0, 0),
    };
    let i = &s.instr;
    [
        s.pc,
        s.clk,
        s.in_ptr,
        s.out_ptr,
        s.next_pc,
        i.op as u32,
        u32::from(i.imm_mode),
        u32::from(i.dst),
        u32::from(i.a),
        u32::from(i.b),
        i.imm.0,
        s.x.0,
        s.x_ts,
        s.y_reg.0,
        s.y_ts,
        s.d_old.0,
        s.d_ts,
        s.d_new.0,
        has_mem,
        m_old,
        m_new,
        m_old_ts,
    ]
}

/// The kernel's definitions, from the AIR's column order and the VM's opcodes.
pub fn header() -> String {
    let mut next = 0usize;
    let c = CpuCols::<usize>::read(|| {
        next += 1;
        next - 1
    });
    let columns = [
        ("PC", c.pc),
        ("CLK", c.clk),
        ("IN_PTR", c.in_ptr),
        ("OUT_PTR", c.out_ptr),
        ("NEXT_PC", c.next_pc),
        ("IMM_MODE", c.imm_mode),
        ("DST", c.dst),
        ("A", c.a),
        ("B", c.b),
        ("IMM", c.imm),
        ("X", c.x),
        ("XA_LO", c.xa_lo),
        ("XA_HI", c.xa_hi),
        ("Y_REG", c.y_reg),
        ("YB_LO", c.yb_lo),
        ("YB_HI", c.yb_hi),
        ("Y", c.y),
        ("PROD", c.prod),
        ("M_OLD", c.m_old),
        ("M_NEW", c.m_new),
        ("M_LO", c.m_lo),
        ("M_HI", c.m_hi),
        ("D_OLD", c.d_old),
        ("D_NEW", c.d_new),
        ("D_LO", c.d_lo),
        ("D_HI", c.d_hi),
        ("W", c.w),
        ("INV", c.inv),
        ("ISZ", c.isz),
        ("LT", c.lt),
        ("R_LO", c.r_lo),
        ("R_HI", c.r_hi),
        ("TGT", c.tgt),
        ("TAKEN", c.taken),
        ("FLAGS", c.flags[0]),
    ];
    let opcodes = [
        ("LT", Opcode::Lt),
        ("LOAD", Opcode::Load),
        ("STORE", Opcode::Store),
        ("JMP", Opcode::Jmp),
        ("JNZ", Opcode::Jnz),
        ("JZ", Opcode::Jz),
        ("JAL", Opcode::Jal),
        ("JR", Opcode::Jr),
    ];
    let mut h = String::new();
    let mut def = |name: String, v: usize| h.push_str(&format!("#define {name} {v}u\n"));
    for (n, i) in columns {
        def(format!("C_{n}"), i);
    }
    for (i, n) in STEP_FIELDS.iter().enumerate() {
        def(format!("S_{n}"), i);
    }
    for (n, op) in opcodes {
        def(format!("OP_{n}"), op as usize);
    }
    def("CPU_N_COLS".into(), CpuCols::<M31>::N_COLUMNS);
    def("N_FLAGS".into(), N_FLAGS);
    def("STEP_WORDS".into(), STEP_WORDS);
    def("RANGE_LANES_LOG".into(), RANGE_LANES_LOG as usize);
    h
}

/// The kernel's source: the generated header, then `kernels/cpu_trace.cu`
/// with the generated `cpu_range_counts` where it marks the place.
fn source() -> String {
    let kernel = include_str!("../../../kernels/cpu_trace.cu");
    format!("{}\n{}", header(), kernel.replacen("// @RANGE_COUNTS@", &range_counts(), 1))
}

/// `cpu_range_counts`, generated from the AIR's `CpuCols::range_checks`.
fn range_counts() -> String {
    let row = CpuCols::read(crate::logup::columns());
    crate::codegen::generate_range_counts("cpu_range_counts", &row.range_checks())
}

/// The kernel's source, as [`crate::compile::prepare`] compiles it.
pub(crate) fn kernel_source() -> Source {
    Source::with_headers("cpu_trace", &source())
}

/// The kernel compiled for the bound device, for the process.
fn compiled() -> Result<Arc<GeneratedModule>> {
    static CACHE: PerDevice<(), GeneratedModule> = PerDevice::new();
    CACHE.get_or_try((), || gpu().load(&[kernel_source()], ["cpu_rows"]))
}

/// The steps, packed and uploaded on `g`'s stream (transfers queued, not
/// awaited).
pub fn upload_steps(g: &Gpu, steps: &[Step]) -> Result<Buf> {
    g.upload_rows(steps.len(), STEP_WORDS, |first, out| {
        for (row, s) in out.chunks_exact_mut(STEP_WORDS).zip(&steps[first..]) {
            row.copy_from_slice(&pack(s));
        }
    })
}

/// The CPU component's `2^log_size` rows from `n_steps` uploaded steps (the
/// rest padding), as columns in the AIR's order; adds the rows' range checks
/// into `range_mult`, the multiplicity (lane) columns of a range table of
/// `0..2^range_log_size` ([`bitsage_air::range`]).
pub fn cpu_rows(
    steps: &CudaSlice<u32>,
    n_steps: usize,
    log_size: u32,
    range_mult: &mut [&mut CudaSlice<u32>],
    range_log_size: u32,
) -> Result<Vec<DevCol<M31>>> {
    let n = 1usize << log_size;
    let lane_rows = (1usize << range_log_size) / RANGE_LANES;
    if n_steps > n
        || steps.len() < n_steps * STEP_WORDS
        || !(RANGE_LANES_LOG..=MAX_RANGE_LOG_SIZE).contains(&range_log_size)
        || range_mult.len() != RANGE_LANES
        || range_mult.iter().any(|c| c.len() < lane_rows)
    {
        return Err(CudaError::Unsupported(format!(
            "cpu_rows: {n_steps} steps into 2^{log_size} rows, {} range lanes for a table of 2^{range_log_size}",
            range_mult.len()
        )));
    }
    let m = compiled()?;
    let g = gpu();
    let cols = (0..CpuCols::<M31>::N_COLUMNS)
        // SAFETY: the kernel writes every row of every column.
        .map(|_| unsafe { g.alloc::<u32>(n) })
        .collect::<Result<Vec<_>>>()?;
    let (ptrs, lanes) = (g.addrs(cols.iter()), g.addrs(range_mult.iter().map(|c| &**c)));
    let a = g.arg_block(&[crate::column::Words::U64(&ptrs), crate::column::Words::U64(&lanes)])?;
    let (n_steps32, n32) = (n_steps as u32, n as u32);
    let mut b = g.stream.launch_builder(&m.f[0]);
    let range_size = 1u32 << range_log_size;
    b.arg(steps).arg(&n_steps32).arg(&n32).arg(&a.at[0]).arg(&a.at[1]).arg(&range_size);
    // SAFETY: thread `r` reads step `r` (below n_steps) and writes row `r` of every column (below
    // n); the range counters are atomics at values below range_size, row `v / RANGE_LANES` of
    // lane `v % RANGE_LANES`, which every lane column holds (checked above).
    unsafe { b.launch(launch_1d(n as u64)) }?;
    Ok(cols.into_iter().map(|c| DevCol::from_words(c, n)).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_kernel_source_carries_the_generated_range_counts_once() {
        let src = super::source();
        assert!(!src.contains("@RANGE_COUNTS@"), "the marker was replaced");
        assert_eq!(src.matches("void cpu_range_counts(").count(), 1);
        assert_eq!(src.matches("cpu_range_counts(cols, r, hist, range_mult, range_size);").count(), 1);
        if let Some(path) = std::env::var_os("BITSAGE_DUMP_CPU_TRACE") {
            std::fs::write(path, &src).expect("writing the kernel source");
        }
    }
}
