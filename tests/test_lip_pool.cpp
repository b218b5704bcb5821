// Local importance-based pooling's math on the CPU (kernels/lip_pool_math.cuh through
// src/cpu/lip_pool.cpp) against a double-precision reference written here from the definition,
// and its layer's refusals; the CUDA kernels are compared with the CPU in
// tests/kernel_parity_lip_pool.cpp, gradients through a graph in the op registry suite.
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
#include "cpu/lip_pool.h"
#include "cpu/pool.h"

using namespace convpool;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

struct Reference {
  std::vector<double> y, dx, dgamma;
};

// The definition, in double: window (oh, ow)'s valid elements x_k, logits l_k = gamma x_k,
// s = softmax(l), y = sum s_k x_k; dx_k += s_k dy + gamma s_k (x_k - y) dy;
// dgamma += s_k (x_k - y) x_k dy.
Reference reference(const PoolGeom& g, const std::vector<float>& gamma, const std::vector<float>& x,
                    const std::vector<float>& dy, int n) {
  Reference r;
  r.y.assign(size_t(n) * g.C * g.OH * g.OW, 0);
  r.dx.assign(x.size(), 0);
  r.dgamma.assign(gamma.size(), 0);
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < g.C; ++c)
      for (int oh = 0; oh < g.OH; ++oh)
        for (int ow = 0; ow < g.OW; ++ow) {
          std::vector<int> at;
          for (int kh = 0; kh < g.KH; ++kh)
            for (int kw = 0; kw < g.KW; ++kw) {
              const int h = oh * g.SH - g.PH + kh, w = ow * g.SW - g.PW + kw;
              if (h < 0 || h >= g.H || w < 0 || w >= g.W) continue;
              at.push_back(((i * g.C + c) * g.H + h) * g.W + w);
            }
          const double gm = gamma[c];
          double m = -1e300, den = 0;
          for (int a : at) m = std::max(m, gm * x[a]);
          std::vector<double> s;
          for (int a : at) s.push_back(std::exp(gm * x[a] - m)), den += s.back();
          double y = 0;
          for (size_t j = 0; j < at.size(); ++j) y += s[j] / den * x[at[j]];
          const size_t o = ((size_t(i) * g.C + c) * g.OH + oh) * g.OW + ow;
          r.y[o] = y;
          for (size_t j = 0; j < at.size(); ++j) {
            const double t = s[j] / den * (x[at[j]] - y) * dy[o];
            r.dx[at[j]] += s[j] / den * dy[o] + gm * t;
            r.dgamma[c] += t * x[at[j]];
          }
        }
  return r;
}

struct Outputs {
  std::vector<float> y, dx, dgamma;
};

Outputs run_cpu(const PoolGeom& g, const std::vector<float>& gamma, const std::vector<float>& x,
                const std::vector<float>& dy, int n) {
  Outputs r;
  r.y.assign(size_t(n) * g.C * g.OH * g.OW, kNan);  // poisoned
  r.dx.assign(x.size(), kNan);
  r.dgamma.assign(gamma.size(), kNan);
  cpu::lip_pool_forward(g, gamma.data(), x.data(), r.y.data(), n);
  cpu::lip_pool_backward(g, gamma.data(), x.data(), r.y.data(), dy.data(), r.dx.data(),
                         r.dgamma.data(), n);
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

// Whole, padded, overlapping, strided-past and partial-last windows; scales of both signs and
// large enough that a window's weights differ by orders of magnitude.
TEST(LipPool, MatchesTheDefinitionInDoubleAtEveryGeometry) {
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<float> u(-1.f, 1.f), gu(-4.f, 4.f);
  for (const Geo& q :
       {Geo{3, 8, 8, 2, 2, 0}, Geo{2, 7, 9, 3, 2, 1}, Geo{2, 6, 5, 3, 1, 1}, Geo{2, 9, 7, 2, 3, 0},
        Geo{1, 5, 5, 5, 1, 2}, Geo{4, 13, 11, 8, 4, 4}, Geo{2, 9, 8, 2, 2, 1}}) {
    const PoolGeom g = make_pool_geom(q.c, q.h, q.w, q.k, q.k, q.s, q.s, q.p, q.p, false, false);
    const int n = 2;
    std::vector<float> gamma(size_t(q.c)), x(size_t(n) * q.c * q.h * q.w),
        dy(size_t(n) * q.c * g.OH * g.OW);
    for (auto& v : gamma) v = gu(rng);
    for (size_t i = 0; i < x.size(); ++i) x[i] = i % 5 == 0 ? 0.5f : u(rng);  // with ties
    for (auto& v : dy) v = u(rng);
    const Outputs got = run_cpu(g, gamma, x, dy, n);
    const Reference want = reference(g, gamma, x, dy, n);
    const std::string what = std::to_string(q.k) + "x" + std::to_string(q.k) + "/" +
                             std::to_string(q.s) + " pad " + std::to_string(q.p);
    expect_near(got.y, want.y, 1e-5, what + " y");
    expect_near(got.dx, want.dx, 1e-5, what + " dx");
    expect_near(got.dgamma, want.dgamma, 1e-4, what + " dgamma");
  }
}

// gamma = 0 is average pooling without the padding; gamma = 1 is SoftPool.
TEST(LipPool, ScaleZeroIsAverageAndScaleOneIsSoftPool) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  const PoolGeom g = make_pool_geom(2, 6, 6, 3, 3, 2, 2, 1, 1, false, false);
  std::vector<float> x(72);
  for (auto& v : x) v = u(rng);
  std::vector<float> zero(2, 0.f), one(2, 1.f), y(18, kNan), want(18, kNan);
  cpu::lip_pool_forward(g, zero.data(), x.data(), y.data(), 1);
  PoolWindowParams avg;
  avg.method = PoolMethod::avg;
  cpu::pool_forward_generic(g, avg, PoolRng{}, 1, x.data(), want.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6) << i;
  cpu::lip_pool_forward(g, one.data(), x.data(), y.data(), 1);
  PoolWindowParams soft;
  soft.method = PoolMethod::softpool;
  cpu::pool_forward_generic(g, soft, PoolRng{}, 1, x.data(), want.data());
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6) << i;
}

