// bf16 and fp16 conversions (kernels/reduced_precision_math.cuh): every 16-bit pattern back
// to float and again to itself; floats rounded to the nearest representable value, ties to
// even, checked against a reference that measures the distance to both neighbours in double
// precision, over every float exponent, random patterns, and the edges (ties, overflow to
// infinity, subnormals, zeros, NaN); fp16 against the compiler's own _Float16 conversion; and
// the array conversions of the CPU backend (src/cpu/reduced_precision.cpp). The CUDA kernels
// are compared with these in tests/kernel_parity_reduced_precision.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/reduced_precision.h"

using namespace convpool;

namespace {

float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The nearest of the pattern's neighbours, as the reference sees it: `decode` maps a
// non-negative 16-bit pattern (ordered as its value) to its value; the largest finite
// pattern is `max_finite`, the next is infinity. Returns the pattern for |x| (sign added by
// the caller), ties to the even pattern; beyond the largest value's half step, infinity.
uint16_t nearest(double ax, float (*decode)(uint16_t), uint16_t max_finite) {
  uint16_t lo = 0, hi = max_finite;  // the largest pattern whose value is <= ax
  if (ax >= decode(max_finite)) {
    const double step = double(decode(max_finite)) - decode(uint16_t(max_finite - 1));
    const double limit = double(decode(max_finite)) + step / 2;
    // The midpoint to the next binade's first value rounds to even: that value, infinity.
    return ax < limit ? max_finite : uint16_t(max_finite + 1);
  }
  while (lo < hi) {
    const uint16_t mid = uint16_t((lo + hi + 1) / 2);
    if (double(decode(mid)) <= ax)
      lo = mid;
    else
      hi = uint16_t(mid - 1);
  }
  const double below = decode(lo), above = decode(uint16_t(lo + 1));
  const double d_lo = ax - below, d_hi = above - ax;
  if (d_lo < d_hi) return lo;
  if (d_hi < d_lo) return uint16_t(lo + 1);
  return (lo & 1u) ? uint16_t(lo + 1) : lo;
}

void check_rounding(float x, uint16_t (*encode)(float), float (*decode)(uint16_t),
                    uint16_t max_finite, uint16_t sign_bit, const char* what) {
  const uint16_t got = encode(x);
  if (std::isnan(x)) {
    ASSERT_EQ(got, 0x7fffu) << what << " NaN " << std::hex << bits_of(x);
    return;
  }
  const uint16_t mag =
      std::isinf(x) ? uint16_t(max_finite + 1) : nearest(std::fabs(double(x)), decode, max_finite);
  const uint16_t want = uint16_t(mag | (std::signbit(x) ? sign_bit : 0));
  ASSERT_EQ(got, want) << what << " of " << x << " (bits " << std::hex << bits_of(x) << ")";
}

// Floats to test: every exponent with edge and random significands, random bit patterns,
// and each format's own values, midpoints and their neighbours.
std::vector<float> test_floats(float (*decode)(uint16_t), uint16_t max_finite) {
  std::vector<float> v;
  std::mt19937_64 rng(42);
  for (uint32_t e = 0; e < 256; ++e)
    for (uint32_t m : {0u, 1u, 0x7fffffu, 0x400000u, 0x8000u, 0x7fffu, 0x1000u, 0xfffu, 0x2000u})
      for (uint32_t s : {0u, 1u}) {
        v.push_back(from_bits((s << 31) | (e << 23) | m));
        v.push_back(from_bits((s << 31) | (e << 23) | uint32_t(rng() & 0x7fffffu)));
      }
  for (int i = 0; i < 400000; ++i) v.push_back(from_bits(uint32_t(rng())));
  for (uint32_t p = 0; p < max_finite; ++p) {
    const float a = decode(uint16_t(p)), b = decode(uint16_t(p + 1));
    const float mid = float((double(a) + b) / 2);  // exact: one more bit than the format
    for (const float f : {a, mid, std::nextafter(mid, 0.f), std::nextafter(mid, INFINITY)}) {
      v.push_back(f);
      v.push_back(-f);
    }
  }
  return v;
}

uint16_t bf16_of(float f) { return float_to_bf16(f); }
float bf16_value(uint16_t h) { return bf16_to_float(h); }
uint16_t half_of(float f) { return float_to_half(f); }
float half_value(uint16_t h) { return half_to_float(h); }

TEST(ReducedPrecision, EveryPatternRoundTrips) {
  for (uint32_t p = 0; p < 0x10000u; ++p) {
    const uint16_t h = uint16_t(p);
    const float b = bf16_to_float(h), f = half_to_float(h);
    // bf16 is float's top half: exact, NaN payloads included.
    ASSERT_EQ(bits_of(b), p << 16);
    const bool half_nan = (p & 0x7c00u) == 0x7c00u && (p & 0x3ffu);
    if (half_nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << p;
      ASSERT_EQ(float_to_half(f), 0x7fffu);
      continue;
    }
    if (!std::isnan(b)) {
      ASSERT_EQ(float_to_bf16(b), h) << std::hex << p;
    }
    ASSERT_EQ(float_to_half(f), h) << std::hex << p;
  }
  EXPECT_EQ(half_to_float(0x3c00u), 1.f);
  EXPECT_EQ(half_to_float(0x7bffu), 65504.f);
  EXPECT_EQ(half_to_float(0x0001u), std::ldexp(1.f, -24));
  EXPECT_EQ(half_to_float(0x0400u), std::ldexp(1.f, -14));
  EXPECT_EQ(bf16_to_float(0x3f80u), 1.f);
}

TEST(ReducedPrecision, Bf16RoundsToNearestEven) {
  for (const float x : test_floats(bf16_value, 0x7f7fu))
    check_rounding(x, bf16_of, bf16_value, 0x7f7fu, 0x8000u, "bf16");
  EXPECT_EQ(float_to_bf16(from_bits(0x3f808000u)), 0x3f80u);             // a tie, to even
  EXPECT_EQ(float_to_bf16(from_bits(0x3f818000u)), 0x3f82u);             // a tie, to even (up)
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80u);  // to infinity
  EXPECT_EQ(float_to_bf16(-0.f), 0x8000u);
}

