// Mersenne-31 field arithmetic: p = 2^31 - 1. Inputs and outputs are fully
// reduced (0 <= v < p) unless a function says otherwise.
#pragma once

typedef unsigned int u32;
typedef unsigned long long u64;

#define M31_P 0x7fffffffu

__device__ __forceinline__ u32 m31_add(u32 a, u32 b) {
    u32 r = a + b;
    return r >= M31_P ? r - M31_P : r;
}

__device__ __forceinline__ u32 m31_sub(u32 a, u32 b) {
    u32 r = a + M31_P - b;
    return r >= M31_P ? r - M31_P : r;
}

// x < 2^62: fold the high bits twice, then one conditional subtraction.
__device__ __forceinline__ u32 m31_reduce64(u64 x) {
    u32 r = (u32)(x & M31_P) + (u32)(x >> 31);
    r = (r & M31_P) + (r >> 31);
    return r >= M31_P ? r - M31_P : r;
}

__device__ __forceinline__ u32 m31_mul(u32 a, u32 b) {
    return m31_reduce64((u64)a * (u64)b);
}

__device__ __forceinline__ u32 m31_neg(u32 a) {
    return a == 0 ? 0 : M31_P - a;
}
