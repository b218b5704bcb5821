// bf16 and IEEE fp16, the storage types of mixed precision, as 16-bit patterns: conversions
// from float rounding to nearest, ties to even (as CUDA's __float2bfloat16_rn and
// __float2half_rn, and oneDNN's reorders), and exact conversions back. A NaN becomes the
// canonical 0x7FFF, as CUDA's conversions give it; fp16 overflows to infinity from 65520 (the
// midpoint past its largest value, 65504) and keeps subnormals. Shared by the CPU backend and
// the CUDA kernels (and the emulated target's __nv_bfloat16 and __half), so every path rounds
// alike.
#pragma once
#include <cstdint>

#include "hd.cuh"

namespace convpool {

CP_HD uint16_t float_to_bf16(float f) {
  const uint32_t b = cp_float_bits(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  // Adding just under half the dropped part's unit, plus the kept part's lowest bit, carries
  // exactly when the value rounds up (into the exponent, and to infinity, as it should).
  return uint16_t((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

CP_HD float bf16_to_float(uint16_t h) { return cp_bits_float(uint32_t(h) << 16); }

CP_HD uint16_t float_to_half(float f) {
  const uint32_t b = cp_float_bits(f), sign = (b >> 16) & 0x8000u, u = b & 0x7fffffffu;
  if (u > 0x7f800000u) return 0x7fffu;                    // NaN
  if (u >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // 65520 and up (and inf): inf
  if (u >= 0x38800000u) {                                 // 2^-14 and up: normal in fp16
    const uint32_t v = u - 0x38000000u;                   // exponent bias 127 -> 15
    return uint16_t(sign | ((v + 0xfffu + ((v >> 13) & 1u)) >> 13));
  }
  if (u <= 0x33000000u) return uint16_t(sign);  // at most 2^-25, half the least subnormal: 0
  // A subnormal (or the least normal, after rounding): x / 2^-24 rounded, the float's 24-bit
  // significand shifted right by 126 - its exponent (14 to 24 bits dropped).
  const uint32_t shift = 126u - (u >> 23), mant = (u & 0x7fffffu) | 0x800000u;
  const uint32_t q = mant >> shift, rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  return uint16_t(sign | (q + uint32_t(rest > half || (rest == half && (q & 1u)))));
}

CP_HD float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return cp_bits_float(sign | 0x7f800000u | (m << 13));  // inf, NaN
  if (e == 0u)  // zero or subnormal: m 2^-24, exact in float
    return cp_bits_float(sign | cp_float_bits(float(m) * 5.9604644775390625e-8f));
  return cp_bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

}  // namespace convpool
