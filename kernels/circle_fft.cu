// Circle FFT over M31, in Stwo's conventions: evaluations in bit-reversed
// order, coefficients in natural order. Columns are given as a table of
// device pointers (`cols`, n_cols entries of 2^log_n words each), so one
// launch serves every column of a size.
//
// Twiddles come from Stwo's twiddle tree (x-coordinates of the first half of
// each doubled coset, bit-reversed), a buffer of 2^log_len words; line layer
// k (k >= 1) of a domain of log size log_n starts at
// tw_off(k) = 2^log_len - 2^(log_n - k).
//   line layer k (k >= 1): pairs (h*2^(k+1) + l, h*2^(k+1) + l + 2^k), twiddle tw[tw_off(k) + h]
//   circle layer 0:        pairs (2h, 2h+1), twiddle from line layer 1's
//                          chunk [x, y] -> [y, -y, -x, x]
// Forward: v0' = v0 + t*v1, v1' = v0 - t*v1. Inverse (with inverse twiddles):
// v0' = v0 + v1, v1' = (v0 - v1) * it.
//
// The low layers (strides below 2^FFT_TILE_LOG) run in shared memory, all in
// one launch (`fft_low_layers`); the higher layers run up to four at a time
// in registers (`fft_line_layers`), or one at a time (`fft_line_layer`), each
// launch over every column. `scale` multiplies the outputs of the last
// inverse layer (the 2^-log_n of an interpolation); 1 leaves them.

#define FFT_TILE_LOG 11

__device__ __forceinline__ u32 tw_off(u32 log_len, u32 log_n, u32 k) {
    return (1u << log_len) - (1u << (log_n - k));
}

__device__ __forceinline__ void butterfly(u32& v0, u32& v1, u32 t, int inverse) {
    if (inverse) {
        u32 s = m31_add(v0, v1);
        v1 = m31_mul(m31_sub(v0, v1), t);
        v0 = s;
    } else {
        u32 tmp = m31_mul(v1, t);
        v1 = m31_sub(v0, tmp);
        v0 = m31_add(v0, tmp);
    }
}

// The circle layer's twiddle for pair h.
__device__ __forceinline__ u32 circle_twiddle(const u32* tw, u32 line1_off, u32 h) {
    u32 x = tw[line1_off + 2 * (h >> 2)];
    u32 y = tw[line1_off + 2 * (h >> 2) + 1];
    switch (h & 3) {
        case 0: return y;
        case 1: return m31_neg(y);
        case 2: return m31_neg(x);
        default: return x;
    }
}

// One line layer k >= FFT_TILE_LOG (or any k >= 1) over all columns.
extern "C" __global__ void fft_line_layer(const u64* cols, const u32* tw, u32 log_len, u32 log_n, u32 k,
                                          u32 n_cols, int inverse, u32 scale) {
    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 half = 1u << (log_n - 1);
    if (tid >= (u64)n_cols * half) return;
    u32 c = (u32)(tid >> (log_n - 1));
    u32 p = (u32)tid & (half - 1);
    u32 h = p >> k;
    u32 l = p & ((1u << k) - 1);
    u32* col = (u32*)cols[c];
    u32 i0 = (h << (k + 1)) + l;
    u32 i1 = i0 + (1u << k);
    u32 v0 = col[i0], v1 = col[i1];
    butterfly(v0, v1, tw[tw_off(log_len, log_n, k) + h], inverse);
    if (scale != 1) {
        v0 = m31_mul(v0, scale);
        v1 = m31_mul(v1, scale);
    }
    col[i0] = v0;
    col[i1] = v1;
}

