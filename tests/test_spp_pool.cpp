// Spatial pyramid pooling on the CPU (kernels/spp_pool_math.cuh through src/cpu/spp_pool.cpp)
// against its definition (PyTorch's adaptive pooling bins) computed directly, with planes
// that the levels divide and do not, levels finer than the plane, ties and NaN; the gradient
// against the definition's; and the layer's shape and refusals. The CUDA kernels are compared
// with this in tests/kernel_parity_spp_pool.cpp, gradients through a graph (finite
// differences) in the op registry suite.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cpu/spp_pool.h"
#include "cpu/spp_pool_vlad.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

SppLevels levels(std::initializer_list<int> cells, bool max) {
  SppLevels s;
  for (int L : cells) s.cells[s.count++] = L;
  s.max = max;
  return s;
}

// Direct: for each image, level, channel and cell (floor(i n / L) to ceil((i + 1) n / L)),
// in the output's order; the gradient by adding each cell's share where it goes.
void reference(const SppLevels& s, const std::vector<float>& x, const std::vector<float>& dy, int n,
               int c, int h, int w, std::vector<double>& y, std::vector<double>& dx) {
  y.clear();
  dx.assign(x.size(), 0);
  size_t o = 0;
  for (int img = 0; img < n; ++img)
    for (int t = 0; t < s.count; ++t) {
      const int L = s.cells[t];
      for (int ch = 0; ch < c; ++ch)
        for (int a = 0; a < L; ++a)
          for (int b = 0; b < L; ++b, ++o) {
            const int r0 = int(std::floor(double(a) * h / L)),
                      r1 = int(std::ceil(double(a + 1) * h / L));
            const int c0 = int(std::floor(double(b) * w / L)),
                      c1 = int(std::ceil(double(b + 1) * w / L));
            const size_t plane = (size_t(img) * c + ch) * h * w;
            double v = s.max ? -INFINITY : 0;
            size_t at = 0;
            bool nan = false;
            for (int r = r0; r < r1; ++r)
              for (int q = c0; q < c1; ++q) {
                const double e = x[plane + r * w + q];
                if (s.max) {
                  if (std::isnan(e) && !nan) nan = true, v = e, at = plane + r * w + q;
                  if (!nan && (e > v || (r == r0 && q == c0))) v = e, at = plane + r * w + q;
                } else {
                  v += e;
                }
              }
            const int area = (r1 - r0) * (c1 - c0);
            y.push_back(s.max ? v : v / area);
            if (s.max)
              dx[at] += dy[o];
            else
              for (int r = r0; r < r1; ++r)
                for (int q = c0; q < c1; ++q) dx[plane + r * w + q] += dy[o] / area;
          }
    }
}

TEST(SppPool, MatchesTheAdaptiveBinsDirectly) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const int shapes[][2] = {{8, 8}, {7, 5}, {4, 4}, {3, 2}, {1, 1}, {13, 9}};
  for (const bool max : {true, false})
    for (const auto& hw : shapes)
      for (const SppLevels& s : {levels({1, 2, 4}, max), levels({3, 1}, max), levels({5}, max)}) {
        const int n = 2, c = 3, h = hw[0], w = hw[1];
        const int features = c * spp_features_per_channel(s);
        std::vector<float> x(size_t(n) * c * h * w), dy(size_t(n) * features);
        for (auto& v : x) v = float(int(u(rng) * 3)) / 2;  // ties
        for (auto& v : dy) v = u(rng);
        std::vector<float> y(dy.size(), NAN), arg(dy.size(), NAN), dx(x.size(), NAN);
        cpu::spp_pool_forward(s, x.data(), y.data(), arg.data(), n, c, h, w);
        cpu::spp_pool_backward(s, arg.data(), dy.data(), dx.data(), n, c, h, w);
        std::vector<double> want_y, want_dx;
        reference(s, x, dy, n, c, h, w, want_y, want_dx);
        ASSERT_EQ(y.size(), want_y.size());
        for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want_y[i], 1e-6) << i;
        for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx[i], want_dx[i], 1e-5) << i;
      }
}

