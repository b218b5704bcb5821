// Compact bilinear pooling on the CPU, both forms (the Gram matrix, src/cpu/compact_bilinear.cpp,
// and the FFT, src/cpu/compact_bilinear_fft.cpp), against the paper's Tensor Sketch in double
// precision (two count sketches of every position, their circular convolution, summed), with
// its gradient derived from that form; the hashes (permutations, their inverses, balanced
// signs); the sketch's inner products against the bilinear ones; zero,
// NaN and infinite maps; and the layer's shape and refusals. The CUDA kernels are compared
// with this in tests/kernel_parity_compact_bilinear.cpp, gradients through a graph (finite
// differences) in the op registry suite.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/compact_bilinear.h"
#include "cpu/compact_bilinear_fft.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct Reference {
  std::vector<double> z, u, dx;
};

// The paper's form: p1 = CS1(x_l), p2 = CS2(x_l), z = sum_l p1 (*) p2 (circular convolution),
// then the signed root and L2 normalisation. dz_k's path back to x_il goes through p1[h1(i)]
// and p2[h2(i)]: dx_il = s1(i) sum_k dz_k p2[k - h1(i)] + s2(i) sum_k dz_k p1[k - h2(i)].
Reference reference(const CompactBilinearSketch& s, const std::vector<float>& x,
                    const std::vector<float>& du, int n, int c, int hw) {
  const int d = s.d;
  Reference r;
  r.z.assign(size_t(n) * d, 0);
  r.u.assign(size_t(n) * d, 0);
  r.dx.assign(x.size(), 0);
  auto h1 = [&](int i) { return int(sketch_bin(s.h1, uint32_t(i))); };
  auto h2 = [&](int i) { return int(sketch_bin(s.h2, uint32_t(i))); };
  auto s1 = [&](int i) { return double(sketch_sign(s.h1, uint32_t(i))); };
  auto s2 = [&](int i) { return double(sketch_sign(s.h2, uint32_t(i))); };
  const double eps = s.eps;
  for (int img = 0; img < n; ++img) {
    const float* xi = x.data() + size_t(img) * c * hw;
    std::vector<std::vector<double>> p1(hw, std::vector<double>(d, 0)), p2 = p1;
    double* z = r.z.data() + size_t(img) * d;
    for (int l = 0; l < hw; ++l) {
      for (int i = 0; i < c; ++i) {
        p1[l][h1(i)] += s1(i) * xi[i * hw + l];
        p2[l][h2(i)] += s2(i) * xi[i * hw + l];
      }
      for (int k = 0; k < d; ++k)
        for (int a = 0; a < d; ++a) z[k] += p1[l][a] * p2[l][((k - a) % d + d) % d];
    }
    std::vector<double> y(d);
    double sq = 0;
    for (int k = 0; k < d; ++k) {
      y[k] = (z[k] < 0 ? -1 : 1) * (std::sqrt(std::fabs(z[k]) + eps) - std::sqrt(eps));
      sq += y[k] * y[k];
    }
    const double norm = std::max(std::sqrt(sq), 1e-12);
    double* u = r.u.data() + size_t(img) * d;
    const float* g = du.data() + size_t(img) * d;
    double dot = 0;
    for (int k = 0; k < d; ++k) dot += (u[k] = y[k] / norm) * g[k];
    std::vector<double> dz(d);
    for (int k = 0; k < d; ++k)
      dz[k] = (g[k] - u[k] * dot) / norm * 0.5 / std::sqrt(std::fabs(z[k]) + eps);
    for (int l = 0; l < hw; ++l)
      for (int i = 0; i < c; ++i) {
        double a = 0, b = 0;
        for (int k = 0; k < d; ++k) {
          a += dz[k] * p2[l][((k - h1(i)) % d + d) % d];
          b += dz[k] * p1[l][((k - h2(i)) % d + d) % d];
        }
        r.dx[(size_t(img) * c + i) * hw + l] = s1(i) * a + s2(i) * b;
      }
  }
  return r;
}

