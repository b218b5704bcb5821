// pool: every method against an independent double-precision reference, the gradient
// checker, the identities between methods, and the edge cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "kernels/pool_math.cuh"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {

// Independent reference: sorts each window (stable, so ties keep the lower index first).
double reference_window(const std::string& method, std::vector<double> v, int divisor, double k,
                        double p, double t, double lambda) {
  std::vector<double> sorted = v;
  std::stable_sort(sorted.begin(), sorted.end(), std::greater<>());
  const double sum = std::accumulate(v.begin(), v.end(), 0.0);
  auto topk = [&](int kk) {
    kk = std::min<int>(kk, int(v.size()));
    return std::accumulate(sorted.begin(), sorted.begin() + kk, 0.0) / kk;
  };
  if (method == "max") return sorted.front();
  if (method == "min") return sorted.back();
  if (method == "avg") return sum / divisor;
  if (method == "avgtopk") return topk(int(k));
  if (method == "tmaxavg") return sorted.front() >= t ? sorted.front() : topk(int(k));
  if (method == "mixed") return lambda * sorted.front() + (1 - lambda) * sum / divisor;
  if (method == "lp") {
    double s = 0;
    for (double x : v) s += std::pow(std::abs(x), p);
    return std::pow(s, 1 / p);
  }
  if (method == "softpool") {
    double num = 0, den = 0;
    for (double x : v) num += std::exp(x) * x, den += std::exp(x);
    return num / den;
  }
  if (method == "stochastic") {  // evaluation mode: sum p_i x_i
    double s = 0, q = 0;
    for (double x : v) s += std::max(x, 0.0), q += std::max(x, 0.0) * std::max(x, 0.0);
    return s > 0 ? q / s : 0;
  }
  ADD_FAILURE() << "no reference for " << method;
  return 0;
}

struct PoolCase {
  std::string method;  // model-file words after "pool"
  std::string name;    // method name for the reference
  int size, stride, pad;
  double k = 2, p = 2, t = 0;
  bool include_pad = true;
};

std::string line_of(const PoolCase& c) {
  return "pool " + c.method + " size=" + std::to_string(c.size) +
         " stride=" + std::to_string(c.stride) + " pad=" + std::to_string(c.pad);
}

void PrintTo(const PoolCase& c, std::ostream* os) { *os << line_of(c); }

class PoolMethodTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolMethodTest, ForwardMatchesReference) {
  const auto& c = GetParam();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(line_of(c) + " seed " + std::to_string(seed));
  const Shape in{1, 3, 7, 9};  // odd, H != W
  LayerHarness h(line_of(c), in, 2, seed, c.name == "stochastic" ? 0.f : -2.f, 2.f);
  StepContext eval;
  eval.training = false;
  h.forward(eval);
  for (int pl = 0; pl < h.n * in.c; ++pl)
    for (int oh = 0; oh < h.out.h; ++oh)
      for (int ow = 0; ow < h.out.w; ++ow) {
        std::vector<double> v;
        for (int kh = 0; kh < c.size; ++kh)
          for (int kw = 0; kw < c.size; ++kw) {
            const int ih = oh * c.stride - c.pad + kh, iw = ow * c.stride - c.pad + kw;
            if (ih >= 0 && ih < in.h && iw >= 0 && iw < in.w)
              v.push_back(h.x[(size_t(pl) * in.h + ih) * in.w + iw]);
          }
        const int divisor = c.include_pad ? c.size * c.size : int(v.size());
        const double want = reference_window(c.name, v, divisor, c.k, c.p, c.t, 0.5);
        const float got = h.y[(size_t(pl) * h.out.h + oh) * h.out.w + ow];
        ASSERT_NEAR(got, want, 1e-5 * (1 + std::abs(want))) << pl << "," << oh << "," << ow;
      }
}

