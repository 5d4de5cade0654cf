// FRI folding, accumulation and barycentric evaluation over QM31 columns
// (Stwo's SecureColumnByCoords): coordinate c of element i is at c[c][i],
// four columns that need not be contiguous.

struct qcol { const u32* c[4]; };
struct qcol_mut { u32* c[4]; };

__device__ __forceinline__ qm31 qcol_load(qcol s, u64 i) { return {s.c[0][i], s.c[1][i], s.c[2][i], s.c[3][i]}; }
__device__ __forceinline__ void qcol_store(qcol_mut d, u64 i, qm31 v) {
    d.c[0][i] = v.a; d.c[1][i] = v.b; d.c[2][i] = v.c; d.c[3][i] = v.d;
}
// dst[i] = (f[2i] + f[2i+1]) + alpha * (f[2i] - f[2i+1]) * t_i, for i < 2^log_dst.
// Circle fold (circle_fold = 1): t_i = 1/y of the domain point, derived from the
// first line layer's inverse twiddles at `off` as in the FFT's circle layer.
// Line fold: t_i = itw[off + i] = 1/x.
extern "C" __global__ void fri_fold(qcol src, qcol_mut dst, const u32* itw, u32 off, u32 log_dst, qm31 alpha,
                                    int circle_fold) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 n = 1ull << log_dst;
    if (i >= n) return;
    u32 t;
    if (circle_fold) {
        u32 x = itw[off + 2 * (i >> 2)], y = itw[off + 2 * (i >> 2) + 1];
        switch (i & 3) {
            case 0: t = y; break;
            case 1: t = m31_neg(y); break;
            case 2: t = m31_neg(x); break;
            default: t = x; break;
        }
    } else {
        t = itw[off + i];
    }
    qm31 v0 = qcol_load(src, 2 * i), v1 = qcol_load(src, 2 * i + 1);
    qm31 f0 = qm31_add(v0, v1);
    qm31 f1 = qm31_mul_m31(qm31_sub(v0, v1), t);
    qcol_store(dst, i, qm31_add(f0, qm31_mul(alpha, f1)));
}

// acc[i] = col[i] + prev[lift(i)] with lift(i) = ((i >> (r + 1)) << 1) | (i & 1),
// r = log2(len(col) / len(prev)): one step of Stwo's lift_and_accumulate.
// In place: `acc` holds col and becomes the sum.
extern "C" __global__ void lift_accumulate(qcol_mut acc, qcol prev, u32 log_n, u32 log_prev) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 n = 1ull << log_n;
    if (i >= n) return;
    u32 r = log_n - log_prev;
    u64 j = ((i >> (r + 1)) << 1) | (i & 1);
    qm31 a = {acc.c[0][i], acc.c[1][i], acc.c[2][i], acc.c[3][i]};
    qcol_store(acc, i, qm31_add(a, qcol_load(prev, j)));
}

// This thread's share of sum_k w_k * evals[k] over a grid of `blocks`
// blocks (this one is `block`): coordinate j of weight k is at
// weights[j * cs + k * es].
__device__ qm31 dot_share(const u32* evals, const u32* weights, u64 n, u64 cs, u64 es, u64 block, u64 blocks) {
    qm31 v = {0, 0, 0, 0};
    for (u64 k = block * blockDim.x + threadIdx.x; k < n; k += blocks * blockDim.x) {
        qm31 w = {weights[k * es], weights[cs + k * es], weights[2 * cs + k * es], weights[3 * cs + k * es]};
        v = qm31_add(v, qm31_mul_m31(w, evals[k]));
    }
    return v;
}

// The sum of every thread's `v` in a block of 256 threads, stored by
// thread 0 as 4 words at `out`.
__device__ void block_sum_store(qm31 v, u32* out) {
    __shared__ qm31 s[256];
    s[threadIdx.x] = v;
    __syncthreads();
    for (u32 w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) s[threadIdx.x] = qm31_add(s[threadIdx.x], s[threadIdx.x + w]);
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = s[0].a;
        out[1] = s[0].b;
        out[2] = s[0].c;
        out[3] = s[0].d;
    }
}