struct Pooled {
  std::vector<float> u, z, norm, dx;
};

// The Gram form, or the FFT form with `fft`.
Pooled run(const CompactBilinearSketch& s, const std::vector<float>& x,
           const std::vector<float>& du, int n, int c, int hw, bool fft = false) {
  const size_t outs = size_t(n) * s.d;
  Pooled r{std::vector<float>(outs, NAN), std::vector<float>(outs, NAN), std::vector<float>(n, NAN),
           std::vector<float>(x.size(), NAN)};
  if (fft) {
    std::vector<float> scratch(compact_bilinear_fft_scratch_floats(n, s.d), NAN);
    cpu::compact_bilinear_fft_forward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), n, c, hw,
                                      scratch.data());
    cpu::compact_bilinear_fft_backward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(),
                                       du.data(), r.dx.data(), n, c, hw, scratch.data());
    return r;
  }
  std::vector<float> scratch(compact_bilinear_scratch_floats(n, c, hw, s.d), NAN);
  cpu::compact_bilinear_forward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), n, c, hw,
                                scratch.data());
  cpu::compact_bilinear_backward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), du.data(),
                                 r.dx.data(), n, c, hw, scratch.data());
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const char* what) {
  ASSERT_EQ(got.size(), want.size());
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (scale + std::fabs(want[i]))) << what << " " << i;
}

TEST(CompactBilinear, BothFormsMatchThePapersTensorSketchInDouble) {
  std::mt19937_64 rng(8);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  for (const bool fft : {false, true})
    for (const int d : {2, 4, 16, 64})
      for (const int c : {1, 3, 11})
        for (const int hw : {1, 7}) {
          if (c > d) continue;
          const int n = 3;
          const CompactBilinearSketch s = compact_bilinear_sketch(uint64_t(d + c), d, 1e-3f);
          std::vector<float> x(size_t(n) * c * hw), du(size_t(n) * d);
          for (auto& v : x) v = uni(rng);
          for (auto& v : du) v = uni(rng);
          const Pooled got = run(s, x, du, n, c, hw, fft);
          const Reference want = reference(s, x, du, n, c, hw);
          const char* form = fft ? "fft" : "gram";
          SCOPED_TRACE(std::string(form) + " d=" + std::to_string(d) + " c=" + std::to_string(c) +
                       " hw=" + std::to_string(hw));
          expect_close(got.z, want.z, 1e-5, "z");
          expect_close(got.u, want.u, 1e-5, "u");
          if (c > 1) {
            expect_close(got.dx, want.dx, 1e-4, "dx");
            continue;
          }
          // One channel: u has one non-zero bin, +-1, whose gradient the normalisation
          // removes: dx is 0, which the FFT form gives up to its rounding.
          for (const float v : got.dx) ASSERT_LE(std::fabs(v), 1e-5f);
        }
}

// Both forms at a wide head's shape (where auto takes the FFT) against the reference.
TEST(CompactBilinear, BothFormsMatchTheReferenceOnAWideHead) {
  std::mt19937_64 rng(10);
  std::uniform_real_distribution<float> uni(-1.f, 1.f);
  const int n = 2, c = 600, hw = 3, d = 1024;
  const CompactBilinearSketch s = compact_bilinear_sketch(7, d, 1e-3f);
  std::vector<float> x(size_t(n) * c * hw), du(size_t(n) * d);
  for (auto& v : x) v = uni(rng);
  for (auto& v : du) v = uni(rng);
  const Reference want = reference(s, x, du, n, c, hw);
  for (const bool fft : {false, true}) {
    SCOPED_TRACE(fft ? "fft" : "gram");
    const Pooled got = run(s, x, du, n, c, hw, fft);
    expect_close(got.z, want.z, 1e-5, "z");
    expect_close(got.u, want.u, 1e-5, "u");
    expect_close(got.dx, want.dx, 1e-4, "dx");
  }
}