TEST(SppPool, NaNWinsItsCellsAndTakesTheirGradient) {
  const SppLevels s = levels({1, 2}, true);
  std::vector<float> x = {1, 5, 2, 3, 4, 0, 7, 6, 9, 8, 1, 2, 3, NAN, 4, 5};  // one 4x4 plane
  std::vector<float> y(5), arg(5), dx(16), dy = {1, 2, 3, 4, 5};
  cpu::spp_pool_forward(s, x.data(), y.data(), arg.data(), 1, 1, 4, 4);
  cpu::spp_pool_backward(s, arg.data(), dy.data(), dx.data(), 1, 1, 4, 4);
  EXPECT_TRUE(std::isnan(y[0]));  // the 1x1 level
  EXPECT_EQ(y[1], 5.f);
  EXPECT_EQ(y[2], 7.f);
  EXPECT_TRUE(std::isnan(y[3]));
  EXPECT_EQ(y[4], 5.f);
  EXPECT_EQ(dx[13], 1.f + 4.f);  // the NaN: the whole plane's cell and its 2x2 cell
  EXPECT_EQ(dx[1], 2.f);
  EXPECT_EQ(dx[6], 3.f);
  EXPECT_EQ(dx[15], 5.f);
}

TEST(SppPool, TheLayerGivesCTimesTheCellsAndRefusesInOneLine) {
  auto build = [](const std::string& line) {
    return Graph::build(parse_model_text("input channels=3 height=9 width=7\n" + line + "\n", "m"),
                        GraphOptions{Device::cpu, 1, 0});
  };
  EXPECT_EQ(build("spp_pool")->output_shape(1).c, 3 * 21);
  const Shape s = build("spp_pool levels=1,3 mode=avg")->output_shape(1);
  EXPECT_EQ(s.c, 30);
  EXPECT_EQ(s.h, 1);
  EXPECT_EQ(s.w, 1);
  EXPECT_EQ(build("spp_pool mode=vlad")->output_shape(1).c, 8 * 3 * 21);
  EXPECT_EQ(build("spp_pool mode=vlad clusters=5 levels=2")->output_shape(1).c, 5 * 3 * 4);
  expect_layer_refusals(
      "input channels=3 height=9 width=7",
      {"spp_pool levels=0", "spp_pool levels=17", "spp_pool levels=1,1", "spp_pool levels=1,",
       "spp_pool levels=a", "spp_pool levels=1,2,3,4,5,6,7", "spp_pool mode=min", "spp_pool global",
       "spp_pool size=2", "spp_pool clusters=4", "spp_pool mode=avg clusters=4",
       "spp_pool mode=vlad clusters=0", "spp_pool mode=vlad clusters=65"});
}

// NetVLAD over the pyramid against its definition in double: soft assignment, residual sums
// per cell (PyTorch's adaptive bins, overlapping at 7 = 3 + 3 + 1), intra- then L2
// normalisation; ties in x and an empty-looking cell (all-equal descriptors at a centre).
TEST(SppPoolVlad, MatchesNetVladOverThePyramidInDouble) {
  const int n = 2, c = 3, h = 7, w = 5, k = 4;
  const SppLevels s = levels({1, 3}, true);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(size_t(n) * c * h * w), wt(size_t(k) * c), bias(static_cast<size_t>(k)),
      mu(wt.size());
  for (auto& v : x) v = std::round(u(rng) * 4) / 4;  // ties
  for (auto& v : wt) v = u(rng) * 2;
  for (auto& v : bias) v = u(rng);
  for (auto& v : mu) v = u(rng);
  const int cells = 1 + 9, p = h * w;
  std::vector<float> y(size_t(n) * cells * k * c, NAN),
      state(size_t(n) * vlad_image_state_floats(s, k, c, p), NAN);
  cpu::spp_pool_vlad_forward(s, wt.data(), bias.data(), mu.data(), k, x.data(), y.data(),
                             state.data(), n, c, h, w);
  for (int img = 0; img < n; ++img) {
    auto X = [&](int ch, int i) { return double(x[(size_t(img) * c + ch) * p + i]); };
    std::vector<double> a(size_t(k) * p);
    for (int i = 0; i < p; ++i) {
      double den = 0, l[8];
      for (int j = 0; j < k; ++j) {
        l[j] = bias[j];
        for (int ch = 0; ch < c; ++ch) l[j] += double(wt[size_t(j) * c + ch]) * X(ch, i);
      }
      for (int j = 0; j < k; ++j) den += std::exp(l[j]);
      for (int j = 0; j < k; ++j) a[size_t(j) * p + i] = std::exp(l[j]) / den;
    }
    int cell = 0;
    for (int L : {1, 3})
      for (int ra = 0; ra < L; ++ra)
        for (int cb = 0; cb < L; ++cb, ++cell) {
          const int r0 = ra * h / L, r1 = ((ra + 1) * h + L - 1) / L;
          const int c0 = cb * w / L, c1 = ((cb + 1) * w + L - 1) / L;
          std::vector<double> v(size_t(k) * c, 0.0);
          for (int j = 0; j < k; ++j)
            for (int ch = 0; ch < c; ++ch)
              for (int r = r0; r < r1; ++r)
                for (int q = c0; q < c1; ++q)
                  v[size_t(j) * c + ch] +=
                      a[size_t(j) * p + r * w + q] * (X(ch, r * w + q) - mu[size_t(j) * c + ch]);
          double total = 0;
          for (int j = 0; j < k; ++j) {
            double norm = 0;
            for (int ch = 0; ch < c; ++ch) norm += v[size_t(j) * c + ch] * v[size_t(j) * c + ch];
            norm = std::max(std::sqrt(norm), 1e-12);
            for (int ch = 0; ch < c; ++ch) v[size_t(j) * c + ch] /= norm;
            for (int ch = 0; ch < c; ++ch) total += v[size_t(j) * c + ch] * v[size_t(j) * c + ch];
          }
          total = std::sqrt(total);
          for (int e = 0; e < k * c; ++e) {
            const float got = y[(size_t(img) * cells + cell) * k * c + e];
            EXPECT_NEAR(got, v[size_t(e)] / total, 2e-5)
                << "image " << img << " cell " << cell << " element " << e;
          }
        }
  }
}

