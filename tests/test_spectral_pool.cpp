// Spectral pooling on the CPU (kernels/spectral_pool_math.cuh through src/cpu/spectral_pool.cpp)
// against its definition in double precision: the 2-D DFT of each plane, cropped to the
// output's frequencies (the even sizes' Nyquist terms halved), transformed back; its adjoint
// for the gradient; what it must keep (constants, band-limited cosines, the mean at 1 x 1,
// the plane at its own size); the float cosine; the layer's shape and refusals. The CUDA
// kernels are compared with this in tests/kernel_parity_spectral_pool.cpp, gradients through
// a graph (finite differences) in the op registry suite.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "cpu/spectral_pool.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

using cd = std::complex<double>;

// The kept frequencies of an output size o, as k in (-o/2, o/2], each with its weight.
std::vector<std::pair<int, double>> kept(int o) {
  std::vector<std::pair<int, double>> k;
  for (int f = -(o / 2); f <= o / 2; ++f)
    k.push_back({f, (o % 2 == 0 && std::abs(f) == o / 2) ? 0.5 : 1.0});
  return k;
}

// One plane by its spectrum: X = DFT(x), Y(k, l) = w_k w_l X(k mod H, l mod W), y = the
// inverse DFT of size h x w times hw / HW (so that a constant stays itself).
std::vector<double> reference(const float* x, int H, int W, int h, int w) {
  const double pi = 3.14159265358979323846;
  std::vector<double> y(size_t(h) * w, 0);
  for (const auto& [k, wk] : kept(h))
    for (const auto& [l, wl] : kept(w)) {
      cd X = 0;
      for (int r = 0; r < H; ++r)
        for (int c = 0; c < W; ++c)
          X += double(x[r * W + c]) *
               std::exp(cd(0, -2 * pi * (double(k) * r / H + double(l) * c / W)));
      for (int m = 0; m < h; ++m)
        for (int q = 0; q < w; ++q)
          y[size_t(m) * w + q] +=
              (wk * wl * X * std::exp(cd(0, 2 * pi * (double(k) * m / h + double(l) * q / w))))
                  .real() /
              (double(H) * W);
    }
  return y;
}

struct Pooled {
  std::vector<float> y, dx;
};

Pooled run(const std::vector<float>& x, const std::vector<float>& dy, size_t planes, int H, int W,
           int h, int w) {
  Pooled p{std::vector<float>(planes * h * w, NAN), std::vector<float>(x.size(), NAN)};
  std::vector<float> scratch(spectral_pool_scratch_floats(planes, H, W, h, w), NAN);
  cpu::spectral_pool_forward(x.data(), p.y.data(), planes, H, W, h, w, scratch.data());
  cpu::spectral_pool_backward(dy.data(), p.dx.data(), planes, H, W, h, w, scratch.data());
  return p;
}

TEST(SpectralPool, TheFloatCosineIsWithinTwoTenMillionths) {
  for (const int p : {1, 2, 3, 4, 7, 12, 64, 1000, 4096})
    for (int j = 0; j < p; ++j)
      ASSERT_NEAR(spectral_cos_turns(j, p), std::cos(2 * 3.14159265358979323846 * j / p), 2e-7)
          << j << "/" << p;
}

TEST(SpectralPool, MatchesTheCroppedSpectrumAndItsAdjointInDouble) {
  std::mt19937_64 rng(10);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int sizes[][4] = {{6, 6, 3, 3}, {8, 8, 4, 4}, {7, 5, 4, 3},     {5, 4, 2, 1},
                          {9, 9, 9, 9}, {8, 6, 8, 6}, {32, 32, 16, 16}, {16, 12, 11, 7}};
  for (const auto& s : sizes) {
    const int H = s[0], W = s[1], h = s[2], w = s[3];
    const size_t planes = 3;
    std::vector<float> x(planes * H * W), dy(planes * h * w);
    for (auto& v : x) v = u(rng);
    for (auto& v : dy) v = u(rng);
    const Pooled got = run(x, dy, planes, H, W, h, w);
    for (size_t p = 0; p < planes; ++p) {
      const std::vector<double> want = reference(x.data() + p * H * W, H, W, h, w);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got.y[p * h * w + i], want[i], 2e-6) << H << "x" << W << "->" << h << "x" << w;
    }
    // The adjoint: <dy, A x> = <A^T dy, x> for every x, so dx = A^T dy (in double).
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < dy.size(); ++i) lhs += double(dy[i]) * got.y[i];
    for (size_t i = 0; i < x.size(); ++i) rhs += double(got.dx[i]) * x[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs))) << H << "x" << W << "->" << h << "x" << w;
  }
}

