// Per-pixel pyramid pooling (pyramid_pool): the same numbers as the max-pooling layers it
// stands for (stride 1, padding size/2) concatenated: the output bit for bit
// (the input gradient within rounding: its sum's order differs), with a partial last batch;
// and its refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct Pass {
  std::vector<float> out, dx;
};

Pass run(const std::string& body, int built, int batch, uint64_t seed) {
  // A scale first, so that the gradient reaching the pooling's input is kept (value 1).
  auto g = Graph::build(parse_model_text("input channels=3 height=9 width=7\nscale factor=1\n" +
                                             body,
                                         "pyramid"),
                        GraphOptions{Device::cpu, built, 0});
  std::mt19937_64 rng(seed);
  // Values from a few levels: windows hold ties, which go to the first maximum on both sides.
  std::uniform_int_distribution<int> level(-3, 3);
  const Tensor x = g->input(batch), dy = g->output_grad(batch);
  for (size_t i = 0; i < x.numel(); ++i) x.data[i] = float(level(rng)) * 0.5f;
  for (size_t i = 0; i < dy.numel(); ++i) dy.data[i] = float(level(rng)) * 0.25f + 0.1f;
  StepContext ctx{Device::cpu, true, seed, 3, nullptr};
  g->forward(ctx, batch);
  g->backward(ctx, batch);
  const Tensor y = g->output(batch), dx = g->gradient(1, batch);
  if (!dx.data) ADD_FAILURE() << "no gradient kept for the pooling's input";
  if (!dx.data) return {};
  return {std::vector<float>(y.data, y.data + y.numel()),
          std::vector<float>(dx.data, dx.data + dx.numel())};
}

TEST(PyramidPool, IsMaxPoolingAtEachSizeConcatenated) {
  const std::string apart =
      "pool max size=1 name=a in=scale1\npool max size=3 stride=1 pad=1 name=b in=scale1\n"
      "pool max size=5 stride=1 pad=2 name=c in=scale1\nconcat in=a,b,c\n";
  for (const int batch : {4, 3}) {  // the built batch, and a partial last one
    const Pass pyramid = run("pyramid_pool sizes=1,3,5\n", 4, batch, 11);
    const Pass layers = run(apart, 4, batch, 11);
    ASSERT_EQ(pyramid.out.size(), size_t(batch) * 9 * 9 * 7);
    EXPECT_EQ(pyramid.out, layers.out) << "batch " << batch;
    // The input gradient sums the sizes' gradients: in size order here, in the graph's order
    // there, so within a rounding of each other.
    ASSERT_EQ(pyramid.dx.size(), layers.dx.size());
    for (size_t i = 0; i < pyramid.dx.size(); ++i)
      ASSERT_NEAR(pyramid.dx[i], layers.dx[i], 1e-6f * (1 + std::abs(layers.dx[i])))
          << "batch " << batch << " dx " << i;
  }
}

TEST(PyramidPool, RefusesWhatItCannotDoWithOneLine) {
  expect_layer_refusals("input channels=2 height=8 width=8",
                        {"pyramid_pool", "pyramid_pool sizes=2,3", "pyramid_pool sizes=9",
                         "pyramid_pool sizes=3,3", "pyramid_pool sizes=3,", "pyramid_pool sizes=x",
                         "pyramid_pool sizes=", "pyramid_pool sizes=3 max"});
}

}  // namespace
