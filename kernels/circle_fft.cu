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
// Every pass holds 2^R words a thread in registers, words base + j 2^k0
// (j < 2^R), and runs R consecutive layers k0 .. k0 + R - 1 on them: those
// layers pair these words only among themselves (forward: highest layer
// first; inverse: lowest first). The low layers (strides below
// 2^FFT_TILE_LOG) run on a tile in shared memory, in rounds of up to four
// layers, all in one launch (`fft_low_layers`); the higher layers run up to
// four at a time straight from memory (`fft_line_layers`), each launch over
// every column. `scale` multiplies the outputs of the last inverse layer
// (the 2^-log_n of an interpolation); 1 leaves them.
//
// A forward pass may read its input from other columns, `srcs` (0: in
// place), of 2^log_src words: word j of the input is srcs[c][j mod
// 2^log_src]. That is the low-degree extension's zero-padding of the
// coefficients followed by the forward layers above log_src, which only
// copy (their odd inputs are zero), done by the first pass as it reads.

#define FFT_TILE_LOG 12
// Shared-memory index of tile word p: one pad word every 32, so the rounds'
// strided accesses spread over the banks.
#define FFT_PAD(p) ((p) + ((p) >> 5))
#define FFT_TILE_WORDS FFT_PAD(1u << FFT_TILE_LOG)
// Layers a round of `fft_low_layers` runs in registers, at most.
#define FFT_ROUND_LAYERS 4

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

// Layers k0 .. k0 + R - 1 on v[j] = word gbase + j 2^k0 of a column (j <
// 2^R), in registers.
template <int R, int INV>
__device__ __forceinline__ void layers_in_registers(u32* v, const u32* tw, u32 log_len, u32 log_n, u32 k0, u32 gbase) {
#pragma unroll
    for (int t = 0; t < R; t++) {
        const int s = INV ? t : R - 1 - t;
        const u32 k = k0 + s;
        const u32 off = tw_off(log_len, log_n, k == 0 ? 1 : k);
#pragma unroll
        for (int j = 0; j < (1 << R); j++) {
            if (!(j & (1 << s))) {
                u32 i0 = gbase + ((u32)j << k0);
                u32 twiddle = k == 0 ? circle_twiddle(tw, off, i0 >> 1) : tw[off + (i0 >> (k + 1))];
                butterfly(v[j], v[j | (1 << s)], twiddle, INV);
            }
        }
    }
}

// The first word of group g of a pass of r layers from k0: groups are
// numbered so that consecutive groups hold consecutive words (for k0 > 0).
__device__ __forceinline__ u32 group_base(u32 g, u32 k0, u32 r) {
    return ((g >> k0) << (k0 + r)) | (g & ((1u << k0) - 1));
}

template <int R, int INV>
__device__ __forceinline__ void line_pass(u32* col, const u32* in, u32 in_mask, const u32* tw, u32 log_len, u32 log_n,
                                          u32 k0, u32 base, u32 scale) {
    u32 v[1 << R];
#pragma unroll
    for (int j = 0; j < (1 << R); j++) v[j] = in[(base + ((u32)j << k0)) & in_mask];
    layers_in_registers<R, INV>(v, tw, log_len, log_n, k0, base);
#pragma unroll
    for (int j = 0; j < (1 << R); j++) {
        u32 x = v[j];
        if (scale != 1) x = m31_mul(x, scale);
        col[base + ((u32)j << k0)] = x;
    }
}

// Line layers k0 .. k0 + r - 1 (1 <= r <= 4, k0 >= 1, k0 + r <= log_n) over
// all columns: 2^(log_n - r) threads per column, thread g holding group g,
// so a warp reads consecutive words. `scale` multiplies every output (pass
// it with the last inverse layer).
extern "C" __global__ void fft_line_layers(const u64* cols, const u64* srcs, u32 log_src, const u32* tw, u32 log_len,
                                           u32 log_n, u32 k0, u32 r, u32 n_cols, int inverse, u32 scale) {
    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 per_col_log = log_n - r;
    if (r < 1 || r > 4 || tid >= ((u64)n_cols << per_col_log)) return;
    u32 c = (u32)(tid >> per_col_log);
    u32 base = group_base((u32)tid & ((1u << per_col_log) - 1), k0, r);
    u32* col = (u32*)cols[c];
    const u32* in = srcs ? (const u32*)srcs[c] : col;
    u32 in_mask = srcs ? (1u << log_src) - 1 : 0xffffffffu;
    switch (r * 2 + (inverse ? 1 : 0)) {
        case 2: line_pass<1, 0>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 3: line_pass<1, 1>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 4: line_pass<2, 0>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 5: line_pass<2, 1>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 6: line_pass<3, 0>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 7: line_pass<3, 1>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        case 8: line_pass<4, 0>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
        default: line_pass<4, 1>(col, in, in_mask, tw, log_len, log_n, k0, base, scale); break;
    }
}