// Partial sums of evals[i] * weights[i]; coordinate c of weight k is at
// weights[c * cs + k * es] (coordinate-major: cs = n, es = 1; element-major:
// cs = 1, es = 4). One QM31 per block in `partial`; the host adds the blocks.
extern "C" __global__ void dot_m31_qm31(const u32* evals, const u32* weights, u64 n, u64 cs, u64 es, u32* partial) {
    block_sum_store(dot_share(evals, weights, n, cs, es, blockIdx.x, gridDim.x), partial + 4 * (u64)blockIdx.x);
}

// a[i] += b[i] over M31 words.
extern "C" __global__ void m31_add_into(u32* a, const u32* b, u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) a[i] = m31_add(a[i], b[i]);
}

// In-place bit-reversal permutation of 2^log_n words.
extern "C" __global__ void bit_reverse_m31(u32* a, u32 log_n) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (log_n == 0 || i >= (1u << log_n)) return;
    u32 j = __brev(i) >> (32 - log_n);
    if (i < j) {
        u32 t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

// acc_c[r] += row_res[r].c * denom_inv[r >> trace_log] for the 4 coordinate
// columns of the composition accumulator (row_res is 4 words per row).
extern "C" __global__ void accumulate_quotient(const u32* row_res, const u32* denom_inv, u32 trace_log, u32 eval_log,
                                               u32* acc0, u32* acc1, u32* acc2, u32* acc3) {
    u32 r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= (1u << eval_log)) return;
    u32 d = denom_inv[r >> trace_log];
    acc0[r] = m31_add(acc0[r], m31_mul(row_res[4 * r], d));
    acc1[r] = m31_add(acc1[r], m31_mul(row_res[4 * r + 1], d));
    acc2[r] = m31_add(acc2[r], m31_mul(row_res[4 * r + 2], d));
    acc3[r] = m31_add(acc3[r], m31_mul(row_res[4 * r + 3], d));
}

// FRI quotient numerators for one sample point, on the first n_rows rows of
// the bit-reversed columns (the blowup subdomain):
// out[row] = Σ_k c_k · col_k[row] - b_k, with (b_k, c_k) QM31 line
// coefficients at bc[8k .. 8k+8]; out is coordinate-major (4 x n_rows).
extern "C" __global__ void quotient_numerators(const u64* cols, const u32* bc, u32 n_terms, u32 n_rows, qcol_mut out) {
    u32 row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= n_rows) return;
    qm31 acc = {0, 0, 0, 0};
    for (u32 k = 0; k < n_terms; k++) {
        const u32* col = (const u32*)cols[k];
        qm31 b = {bc[8 * k], bc[8 * k + 1], bc[8 * k + 2], bc[8 * k + 3]};
        qm31 c = {bc[8 * k + 4], bc[8 * k + 5], bc[8 * k + 6], bc[8 * k + 7]};
        acc = qm31_add(acc, qm31_sub(qm31_mul_m31(c, col[row]), b));
    }
    qcol_store(out, row, acc);
}

// Barycentric weights of a bit-reversed circle domain at a point p (QM31):
// w_i = ±s / point_vanishing(x_i, p), point_vanishing = h.y / (1 + h.x) with
// h = p - x_i, and the sign + on even rows, - on odd ones (Stwo's
// SimdBackend::barycentric_weights). `pts` holds the domain points (x, y),
// already in bit-reversed order; `ps` holds p.x, p.y and s (4 words each).
extern "C" __global__ void barycentric_weights(const u32* pts, const u32* ps, u64 n, u32* out) {
    qm31 px = {ps[0], ps[1], ps[2], ps[3]}, py = {ps[4], ps[5], ps[6], ps[7]}, s = {ps[8], ps[9], ps[10], ps[11]};
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        u32 x = pts[2 * i], y = pts[2 * i + 1];
        qm31 hx = qm31_add(qm31_mul_m31(px, x), qm31_mul_m31(py, y));
        qm31 hy = qm31_sub(qm31_mul_m31(py, x), qm31_mul_m31(px, y));
        qm31 w = qm31_mul(qm31_mul(qm31_add(hx, qm31_from_m31(1)), qm31_inv(hy)), (i & 1) ? qm31_neg(s) : s);
        out[4 * i] = w.a; out[4 * i + 1] = w.b; out[4 * i + 2] = w.c; out[4 * i + 3] = w.d;
    }
}

