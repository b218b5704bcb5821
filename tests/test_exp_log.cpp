// kernels/exp_log.cuh: cp_exp and cp_log within 1 ulp of the double-precision functions over a
// sweep of every 307th float (normals, subnormals, both signs), and their special values. (That
// the CPU's vector loops give the scalar bits is tested where they are used:
// GemPool.CpuIsTheSharedMathBitForBit.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/exp_log.cuh"

using namespace convpool;

namespace {

// |got - want| in units of the last place of want rounded to float (infinities and NaN must
// match exactly).
double ulps(float got, double want) {
  if (std::isnan(want)) return std::isnan(got) ? 0 : 1e30;
  const float w = float(want);
  if (std::isinf(w)) return got == w ? 0 : 1e30;
  const double unit = w == 0.f ? std::numeric_limits<float>::denorm_min()
                               : double(std::nextafter(std::fabs(w), INFINITY)) - std::fabs(w);
  return std::fabs(double(got) - want) / unit;
}

TEST(ExpLog, WithinOneUlpOverASweepOfFloats) {
  double worst_exp = 0, worst_log = 0;
  for (uint64_t b = 0; b <= 0xffffffffull; b += 307) {
    float x;
    const uint32_t bits = uint32_t(b);
    std::memcpy(&x, &bits, 4);
    worst_exp = std::max(worst_exp, ulps(cp_exp(x), std::exp(double(x))));
    worst_log = std::max(worst_log, ulps(cp_log(x), std::log(double(x))));
  }
  EXPECT_LE(worst_exp, 1.0);
  EXPECT_LE(worst_log, 1.0);
}

TEST(ExpLog, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  EXPECT_EQ(cp_exp(0.f), 1.f);
  EXPECT_EQ(cp_exp(inf), inf);
  EXPECT_EQ(cp_exp(89.5f), inf);
  EXPECT_EQ(cp_exp(-inf), 0.f);
  EXPECT_EQ(cp_exp(-200.f), 0.f);
  EXPECT_GT(cp_exp(-100.f), 0.f);  // a subnormal, not flushed
  EXPECT_TRUE(std::isnan(cp_exp(nan)));
  EXPECT_EQ(cp_log(1.f), 0.f);
  EXPECT_EQ(cp_log(0.f), -inf);
  EXPECT_EQ(cp_log(-0.f), -inf);
  EXPECT_EQ(cp_log(inf), inf);
  EXPECT_TRUE(std::isnan(cp_log(-1.f)));
  EXPECT_TRUE(std::isnan(cp_log(-inf)));
  EXPECT_TRUE(std::isnan(cp_log(nan)));
  EXPECT_NEAR(cp_log(std::numeric_limits<float>::denorm_min()), std::log(1.4012984643e-45), 1e-5);
}

}  // namespace
