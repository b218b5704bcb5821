// Weighted pooling's math on the CPU (kernels/weighted_pool_math.cuh through
// src/cpu/weighted_pool.cpp) against a double-precision reference written here from the
// definition, and its layer's refusals; the CUDA kernels are compared with the CPU in
// tests/kernel_parity_weighted_pool.cpp, gradients through a graph in the op registry suite.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/weighted_pool.h"

using namespace convpool;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

struct Reference {
  std::vector<double> y, dx, dlogits;
};

// The definition, in double: window (oh, ow)'s valid positions k, softmax of their logits,
// y = sum s_k x_k; dx_k += s_k dy; dw_k += s_k (x_k - y) dy.
Reference reference(const PoolGeom& g, const std::vector<float>& logits, bool shared,
                    const std::vector<float>& x, const std::vector<float>& dy, int n) {
  const int K = g.KH * g.KW;
  Reference r;
  r.y.assign(size_t(n) * g.C * g.OH * g.OW, 0);
  r.dx.assign(x.size(), 0);
  r.dlogits.assign(logits.size(), 0);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < g.C; ++c)
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          std::vector<int> pos, at;
          for (int kh = 0; kh < g.KH; ++kh)
            for (int kw = 0; kw < g.KW; ++kw) {
              const int h = oh * g.SH - g.PH + kh, w = ow * g.SW - g.PW + kw;
              if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
              pos.push_back(kh * g.KW + kw);
              at.push_back(((i * g.C + c) * g.H + h) * g.W + w);
            }
          const size_t li = shared ? 0 : size_t(c) * K;
          double m = -1e300, den = 0;
          for (int k : pos) m = std::max(m, double(logits[li + k]));
          std::vector<double> s;
          for (int k : pos) s.push_back(std::exp(double(logits[li + k]) - m)), den += s.back();
          double y = 0;
          for (size_t j = 0; j < pos.size(); ++j) y += s[j] / den * x[at[j]];
          const size_t o = ((size_t(i) * g.C + c) * g.OH + oh) * g.OW + ow;
          r.y[o] = y;
          for (size_t j = 0; j < pos.size(); ++j) {
            r.dx[at[j]] += s[j] / den * dy[o];
            r.dlogits[li + pos[j]] += s[j] / den * (x[at[j]] - y) * dy[o];
          }
        }
  return r;
}

struct Outputs {
  std::vector<float> y, dx, dlogits;
};

Outputs run_cpu(const PoolGeom& g, const std::vector<float>& logits, bool shared,
            const std::vector<float>& x, const std::vector<float>& dy, int n) {
  Outputs r;
  r.y.assign(size_t(n) * g.C * g.OH * g.OW, kNan);  // poisoned
  r.dx.assign(x.size(), kNan);
  r.dlogits.assign(logits.size(), kNan);
  std::vector<float> scratch(weighted_pool_scratch_floats(g, shared), kNan);
  cpu::weighted_pool_forward(g, logits.data(), shared, x.data(), r.y.data(), n);
  cpu::weighted_pool_backward(g, logits.data(), shared, x.data(), r.y.data(), dy.data(),
                              r.dx.data(), r.dlogits.data(), n, scratch.data());
  return r;
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want, double tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << "[" << i << "]";
}

struct Geo {
  int c, h, w, k, s, p;
};

// Whole, padded, overlapping, strided-past and partial-last windows, per channel and shared.
TEST(WeightedPool, MatchesTheDefinitionInDoubleAtEveryGeometry) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f), lu(-3.f, 3.f);
  for (const Geo& q : {Geo{3, 8, 8, 2, 2, 0}, Geo{2, 7, 9, 3, 2, 1}, Geo{2, 6, 5, 3, 1, 1},
                       Geo{2, 9, 7, 2, 3, 0}, Geo{1, 5, 5, 5, 1, 2}, Geo{4, 13, 11, 8, 4, 4},
                       Geo{3, 300, 3, 2, 1, 1}, Geo{2, 3, 600, 3, 2, 1}, Geo{2, 9, 8, 2, 2, 1},
                       Geo{2, 5, 700, 3, 3, 1}})
    for (bool shared : {false, true}) {
      const PoolGeom g = make_pool_geom(q.c, q.h, q.w, q.k, q.k, q.s, q.s, q.p, q.p, false, false);
      const int n = 2;
      std::vector<float> logits(size_t(shared ? 1 : q.c) * q.k * q.k),
          x(size_t(n) * q.c * q.h * q.w), dy(size_t(n) * q.c * g.OH * g.OW);
      for (auto& v : logits) v = lu(rng);
      for (size_t i = 0; i < x.size(); ++i) x[i] = i % 5 == 0 ? 0.5f : u(rng);  // with ties
      for (auto& v : dy) v = u(rng);
      const Outputs got = run_cpu(g, logits, shared, x, dy, n);
      const Reference want = reference(g, logits, shared, x, dy, n);
      const std::string what = std::to_string(q.k) + "x" + std::to_string(q.k) + "/" +
                               std::to_string(q.s) + " pad " + std::to_string(q.p) + " on " +
                               std::to_string(q.h) + "x" + std::to_string(q.w) +
                               (shared ? " shared" : "");
      expect_near(got.y, want.y, 1e-5, what + " y");
      expect_near(got.dx, want.dx, 1e-5, what + " dx");
      expect_near(got.dlogits, want.dlogits, 1e-4, what + " dlogits");
    }
}