TEST(LipPool, NanStaysInItsWindowAndAnInfiniteLogitTakesTheWeight) {
  const PoolGeom g = make_pool_geom(1, 4, 4, 2, 2, 2, 2, 0, 0, false, false);
  std::vector<float> gamma = {2.f}, x(16, 1.f), y(4, kNan);
  x[0] = kNan;    // window (0, 0)
  x[2] = kInf;    // window (0, 1): logit +inf takes all the weight
  x[10] = -kInf;  // window (1, 1): logit -inf weighs nothing
  cpu::lip_pool_forward(g, gamma.data(), x.data(), y.data(), 1);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], kInf);
  EXPECT_FLOAT_EQ(y[2], 1.f);
  EXPECT_FLOAT_EQ(y[3], 1.f);
  // Without the NaN and the +inf window, the -inf element adds nothing to the gradients.
  x[0] = 1.f, x[2] = 1.f;
  std::vector<float> dy = {0.5f, -1.f, 2.f, 1.f}, dx(16, kNan), dgamma(1, kNan);
  cpu::lip_pool_forward(g, gamma.data(), x.data(), y.data(), 1);
  cpu::lip_pool_backward(g, gamma.data(), x.data(), y.data(), dy.data(), dx.data(), dgamma.data(),
                         1);
  EXPECT_EQ(dx[10], 0.f);
  for (float v : dx) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(dgamma[0], 0.f);  // every window's values are equal: no gradient for the scale
}

TEST(LipPool, ScaleGradientIsTheSameBitsOnOneAndTwoThreads) {
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const PoolGeom g = make_pool_geom(6, 17, 15, 3, 3, 2, 2, 1, 1, false, false);
  const int n = 5;
  std::vector<float> gamma(size_t(g.C)), x(size_t(n) * g.C * g.H * g.W),
      dy(size_t(n) * g.C * g.OH * g.OW);
  for (auto* v : {&gamma, &x, &dy})
    for (auto& e : *v) e = u(rng);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Outputs one = run_cpu(g, gamma, x, dy, n);
  omp_set_num_threads(2);
  const Outputs two = run_cpu(g, gamma, x, dy, n);
  omp_set_num_threads(threads);
  ASSERT_EQ(std::memcmp(one.dgamma.data(), two.dgamma.data(), 4 * one.dgamma.size()), 0);
  ASSERT_EQ(std::memcmp(one.dx.data(), two.dx.data(), 4 * one.dx.size()), 0);
}

