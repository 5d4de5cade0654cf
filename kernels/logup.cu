// The LogUp interaction trace's last column: Stwo's `finalize_last`, i.e. the
// running sum of the column's fractions in coset order (`inclusive_prefix_sum`
// on a bit-reversed circle-domain column), shifted by claimed_sum / 2^log_n so
// that it ends at zero. The fraction columns themselves come from kernels
// generated from the AIR's lookups (`bitsage_cuda::codegen::generate_logup`).
//
// A QM31 column is 4 coordinate columns; the running sum is taken coordinate
// by coordinate (blockIdx.y or the high bits of the thread index pick it).

// The row (bit-reversed circle-domain index) holding coset index j.
__device__ __forceinline__ u32 coset_row(u32 j, u32 log_n) {
    u32 n = 1u << log_n;
    u32 d = (j & 1) ? n - ((j + 1) >> 1) : (j >> 1);
    return bit_rev(d, log_n);
}

// tmp[c * n + j] = cols[c][coset_row(j)]: the 4 coordinates in coset order.
extern "C" __global__ void logup_to_coset(const u64* cols, u32 log_n, u32* tmp) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (4u << log_n)) return;
    u32 c = i >> log_n, j = i & ((1u << log_n) - 1);
    tmp[i] = ((const u32*)cols[c])[coset_row(j, log_n)];
}

#define SCAN_THREADS 256
#define SCAN_PER_THREAD 16
#define SCAN_CHUNK (SCAN_THREADS * SCAN_PER_THREAD)

// In place over rows of n words (blockIdx.y picks the row): each chunk of
// SCAN_CHUNK words becomes its inclusive prefix sum (mod p), and
// sums[row * gridDim.x + chunk] the chunk's total. Launched with
// SCAN_THREADS threads per block.
extern "C" __global__ void scan_chunks(u32* data, u32 n, u32* sums) {
    __shared__ u32 warp_total[SCAN_THREADS / 32];
    u32* row = data + (u64)blockIdx.y * n;
    u32 base = blockIdx.x * SCAN_CHUNK + threadIdx.x * SCAN_PER_THREAD;
    u32 v[SCAN_PER_THREAD];
    u32 acc = 0;
#pragma unroll
    for (int k = 0; k < SCAN_PER_THREAD; k++) {
        u32 idx = base + k;
        acc = m31_add(acc, idx < n ? row[idx] : 0u);
        v[k] = acc;
    }
    // Inclusive scan of the thread totals within the warp, then over warps.
    u32 lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    u32 x = acc;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        u32 y = __shfl_up_sync(0xffffffffu, x, o);
        if (lane >= (u32)o) x = m31_add(x, y);
    }
    if (lane == 31) warp_total[warp] = x;
    __syncthreads();
    if (warp == 0) {
        u32 w = lane < SCAN_THREADS / 32 ? warp_total[lane] : 0u;
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            u32 y = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= (u32)o) w = m31_add(w, y);
        }
        if (lane < SCAN_THREADS / 32) warp_total[lane] = w;
    }
    __syncthreads();
    u32 before = m31_sub(x, acc);
    if (warp > 0) before = m31_add(before, warp_total[warp - 1]);
#pragma unroll
    for (int k = 0; k < SCAN_PER_THREAD; k++) {
        u32 idx = base + k;
        if (idx < n) row[idx] = m31_add(v[k], before);
    }
    if (threadIdx.x == SCAN_THREADS - 1) sums[blockIdx.y * gridDim.x + blockIdx.x] = m31_add(before, acc);
}

// data[row][j] += sums[row][chunk(j) - 1], sums already scanned: completes a
// chunked scan. blockIdx.y picks the row.
extern "C" __global__ void scan_add(u32* data, u32 n, const u32* sums, u32 n_chunks) {
    u32 j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    u32 chunk = j / SCAN_CHUNK;
    if (chunk == 0) return;
    u32* row = data + (u64)blockIdx.y * n;
    row[j] = m31_add(row[j], sums[blockIdx.y * n_chunks + chunk - 1]);
}

// cols[c][coset_row(j)] = prefix[c][j] - (j + 1) * shift[c]: the running sum
// of the shifted fractions, back in bit-reversed circle-domain order.
extern "C" __global__ void logup_from_coset(const u32* prefix, const u32* shift, u32 log_n, const u64* cols) {
    u32 i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (4u << log_n)) return;
    u32 c = i >> log_n, j = i & ((1u << log_n) - 1);
    ((u32*)cols[c])[coset_row(j, log_n)] = m31_sub(prefix[i], m31_mul(j + 1, shift[c]));
}

// dst[c * n + i] = src[c][i] for the n_cols = gridDim.y columns at `src`:
// the main-trace columns a LogUp kernel reads, copied in one launch before
// the commitment interpolates them in place.
extern "C" __global__ void copy_columns(const u64* src, u64 n, u32* dst) {
    const u32* col = (const u32*)src[blockIdx.y];
    u32* out = dst + (u64)blockIdx.y * n;
    for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) out[i] = col[i];
}