TEST(ReducedPrecision, HalfRoundsToNearestEvenWithSubnormalsAndOverflow) {
  for (const float x : test_floats(half_value, 0x7bffu))
    check_rounding(x, half_of, half_value, 0x7bffu, 0x8000u, "fp16");
  EXPECT_EQ(float_to_half(65519.f), 0x7bffu);
  EXPECT_EQ(float_to_half(65520.f), 0x7c00u);  // the midpoint to 65536 rounds to even: inf
  EXPECT_EQ(float_to_half(std::ldexp(1.f, -25)), 0x0000u);  // a tie: to 0
  EXPECT_EQ(float_to_half(std::nextafter(std::ldexp(1.f, -25), 1.f)), 0x0001u);
  EXPECT_EQ(float_to_half(std::ldexp(3.f, -25)), 0x0002u);  // 1.5 subnormal steps: to even
  EXPECT_EQ(float_to_half(-std::ldexp(1.f, -30)), 0x8000u);
}

#if defined(__FLT16_MAX__)
// The compiler's IEEE conversion agrees wherever the value is not a NaN.
TEST(ReducedPrecision, HalfAgreesWithTheCompilersFloat16) {
  for (const float x : test_floats(half_value, 0x7bffu)) {
    if (std::isnan(x)) continue;
    const _Float16 h = static_cast<_Float16>(x);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(float_to_half(x), want) << x;
  }
}
#endif

TEST(ReducedPrecision, ArrayConversionsMatchTheScalarOnes) {
  std::mt19937_64 rng(7);
  std::vector<float> x(300001);  // above the parallel threshold, not a multiple of a vector
  for (auto& v : x) v = from_bits(uint32_t(rng()));
  x[0] = NAN;
  x[1] = -INFINITY;
  std::vector<uint16_t> b(x.size(), 0x1234u), h(x.size(), 0x1234u);
  std::vector<float> bb(x.size(), 1.f), hh(x.size(), 1.f);
  cpu::floats_to_bf16(x.data(), b.data(), x.size());
  cpu::floats_to_half(x.data(), h.data(), x.size());
  cpu::bf16_to_floats(b.data(), bb.data(), b.size());
  cpu::half_to_floats(h.data(), hh.data(), h.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(b[i], float_to_bf16(x[i])) << i;
    ASSERT_EQ(h[i], float_to_half(x[i])) << i;
    ASSERT_EQ(bits_of(bb[i]), bits_of(bf16_to_float(b[i]))) << i;
    ASSERT_EQ(bits_of(hh[i]), bits_of(half_to_float(h[i]))) << i;
  }
}

}  // namespace