// out[k * words + w] = col[pos[k] * words + w]: the values of a column at
// the decommitment's query positions, so one small copy serves them all.
extern "C" __global__ void gather_words(const u32* col, const u32* pos, u32 n, u32 words, u32* out) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n * words) return;
    u32 k = i / words;
    out[i] = col[(unsigned long long)pos[k] * words + (i - k * words)];
}

// Stwo's quotient combination on a subdomain of 2^log_n rows (before the
// interpolation): for each row, with its point (x, y) from `pts` (bit-reversed
// order), the sum over sample batches k of
//   (acc_k[lift(row)] - flt_k * y) * 1 / ((prx_k - x) * piy_k - (pry_k - y) * pix_k),
// lift(row) = ((row >> (lr + 1)) << 1) + (row & 1), lr = log_n - logs[k].
// accs[4k + c] is coordinate c of batch k's accumulated numerators (2^logs[k]
// words); params[12k..] are flt (4 words), prx, pry, pix, piy (2 words each).
// out is coordinate-major (4 columns of 2^log_n words).
extern "C" __global__ void quotient_combine(const u32* pts, const u64* accs, const u32* logs, const u32* params,
                                            u32 n_acc, u32 log_n, qcol_mut out) {
    u64 n = 1ull << log_n;
    for (u64 row = blockIdx.x * (u64)blockDim.x + threadIdx.x; row < n; row += (u64)gridDim.x * blockDim.x) {
        u32 x = pts[2 * row], y = pts[2 * row + 1];
        qm31 q = {0, 0, 0, 0};
        for (u32 k = 0; k < n_acc; k++) {
            const u32* p = params + 12 * k;
            qm31 flt = {p[0], p[1], p[2], p[3]};
            cm31 prx = {p[4], p[5]}, pry = {p[6], p[7]}, pix = {p[8], p[9]}, piy = {p[10], p[11]};
            cm31 px = {x, 0}, py = {y, 0};
            cm31 den = cm31_sub(cm31_mul(cm31_sub(prx, px), piy), cm31_mul(cm31_sub(pry, py), pix));
            cm31 inv = cm31_inv(den);
            u32 lr = log_n - logs[k];
            u64 li = ((row >> (lr + 1)) << 1) + (row & 1);
            qm31 v = {((const u32*)accs[4 * k])[li], ((const u32*)accs[4 * k + 1])[li],
                      ((const u32*)accs[4 * k + 2])[li], ((const u32*)accs[4 * k + 3])[li]};
            qm31 num = qm31_sub(v, qm31_mul_m31(flt, y));
            cm31 lo = cm31_mul({num.a, num.b}, inv), hi = cm31_mul({num.c, num.d}, inv);
            q = qm31_add(q, {lo.a, lo.b, hi.a, hi.b});
        }
        qcol_store(out, row, q);
    }
}

// A QM31 value's four words, read in one 16-byte load (element-major QM31
// columns are 16-byte aligned: device allocations are).
struct __align__(16) qm31_words { u32 a, b, c, d; };

