// relu on the CPU: max(x, 0), and its gradient checked by finite differences. (Its CUDA
// kernel: tests/kernel_parity_relu.cpp; its fusion into the layer before it: test_fusion.cpp.)
#include <gtest/gtest.h>

#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

TEST(Relu, ForwardAndGradient) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  LayerHarness h("relu", {1, 3, 5, 4}, 2, seed);
  h.forward(StepContext{});
  for (size_t i = 0; i < h.x.size(); ++i) EXPECT_EQ(h.y[i], h.x[i] > 0 ? h.x[i] : 0.f);
  EXPECT_GT(check_gradients(h, StepContext{}), h.x.size() * 9 / 10);
}
