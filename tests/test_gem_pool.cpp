// GeM pooling on the CPU (kernels/gem_pool_math.cuh through src/cpu/gem_pool.cpp) against its
// definition in double precision, its limits (p near 1 is average pooling, large p tends to max
// pooling), planes far from 1 in size, the clamp at eps, NaN and infinity, the CPU paths
// against the shared per-plane math bit for bit, and the layer's refusals; the CUDA
// kernels are compared with this in tests/kernel_parity_gem_pool.cpp, gradients through a
// graph (finite differences) in the op registry suite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/gem_pool.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct Reference {
  std::vector<double> y, dx, dtheta;
};

// The definition in double, unscaled: y = (mean z^p)^(1/p), z = max(x, eps), p = 1 + e^theta,
// and its derivatives.
Reference reference(const std::vector<float>& theta, bool shared, float eps,
                    const std::vector<float>& x, const std::vector<float>& dy, int n, int c,
                    int hw) {
  Reference r;
  r.y.resize(size_t(n) * c);
  r.dx.resize(x.size());
  r.dtheta.assign(theta.size(), 0.0);
  for (int img = 0; img < n; ++img)
    for (int ch = 0; ch < c; ++ch) {
      const size_t q = size_t(img) * c + ch;
      const double e = 1 + std::exp(double(theta[shared ? 0 : ch]));
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
      r.dtheta[shared ? 0 : ch] += (e - 1) * dy[q] * y * (ml / (e * m) - std::log(m) / (e * e));
    }
  return r;
}

// Relative to each value and to the largest, with a floor for the parameter's gradient on
// one-position planes (0 exactly: y does not depend on p there).
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], rel * (std::fabs(want[i]) + 1e-3 * scale) + 1e-7)
        << what << " " << i;
}

struct GemRun {
  std::vector<float> y, dx, dtheta;
};
GemRun run_cpu(const std::vector<float>& theta, bool shared, float eps, const std::vector<float>& x,
               const std::vector<float>& dy, int n, int c, int hw) {
  GemRun r{std::vector<float>(dy.size(), NAN), std::vector<float>(x.size(), NAN),
           std::vector<float>(theta.size(), NAN)};
  std::vector<float> scratch(gem_pool_scratch_floats(n, c), NAN);
  cpu::gem_pool_forward(theta.data(), shared, eps, x.data(), r.y.data(), n, c, hw);
  cpu::gem_pool_backward(theta.data(), shared, eps, x.data(), r.y.data(), dy.data(), r.dx.data(),
                         r.dtheta.data(), n, c, hw, scratch.data());
  return r;
}

TEST(GemPool, MatchesTheDefinitionInDouble) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-0.5f, 2.f), du(-1.f, 1.f);
  for (const bool shared : {true, false})
    for (const int hw : {1, 9, 64, 1100}) {  // 1100: a plane in two runs
      const int n = 3, c = 4;
      // p = 2.7, and per channel 1.05, 3, 1.5 and 7.
      const std::vector<float> theta =
          shared ? std::vector<float>{gem_parameter(2.7f)}
                 : std::vector<float>{gem_parameter(1.05f), gem_parameter(3.f), gem_parameter(1.5f),
                                      gem_parameter(7.f)};
      std::vector<float> x(size_t(n) * c * hw), dy(size_t(n) * c);
      for (auto& v : x) v = u(rng);  // about a fifth below eps: clamped
      for (auto& v : dy) v = du(rng);
      const GemRun got = run_cpu(theta, shared, 1e-6f, x, dy, n, c, hw);
      const Reference r = reference(theta, shared, 1e-6f, x, dy, n, c, hw);
      expect_close(got.y, r.y, 1e-5, "y");
      expect_close(got.dx, r.dx, 1e-4, "dx");
      expect_close(got.dtheta, r.dtheta, 1e-3, "dtheta");
    }
}

