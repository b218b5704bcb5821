// dense: forward against a naive loop on non-square shapes; backward by the gradient checker.
#include <gtest/gtest.h>

#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

TEST(Dense, ForwardMatchesNaiveLoop) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h("dense units=7", {1, 13, 1, 1}, 5, seed);
  h.forward(StepContext{});
  for (int i = 0; i < 5; ++i)
    for (int o = 0; o < 7; ++o) {
      double s = h.param(1)[o];
      for (int k = 0; k < 13; ++k) s += double(h.param(0)[o * 13 + k]) * h.x[i * 13 + k];
      EXPECT_NEAR(h.y[i * 7 + o], s, 1e-5 * (1 + std::abs(s)));
    }
}

TEST(Dense, GradientsMatchFiniteDifferences) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h("dense units=6", {1, 11, 1, 1}, 3, seed);
  EXPECT_EQ(check_gradients(h, StepContext{}), h.x.size() + h.params.size());
}

TEST(Dense, RejectsUnflattenedInput) {
  EXPECT_THROW(LayerHarness("dense units=4", {1, 3, 4, 4}, 1, 1), Error);
}
