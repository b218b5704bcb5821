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
  expect_layer_refusals("input channels=3 height=9 width=7",
                        {"spp_pool levels=0", "spp_pool levels=17", "spp_pool levels=1,1",
                         "spp_pool levels=1,", "spp_pool levels=a", "spp_pool levels=1,2,3,4,5,6,7",
                         "spp_pool mode=min", "spp_pool global", "spp_pool size=2"});
}

}  // namespace
