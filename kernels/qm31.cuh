// The degree-4 extension QM31 = CM31[u] / (u^2 - 2 - i), CM31 = M31[i] / (i^2 + 1),
// stored as (a, b, c, d) = (a + b i) + (c + d i) u, as in Stwo.
#pragma once

struct cm31 { u32 a, b; };
struct qm31 { u32 a, b, c, d; };

__device__ __forceinline__ cm31 cm31_add(cm31 x, cm31 y) { return {m31_add(x.a, y.a), m31_add(x.b, y.b)}; }
__device__ __forceinline__ cm31 cm31_sub(cm31 x, cm31 y) { return {m31_sub(x.a, y.a), m31_sub(x.b, y.b)}; }
__device__ __forceinline__ cm31 cm31_mul(cm31 x, cm31 y) {
    return {m31_sub(m31_mul(x.a, y.a), m31_mul(x.b, y.b)), m31_add(m31_mul(x.a, y.b), m31_mul(x.b, y.a))};
}

__device__ __forceinline__ qm31 qm31_make(u32 a, u32 b, u32 c, u32 d) { return {a, b, c, d}; }
__device__ __forceinline__ qm31 qm31_from_m31(u32 a) { return {a, 0, 0, 0}; }
__device__ __forceinline__ qm31 qm31_add(qm31 x, qm31 y) {
    return {m31_add(x.a, y.a), m31_add(x.b, y.b), m31_add(x.c, y.c), m31_add(x.d, y.d)};
}
__device__ __forceinline__ qm31 qm31_sub(qm31 x, qm31 y) {
    return {m31_sub(x.a, y.a), m31_sub(x.b, y.b), m31_sub(x.c, y.c), m31_sub(x.d, y.d)};
}
__device__ __forceinline__ qm31 qm31_neg(qm31 x) { return {m31_neg(x.a), m31_neg(x.b), m31_neg(x.c), m31_neg(x.d)}; }
// (x0 + x1 u)(y0 + y1 u) = x0 y0 + (2 + i) x1 y1 + (x0 y1 + x1 y0) u
__device__ __forceinline__ qm31 qm31_mul(qm31 x, qm31 y) {
    cm31 x0 = {x.a, x.b}, x1 = {x.c, x.d}, y0 = {y.a, y.b}, y1 = {y.c, y.d};
    cm31 r = cm31_mul(cm31_mul(x1, y1), cm31{2, 1});
    cm31 lo = cm31_add(cm31_mul(x0, y0), r);
    cm31 hi = cm31_add(cm31_mul(x0, y1), cm31_mul(x1, y0));
    return {lo.a, lo.b, hi.a, hi.b};
}

// x^(p-2): 0 maps to 0, as Stwo's inverse is only asked of non-zero values.
__device__ u32 m31_inv(u32 x) {
    u32 r = 1, b = x, e = M31_P - 2;
    while (e) {
        if (e & 1) r = m31_mul(r, b);
        b = m31_mul(b, b);
        e >>= 1;
    }
    return r;
}

__device__ __forceinline__ qm31 qm31_mul_m31(qm31 x, u32 t) {
    return {m31_mul(x.a, t), m31_mul(x.b, t), m31_mul(x.c, t), m31_mul(x.d, t)};
}

// (a + b i)^-1 = (a - b i) / (a^2 + b^2)
__device__ __forceinline__ cm31 cm31_inv(cm31 x) {
    u32 n = m31_inv(m31_add(m31_mul(x.a, x.a), m31_mul(x.b, x.b)));
    return {m31_mul(x.a, n), m31_neg(m31_mul(x.b, n))};
}

// (x0 + x1 u)^-1 = (x0 - x1 u) / (x0^2 - (2 + i) x1^2)
__device__ __forceinline__ qm31 qm31_inv(qm31 x) {
    cm31 x0 = {x.a, x.b}, x1 = {x.c, x.d};
    cm31 d = cm31_inv(cm31_sub(cm31_mul(x0, x0), cm31_mul(cm31_mul(x1, x1), cm31{2, 1})));
    cm31 lo = cm31_mul(x0, d), hi = cm31_mul(x1, d);
    return {lo.a, lo.b, m31_neg(hi.a), m31_neg(hi.b)};
}

__device__ __forceinline__ u32 bit_rev(u32 i, u32 log) { return log == 0 ? 0 : __brev(i) >> (32 - log); }

// Stwo's offset_bit_reversed_circle_domain_index: the row `offset` steps
// along the trace domain from row i of a bit-reversed evaluation domain.
__device__ __forceinline__ u32 offset_row(u32 i, u32 trace_log, u32 eval_log, int offset) {
    int half = 1 << (eval_log - 1);
    int k = (int)bit_rev(i, eval_log);
    int step = offset * (1 << (eval_log - trace_log - 1));
    if (k < half) {
        k = ((k + step) % half + half) % half;
    } else {
        k = ((k - step) % half + half) % half + half;
    }
    return bit_rev((u32)k, eval_log);
}