TEST(CompactBilinear, EachHashIsAPermutationWithBalancedSigns) {
  for (const int d : {2, 8, 256, 4096})
    for (const uint64_t seed : {0ull, 1ull, 99ull}) {
      const CompactBilinearSketch s = compact_bilinear_sketch(seed, d, 1e-6f);
      for (const SketchHash* h : {&s.h1, &s.h2}) {
        std::set<uint32_t> bins;
        int negative = 0;
        for (int i = 0; i < d; ++i) {
          const uint32_t b = sketch_bin(*h, uint32_t(i));
          ASSERT_LT(b, uint32_t(d));
          bins.insert(b);
          EXPECT_EQ(sketch_channel(*h, b), uint32_t(i)) << d << " " << seed;
          negative += sketch_sign(*h, uint32_t(i)) < 0;
        }
        EXPECT_EQ(bins.size(), size_t(d));
        if (d >= 256) {
          EXPECT_GT(negative, d * 2 / 5);
          EXPECT_LT(negative, d * 3 / 5);
        }
      }
    }
  const CompactBilinearSketch a = compact_bilinear_sketch(1, 1024, 1e-6f),
                              b = compact_bilinear_sketch(2, 1024, 1e-6f);
  int same = 0;
  for (uint32_t i = 0; i < 64; ++i) same += sketch_bin(a.h1, i) == sketch_bin(b.h1, i);
  EXPECT_LT(same, 4);  // another seed, another hash
  int spread = 0;      // consecutive channels land far apart
  for (uint32_t i = 0; i + 1 < 64; ++i)
    spread += std::abs(int(sketch_bin(a.h1, i + 1)) - int(sketch_bin(a.h1, i))) > 16;
  EXPECT_GT(spread, 50);
}

// The sketch's point: <z(x), z(x')> estimates the bilinear <G, G'> (Gao et al., section 3.2).
TEST(CompactBilinear, SketchInnerProductsEstimateTheBilinearOnes) {
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> uni(0.f, 1.f);
  const int c = 32, hw = 16, d = 8192, n = 2;
  const CompactBilinearSketch s = compact_bilinear_sketch(5, d, 1e-6f);
  std::vector<float> x(size_t(n) * c * hw), du(size_t(n) * d, 0.f);
  for (auto& v : x) v = uni(rng);
  const Pooled r = run(s, x, du, n, c, hw);
  std::vector<double> g(size_t(n) * c * c, 0);
  for (int img = 0; img < n; ++img)
    for (int i = 0; i < c; ++i)
      for (int j = 0; j < c; ++j)
        for (int l = 0; l < hw; ++l)
          g[(size_t(img) * c + i) * c + j] +=
              double(x[(size_t(img) * c + i) * hw + l]) * x[(size_t(img) * c + j) * hw + l];
  auto dot = [](const double* a, const double* b, size_t m) {
    double t = 0;
    for (size_t i = 0; i < m; ++i) t += a[i] * b[i];
    return t;
  };
  const std::vector<double> z(r.z.begin(), r.z.end());
  for (const auto& [a, b] : {std::pair{0, 1}, std::pair{0, 0}}) {
    const double want = dot(&g[size_t(a) * c * c], &g[size_t(b) * c * c], size_t(c) * c),
                 got = dot(&z[size_t(a) * d], &z[size_t(b) * d], size_t(d));
    EXPECT_NEAR(got / want, 1.0, 0.05) << a << "," << b;
  }
}

