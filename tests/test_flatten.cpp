// flatten: a view of its input in NCHW order, so it has no kernel; what it must get right is
// its shape, that it aliases its input, and its refusals.
#include <gtest/gtest.h>

#include <vector>

#include "convpool/error.h"
#include "convpool/layer.h"
#include "convpool/model.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {

std::unique_ptr<Layer> flatten_layer(const std::string& line) {
  return make_layer(parse_model_text("input channels=3 height=2 width=4\n" + line + "\n", "t")
                        .layers.at(0));
}

TEST(Flatten, KeepsEverySampleElementInOneChannelVector) {
  auto layer = flatten_layer("flatten");
  const std::vector<Shape> in = {Shape{1, 3, 2, 4}};
  const Shape out = layer->infer(in);
  EXPECT_EQ(out.c, 24);
  EXPECT_EQ(out.h, 1);
  EXPECT_EQ(out.w, 1);
  EXPECT_TRUE(layer->aliases_input());
  EXPECT_FALSE(layer->backward_reads_input());
}

TEST(Flatten, RefusesArgumentsAndInputsTooLargeToIndex) {
  EXPECT_THROW(flatten_layer("flatten now"), Error);
  EXPECT_THROW(flatten_layer("flatten size=2"), Error);
  auto layer = flatten_layer("flatten");
  const std::vector<Shape> huge = {Shape{1, 1 << 16, 1 << 8, 1 << 8}};
  EXPECT_THROW(layer->infer(huge), Error);
}

}  // namespace

TEST(Flatten, SharesMemoryAndKeepsNchwOrderInAGraph) {
  LayerHarness h("flatten", {1, 3, 2, 5}, 2, 1);
  EXPECT_EQ(h.out, (Shape{1, 30, 1, 1}));
  EXPECT_TRUE(h.layer->aliases_input());
}