TEST_P(PoolMethodTest, GradientsMatchFiniteDifferences) {
  const auto& c = GetParam();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE(line_of(c) + " seed " + std::to_string(seed));
  for (bool training : {true, false}) {
    LayerHarness h(line_of(c), {1, 2, 6, 7}, 2, seed, c.name == "stochastic" ? 0.1f : -2.f, 2.f);
    StepContext ctx;
    ctx.training = training;
    ctx.seed = seed;
    ctx.step = 3;
    GradCheckOptions opt;
    opt.step = 1e-3f;
    // Selections (max, top-k, sampling) change only at kinks, which the checker skips.
    EXPECT_GT(check_gradients(h, ctx, opt), h.x.size() / 2) << "training=" << training;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Methods, PoolMethodTest,
    ::testing::Values(PoolCase{"max", "max", 2, 2, 0}, PoolCase{"max", "max", 3, 2, 1},
                      PoolCase{"avg", "avg", 3, 2, 1},
                      PoolCase{"avg include_pad=0", "avg", 3, 2, 1, 2, 2, 0, false},
                      PoolCase{"min", "min", 3, 1, 0}, PoolCase{"lp p=3", "lp", 2, 2, 0, 2, 3},
                      PoolCase{"lp p=3", "lp", 3, 3, 0, 2, 3},  // the 3x3 fast paths' p = 3
                      PoolCase{"lp p=3", "lp", 3, 2, 0, 2, 3},
                      PoolCase{"lp", "lp", 3, 2, 1}, PoolCase{"mixed", "mixed", 3, 2, 0},
                      PoolCase{"stochastic", "stochastic", 2, 2, 0},
                      PoolCase{"stochastic", "stochastic", 3, 2, 1},
                      PoolCase{"avgtopk", "avgtopk", 2, 2, 0},
                      PoolCase{"avgtopk k=3", "avgtopk", 3, 2, 1, 3},
                      PoolCase{"tmaxavg k=3 t=1.2", "tmaxavg", 3, 2, 0, 3, 2, 1.2},
                      PoolCase{"softpool", "softpool", 3, 2, 1}),
    [](const auto& info) {
      std::string s = info.param.method + "_" + std::to_string(info.param.size) + "s" +
                      std::to_string(info.param.stride) + "p" + std::to_string(info.param.pad);
      for (auto& ch : s)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return s;
    });

std::vector<float> run(const std::string& line, const std::vector<float>& x, Shape in,
                       bool training = false, uint64_t step = 1) {
  LayerHarness h(line, in, 1, 7);
  h.x = x;
  StepContext ctx;
  ctx.training = training;
  ctx.step = step;
  h.forward(ctx);
  return h.y;
}

std::vector<float> random_input(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> x(n);
  fill_uniform(x, rng, -1.f, 1.f);
  return x;
}

TEST(PoolIdentities, AvgTopKWithK1IsMax) {
  const Shape in{1, 4, 8, 6};
  const auto x = random_input(in.numel(), fresh_seed());
  EXPECT_EQ(run("pool avgtopk k=1 size=3 stride=2", x, in), run("pool max size=3 stride=2", x, in));
}

TEST(PoolIdentities, AvgTopKWithFullWindowIsAvg) {
  const Shape in{1, 4, 8, 6};
  const auto x = random_input(in.numel(), fresh_seed());
  const auto a = run("pool avgtopk k=9 size=3 stride=2", x, in);
  const auto b = run("pool avg size=3 stride=2", x, in);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-6);
}

TEST(PoolIdentities, MixedDrawsLambdaZeroOrOnePerStep) {
  const Shape in{1, 3, 6, 6};
  const auto x = random_input(in.numel(), fresh_seed());
  const auto mx = run("pool max", x, in), av = run("pool avg", x, in);
  int saw_max = 0, saw_avg = 0;
  for (uint64_t step = 1; step <= 40; ++step) {
    const auto m = run("pool mixed", x, in, true, step);
    if (m == mx)
      ++saw_max;
    else if (m == av)
      ++saw_avg;
    else
      ADD_FAILURE() << "step " << step << " is neither max nor avg";
  }
  EXPECT_GT(saw_max, 5);  // a fair coin over 40 steps
  EXPECT_GT(saw_avg, 5);
  const auto e = run("pool mixed", x, in, false);
  for (size_t i = 0; i < e.size(); ++i) EXPECT_NEAR(e[i], 0.5f * (mx[i] + av[i]), 1e-6);
}

TEST(PoolIdentities, LpApproachesMaxAsPGrows) {
  const Shape in{1, 2, 6, 6};
  auto x = random_input(in.numel(), fresh_seed());
  for (auto& v : x) v = std::abs(v) + 0.01f;
  const auto mx = run("pool max", x, in);
  double prev = 1e30;
  for (int p : {2, 8, 32, 256}) {
    const auto y = run("pool lp p=" + std::to_string(p), x, in);
    double err = 0;
    for (size_t i = 0; i < y.size(); ++i) err = std::max(err, double(y[i] - mx[i]) / mx[i]);
    EXPECT_LT(err, prev) << "p=" << p;
    prev = err;
  }
  EXPECT_LT(prev, 0.01);
}

TEST(PoolEdgeCases, TiesSendGradientToLowestIndex) {
  LayerHarness h("pool max size=2", {1, 1, 2, 2}, 1, 1);
  h.x = {0.5f, 0.5f, 0.5f, 0.5f};
  h.dy = {1.f};
  h.forward(StepContext{});
  h.backward(StepContext{});
  EXPECT_EQ(h.dx, (std::vector<float>{1.f, 0.f, 0.f, 0.f}));
  LayerHarness t("pool avgtopk k=2 size=2", {1, 1, 2, 2}, 1, 1);
  t.x = {0.1f, 0.7f, 0.7f, 0.7f};
  t.dy = {1.f};
  t.forward(StepContext{});
  t.backward(StepContext{});
  EXPECT_EQ(t.dx, (std::vector<float>{0.f, 0.5f, 0.5f, 0.f}));
}

