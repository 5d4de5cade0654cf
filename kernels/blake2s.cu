// Blake2s-256 (unkeyed, 32-byte output) for Stwo's lifted Merkle commitment
// and proof-of-work grinding. Byte-identical to stwo's Blake2sMerkleHasher.

__constant__ u32 B2S_IV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                              0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

__device__ __forceinline__ u32 rotr32(u32 x, u32 n) { return (x >> n) | (x << (32 - n)); }

#define B2S_G(a, b, c, d, x, y)          \
    v[a] = v[a] + v[b] + (x);            \
    v[d] = rotr32(v[d] ^ v[a], 16);      \
    v[c] = v[c] + v[d];                  \
    v[b] = rotr32(v[b] ^ v[c], 12);      \
    v[a] = v[a] + v[b] + (y);            \
    v[d] = rotr32(v[d] ^ v[a], 8);       \
    v[c] = v[c] + v[d];                  \
    v[b] = rotr32(v[b] ^ v[c], 7);

// One round, its message schedule (a row of Blake2s' sigma) given as
// literals: m[] stays in registers. Indexing it by a table read at run time
// (a __constant__ sigma) would put m[] in local memory, a load per use.
#define B2S_ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15) \
    B2S_G(0, 4, 8, 12, m[s0], m[s1]);                                                 \
    B2S_G(1, 5, 9, 13, m[s2], m[s3]);                                                 \
    B2S_G(2, 6, 10, 14, m[s4], m[s5]);                                                \
    B2S_G(3, 7, 11, 15, m[s6], m[s7]);                                                \
    B2S_G(0, 5, 10, 15, m[s8], m[s9]);                                                \
    B2S_G(1, 6, 11, 12, m[s10], m[s11]);                                              \
    B2S_G(2, 7, 8, 13, m[s12], m[s13]);                                               \
    B2S_G(3, 4, 9, 14, m[s14], m[s15]);

// One compression of a 64-byte block; `t` counts bytes hashed including it.
__device__ __forceinline__ void b2s_compress(u32 h[8], const u32 m[16], u32 t, bool last) {
    u32 v[16];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = B2S_IV[i];
    }
    v[12] ^= t;
    if (last) v[14] = ~v[14];
    B2S_ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    B2S_ROUND(14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3);
    B2S_ROUND(11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4);
    B2S_ROUND(7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8);
    B2S_ROUND(9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13);
    B2S_ROUND(2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9);
    B2S_ROUND(12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11);
    B2S_ROUND(13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10);
    B2S_ROUND(6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5);
    B2S_ROUND(10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0);
#pragma unroll
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

__device__ __forceinline__ void b2s_init(u32 h[8]) {
#pragma unroll
    for (int i = 0; i < 8; i++) h[i] = B2S_IV[i];
    h[0] ^= 0x01010020u;  // digest length 32, no key, fanout 1, depth 1
}

// Leaf hashes of a lifted Merkle tree with 2^log_leaves leaves. Columns are
// sorted by size, ascending; column c has 2^col_logs[c] values at col_ptrs[c],
// and leaf idx reads col[((idx >> (L - l + 1)) << 1) | (idx & 1)], the value
// of the column's polynomial lifted to the leaf domain. The values of all
// columns are one Blake2s message of little-endian u32 words.
extern "C" __global__ void merkle_leaves(const u64* col_ptrs, const u32* col_logs, u32 n_cols, u32 log_leaves,
                                         u32* out) {
    u64 idx = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (1ull << log_leaves)) return;
    u32 h[8], m[16];
    b2s_init(h);
    // A block of sixteen columns a compression, m[] indexed by constants
    // only (so it stays in registers); no columns hash as one empty block.
    u32 c0 = 0, t = 0;
    do {
#pragma unroll
        for (u32 k = 0; k < 16; k++) {
            u32 c = c0 + k;
            u32 w = 0;
            if (c < n_cols) {
                u32 l = col_logs[c];
                u64 j = ((idx >> (log_leaves - l + 1)) << 1) | (idx & 1);
                w = ((const u32*)col_ptrs[c])[j];
            }
            m[k] = w;
        }
        u32 in_block = n_cols - c0 < 16 ? n_cols - c0 : 16;
        t += 4 * in_block;
        c0 += 16;
        b2s_compress(h, m, t, c0 >= n_cols);
    } while (c0 < n_cols);
