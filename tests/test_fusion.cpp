// ReLU fused into the pooling layer after it: the same numbers as the two layers apart, for
// every method, on both kernel paths (full 2x2 windows and the generic one).
#include <gtest/gtest.h>

#include <random>

#include "convpool/graph.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {
struct Pass {
  std::vector<float> out, grads;
};

Pass run(const std::string& model, bool fuse, uint64_t seed, int batch) {
  GraphOptions opts{Device::cpu, batch, 0};
  opts.fuse_relu = fuse;
  auto g = Graph::build(parse_model_text(model, "fusion test"), opts);
  g->init_params(seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const Tensor x = g->input(batch), dy = g->output_grad(batch);
  for (size_t i = 0; i < x.numel(); ++i) x.data[i] = u(rng);
  for (size_t i = 0; i < dy.numel(); ++i) dy.data[i] = u(rng);
  StepContext ctx{Device::cpu, true, seed, 3, nullptr};
  g->forward(ctx, batch);
  g->backward(ctx, batch);
  const Tensor y = g->output(batch);
  return {std::vector<float>(y.data, y.data + y.numel()),
          std::vector<float>(g->grads(), g->grads() + g->num_params())};
}
}  // namespace

TEST(ReluPoolFusion, GivesTheSameOutputsAndGradientsAsSeparateLayers) {
  const uint64_t seed = fresh_seed();
  for (const char* pool : {"max size=2", "max size=3 stride=2 pad=1", "avg size=2",
                           "avgtopk k=2 size=2", "avgtopk k=3 size=3 stride=2", "mixed size=2",
                           "stochastic size=2", "lp p=3 size=2", "softpool size=3 stride=2",
                           "tmaxavg k=2 t=0.2 size=2", "min size=2", "avgtopk k=5 global"}) {
    const std::string model = std::string("input channels=3 height=12 width=12\n") +
                              "conv filters=6 size=3\nrelu\npool " + pool +
                              "\nflatten\ndense units=4\n";
    const Pass fused = run(model, true, seed, 3), apart = run(model, false, seed, 3);
    EXPECT_EQ(fused.out, apart.out) << pool;
    EXPECT_EQ(fused.grads, apart.grads) << pool;
  }
}

TEST(ReluPoolFusion, TheGraphSaysWhatItFused) {
  const auto model = parse_model_text(
      "input channels=3 height=8 width=8\nconv filters=2 size=3\nrelu\npool max size=2\n"
      "relu\nflatten\ndense units=2\n",
      "t");
  auto g = Graph::build(model, GraphOptions{Device::cpu, 1, 0});
  EXPECT_TRUE(g->layer(1).aliases_input());   // relu before pool: folded into it
  EXPECT_FALSE(g->layer(3).aliases_input());  // relu before flatten: runs on its own
  EXPECT_NE(g->summary().find("relu fused in"), std::string::npos) << g->summary();
  GraphOptions apart{Device::cpu, 1, 0};
  apart.fuse_relu = false;
  EXPECT_FALSE(Graph::build(model, apart)->layer(1).aliases_input());
}

// A ReLU after a conv or a batchnorm (whose output nothing else reads) is applied by that
// layer on the CPU: the same numbers, bit for bit, as the layers apart.
TEST(ReluFusionIntoTheLayerBefore, GivesTheSameOutputsAndGradientsAsSeparateLayers) {
  const uint64_t seed = fresh_seed();
  for (const char* middle : {"conv filters=5 size=3 padding=same\nrelu\n",
                             "conv filters=5 size=3 bias=0\nbatchnorm\nrelu\n",
                             "batchnorm momentum=0.3\nrelu\nconv filters=4 size=1\nrelu\n"}) {
    const std::string model = std::string("input channels=3 height=8 width=8\n") +
                              "conv filters=4 size=3\n" + middle + "flatten\ndense units=3\n";
    const Pass fused = run(model, true, seed, 3), apart = run(model, false, seed, 3);
    EXPECT_EQ(fused.out, apart.out) << middle;
    EXPECT_EQ(fused.grads, apart.grads) << middle;
  }
}

TEST(ReluFusionIntoTheLayerBefore, OnlyWhereTheIntermediateHasOneReader) {
  // conv1's output is read by the ReLU and by the add: the ReLU stays apart. The batchnorm's
  // ReLU has one reader: fused into it.
  const auto model = parse_model_text(
      "input channels=2 height=4 width=4\nconv name=c1 filters=2 size=1\nrelu name=r1\n"
      "add name=sum in=r1,c1\nbatchnorm name=bn\nrelu name=r2\nflatten\ndense units=2\n",
      "t");
  auto g = Graph::build(model, GraphOptions{Device::cpu, 1, 0});
  EXPECT_FALSE(g->layer(1).aliases_input()) << g->summary();
  EXPECT_TRUE(g->layer(4).aliases_input()) << g->summary();
  EXPECT_NE(g->summary().find("fused into the layer before, bn"), std::string::npos) << g->summary();
}
