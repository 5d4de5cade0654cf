// Circle FFT over M31, in Stwo's conventions (see host/cuda/src/fft.rs):
// evaluations in bit-reversed order, coefficients in natural order, one
// launch per layer over a batch of equal-size columns laid out back to back.
//
// Twiddles come from Stwo's twiddle tree (x-coordinates of the first half of
// each doubled coset, bit-reversed); `tw_off` is where a layer's slice starts.
//   line layer k (k >= 1): pairs (h*2^(k+1) + l, h*2^(k+1) + l + 2^k), twiddle tw[tw_off + h]
//   circle layer 0:        pairs (2h, 2h+1), twiddle from the first line layer's
//                          chunk [x, y] -> [y, -y, -x, x]
// Forward: v0' = v0 + t*v1, v1' = v0 - t*v1. Inverse (with inverse twiddles):
// v0' = v0 + v1, v1' = (v0 - v1) * it.

extern "C" __global__ void fft_line_layer(u32* data, const u32* tw, u32 tw_off, u32 log_n, u32 k,
                                          u32 n_cols, int inverse) {
    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 half = 1u << (log_n - 1);
    if (tid >= (u64)n_cols * half) return;
    u32 c = (u32)(tid >> (log_n - 1));
    u32 p = (u32)tid & (half - 1);
    u32 h = p >> k;
    u32 l = p & ((1u << k) - 1);
    u32* col = data + ((u64)c << log_n);
    u32 i0 = (h << (k + 1)) + l;
    u32 i1 = i0 + (1u << k);
    u32 t = tw[tw_off + h];
    u32 v0 = col[i0], v1 = col[i1];
    if (inverse) {
        col[i0] = m31_add(v0, v1);
        col[i1] = m31_mul(m31_sub(v0, v1), t);
    } else {
        u32 tmp = m31_mul(v1, t);
        col[i0] = m31_add(v0, tmp);
        col[i1] = m31_sub(v0, tmp);
    }
}

extern "C" __global__ void fft_circle_layer(u32* data, const u32* tw, u32 line0_off, u32 log_n, u32 n_cols,
                                            int inverse) {
    u64 tid = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    u32 half = 1u << (log_n - 1);
    if (tid >= (u64)n_cols * half) return;
    u32 c = (u32)(tid >> (log_n - 1));
    u32 h = (u32)tid & (half - 1);
    u32 x = tw[line0_off + 2 * (h >> 2)];
    u32 y = tw[line0_off + 2 * (h >> 2) + 1];
    u32 t;
    switch (h & 3) {
        case 0: t = y; break;
        case 1: t = m31_neg(y); break;
        case 2: t = m31_neg(x); break;
        default: t = x; break;
    }
    u32* col = data + ((u64)c << log_n);
    u32 v0 = col[2 * h], v1 = col[2 * h + 1];
    if (inverse) {
        col[2 * h] = m31_add(v0, v1);
        col[2 * h + 1] = m31_mul(m31_sub(v0, v1), t);
    } else {
        u32 tmp = m31_mul(v1, t);
        col[2 * h] = m31_add(v0, tmp);
        col[2 * h + 1] = m31_sub(v0, tmp);
    }
}

// data[i] *= s, for n values.
extern "C" __global__ void m31_scale(u32* data, u64 n, u32 s) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) data[i] = m31_mul(data[i], s);
}

// Copies n_cols columns of 2^log_src coefficients into columns of 2^log_dst
// values, zero-padding the rest (the input of a low-degree extension).
extern "C" __global__ void zero_pad(const u32* src, u32* dst, u32 log_src, u32 log_dst, u32 n_cols) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= ((u64)n_cols << log_dst)) return;
    u32 c = (u32)(i >> log_dst);
    u32 j = (u32)i & ((1u << log_dst) - 1);
    dst[i] = j < (1u << log_src) ? src[((u64)c << log_src) + j] : 0;
}
