// CUDA's fp16 type and conversions, for the emulated target: __half holds the 16-bit pattern;
// float to fp16 rounds to nearest even, overflows to infinity from 65520, keeps subnormals,
// and makes a NaN 0x7FFF, as CUDA's __float2half_rn; the conversions are
// kernels/reduced_precision_math.cuh's.
#pragma once
#include "kernels/reduced_precision_math.cuh"

struct __half {
  unsigned short __x;
};
inline __half __float2half_rn(float f) { return {convpool::float_to_half(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return convpool::half_to_float(h.__x); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) { return {u}; }