// The initialisation from data: descriptors around three well-separated points give centres at
// those points (k-means), and assignment weights that put each descriptor on its own centre.
TEST(SppPoolVlad, InitialisationFindsTheClustersAndAssignsSharply) {
  const int n = 4, c = 2, p = 30, k = 3;
  const float points[3][2] = {{5, 0}, {-5, 1}, {0, 8}};
  std::mt19937_64 rng(9);
  std::normal_distribution<float> noise(0.f, 0.3f);
  std::vector<float> x(size_t(n) * c * p);
  std::vector<int> truth(size_t(n) * p);
  for (int img = 0; img < n; ++img)
    for (int i = 0; i < p; ++i) {
      const int which = int((img * 7 + i * 5) % 3);
      truth[size_t(img) * p + i] = which;
      for (int ch = 0; ch < c; ++ch)
        x[(size_t(img) * c + ch) * p + i] = points[which][ch] + noise(rng);
    }
  std::vector<float> wt(size_t(k) * c), bias(static_cast<size_t>(k)), mu(wt.size());
  cpu::spp_pool_vlad_init(x.data(), n, c, p, k, wt.data(), bias.data(), mu.data());
  for (const auto& point : points) {
    double best = 1e30;
    for (int j = 0; j < k; ++j)
      best = std::min(
          best, double(std::hypot(mu[size_t(j) * c] - point[0], mu[size_t(j) * c + 1] - point[1])));
    EXPECT_LT(best, 0.2) << point[0] << "," << point[1];
  }
  const SppLevels s = levels({1}, true);
  std::vector<float> y(size_t(n) * k * c), state(size_t(n) * vlad_image_state_floats(s, k, c, p));
  cpu::spp_pool_vlad_forward(s, wt.data(), bias.data(), mu.data(), k, x.data(), y.data(),
                             state.data(), n, c, 1, p);
  for (int img = 0; img < n; ++img)
    for (int i = 0; i < p; ++i) {
      const float* a = state.data() + img * vlad_image_state_floats(s, k, c, p);
      int top = 0;
      for (int j = 1; j < k; ++j)
        if (a[size_t(j) * p + i] > a[size_t(top) * p + i]) top = j;
      EXPECT_GT(a[size_t(top) * p + i], 0.9f);
      // The same centre for every descriptor of a cluster.
      const int ref = truth[size_t(img) * p + i];
      for (int other = 0; other < n * p; ++other)
        if (truth[size_t(other)] == ref) {
          const float* b = state.data() + (other / p) * vlad_image_state_floats(s, k, c, p);
          EXPECT_GT(b[size_t(top) * p + other % p], 0.9f);
          break;
        }
    }
}

}  // namespace