// Round i of the rounds that split layers 0 .. n_layers - 1 into
// ceil(n_layers / FFT_ROUND_LAYERS) runs as even as possible, in increasing
// order: its first layer k0 and its count r.
__device__ __forceinline__ void tile_round(u32 n_layers, u32 i, u32* k0, u32* r) {
    u32 rounds = (n_layers + FFT_ROUND_LAYERS - 1) / FFT_ROUND_LAYERS;
    u32 q = n_layers / rounds, extra = n_layers % rounds;
    *k0 = i * q + (i < extra ? i : extra);
    *r = q + (i < extra ? 1 : 0);
}

template <int R, int INV>
__device__ __forceinline__ void tile_group(u32* s, const u32* tw, u32 log_len, u32 log_n, u32 k0, u32 tile_base, u32 g) {
    u32 lb = group_base(g, k0, R);
    u32 v[1 << R];
#pragma unroll
    for (int j = 0; j < (1 << R); j++) v[j] = s[FFT_PAD(lb + ((u32)j << k0))];
    layers_in_registers<R, INV>(v, tw, log_len, log_n, k0, tile_base + lb);
#pragma unroll
    for (int j = 0; j < (1 << R); j++) s[FFT_PAD(lb + ((u32)j << k0))] = v[j];
}

// The tile's words into shared memory (input word j: in[j & in_mask]).
__device__ __forceinline__ void tile_load(u32* s, const u32* in, u32 in_mask, u32 base, u32 tile, u32 t, u32 threads) {
    for (u32 i = t; i < tile; i += threads) s[FFT_PAD(i)] = in[(base + i) & in_mask];
}

// Thread t's groups of round `round` (in the order the direction runs them).
__device__ __forceinline__ void tile_pass(u32* s, const u32* tw, u32 log_len, u32 log_n, u32 n_layers, u32 round,
                                          int inverse, u32 tile_base, u32 t, u32 threads) {
    u32 k0, r;
    tile_round(n_layers, round, &k0, &r);
    for (u32 g = t; g < (1u << (n_layers - r)); g += threads) {
        switch (r * 2 + (inverse ? 1 : 0)) {
            case 2: tile_group<1, 0>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 3: tile_group<1, 1>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 4: tile_group<2, 0>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 5: tile_group<2, 1>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 6: tile_group<3, 0>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 7: tile_group<3, 1>(s, tw, log_len, log_n, k0, tile_base, g); break;
            case 8: tile_group<4, 0>(s, tw, log_len, log_n, k0, tile_base, g); break;
            default: tile_group<4, 1>(s, tw, log_len, log_n, k0, tile_base, g); break;
        }
    }
}

__device__ __forceinline__ void tile_store(const u32* s, u32* col, u32 base, u32 tile, u32 scale, u32 t, u32 threads) {
    for (u32 i = t; i < tile; i += threads) {
        u32 x = s[FFT_PAD(i)];
        if (scale != 1) x = m31_mul(x, scale);
        col[base + i] = x;
    }
}

// Layers 0 (circle) .. n_layers - 1 (n_layers <= FFT_TILE_LOG, n_layers <=
// log_n) on tiles of 2^n_layers consecutive words, in shared memory.
// Grid: (tiles per column, n_cols); any number of threads per block (the
// host gives 2^(n_layers - FFT_ROUND_LAYERS), at least 1). Inverse: circle layer, then
// k = 1, 2, ...; forward: the reverse.
extern "C" __global__ void fft_low_layers(const u64* cols, const u64* srcs, u32 log_src, const u32* tw, u32 log_len,
                                          u32 log_n, u32 n_layers, int inverse, u32 scale) {
    __shared__ u32 s[FFT_TILE_WORDS];
    u32* col = (u32*)cols[blockIdx.y];
    const u32* in = srcs ? (const u32*)srcs[blockIdx.y] : col;
    u32 in_mask = srcs ? (1u << log_src) - 1 : 0xffffffffu;
    u32 tile = 1u << n_layers;
    u32 base = blockIdx.x * tile;
    tile_load(s, in, in_mask, base, tile, threadIdx.x, blockDim.x);
    __syncthreads();
    u32 rounds = (n_layers + FFT_ROUND_LAYERS - 1) / FFT_ROUND_LAYERS;
    for (u32 i = 0; i < rounds; i++) {
        tile_pass(s, tw, log_len, log_n, n_layers, inverse ? i : rounds - 1 - i, inverse, base, threadIdx.x, blockDim.x);
        __syncthreads();
    }
    tile_store(s, col, base, tile, scale, threadIdx.x, blockDim.x);
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