#pragma unroll
    for (int i = 0; i < 8; i++) out[idx * 8 + i] = h[i];
}

// Stwo's leaf packing for FRI layers folded more than one step at a time
// (`PackLeavesOps::pack_leaves_input`): output column coord + 4 * offset
// holds input column coord's value 4 * row + offset at row. Thread `row`
// reads four consecutive values of each input column (a warp reads whole
// cache lines) and writes one value to each of the sixteen outputs.
extern "C" __global__ void pack_leaves(const u64* in_ptrs, const u64* out_ptrs, u64 rows) {
    u64 row = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
#pragma unroll
    for (int coord = 0; coord < 4; coord++) {
        const u32* in = (const u32*)in_ptrs[coord];
#pragma unroll
        for (int offset = 0; offset < 4; offset++) ((u32*)out_ptrs[coord + 4 * offset])[row] = in[4 * row + offset];
    }
}

// Node i of a layer: out[i] = H(prev[2i] || prev[2i+1]).
__device__ __forceinline__ void merkle_node(const u32* prev, u32* out, u64 i) {
    u32 h[8], m[16];
    b2s_init(h);
#pragma unroll
    for (int w = 0; w < 16; w++) m[w] = prev[i * 16 + w];
    b2s_compress(h, m, 64, true);
#pragma unroll
    for (int w = 0; w < 8; w++) out[i * 8 + w] = h[w];
}

// The n nodes of the layer above `prev`.
extern "C" __global__ void merkle_layer(const u32* prev, u32* out, u64 n) {
    u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) merkle_node(prev, out, i);
}

// The layers above `prev` (2^n_layers nodes) up to the root, in one block:
// layer l + 1 (2^(n_layers - l - 1) nodes) goes to outs.p[l]. A tree's top
// layers are a few nodes each, and a launch apiece costs more than they do.
#define MERKLE_TOP_LAYERS 16
struct merkle_outs { u32* p[MERKLE_TOP_LAYERS]; };
extern "C" __global__ void merkle_top(const u32* prev, u32 n_layers, merkle_outs outs) {
    const u32* in = prev;
    for (u32 l = 0; l < n_layers && l < MERKLE_TOP_LAYERS; l++) {
        u64 n = 1ull << (n_layers - l - 1);
        u32* out = outs.p[l];
        for (u64 i = threadIdx.x; i < n; i += blockDim.x) merkle_node(in, out, i);
        // This layer's nodes, written by the whole block, are the next one's input.
        __syncthreads();
        in = out;
    }
}

// Proof of work: nonce = (hi << 32) | low for low in [0, n). The smallest low
// whose H(prefixed || LE64(nonce)) has >= pow_bits trailing zeros in its first
// word lands in *found (initialised to 0xffffffff by the host).
extern "C" __global__ void grind(const u32* prefixed, u32 pow_bits, u32 hi, u32 n, u32* found) {
    u32 low = blockIdx.x * blockDim.x + threadIdx.x;
    if (low >= n) return;
    u32 h[8], m[16];
    b2s_init(h);
#pragma unroll
    for (int w = 0; w < 8; w++) m[w] = prefixed[w];
    m[8] = low;
    m[9] = hi;
#pragma unroll
    for (int w = 10; w < 16; w++) m[w] = 0;
    b2s_compress(h, m, 40, true);
    u32 tz = h[0] == 0 ? 32 : __ffs(h[0]) - 1;
    if (tz >= pow_bits) atomicMin(found, low);
}