// Scaled by each plane's largest value, nothing overflows or underflows where the result
// itself fits: planes of 1e30 at p = 9 (z^p is 1e270), of eps = 1e-30 at p = 20 (z^p is
// 1e-600), and a dead plane of zeros.
TEST(GemPool, LargeAndTinyPlanesStayFinite) {
  const int hw = 4;
  const std::vector<float> x = {1e30f,  2e30f,  5e29f,  1e30f,  // huge
                                0.f,    0.f,    0.f,    0.f,    // dead: all at eps
                                1e-30f, 3e-30f, 2e-30f, 0.f};
  const std::vector<float> dy = {1.f, 1.f, 1.f};
  for (const float p : {9.f, 20.f}) {
    const std::vector<float> theta = {gem_parameter(p)};
    const GemRun got = run_cpu(theta, true, 1e-30f, x, dy, 1, 3, hw);
    const Reference r = reference(theta, true, 1e-30f, x, dy, 1, 3, hw);
    for (int q = 0; q < 3; ++q) EXPECT_TRUE(std::isfinite(got.y[q])) << p << " plane " << q;
    EXPECT_NEAR(got.y[1], 1e-30f, 1e-36f);  // every element at eps
    EXPECT_NEAR(
        got.y[0],
        std::pow((std::pow(1.0, p) + std::pow(2.0, p) + std::pow(0.5, p) + 1) / 4, 1 / double(p)) *
            1e30,
        1e24);
    for (float v : got.dx) EXPECT_TRUE(std::isfinite(v)) << p;
    EXPECT_TRUE(std::isfinite(got.dtheta[0])) << p;
    for (int i = 0; i < hw && p == 9.f; ++i)  // the huge plane in double: 1e270 fits
      EXPECT_NEAR(got.dx[i], r.dx[i], 1e-4 * std::fabs(r.dx[i])) << p << " dx " << i;
  }
}

TEST(GemPool, ALargeExponentTendsToTheMaxAndOneNearTheMean) {
  const std::vector<float> x = {0.5f, 2.f, 1.f, 0.25f};
  std::vector<float> y(1);
  const float near_one = gem_parameter(1.0001f), big = gem_parameter(60.f);
  cpu::gem_pool_forward(&near_one, true, 1e-6f, x.data(), y.data(), 1, 1, 4);
  EXPECT_NEAR(y[0], (0.5f + 2.f + 1.f + 0.25f) / 4, 1e-3f);
  cpu::gem_pool_forward(&big, true, 1e-6f, x.data(), y.data(), 1, 1, 4);
  EXPECT_NEAR(y[0], 2.f, 2.f * 0.03f);  // 2 * (1/4)^(1/60)
  EXPECT_LT(y[0], 2.f);
  // theta = -20: p is 1 in float, and the parameter still has its gradient, e^theta dy/dp.
  const GemRun low = run_cpu({-20.f}, true, 1e-6f, x, {1.f}, 1, 1, 4);
  const Reference r = reference({-20.f}, true, 1e-6f, x, {1.f}, 1, 1, 4);
  EXPECT_NE(low.dtheta[0], 0.f);
  EXPECT_NEAR(low.dtheta[0], r.dtheta[0], 1e-3 * std::fabs(r.dtheta[0]));
}

TEST(GemPool, ClampsBelowEpsAndKeepsNaNAndInfinity) {
  const float theta = gem_parameter(2.f);
  // Plane 0: {-3, 0} (both at eps); plane 1: {NaN, 1}; plane 2: {+inf, 1}.
  const std::vector<float> x = {-3.f, 0.f, NAN, 1.f, INFINITY, 1.f};
  const std::vector<float> dy = {1.f, 1.f, 1.f};
  const GemRun got = run_cpu({theta}, true, 0.5f, x, dy, 1, 3, 2);
  EXPECT_FLOAT_EQ(got.y[0], 0.5f);
  EXPECT_TRUE(std::isnan(got.y[1]));
  EXPECT_EQ(got.y[2], INFINITY);
  EXPECT_EQ(got.dx[0], 0.f);
  EXPECT_EQ(got.dx[1], 0.f);
  EXPECT_TRUE(std::isnan(got.dx[2]));
  EXPECT_TRUE(std::isnan(got.dtheta[0]));
}