// The fast path (one exponential per element, shifted by the plane's largest logit) against
// the generic path (the CUDA kernels' twin) and the double reference: uniform values, ties,
// a wide range (windows 41 or more below the plane's largest logit take the generic math:
// without it their weights underflow to 0 / 0), planes with NaN or infinities (generic whole)
// activations sharing a large offset, and one far-off element a plane (the others' digits).
TEST(LipPool, TheFastPathAgreesWithTheGenericPathAndTheDefinition) {
  std::mt19937_64 rng(81);
  std::uniform_real_distribution<float> u(-1.f, 1.f), gu(-4.f, 4.f);
  enum Fill { uniform, ties, wide, special, offset, outlier };
  for (const Geo& q : {Geo{3, 8, 8, 2, 2, 0}, Geo{2, 9, 9, 3, 2, 1}, Geo{2, 6, 5, 3, 1, 1},
                       Geo{2, 9, 7, 2, 3, 0}, Geo{2, 11, 11, 3, 3, 0}, Geo{1, 13, 11, 8, 4, 4}})
    for (const Fill fill : {uniform, ties, wide, special, offset, outlier}) {
      const PoolGeom g = make_pool_geom(q.c, q.h, q.w, q.k, q.k, q.s, q.s, q.p, q.p, false, false);
      const int n = 3;
      std::vector<float> gamma(size_t(q.c)), x(size_t(n) * q.c * q.h * q.w),
          dy(size_t(n) * q.c * g.OH * g.OW);
      for (auto& v : gamma) v = gu(rng);
      gamma[0] = fill == wide ? 4.f : 0.f;  // average pooling (or the widest logits)
      for (size_t i = 0; i < x.size(); ++i) {
        const float v = u(rng);
        x[i] = fill == ties     ? std::round(2 * v)
               : fill == wide   ? 30 * v * v * v
               : fill == offset ? 1000 + v
                                : v;
      }
      if (fill == special) x[5] = kNan, x[x.size() / 2] = kInf, x.back() = -kInf;
      if (fill == outlier)  // one element a plane far off, its logit the plane's lowest
        for (size_t p = 0; p < size_t(n) * q.c; ++p)
          x[p * q.h * q.w + (p * 7) % (q.h * q.w)] = gamma[p % q.c] > 0 ? -1e5f : 1e5f;
      for (auto& v : dy) v = u(rng);
      const std::string what = std::to_string(q.k) + "x" + std::to_string(q.k) + "/" +
                               std::to_string(q.s) + " pad " + std::to_string(q.p) + " fill " +
                               std::to_string(int(fill));
      const Outputs fast = run_cpu(g, gamma, x, dy, n);
      Outputs gen;
      gen.y.assign(fast.y.size(), kNan);
      gen.dx.assign(x.size(), kNan);
      gen.dgamma.assign(gamma.size(), kNan);
      cpu::lip_pool_forward_generic(g, gamma.data(), x.data(), gen.y.data(), n);
      cpu::lip_pool_backward_generic(g, gamma.data(), x.data(), gen.y.data(), dy.data(),
                                     gen.dx.data(), gen.dgamma.data(), n);
      if (fill == special) {  // NaN where the generic path has it, the rest within rounding
        for (const auto& [a, b] : {std::pair{&fast.y, &gen.y}, {&fast.dx, &gen.dx}})
          for (size_t i = 0; i < a->size(); ++i) {
            const float u = (*a)[i], v = (*b)[i];
            ASSERT_EQ(std::isnan(u), std::isnan(v)) << what << " " << i;
            if (std::isinf(v)) {
              ASSERT_EQ(u, v) << what << " " << i;
            } else if (std::isfinite(v)) {
              ASSERT_NEAR(u, v, 1e-6 * (1 + std::fabs(v))) << what << " " << i;
            }
          }
        continue;
      }
      // Both paths within the same bounds of the definition: rounding of the logits (up to
      // 120 in the wide fill) and of x - y (x near 1000 in the offset fill) sets them.
      const double dx_tol = fill == offset ? 2e-4 : fill == wide ? 2e-5 : 2e-6;
      const double dgamma_tol = fill == offset ? 5e-5 : 1e-5;
      const Reference want = reference(g, gamma, x, dy, n);
      for (const Outputs* got : {&fast, static_cast<const Outputs*>(&gen)}) {
        const std::string path = what + (got == &fast ? " fast" : " generic");
        expect_near(got->y, want.y, 1e-6, path + " y");
        expect_near(got->dx, want.dx, dx_tol, path + " dx");
        expect_near(got->dgamma, want.dgamma, dgamma_tol, path + " dgamma");
      }
    }
}

TEST(LipPool, TheLayerRefusesBadGeometry) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=2 height=6 width=6\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  EXPECT_NO_THROW(build("lip_pool size=3 stride=2 pad=1"));
  EXPECT_THROW(build("lip_pool size=9"), Error);  // more than 64 positions
  EXPECT_THROW(build("lip_pool size=7"), Error);  // larger than the input
  EXPECT_THROW(build("lip_pool size=2 pad=2"), Error);
  EXPECT_THROW(build("lip_pool shared=1"), Error);
  EXPECT_THROW(build("lip_pool max"), Error);
}

}  // namespace