// y and dx of the CPU's paths against the per-window math computed window by window here,
// bit for bit, with NaN, infinities and signed zeros among x and dy.
void expect_per_window_bits(const PoolGeom& g, bool shared, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.f, 1.f), lu(-3.f, 3.f);
  const float special[] = {kNan, kInf, -kInf, -0.f, 0.f};
  const int n = 2, K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W;
  std::vector<float> logits(size_t(shared ? 1 : g.C) * K), x(size_t(n) * g.C * in_plane),
      dy(size_t(n) * g.C * g.OH * g.OW);
  for (auto& v : logits) v = lu(rng);
  for (auto& v : x) v = rng() % 29 == 0 ? special[rng() % 5] : u(rng);
  for (auto& v : dy) v = rng() % 31 == 0 ? special[1 + rng() % 4] : u(rng);
  const Outputs got = run_cpu(g, logits, shared, x, dy, n);
  std::vector<float> y(got.y.size()), dx(x.size(), 0.f);
  float e[kWeightedPoolMaxWindow];
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < g.C; ++c) {
      const size_t p = size_t(i) * g.C + c;
      const float* plane = x.data() + p * in_plane;
      const float* lg = logits.data() + (shared ? 0 : size_t(c) * K);
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          const PoolWindowRect r = pool_window_rect(g, oh, ow);
          const float den = weighted_pool_weights(g, r, lg, e);
          const size_t o = (p * g.OH + oh) * g.OW + ow;
          y[o] = weighted_pool_output(g, r, plane, e, den);
          int j = 0;
          for (int h = r.h_lo; h < r.h_hi; ++h)
            for (int w = r.w_lo; w < r.w_hi; ++w, ++j)
              dx[p * in_plane + size_t(h) * g.W + w] += weighted_pool_input_grad(e[j], den, dy[o]);
        }
    }
  const std::string what = std::to_string(g.KH) + "x" + std::to_string(g.KW) + "/" +
                           std::to_string(g.SH) + "," + std::to_string(g.SW) + " pad " +
                           std::to_string(g.PH) + "," + std::to_string(g.PW) + " on " +
                           std::to_string(g.H) + "x" + std::to_string(g.W);
  ASSERT_EQ(std::memcmp(got.y.data(), y.data(), 4 * y.size()), 0) << what << " y";
  ASSERT_EQ(std::memcmp(got.dx.data(), dx.data(), 4 * dx.size()), 0) << what << " dx";
}

// The CPU's paths (phase-split rows, weight tables by window shape, padded edges, the
// disjoint windows' backward) at geometries that overlap, pad, skip elements and leave row
// tails; and, called directly, rectangular windows and strides the layer does not make.
TEST(WeightedPool, CpuPathsAreThePerWindowMathBitForBit) {
  std::mt19937_64 rng(11);
  for (const Geo& q : {Geo{2, 5, 600, 3, 2, 1}, Geo{2, 4, 530, 2, 1, 1}, Geo{1, 9, 800, 3, 3, 0},
                       Geo{2, 7, 9, 3, 2, 1}, Geo{2, 9, 8, 2, 3, 1}, Geo{1, 12, 13, 5, 2, 2},
                       Geo{2, 30, 30, 3, 3, 0}, Geo{2, 32, 32, 3, 2, 1}, Geo{2, 11, 13, 2, 2, 1},
                       Geo{1, 10, 21, 4, 5, 2}, Geo{2, 17, 19, 3, 1, 1}})
    for (bool shared : {false, true})
      expect_per_window_bits(
          make_pool_geom(q.c, q.h, q.w, q.k, q.k, q.s, q.s, q.p, q.p, false, false), shared, rng);
  for (const PoolGeom& g : {make_pool_geom(1, 3, 7, 3, 2, 1, 4, 0, 0, false, false),
                            make_pool_geom(2, 6, 10, 3, 2, 1, 4, 1, 1, false, false),
                            make_pool_geom(2, 9, 11, 2, 3, 3, 1, 1, 0, false, false)})
    expect_per_window_bits(g, false, rng);
}