// The weights of Stwo's coefficient basis at a point p: a polynomial with
// coefficients c_i (natural order) has the value sum_i c_i w_i at p, where w_i
// is the product, over the bits b set in i, of g_0 = p.y, g_1 = p.x and
// g_b = 2 g_(b-1)^2 - 1. Given as two tables (QM31, element-major, in `tab`):
// lo, the products over the low log_lo bits (2^log_lo values), then hi, over
// the bits above; w_i = lo[i mod 2^log_lo] * hi[i >> log_lo]. out: n values,
// element-major.
extern "C" __global__ void point_weights(const u32* tab, u32 log_lo, u64 n, u32* out) {
    const qm31_words* t = (const qm31_words*)tab;
    qm31_words* o = (qm31_words*)out;
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
        qm31_words l = t[i & ((1ull << log_lo) - 1)], h = t[(1ull << log_lo) + (i >> log_lo)];
        qm31 w = qm31_mul({l.a, l.b, l.c, l.d}, {h.a, h.b, h.c, h.d});
        o[i] = {w.a, w.b, w.c, w.d};
    }
}

// Partial sums of evals_c[k] * weights[k] for every column c in cols (n_cols
// columns, all of n values) against one element-major weight column (4 words
// a value): partial[(c * gridDim.x + block) * 4 + coordinate]. Block (x, y)
// takes columns y DOT_COLS .. y DOT_COLS + DOT_COLS - 1, so each weight is
// read once for DOT_COLS columns. The out-of-domain samples of every
// committed column of a size at one point.
#define DOT_COLS 8
extern "C" __global__ void dot_many(const u64* cols, u32 n_cols, const u32* weights, u64 n, u32* partial) {
    u32 c0 = blockIdx.y * DOT_COLS;
    u32 m = n_cols - c0 < DOT_COLS ? n_cols - c0 : DOT_COLS;
    const u32* e[DOT_COLS];
    qm31 acc[DOT_COLS];
#pragma unroll
    for (u32 c = 0; c < DOT_COLS; c++) {
        e[c] = (const u32*)cols[c0 + (c < m ? c : 0)];
        acc[c] = {0, 0, 0, 0};
    }
    const qm31_words* w4 = (const qm31_words*)weights;
    for (u64 k = (u64)blockIdx.x * blockDim.x + threadIdx.x; k < n; k += (u64)gridDim.x * blockDim.x) {
        qm31_words t = w4[k];
        qm31 w = {t.a, t.b, t.c, t.d};
#pragma unroll
        for (u32 c = 0; c < DOT_COLS; c++)
            if (c < m) acc[c] = qm31_add(acc[c], qm31_mul_m31(w, e[c][k]));
    }
    for (u32 c = 0; c < m; c++) block_sum_store(acc[c], partial + 4 * ((u64)(c0 + c) * gridDim.x + blockIdx.x));
}

// gather_words for many columns of the same value width: out[(c * n + k) *
// words + w] = cols[c][pos[k] * words + w]. The decommitment's values of
// every committed column of a size, read once.
extern "C" __global__ void gather_many(const u64* cols, u32 n_cols, const u32* pos, u32 n, u32 words, u32* out) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u64 per_col = (u64)n * words;
    if (i >= per_col * n_cols) return;
    u32 c = (u32)(i / per_col);
    u32 r = (u32)(i - c * per_col);
    u32 k = r / words;
    out[i] = ((const u32*)cols[c])[(u64)pos[k] * words + (r - k * words)];
}

// gather_words for several columns of `words`-word values, each at its own
// positions: column c's are pos[offs[c] .. offs[c + 1]], and
// out[j * words + w] = cols[c][pos[j] * words + w] for each such j. The
// predicted decommitment reads of every layer of a Merkle tree, at once.
extern "C" __global__ void gather_lists(const u64* cols, const u32* offs, u32 n_cols, const u32* pos, u32 words, u32* out) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (u64)offs[n_cols] * words) return;
    u32 j = (u32)(i / words);
    u32 c = 0;
    while (c + 1 < n_cols && offs[c + 1] <= j) c++;
    out[i] = ((const u32*)cols[c])[(u64)pos[j] * words + (u32)(i - (u64)j * words)];
}
