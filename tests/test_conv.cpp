// conv: forward against a naive double loop; backward by the shared gradient checker.
#include <gtest/gtest.h>

#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct ConvCase {
  std::string line;
  Shape in;
  int pad_h, pad_w, stride;
};

void PrintTo(const ConvCase& c, std::ostream* os) { *os << c.line << " on " << c.in.str(); }

class ConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTest, ForwardMatchesNaiveLoop) {
  const auto& c = GetParam();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h(c.line, c.in, 3, seed);
  StepContext ctx;
  h.forward(ctx);
  const Shape& o = h.out;
  const int K = h.decls[0].shape.h;
  const float* w = h.param(0);
  const float* b = h.param(1);
  for (int i = 0; i < h.n; ++i)
    for (int oc = 0; oc < o.c; ++oc)
      for (int oh = 0; oh < o.h; ++oh)
        for (int ow = 0; ow < o.w; ++ow) {
          double s = b[oc];
          for (int ci = 0; ci < c.in.c; ++ci)
            for (int kh = 0; kh < K; ++kh)
              for (int kw = 0; kw < K; ++kw) {
                const int ih = oh * c.stride - c.pad_h + kh, iw = ow * c.stride - c.pad_w + kw;
                if (ih < 0 || ih >= c.in.h || iw < 0 || iw >= c.in.w) continue;
                s += double(w[((oc * c.in.c + ci) * K + kh) * K + kw]) *
                     h.x[((size_t(i) * c.in.c + ci) * c.in.h + ih) * c.in.w + iw];
              }
          const float got = h.y[((size_t(i) * o.c + oc) * o.h + oh) * o.w + ow];
          ASSERT_NEAR(got, s, 1e-4 * (1 + std::abs(s))) << i << "," << oc << "," << oh << "," << ow;
        }
}

TEST_P(ConvTest, GradientsMatchFiniteDifferences) {
  const auto& c = GetParam();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h(c.line, c.in, 2, seed);
  EXPECT_GT(check_gradients(h, StepContext{}), h.x.size() / 2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvTest,
    ::testing::Values(ConvCase{"conv filters=4 size=3", {1, 3, 7, 6}, 0, 0, 1},
                      ConvCase{"conv filters=5 size=3 padding=same", {1, 2, 6, 5}, 1, 1, 1},
                      ConvCase{"conv filters=3 size=3 stride=2 padding=1", {1, 2, 9, 8}, 1, 1, 2},
                      ConvCase{"conv filters=2 size=1", {1, 4, 3, 3}, 0, 0, 1}));

TEST(Conv, RejectsKernelLargerThanInput) {
  EXPECT_THROW(LayerHarness("conv filters=4 size=5", {1, 3, 4, 4}, 1, 1), Error);
}

TEST(Conv, ShapesFollowPaddingRules) {
  LayerHarness same("conv filters=8 size=3 stride=2 padding=same", {1, 3, 32, 32}, 1, 1);
  EXPECT_EQ(same.out, (Shape{1, 8, 16, 16}));
  LayerHarness valid("conv filters=8 size=3", {1, 3, 32, 32}, 1, 1);
  EXPECT_EQ(valid.out, (Shape{1, 8, 30, 30}));
}

}  // namespace
