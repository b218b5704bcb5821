// Non-finite values and exact zeros in the per-window pooling math (kernels/pool_math.cuh,
// shared by the CPU backend and the CUDA kernels).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/pool_math.cuh"

using namespace convpool;

namespace {

const float kInf = std::numeric_limits<float>::infinity();
const float kNan = std::numeric_limits<float>::quiet_NaN();

PoolWindowParams params(PoolMethod m, bool training = true, float p = 2.f, float u = 0.3f) {
  PoolWindowParams P;
  P.method = m;
  P.training = training;
  P.p = p;
  P.u = u;
  return P;
}

float forward(const PoolWindowParams& P, std::vector<float> v) {
  return pool_window_forward(P, v.data(), int(v.size()), int(v.size()));
}
std::vector<float> backward(const PoolWindowParams& P, std::vector<float> v, float dy = 1.f) {
  std::vector<float> g(v.size(), -7.f);
  const float y = forward(P, v);
  pool_window_backward(P, v.data(), int(v.size()), int(v.size()), y, dy, g.data());
  return g;
}

// Zeros are routine after a fused ReLU; for p < 1, |x|^(p-1) is infinite at 0 and was
// multiplied by sign(0) = 0, giving NaN. The subgradient 0 is what p >= 1 gives there.
TEST(PoolNonFinite, LpBackwardWithPBelowOneIsFiniteAtAnExactZero) {
  for (float p : {0.5f, 0.999f, 1.f, 3.f}) {
    const auto g = backward(params(PoolMethod::lp, true, p), {0.f, 1.f, 2.f, -0.5f});
    for (float x : g) EXPECT_TRUE(std::isfinite(x)) << "p " << p;
    EXPECT_EQ(g[0], 0.f) << "p " << p;
    EXPECT_GT(g[2], 0.f) << "p " << p;
  }
}

TEST(PoolNonFinite, LpPropagatesNaN) {
  EXPECT_TRUE(std::isnan(forward(params(PoolMethod::lp), {kNan, 0.f, 0.f, 0.f})));
  EXPECT_TRUE(std::isnan(forward(params(PoolMethod::lp), {1.f, 2.f, kNan, 0.f})));
}

TEST(PoolNonFinite, LpAndSoftpoolOfPlusInfAreInfWithTheGradientOnIt) {
  for (PoolMethod m : {PoolMethod::lp, PoolMethod::softpool}) {
    EXPECT_EQ(forward(params(m), {1.f, kInf, 0.f, -2.f}), kInf) << int(m);
    const auto g = backward(params(m), {1.f, kInf, 0.f, -2.f}, 0.5f);
    EXPECT_EQ(g, (std::vector<float>{0.f, 0.5f, 0.f, 0.f})) << int(m);
  }
  EXPECT_EQ(forward(params(PoolMethod::lp), {-kInf, 1.f}), kInf);  // |x|
}

TEST(PoolNonFinite, StochasticPropagatesNaN) {
  for (bool training : {true, false})
    EXPECT_TRUE(std::isnan(forward(params(PoolMethod::stochastic, training), {1.f, kNan, 2.f})))
        << "training " << training;
  const auto g = backward(params(PoolMethod::stochastic), {1.f, kNan, 2.f}, 0.5f);
  EXPECT_EQ(g[1], 0.5f);  // the NaN was the pick, like max's argmax
}

TEST(PoolNonFinite, StochasticSamplesPlusInfWithCertainty) {
  for (float u : {0.f, 0.5f, 0.999f}) {
    EXPECT_EQ(forward(params(PoolMethod::stochastic, true, 2.f, u), {1.f, kInf, 2.f}), kInf);
    const auto g = backward(params(PoolMethod::stochastic, true, 2.f, u), {1.f, kInf, 2.f});
    EXPECT_EQ(g, (std::vector<float>{0.f, 1.f, 0.f}));
  }
  EXPECT_EQ(forward(params(PoolMethod::stochastic, false), {1.f, kInf, 2.f}), kInf);
}

PoolWindowParams ranked(PoolMethod m, float a, bool training = false, float u = 0.f) {
  PoolWindowParams P = params(m, training, 2.f, u);
  P.rank_a = a;
  return P;
}

TEST(PoolRankWeighted, WeighsTheSortedWindowByRank) {
  // a = 0.5: ranks 3, 2, 1 weigh 1/2, 1/4, 1/8 (sum 7/8).
  const auto P = ranked(PoolMethod::rwp, 0.5f);
  EXPECT_FLOAT_EQ(forward(P, {1.f, 3.f, 2.f}), (0.5f * 3 + 0.25f * 2 + 0.125f * 1) / 0.875f);
  const auto g = backward(P, {1.f, 3.f, 2.f}, 2.f);
  EXPECT_FLOAT_EQ(g[0], 2 * 0.125f / 0.875f);
  EXPECT_FLOAT_EQ(g[1], 2 * 0.5f / 0.875f);
  EXPECT_FLOAT_EQ(g[2], 2 * 0.25f / 0.875f);
  // Ties: the lower window index ranks first.
  const auto t = backward(P, {2.f, 2.f});
  EXPECT_GT(t[0], t[1]);
  // rsp in evaluation is rwp, bit for bit.
  const auto E = ranked(PoolMethod::rsp, 0.5f);
  EXPECT_EQ(forward(E, {1.f, 3.f, 2.f}), forward(P, {1.f, 3.f, 2.f}));
}

TEST(PoolRankWeighted, AtAOneIsMaxEvenBesideMinusInf) {
  const auto P = ranked(PoolMethod::rwp, 1.f);
  EXPECT_EQ(forward(P, {-kInf, 2.f, 1.f}), 2.f);  // 0 * -inf would be NaN
  EXPECT_EQ(backward(P, {-kInf, 2.f, 1.f}), (std::vector<float>{0.f, 1.f, 0.f}));
}

TEST(PoolRankWeighted, NaNPropagatesAndPlusInfStaysInf) {
  for (float a : {0.2f, 1.f}) {
    EXPECT_TRUE(std::isnan(forward(ranked(PoolMethod::rwp, a), {1.f, kNan, 2.f}))) << a;
    EXPECT_EQ(forward(ranked(PoolMethod::rwp, a), {1.f, kInf, 2.f}), kInf) << a;
    for (float x : backward(ranked(PoolMethod::rwp, a), {1.f, kInf, 2.f}))
      EXPECT_TRUE(std::isfinite(x)) << a;
  }
  for (float u : {0.f, 0.5f, 0.999f}) {  // rsp draws the NaN surely
    EXPECT_TRUE(std::isnan(forward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, kNan, 2.f})));
    EXPECT_EQ(backward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, kNan, 2.f}),
              (std::vector<float>{0.f, 1.f, 0.f}));
  }
}

TEST(PoolRankWeighted, RspDrawsTheRankWhoseCumulativeWeightPassesU) {
  // a = 0.5, two elements: weights 1/2 and 1/4, so rank 1 (the 3) for u < 2/3.
  for (float u : {0.f, 0.6f, 0.66f}) {
    EXPECT_EQ(forward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, 3.f}), 3.f) << u;
    EXPECT_EQ(backward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, 3.f}),
              (std::vector<float>{0.f, 1.f}));
  }
  for (float u : {0.67f, 0.9999f}) {
    EXPECT_EQ(forward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, 3.f}), 1.f) << u;
    EXPECT_EQ(backward(ranked(PoolMethod::rsp, 0.5f, true, u), {1.f, 3.f}),
              (std::vector<float>{1.f, 0.f}));
  }
  // a = 1: always the max.
  EXPECT_EQ(forward(ranked(PoolMethod::rsp, 1.f, true, 0.9999f), {1.f, 3.f, 2.f}), 3.f);
}

}  // namespace