// Line layers k0 .. k0 + R - 1 on the 2^R words base + j 2^k0 (j < 2^R) that
// one thread holds: those layers pair these words only among themselves, so
// the thread runs all R layers in registers (forward: highest layer first;
// inverse: lowest first) with the twiddles `fft_line_layer` would use, and
// memory is read and written once for R layers.
template <int R, int INV>
__device__ __forceinline__ void line_layers_in_registers(u32* col, const u32* tw, u32 log_len, u32 log_n, u32 k0,
                                                         u32 base, u32 scale) {
    u32 v[1 << R];
#pragma unroll
    for (int j = 0; j < (1 << R); j++) v[j] = col[base + ((u32)j << k0)];
#pragma unroll
    for (int t = 0; t < R; t++) {
        const int s = INV ? t : R - 1 - t;
        const u32 k = k0 + s;
        const u32 off = tw_off(log_len, log_n, k);
#pragma unroll
        for (int j = 0; j < (1 << R); j++) {
            if (!(j & (1 << s))) {
                u32 i0 = base + ((u32)j << k0);
                butterfly(v[j], v[j | (1 << s)], tw[off + (i0 >> (k + 1))], INV);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < (1 << R); j++) {
        u32 x = v[j];
        if (scale != 1) x = m31_mul(x, scale);
        col[base + ((u32)j << k0)] = x;
    }
}

// Line layers k0 .. k0 + r - 1 (2 <= r <= 4, k0 >= 1, k0 + r <= log_n) over
// all columns: 2^(log_n - r) threads per column, thread p holding the words
// at base + j 2^k0, base = (p >> k0) 2^(k0 + r) + (p mod 2^k0), so a warp
// reads consecutive words. `scale` multiplies every output (pass it with the
// last inverse layer).
extern "C" __global__ void fft_line_layers(const u64* cols, const u32* tw, u32 log_len, u32 log_n, u32 k0, u32 r,
                                           u32 n_cols, int inverse, u32 scale) {
    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 per_col_log = log_n - r;
    if (r < 2 || r > 4 || tid >= ((u64)n_cols << per_col_log)) return;
    u32 c = (u32)(tid >> per_col_log);
    u32 p = (u32)tid & ((1u << per_col_log) - 1);
    u32 base = ((p >> k0) << (k0 + r)) | (p & ((1u << k0) - 1));
    u32* col = (u32*)cols[c];
    switch (r * 2 + (inverse ? 1 : 0)) {
        case 4: line_layers_in_registers<2, 0>(col, tw, log_len, log_n, k0, base, scale); break;
        case 5: line_layers_in_registers<2, 1>(col, tw, log_len, log_n, k0, base, scale); break;
        case 6: line_layers_in_registers<3, 0>(col, tw, log_len, log_n, k0, base, scale); break;
        case 7: line_layers_in_registers<3, 1>(col, tw, log_len, log_n, k0, base, scale); break;
        case 8: line_layers_in_registers<4, 0>(col, tw, log_len, log_n, k0, base, scale); break;
        default: line_layers_in_registers<4, 1>(col, tw, log_len, log_n, k0, base, scale); break;
    }
}

// Layers 0 (circle) .. n_layers - 1 on tiles of 2^n_layers consecutive
// words (n_layers <= FFT_TILE_LOG, n_layers <= log_n), in shared memory.
// Grid: (tiles per column, n_cols); 2^(n_layers - 1) threads per block.
// Inverse: circle layer, then k = 1, 2, ...; forward: the reverse.
extern "C" __global__ void fft_low_layers(const u64* cols, const u32* tw, u32 log_len, u32 log_n, u32 n_layers,
                                          int inverse, u32 scale) {
    __shared__ u32 s[1 << FFT_TILE_LOG];
    u32* col = (u32*)cols[blockIdx.y];
    u32 tile = 1u << n_layers;
    u32 base = blockIdx.x * tile;
    u32 t = threadIdx.x;
    s[2 * t] = col[base + 2 * t];
    s[2 * t + 1] = col[base + 2 * t + 1];
    __syncthreads();
    u32 line1 = tw_off(log_len, log_n, 1);
    for (u32 step = 0; step < n_layers; step++) {
        u32 k = inverse ? step : n_layers - 1 - step;
        u32 i0, tws;
        if (k == 0) {
            i0 = 2 * t;
            tws = circle_twiddle(tw, line1, (base >> 1) + t);
        } else {
            u32 h = t >> k, l = t & ((1u << k) - 1);
            i0 = (h << (k + 1)) + l;
            tws = tw[tw_off(log_len, log_n, k) + ((base + i0) >> (k + 1))];
        }
        u32 i1 = i0 + (1u << k);
        u32 v0 = s[i0], v1 = s[i1];
        butterfly(v0, v1, tws, inverse);
        s[i0] = v0;
        s[i1] = v1;
        __syncthreads();
    }
    u32 a = s[2 * t], b = s[2 * t + 1];
    if (scale != 1) {
        a = m31_mul(a, scale);
        b = m31_mul(b, scale);
    }
    col[base + 2 * t] = a;
    col[base + 2 * t + 1] = b;
}

// data[i] *= s, for n values.
extern "C" __global__ void m31_scale(u32* data, u64 n, u32 s) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = m31_mul(data[i], s);
}

// dst[c][j] = src[c][j mod 2^log_src] for j < 2^log_dst: the coefficients
// zero-padded to 2^log_dst and put through the forward layers
// k = log_dst - 1 .. log_src, which only copy (their odd inputs are zero).
extern "C" __global__ void fft_replicate(const u64* src, const u64* dst, u32 log_src, u32 log_dst, u32 n_cols) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ((u64)n_cols << log_dst)) return;
    u32 c = (u32)(i >> log_dst);
    u32 j = (u32)i & ((1u << log_dst) - 1);
    ((u32*)dst[c])[j] = ((const u32*)src[c])[j & ((1u << log_src) - 1)];
}
