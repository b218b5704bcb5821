// Attention pooling on the CPU (kernels/attention_pool_math.cuh through
// src/cpu/attention_pool.cpp) against its definition in double precision, its start (weights 0:
// average pooling), NaN and infinite scores, and the layer's shape and refusals; the CUDA
// kernels are compared with this in tests/kernel_parity_attention_pool.cpp, gradients through a
// graph (finite differences) in the op registry suite.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/attention_pool.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct Reference {
  std::vector<double> y, dx, dw;
};

Reference reference(const std::vector<float>& w, int heads, const std::vector<float>& x,
                    const std::vector<float>& dy, int n, int c, int hw) {
  Reference r;
  r.y.assign(size_t(n) * heads * c, 0);
  r.dx.assign(x.size(), 0);
  r.dw.assign(w.size(), 0);
  for (int img = 0; img < n; ++img) {
    const float* xi = x.data() + size_t(img) * c * hw;
    for (int k = 0; k < heads; ++k) {
      std::vector<double> s(hw, 0), a(hw), g(hw, 0);
      double m = -INFINITY, den = 0;
      for (int i = 0; i < hw; ++i) {
        for (int ch = 0; ch < c; ++ch) s[i] += double(w[k * c + ch]) * xi[ch * hw + i];
        m = std::max(m, s[i]);
      }
      for (int i = 0; i < hw; ++i) den += a[i] = std::exp(s[i] - m);
      for (auto& v : a) v /= den;
      const float* d = dy.data() + (size_t(img) * heads + k) * c;
      for (int ch = 0; ch < c; ++ch)
        for (int i = 0; i < hw; ++i) {
          r.y[(size_t(img) * heads + k) * c + ch] += a[i] * xi[ch * hw + i];
          g[i] += double(d[ch]) * xi[ch * hw + i];
        }
      double dot = 0;
      for (int i = 0; i < hw; ++i) dot += a[i] * g[i];
      for (int i = 0; i < hw; ++i) {
        const double ds = a[i] * (g[i] - dot);
        for (int ch = 0; ch < c; ++ch) {
          r.dx[(size_t(img) * c + ch) * hw + i] += a[i] * d[ch] + double(w[k * c + ch]) * ds;
          r.dw[k * c + ch] += ds * xi[ch * hw + i];
        }
      }
    }
  }
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " " << i;
}

TEST(AttentionPool, MatchesTheDefinitionInDouble) {
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (const int heads : {1, 3})
    for (const int hw : {1, 16, 64})
      for (const int c : {5, 19}) {  // 19: the 8-map runs and a tail
        const int n = 3;
        std::vector<float> w(size_t(heads) * c), x(size_t(n) * c * hw), dy(size_t(n) * heads * c);
        for (auto& v : w) v = 2.f * u(rng);
        for (auto& v : x) v = u(rng);
        for (auto& v : dy) v = u(rng);
        const size_t rows = size_t(n) * heads * hw;
        std::vector<float> y(dy.size(), NAN), a(rows, NAN), dx(x.size(), NAN), dw(w.size(), NAN),
            scratch(attention_pool_scratch_floats(n, heads, c, hw), NAN);
        cpu::attention_pool_forward(w.data(), heads, x.data(), y.data(), a.data(), n, c, hw,
                                    scratch.data());
        cpu::attention_pool_backward(w.data(), heads, x.data(), a.data(), dy.data(), dx.data(),
                                     dw.data(), n, c, hw, scratch.data());
        const Reference r = reference(w, heads, x, dy, n, c, hw);
        expect_close(y, r.y, 1e-5, "y");
        expect_close(dx, r.dx, 1e-5, "dx");
        expect_close(dw, r.dw, 1e-4, "dw");
      }
}

TEST(AttentionPool, ZeroWeightsAverageThePositions) {
  const std::vector<float> w(2, 0.f), x = {1, 2, 3, 6, -1, 0, 1, 4};  // 2 maps of 4
  std::vector<float> y(2), a(4), scratch(attention_pool_scratch_floats(1, 1, 2, 4));
  cpu::attention_pool_forward(w.data(), 1, x.data(), y.data(), a.data(), 1, 2, 4, scratch.data());
  EXPECT_FLOAT_EQ(y[0], 3.f);
  EXPECT_FLOAT_EQ(y[1], 1.f);
  for (float v : a) EXPECT_FLOAT_EQ(v, 0.25f);
}

TEST(AttentionPool, InfiniteScoresShareTheWeightAndNaNSpreads) {
  const std::vector<float> w = {1.f};
  const std::vector<float> x = {INFINITY, 1.f, INFINITY, 2.f,   // image 0
                                NAN,      1.f, 2.f,      3.f};  // image 1
  std::vector<float> y(2), a(8), scratch(attention_pool_scratch_floats(2, 1, 1, 4));
  cpu::attention_pool_forward(w.data(), 1, x.data(), y.data(), a.data(), 2, 1, 4, scratch.data());
  EXPECT_EQ(a[0], 0.5f);
  EXPECT_EQ(a[1], 0.f);
  EXPECT_EQ(a[2], 0.5f);
  EXPECT_TRUE(std::isinf(y[0]));
  for (int i = 4; i < 8; ++i) EXPECT_TRUE(std::isnan(a[i]));
  EXPECT_TRUE(std::isnan(y[1]));
}

TEST(AttentionPool, TheLayerGivesEachHeadItsMapsAndRefusesInOneLine) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=3 height=4 width=5\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  const auto g = build("attention_pool heads=4");
  EXPECT_EQ(g->output_shape(1).c, 12);
  EXPECT_EQ(g->output_shape(1).h, 1);
  ASSERT_EQ(g->param_infos().size(), 1u);
  EXPECT_EQ(g->param_infos()[0].shape.n, 4);
  EXPECT_EQ(g->param_infos()[0].shape.c, 3);
  expect_layer_refusals("input channels=3 height=4 width=5",
                        {"attention_pool heads=0", "attention_pool heads=65",
                         "attention_pool heads=x", "attention_pool global", "attention_pool p=2"});
}

}  // namespace
