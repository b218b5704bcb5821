// GeM pooling on the CPU (kernels/gem_pool_math.cuh through src/cpu/gem_pool.cpp) against its
// definition in double precision, its limits (p = 1 is average pooling, large p tends to max
// pooling), the clamp at eps, the exponent's floor at 1, and the layer's refusals; the CUDA
// kernels are compared with this in tests/kernel_parity_gem_pool.cpp, gradients through a
// graph (finite differences) in the op registry suite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/gem_pool.h"

using namespace convpool;

namespace {

struct Reference {
  std::vector<double> y, dx, dp;
};

// The definition in double: y = (mean z^p)^(1/p), z = max(x, eps), and its derivatives.
Reference reference(const std::vector<float>& p, bool shared, float eps,
                    const std::vector<float>& x, const std::vector<float>& dy, int n, int c,
                    int hw) {
  Reference r;
  r.y.resize(size_t(n) * c);
  r.dx.resize(x.size());
  r.dp.assign(p.size(), 0.0);
  for (int img = 0; img < n; ++img)
    for (int ch = 0; ch < c; ++ch) {
      const size_t q = size_t(img) * c + ch;
      const double param = p[shared ? 0 : ch], e = std::max(param, 1.0);
      double m = 0, ml = 0;
      for (int i = 0; i < hw; ++i) {
        const double z = std::max(double(x[q * hw + i]), double(eps));
        m += std::pow(z, e) / hw;
        ml += std::pow(z, e) * std::log(z) / hw;
      }
      const double y = std::pow(m, 1 / e);
      r.y[q] = y;
      for (int i = 0; i < hw; ++i) {
        const double v = x[q * hw + i];
        r.dx[q * hw + i] = v < eps ? 0 : dy[q] * y / (m * hw) * std::pow(v, e - 1);
      }
      if (param >= 1) r.dp[shared ? 0 : ch] += dy[q] * y * (ml / (e * m) - std::log(m) / (e * e));
    }
  return r;
}

// Relative to each value and to the largest, with a floor for the exponent's gradient on
// one-position planes (0 exactly, a cancellation of rounded logs in float).
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * (std::fabs(want[i]) + 1e-3 * scale) + 1e-7)
        << what << " " << i;
}

TEST(GemPool, MatchesTheDefinitionInDouble) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 2.f), du(-1.f, 1.f);
  for (const bool shared : {true, false})
    for (const int hw : {1, 9, 64}) {
      const int n = 3, c = 4;
      std::vector<float> p =
          shared ? std::vector<float>{2.7f} : std::vector<float>{1.f, 3.f, 0.6f, 6.f};
      std::vector<float> x(size_t(n) * c * hw), dy(size_t(n) * c);
      for (auto& v : x) v = u(rng);  // about a fifth below eps: clamped
      for (auto& v : dy) v = du(rng);
      std::vector<float> y(dy.size(), NAN), dx(x.size(), NAN), dp(p.size(), NAN),
          scratch(gem_pool_scratch_floats(n, c), NAN);
      cpu::gem_pool_forward(p.data(), shared, 1e-6f, x.data(), y.data(), n, c, hw);
      cpu::gem_pool_backward(p.data(), shared, 1e-6f, x.data(), y.data(), dy.data(), dx.data(),
                             dp.data(), n, c, hw, scratch.data());
      const Reference r = reference(p, shared, 1e-6f, x, dy, n, c, hw);
      expect_close(y, r.y, 1e-5, "y");
      expect_close(dx, r.dx, 1e-4, "dx");
      expect_close(dp, r.dp, 1e-3, "dp");
      if (!shared) {
        EXPECT_EQ(dp[2], 0.f) << "p = 0.6 is used as 1: no gradient";
      }
    }
}

TEST(GemPool, OneIsTheMeanAndALargeExponentTendsToTheMax) {
  const std::vector<float> x = {0.5f, 2.f, 1.f, 0.25f};
  std::vector<float> y(1);
  const float one = 1.f, big = 60.f;
  cpu::gem_pool_forward(&one, true, 1e-6f, x.data(), y.data(), 1, 1, 4);
  EXPECT_FLOAT_EQ(y[0], (0.5f + 2.f + 1.f + 0.25f) / 4);
  cpu::gem_pool_forward(&big, true, 1e-6f, x.data(), y.data(), 1, 1, 4);
  EXPECT_NEAR(y[0], 2.f, 2.f * 0.03f);  // 2 * (1/4)^(1/60)
  EXPECT_LT(y[0], 2.f);
}

TEST(GemPool, ClampsBelowEpsAndKeepsNaN) {
  const float p = 2.f;
  const std::vector<float> x = {-3.f, 0.f, NAN, 1.f};  // plane 0: {-3, 0}; plane 1: {NaN, 1}
  std::vector<float> y(2), dx(4), dp(1), scratch(gem_pool_scratch_floats(1, 2));
  const std::vector<float> dy = {1.f, 1.f};
  cpu::gem_pool_forward(&p, true, 0.5f, x.data(), y.data(), 1, 2, 2);
  EXPECT_FLOAT_EQ(y[0], 0.5f);  // both clamped to eps
  EXPECT_TRUE(std::isnan(y[1]));
  cpu::gem_pool_backward(&p, true, 0.5f, x.data(), y.data(), dy.data(), dx.data(), dp.data(), 1, 2,
                         2, scratch.data());
  EXPECT_EQ(dx[0], 0.f);
  EXPECT_EQ(dx[1], 0.f);
  EXPECT_TRUE(std::isnan(dx[2]));
  EXPECT_TRUE(std::isnan(dp[0]));
}

TEST(GemPool, TheLayerSaysWhatItTakesInOneLine) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=3 height=4 width=4\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  const auto g = build("gem_pool p=2 shared=0");
  EXPECT_EQ(g->output_shape(1).c, 3);
  EXPECT_EQ(g->output_shape(1).h, 1);
  ASSERT_EQ(g->param_infos().size(), 1u);
  EXPECT_EQ(g->param_infos()[0].shape.n, 3);  // one exponent per channel
  EXPECT_EQ(g->param_infos()[0].wd_mult, 0.f);
  for (const char* bad : {"gem_pool p=0.5", "gem_pool p=x", "gem_pool shared=2", "gem_pool eps=0",
                          "gem_pool max", "gem_pool size=2"}) {
    try {
      build(bad);
      ADD_FAILURE() << bad << ": built";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_NE(what.find("m:2"), std::string::npos) << what;
    }
  }
}

}  // namespace