// The CPU's blocks, runs and vectors give each plane the shared math's bits (as the CUDA
// kernels compute it, one plane per thread): outputs, input gradients and parameter terms, at
// sizes that take one or many planes a block and planes in runs, with ties and NaN.
TEST(GemPool, CpuIsTheSharedMathBitForBit) {
  std::mt19937_64 rng(8);
  std::uniform_int_distribution<int> level(-4, 12);
  for (const int hw : {1, 7, 16, 64, 1024, 2500})
    for (const bool shared : {true, false}) {
      const int n = 3, c = 5;
      std::vector<float> theta(shared ? 1 : c), x(size_t(n) * c * hw), dy(size_t(n) * c);
      for (auto& v : theta) v = float(level(rng)) * 0.2f;
      for (auto& v : x) v = float(level(rng)) * 0.25f;  // ties, zeros, values below eps
      x[x.size() / 2] = NAN;
      for (auto& v : dy) v = float(level(rng)) * 0.1f;
      const GemRun got = run_cpu(theta, shared, 1e-6f, x, dy, n, c, hw);
      std::vector<float> term(size_t(n) * c);
      for (int q = 0; q < n * c; ++q) {
        const float t = theta[shared ? 0 : q % c], p = gem_exponent(t);
        const float* plane = x.data() + size_t(q) * hw;
        const float zmax = gem_max(plane, hw, 1e-6f), lmax = cp_log(zmax);
        const float m = gem_mean_power(plane, hw, p, 1e-6f, lmax);
        const float y = gem_output(zmax, m, p);
        ASSERT_EQ(std::memcmp(&got.y[q], &y, 4), 0) << hw << " plane " << q;
        term[q] =
            gem_parameter_grad(t, p, gem_power_log_sum(plane, hw, p, 1e-6f, lmax), hw, y, m, dy[q]);
        const float f = gem_input_factor(dy[q], m, p, hw);
        for (int i = 0; i < hw; ++i) {
          const float want = gem_input_grad(plane[i], gem_log(plane[i], 1e-6f), lmax, 1e-6f, p, f);
          const float have = got.dx[size_t(q) * hw + i];
          if (std::isnan(want) && std::isnan(have)) continue;
          ASSERT_EQ(std::memcmp(&have, &want, 4), 0) << hw << " plane " << q << " dx " << i;
        }
      }
      // The parameter's gradient: each channel's planes over the images in order, then the
      // channels in order when shared (as the kernels add them).
      std::vector<float> want(theta.size());
      float all = 0.f;
      for (int ch = 0; ch < c; ++ch) {
        float s = 0.f;
        for (int i = 0; i < n; ++i) s += term[size_t(i) * c + ch];
        if (shared)
          all += s;
        else
          want[size_t(ch)] = s;
      }
      if (shared) want[0] = all;
      for (size_t k = 0; k < want.size(); ++k) {
        if (std::isnan(want[k]) && std::isnan(got.dtheta[k])) continue;
        ASSERT_EQ(std::memcmp(&got.dtheta[k], &want[k], 4), 0) << hw << " dtheta " << k;
      }
    }
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
  EXPECT_EQ(g->param_infos()[0].name, "gem_pool1.log_p_minus_1");
  EXPECT_EQ(g->param_infos()[0].wd_mult, 0.f);
  expect_layer_refusals("input channels=3 height=4 width=4",
                        {"gem_pool p=0.5", "gem_pool p=1", "gem_pool p=65", "gem_pool p=x",
                         "gem_pool shared=2", "gem_pool eps=0", "gem_pool max", "gem_pool size=2"});
}

}  // namespace