TEST(CompactBilinear, ZeroMapsGiveZerosAndNaNStaysInItsImage) {
  for (const bool fft : {false, true}) {
    SCOPED_TRACE(fft ? "fft" : "gram");
    const int c = 4, hw = 3, d = 16, n = 3;
    const CompactBilinearSketch s = compact_bilinear_sketch(1, d, 1e-6f);
    std::vector<float> x(size_t(n) * c * hw, 0.5f), du(size_t(n) * d, 1.f);
    for (int i = 0; i < c * hw; ++i) x[size_t(i)] = 0.f;  // image 0: all zero
    x[size_t(c * hw) + 5] = NAN;                          // image 1: one NaN
    x[size_t(2 * c * hw)] = INFINITY;                     // image 2: +inf
    const Pooled r = run(s, x, du, n, c, hw, fft);
    for (int k = 0; k < d; ++k) {
      EXPECT_EQ(r.u[size_t(k)], 0.f);
      EXPECT_TRUE(std::isnan(r.u[size_t(d + k)]));
    }
    for (int i = 0; i < c * hw; ++i) {
      EXPECT_EQ(r.dx[size_t(i)], 0.f) << i;  // finite: the divisor's floor, times zero maps
      EXPECT_TRUE(std::isnan(r.dx[size_t(c * hw + i)])) << i;
    }
    EXPECT_TRUE(std::isnan(r.norm[1]));
    EXPECT_TRUE(std::isnan(r.norm[2]) || std::isinf(r.norm[2]));
  }
}

TEST(CompactBilinear, TheLayerGivesDFeaturesAndRefusesInOneLine) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=3 height=4 width=5\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  const auto g = build("compact_bilinear d=64");
  EXPECT_EQ(g->output_shape(1).c, 64);
  EXPECT_EQ(g->output_shape(1).h, 1);
  EXPECT_EQ(g->output_shape(1).w, 1);
  EXPECT_TRUE(g->param_infos().empty());
  EXPECT_EQ(build("compact_bilinear")->output_shape(1).c, 8192);
  // algo=auto takes the FFT form where it is cheaper: a wide head, not ResNet-20's.
  auto form = [&](int c, const std::string& line) {
    const auto g = Graph::build(
        parse_model_text(
            "input channels=" + std::to_string(c) + " height=4 width=4\n" + line + "\n", "m"),
        GraphOptions{Device::cpu, 1, 0});
    return g->layer(0).describe();
  };
  EXPECT_NE(form(64, "compact_bilinear").find("by the Gram matrix"), std::string::npos);
  EXPECT_NE(form(2048, "compact_bilinear").find("by FFT"), std::string::npos);
  EXPECT_NE(form(64, "compact_bilinear algo=fft").find("by FFT"), std::string::npos);
  EXPECT_NE(form(2048, "compact_bilinear algo=gram").find("by the Gram matrix"), std::string::npos);
  // The timed shapes (docs/benchmarks.md): ResNet-20's and VGG-BN's heads and C = 512 at 7 x 7
  // keep the Gram form; C = 768 at 7 x 7, C = 1024 at 4 x 4 and d = 2048 at 512 x 7 x 7 take
  // the FFT.
  EXPECT_FALSE(compact_bilinear_fft_pays(64, 64, 8192));
  EXPECT_FALSE(compact_bilinear_fft_pays(256, 16, 8192));
  EXPECT_FALSE(compact_bilinear_fft_pays(512, 49, 8192));
  EXPECT_TRUE(compact_bilinear_fft_pays(768, 49, 8192));
  EXPECT_TRUE(compact_bilinear_fft_pays(1024, 16, 8192));
  EXPECT_TRUE(compact_bilinear_fft_pays(512, 49, 2048));
  expect_layer_refusals(
      "input channels=3 height=4 width=5",
      {"compact_bilinear d=1000", "compact_bilinear d=2", "compact_bilinear d=0",
       "compact_bilinear d=x", "compact_bilinear seed=-1", "compact_bilinear eps=0",
       "compact_bilinear global", "compact_bilinear p=2", "compact_bilinear algo=dft",
       "compact_bilinear algo="});
}

}  // namespace
