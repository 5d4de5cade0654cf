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
// one launch (`fft_low_layers`); each higher layer is one launch over every
// column (`fft_line_layer`). `scale` multiplies the outputs of the last
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