TEST(SpectralPool, KeepsConstantsLowFrequenciesMeansAndItsOwnSize) {
  const int H = 12, W = 10;
  std::vector<float> x(size_t(H) * W), dy(64, 0.f);
  // A constant plane stays that constant at any size.
  std::fill(x.begin(), x.end(), 2.5f);
  for (const auto& [h, w] : {std::pair{6, 5}, std::pair{7, 3}, std::pair{1, 1}}) {
    const Pooled p = run(x, std::vector<float>(size_t(h) * w, 0.f), 1, H, W, h, w);
    for (float v : p.y) EXPECT_NEAR(v, 2.5f, 1e-5);
  }
  // cos(2 pi r / H) has one cycle: any output of height >= 3 samples the same cosine.
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) x[size_t(r) * W + c] = float(std::cos(2 * M_PI * r / H));
  const Pooled cosine = run(x, std::vector<float>(4 * 5, 0.f), 1, H, W, 4, 5);
  for (int m = 0; m < 4; ++m)
    for (int q = 0; q < 5; ++q)
      EXPECT_NEAR(cosine.y[size_t(m) * 5 + q], std::cos(2 * M_PI * m / 4), 1e-5);
  // 1 x 1 is the mean; H x W is the plane itself.
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  double mean = 0;
  for (auto& v : x) mean += v = u(rng);
  mean /= double(x.size());
  EXPECT_NEAR(run(x, {0.f}, 1, H, W, 1, 1).y[0], mean, 1e-6);
  const Pooled same = run(x, x, 1, H, W, H, W);
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(same.y[i], x[i], 2e-6) << i;
    EXPECT_NEAR(same.dx[i], x[i], 2e-6) << i;
  }
}

TEST(SpectralPool, NaNStaysInItsPlane) {
  std::vector<float> x(2 * 16, 1.f), dy(2 * 4, 1.f);
  x[5] = NAN;
  const Pooled p = run(x, dy, 2, 4, 4, 2, 2);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::isnan(p.y[size_t(i)]));
    EXPECT_NEAR(p.y[size_t(4 + i)], 1.f, 1e-6);
  }
}

TEST(SpectralPool, TheLayerTakesAFactorOrASizeAndRefusesInOneLine) {
  auto build = [](const std::string& line) {
    return Graph::build(
        parse_model_text("input channels=3 height=32 width=20\n" + line + "\n", "m"),
        GraphOptions{Device::cpu, 1, 0});
  };
  Shape s = build("spectral_pool")->output_shape(1);
  EXPECT_EQ(s.c, 3);
  EXPECT_EQ(s.h, 16);
  EXPECT_EQ(s.w, 10);
  s = build("spectral_pool factor=1.5")->output_shape(1);
  EXPECT_EQ(s.h, 22);
  EXPECT_EQ(s.w, 14);
  s = build("spectral_pool height=5 width=7")->output_shape(1);
  EXPECT_EQ(s.h, 5);
  EXPECT_EQ(s.w, 7);
  expect_layer_refusals(
      "input channels=3 height=32 width=20",
      {"spectral_pool factor=0.5", "spectral_pool height=33 width=4", "spectral_pool height=4",
       "spectral_pool factor=2 height=4 width=4", "spectral_pool size=2", "spectral_pool max",
       "spectral_pool height=0 width=3"});
}

// The seed CNN with spectral pooling in place of its two 2x2 max pools, one short epoch.
TEST(SpectralPool, TheSeedCnnLearnsWithItInPlaceOfItsPools) {
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  TempDir d;
  std::ifstream in(std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg");
  std::ostringstream model;
  int replaced = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("pool ", 0) == 0) line = "spectral_pool", ++replaced;
    model << line << "\n";
  }
  ASSERT_EQ(replaced, 2);
  std::ofstream(d.str("spectral.cfg")) << model.str();
  const CommandResult r = run_convpool("train --model " + d.str("spectral.cfg") + " --data " + dir +
                                       " --epochs 1 --limit-train 2000 --limit-test 1000 "
                                       "--device cpu --threads 2 --seed 1 --quiet --out " +
                                       d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = read_metrics_csv(d.str("run") + "/metrics.csv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0].test_accuracy, 0.15);  // chance 0.10; 5 standard errors above
}

}  // namespace
