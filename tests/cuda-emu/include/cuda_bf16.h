// CUDA's bf16 type and conversions, for the emulated target: __nv_bfloat16 holds the 16-bit
// pattern; float to bf16 rounds to nearest even (a NaN becomes 0x7FFF), as CUDA's
// __float2bfloat16_rn; the conversions are kernels/reduced_precision_math.cuh's.
#pragma once
#include "kernels/reduced_precision_math.cuh"

struct __nv_bfloat16 {
  unsigned short __x;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {convpool::float_to_bf16(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return convpool::bf16_to_float(h.__x); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return {u}; }