TEST(WeightedPool, ZeroLogitsAverageTheValidElements) {
  const PoolGeom g = make_pool_geom(1, 3, 3, 3, 3, 1, 1, 1, 1, false, false);
  std::vector<float> logits(9, 0.f), x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y(9, kNan);
  cpu::weighted_pool_forward(g, logits.data(), false, x.data(), y.data(), 1);
  EXPECT_FLOAT_EQ(y[0], (1 + 2 + 4 + 5) / 4.f);  // corner: 4 valid elements
  EXPECT_FLOAT_EQ(y[4], 5.f);                    // whole window: the mean of all 9
  EXPECT_FLOAT_EQ(y[5], (2 + 3 + 5 + 6 + 8 + 9) / 6.f);
}

// A padded position's large logit takes no weight: the valid positions' weights are taken
// relative to their own largest logit, so they neither underflow to 0/0 nor lose the window.
TEST(WeightedPool, StaysAConvexCombinationWhenThePaddingHoldsTheLargeLogits) {
  const PoolGeom g = make_pool_geom(1, 2, 2, 3, 3, 1, 1, 1, 1, false, false);
  std::vector<float> logits(9, 200.f), x = {1, 2, 3, 4}, y(4, kNan);
  logits[8] = -200.f, logits[7] = -150.f;  // the bottom-right positions, valid at (0, 0)
  logits[5] = -180.f, logits[4] = -190.f;
  cpu::weighted_pool_forward(g, logits.data(), false, x.data(), y.data(), 1);
  for (float v : y) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GE(v, 1.f);
    EXPECT_LE(v, 4.f);
  }
  // Window (0, 0): x(1, 0), at position 7, has logit -150, the other valid ones far below.
  EXPECT_FLOAT_EQ(y[0], 3.f);
}

TEST(WeightedPool, NanAndInfinityStayInTheirWindows) {
  const PoolGeom g = make_pool_geom(1, 4, 4, 2, 2, 2, 2, 0, 0, false, false);
  std::vector<float> logits = {0.1f, -0.2f, 0.3f, 0.f}, x(16, 1.f), y(4, kNan), dy(4, 1.f),
                     dx(16, kNan), dl(4, kNan);
  x[0] = kNan;   // window (0, 0)
  x[3] = kInf;   // window (0, 1)
  cpu::weighted_pool_forward(g, logits.data(), false, x.data(), y.data(), 1);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], kInf);
  EXPECT_FLOAT_EQ(y[2], 1.f);
  EXPECT_FLOAT_EQ(y[3], 1.f);
  cpu::weighted_pool_backward(g, logits.data(), false, x.data(), y.data(), dy.data(), dx.data(),
                              dl.data(), 1, nullptr);
  for (float v : dx) EXPECT_TRUE(std::isfinite(v));  // dx is s_k dy: finite whatever x is
  EXPECT_TRUE(std::isnan(dl[0]));                     // the NaN reaches the logits' gradient
}

// The logit gradient is summed in one order whatever the thread count.
TEST(WeightedPool, LogitGradientIsTheSameBitsOnOneAndTwoThreads) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int n = 5;
  for (const PoolGeom& g : {make_pool_geom(6, 17, 15, 3, 3, 2, 2, 1, 1, false, false),
                            make_pool_geom(6, 17, 15, 3, 3, 3, 3, 1, 1, false, false)})
  for (bool shared : {false, true}) {
    std::vector<float> logits(size_t(shared ? 1 : g.C) * 9), x(size_t(n) * g.C * g.H * g.W),
        dy(size_t(n) * g.C * g.OH * g.OW);
    for (auto* v : {&logits, &x, &dy})
      for (auto& e : *v) e = u(rng);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const Outputs one = run_cpu(g, logits, shared, x, dy, n);
    omp_set_num_threads(2);
    const Outputs two = run_cpu(g, logits, shared, x, dy, n);
    omp_set_num_threads(threads);
    ASSERT_EQ(std::memcmp(one.dlogits.data(), two.dlogits.data(), 4 * one.dlogits.size()), 0);
    ASSERT_EQ(std::memcmp(one.dx.data(), two.dx.data(), 4 * one.dx.size()), 0);
  }
}

TEST(WeightedPool, TheLayerRefusesBadGeometry) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=2 height=6 width=6\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  EXPECT_NO_THROW(build("weighted_pool size=3 stride=2 pad=1 shared=1"));
  EXPECT_THROW(build("weighted_pool size=9"), Error);    // more than 64 positions
  EXPECT_THROW(build("weighted_pool size=7"), Error);    // larger than the input
  EXPECT_THROW(build("weighted_pool size=2 pad=2"), Error);
  EXPECT_THROW(build("weighted_pool shared=2"), Error);
  EXPECT_THROW(build("weighted_pool max"), Error);
}

}  // namespace
