// Test-time augmentation: the logits `eval --tta` and `train --tta` average are the weighted
// mean of the network's logits on the transformed images, built here by hand (mirrored and
// reflect-shifted copies of the data set) and run through the same backend without any view.
#include <gtest/gtest.h>

#include <random>

#include "convpool/distributed.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "layer_harness.h"
#include "test_helpers.h"
#include "train/step.h"

using namespace convpool;
using namespace convpool::test;

namespace {
const char* kModel =
    "input channels=3 height=32 width=32\n"
    "conv filters=4 size=3 stride=2\nrelu\npool max size=2\nflatten\ndense units=10\n";

// The data set with every image transformed as view (dy, dx, flip) of tta_views describes it:
// output (y, x) reads source (y + dy, mirrored x + dx), reflected at the borders.
Dataset transformed(const Dataset& ds, int dy, int dx, bool flip) {
  const auto reflect = [](int i) { return i < 0 ? -i : i > 31 ? 62 - i : i; };
  Dataset out = ds;
  for (size_t i = 0; i < ds.size(); ++i)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const int sy = reflect(y + dy), sx = reflect((flip ? 31 - x : x) + dx);
          out.pixels[i * kCifarImageBytes + (c * 32 + y) * 32 + x] =
              ds.pixels[i * kCifarImageBytes + (c * 32 + sy) * 32 + sx];
        }
  return out;
}
}  // namespace

TEST(Tta, LogitsAreTheWeightedMeanOverHandTransformedImages) {
  const uint64_t seed = fresh_seed();
  const int n = 9;
  auto graph = Graph::build(parse_model_text(kModel, "tta"), GraphOptions{Device::cpu, n, 0});
  graph->init_params(seed);
  const Dataset ds = synthetic_cifar(n, seed);
  InputTransform t;
  t.mean[0] = 0.5f;
  t.std[1] = 0.25f;
  auto backend = make_cpu_step_backend(*graph, OptimizerConfig{}, StepRecipe{}, t, seed, false,
                                       nullptr, world(), false);
  std::vector<uint32_t> idx(n);
  for (int i = 0; i < n; ++i) idx[size_t(i)] = uint32_t(n - 1 - i);  // any order
  const size_t values = size_t(n) * kCifarClasses;
  for (const std::string spec : {"none", "flip", "flip,translate"}) {
    const std::vector<TtaView> views = tta_views(spec);
    float total_weight = 0;
    for (const TtaView& v : views) total_weight += v.weight;
    ASSERT_FLOAT_EQ(total_weight, 1.f) << spec;
    std::vector<float> got(values, std::nanf(""));
    tta_logits(*backend, ds, idx.data(), n, kCifarClasses, views, got.data());
    // The same sum, each view's images made by hand and run as plain images.
    std::vector<float> want(values, 0.f);
    for (const TtaView& v : views) {
      const Dataset view_images = transformed(ds, v.dy, v.dx, v.flip);
      const float* logits = backend->eval_logits(view_images, idx.data(), n, TtaView{});
      for (size_t i = 0; i < values; ++i) want[i] += v.weight * logits[i];
    }
    for (size_t i = 0; i < values; ++i) ASSERT_EQ(got[i], want[i]) << spec << " value " << i;
    if (spec == "flip") {  // the definition: the mean over the image and its mirror
      std::vector<float> plain(values), mirrored(values);
      std::copy_n(backend->eval_logits(ds, idx.data(), n, TtaView{}), values, plain.begin());
      const Dataset flipped = transformed(ds, 0, 0, true);
      std::copy_n(backend->eval_logits(flipped, idx.data(), n, TtaView{}), values,
                  mirrored.begin());
      for (size_t i = 0; i < values; ++i)
        ASSERT_NEAR(got[i], (plain[i] + mirrored[i]) / 2, 1e-6f * (1 + std::fabs(got[i])));
      bool differs = false;  // the views did something
      for (size_t i = 0; i < values; ++i) differs |= plain[i] != mirrored[i];
      EXPECT_TRUE(differs);
    }
  }
  EXPECT_NE(error_of([] { tta_views("mirror"); }).find("--tta must be"), std::string::npos);
}