TEST(PoolEdgeCases, NanPropagatesAndInfIsAValue) {
  const float nan = std::nanf(""), inf = INFINITY;
  const Shape in{1, 1, 2, 4};
  const std::vector<float> x = {1.f, nan, -inf, 2.f, 3.f, 0.f, -inf, -inf};
  const auto mx = run("pool max size=2", x, in);
  EXPECT_TRUE(std::isnan(mx[0]));
  EXPECT_EQ(mx[1], 2.f);
  EXPECT_TRUE(std::isnan(run("pool min size=2", x, in)[0]));
  EXPECT_TRUE(std::isnan(run("pool avgtopk k=2 size=2", x, in)[0]));
  EXPECT_EQ(run("pool avgtopk k=2 size=2", x, in)[1], -inf);  // (2 + -inf) / 2
  const std::vector<float> y = {inf, 1.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  EXPECT_EQ(run("pool max size=2", y, in)[0], inf);
}

TEST(PoolEdgeCases, LpAllZeroWindowGivesZeroValueAndGradient) {
  LayerHarness h("pool lp p=2 size=2", {1, 1, 2, 2}, 1, 1);
  h.x = {0.f, 0.f, 0.f, 0.f};
  h.forward(StepContext{});
  h.backward(StepContext{});
  EXPECT_EQ(h.y[0], 0.f);
  for (float g : h.dx) EXPECT_EQ(g, 0.f);
}

TEST(PoolEdgeCases, GlobalPoolingOverWholePlaneAndOnePixelPlanes) {
  const Shape in{1, 3, 5, 7};
  const auto x = random_input(in.numel(), fresh_seed());
  const auto g = run("pool avgtopk global k=3", x, in);
  ASSERT_EQ(g.size(), 3u);
  for (int c = 0; c < 3; ++c) {
    std::vector<float> plane(x.begin() + c * 35, x.begin() + (c + 1) * 35);
    std::sort(plane.begin(), plane.end(), std::greater<>());
    EXPECT_NEAR(g[c], (plane[0] + plane[1] + plane[2]) / 3, 1e-6);
  }
  const Shape one{1, 2, 1, 1};
  const std::vector<float> x1 = {0.25f, -3.f};
  EXPECT_EQ(run("pool max global", x1, one), x1);
  EXPECT_EQ(run("pool avg size=1", x1, one), x1);
}

TEST(PoolEdgeCases, BadConfigurationsAreRejectedAtBuildTime) {
  EXPECT_THROW(LayerHarness("pool avgtopk k=5 size=2", {1, 1, 4, 4}, 1, 1), Error);
  EXPECT_THROW(LayerHarness("pool max size=5", {1, 1, 4, 4}, 1, 1), Error);
  EXPECT_THROW(LayerHarness("pool maxx size=2", {1, 1, 4, 4}, 1, 1), Error);
  EXPECT_THROW(LayerHarness("pool max k=2", {1, 1, 4, 4}, 1, 1), Error);  // k is not max's
  EXPECT_THROW(LayerHarness("pool max size=2 pad=2", {1, 1, 4, 4}, 1, 1), Error);
  try {
    LayerHarness("pool avgtopk k=5 size=2", {1, 1, 4, 4}, 1, 1);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("larger than the window"), std::string::npos);
  }
}

TEST(PoolLearnedMixed, LambdaGradientMatchesFiniteDifference) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h("pool mixed learned=1 size=2", {1, 2, 4, 6}, 2, seed);
  h.param(0)[0] = 0.3f;
  EXPECT_EQ(check_gradients(h, StepContext{}, {1e-3f, 2e-2, 2e-3, false}), 1u);
}

}  // namespace

// The CUDA backward finds an input's place in each window arithmetically
// (pool_window_position); it must agree with the gather order on every geometry.
TEST(PoolGather, WindowPositionMatchesGatherOrder) {
  std::mt19937_64 rng(fresh_seed());
  for (int trial = 0; trial < 200; ++trial) {
    PoolGeom g{};
    g.C = 1;
    g.H = 1 + int(rng() % 9);
    g.W = 1 + int(rng() % 9);
    g.KH = 1 + int(rng() % std::min(g.H + 1, 4));
    g.KW = 1 + int(rng() % std::min(g.W + 1, 4));
    g.SH = 1 + int(rng() % 3);
    g.SW = 1 + int(rng() % 3);
    g.PH = int(rng() % (g.KH / 2 + 1));
    g.PW = int(rng() % (g.KW / 2 + 1));
    if (g.KH > g.H + 2 * g.PH || g.KW > g.W + 2 * g.PW) continue;
    g.OH = (g.H + 2 * g.PH - g.KH) / g.SH + 1;
    g.OW = (g.W + 2 * g.PW - g.KW) / g.SW + 1;
    std::vector<float> plane(g.H * g.W), v(g.KH * g.KW);
    std::vector<int> src(g.KH * g.KW);
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        const int cnt = pool_gather_window(g, plane.data(), oh, ow, v.data(), src.data());
        for (int h = 0; h < g.H; ++h)
          for (int w = 0; w < g.W; ++w) {
            const int pos = pool_window_position(g, oh, ow, h, w);
            const auto it = std::find(src.begin(), src.begin() + cnt, h * g.W + w);
            const int want = it == src.begin() + cnt ? -1 : int(it - src.begin());
            ASSERT_EQ(pos, want) << "trial " << trial << " window " << oh << "," << ow;
          }
      }
  }
}
