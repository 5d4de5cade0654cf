// The CPU component's main-trace rows, built on the device from the packed
// execution steps (one thread per row): the same values as the host's
// `cpu_row` / `padding_cpu_row` (host/prover/src/tracegen.rs), and the
// range-table lookups those rows make (`CpuCols::range_checks`, generated
// into `cpu_range_counts`), added into the range table's lane columns.
//
// Compiled with a generated header (host/cuda/src/cputrace.rs) that defines
// the column indices C_*, the step word offsets S_*, the opcodes OP_*,
// CPU_N_COLS, N_FLAGS, STEP_WORDS and
// RANGE_LANES_LOG from the Rust definitions, so there is one source for
// each. The range table holds `0..range_size` (the proof's, at most 2^16),
// RANGE_LANES values to a row: value `v` is row `v >> RANGE_LANES_LOG` of
// lane column `v & (RANGE_LANES - 1)` (`range_cols` holds the lane columns'
// pointers). A value at or above `range_size` is not counted, as on the
// host, and the proof of such a trace fails.

// Range values below this are counted in shared memory first (the common
// small timestamp gaps would otherwise all hit a few global counters).
#define HIST 4096u

__device__ __forceinline__ u32 m31_of(u32 v) { return m31_reduce64((u64)v); }

// `4·clk + slot - 1 - prev`, split into 16-bit halves.
__device__ __forceinline__ void ts_gap(u32 clk, u32 slot, u32 prev, u32* lo, u32* hi) {
    u32 v = m31_sub(m31_sub(m31_of(4u * clk + slot), 1u), m31_of(prev));
    *lo = v & 0xffffu;
    *hi = v >> 16;
}

#define RANGE_LANES (1u << RANGE_LANES_LOG)

__device__ __forceinline__ void add_range(const u64* range_cols, u32 v, u32 n) {
    atomicAdd(&((u32*)range_cols[v & (RANGE_LANES - 1)])[v >> RANGE_LANES_LOG], n);
}

// Counts `n` checks of value `v` (none when `n` is 0).
__device__ __forceinline__ void count_range_n(u32* hist, const u64* range_cols, u32 range_size, u32 v, u32 n) {
    if (n == 0 || v >= range_size) return;
    if (v < HIST) atomicAdd(&hist[v], n);
    else add_range(range_cols, v, n);
}

// `cpu_range_counts(cols, row, hist, range_cols, range_size)`: the row's range
// checks, generated from the AIR's `CpuCols::range_checks` (host/cuda/src/codegen.rs).
// @RANGE_COUNTS@

extern "C" __global__ void cpu_rows(const u32* steps, u32 n_steps, u32 n_rows, const u64* cols, const u64* range_mult,
                                    u32 range_size) {
    __shared__ u32 hist[HIST];
    for (u32 i = threadIdx.x; i < HIST; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    u32 r = blockIdx.x * blockDim.x + threadIdx.x;
#define W(c, v) (((u32*)cols[(c)])[r] = (v))
    if (r < n_steps) {
        const u32* s = steps + (u64)r * STEP_WORDS;
        u32 op = s[S_OP], clk = s[S_CLK], x = s[S_X], imm = s[S_IMM], d_new = s[S_D_NEW];
        u32 y = s[S_IMM_MODE] ? imm : s[S_Y_REG];
        u32 xa_lo, xa_hi, yb_lo, yb_hi, d_lo, d_hi, m_lo = 0, m_hi = 0, m_old = 0, m_new = 0;
        ts_gap(clk, 0, s[S_X_TS], &xa_lo, &xa_hi);
        ts_gap(clk, 1, s[S_Y_TS], &yb_lo, &yb_hi);
        ts_gap(clk, 3, s[S_D_TS], &d_lo, &d_hi);
        if (s[S_HAS_MEM]) {
            ts_gap(clk, 2, s[S_M_OLD_TS], &m_lo, &m_hi);
            m_old = s[S_M_OLD];
            m_new = s[S_M_NEW];
        }
        u32 w = (op == OP_JZ || op == OP_JNZ) ? x : m31_sub(x, y);
        u32 isz = w == 0 ? 1u : 0u;
        u32 inv = w == 0 ? 0u : m31_inv(w);
        u32 lt = 0, r_lo, r_hi;
        if (op == OP_LT) {
            u32 d = d_new == 1 ? m31_sub(m31_sub(y, x), 1u) : m31_sub(x, y);
            lt = d_new;
            r_lo = d & 0xffffu;
            r_hi = d >> 16;
        } else {
            r_lo = m31_sub(x, y);
            r_hi = 0;
        }
        u32 taken = 0;
        if (op == OP_JZ) taken = isz;
        else if (op == OP_JNZ) taken = 1u - isz;
        else if (op == OP_JMP || op == OP_JAL || op == OP_JR) taken = 1u;
        W(C_PC, s[S_PC]);
        W(C_CLK, clk);
        W(C_IN_PTR, s[S_IN_PTR]);
        W(C_OUT_PTR, s[S_OUT_PTR]);
        W(C_NEXT_PC, s[S_NEXT_PC]);
        W(C_IMM_MODE, s[S_IMM_MODE]);
        W(C_DST, s[S_DST]);
        W(C_A, s[S_A]);
        W(C_B, s[S_B]);
        W(C_IMM, imm);
        W(C_X, x);
        W(C_XA_LO, xa_lo);
        W(C_XA_HI, xa_hi);
        W(C_Y_REG, s[S_Y_REG]);
        W(C_YB_LO, yb_lo);
        W(C_YB_HI, yb_hi);
        W(C_Y, y);
        W(C_PROD, m31_mul(x, y));
        W(C_M_OLD, m_old);
        W(C_M_NEW, m_new);
        W(C_M_LO, m_lo);
        W(C_M_HI, m_hi);
        W(C_D_OLD, s[S_D_OLD]);
        W(C_D_NEW, d_new);
        W(C_D_LO, d_lo);
        W(C_D_HI, d_hi);
        W(C_W, w);
        W(C_INV, inv);
        W(C_ISZ, isz);
        W(C_LT, lt);
        W(C_R_LO, r_lo);
        W(C_R_HI, r_hi);
        W(C_TGT, op == OP_JR ? x : imm);
        W(C_TAKEN, taken);
        for (u32 f = 0; f < N_FLAGS; f++) W(C_FLAGS + f, f == op ? 1u : 0u);
        cpu_range_counts(cols, r, hist, range_mult, range_size);
    } else if (r < n_rows) {
        // Padding: every flag zero, `w = 0` so `isz = 1`, and `next_pc = pc + 1`.
        for (u32 c = 0; c < CPU_N_COLS; c++) W(c, 0u);
        W(C_ISZ, 1u);
        W(C_NEXT_PC, 1u);
    }
#undef W
    __syncthreads();
    for (u32 i = threadIdx.x; i < HIST; i += blockDim.x) {
        u32 h = hist[i];
        if (h) add_range(range_mult, i, h);
    }
}
