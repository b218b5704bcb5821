// End to end on real CIFAR-10 (skipped with the reason when $CIFAR10_DIR is not set).
#include <gtest/gtest.h>

#include <cmath>

#include "convpool/graph.h"
#include "convpool/pooling.h"
#include "convpool/trainer.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

TEST(EndToEnd, TwoThousandImagesOneEpochOnCpuLearns) {
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  const Dataset train = load_cifar10(dir, "train", 2000);
  const Dataset test = load_cifar10(dir, "test", 1000);
  TrainConfig cfg;
  cfg.epochs = 1;
  cfg.seed = 42;
  auto g =
      Graph::build(load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg"),
                   GraphOptions{Device::cpu, cfg.batch, 2});
  g->init_params(cfg.seed);
  Trainer t(*g, cfg);
  const EvalResult before = t.evaluate(test);
  const EpochMetrics m = t.train_epoch(train);
  const EvalResult after = t.evaluate(test);
  std::printf("test loss %.4f -> %.4f, accuracy %.3f -> %.3f, train loss %.4f\n", before.loss,
              after.loss, before.accuracy, after.accuracy, m.loss);
  EXPECT_NEAR(before.loss, std::log(10.0), 0.15);  // Glorot init starts near uniform
  EXPECT_LT(after.loss, before.loss - 0.1);
  EXPECT_GT(after.accuracy, 0.18);  // chance is 0.10; 0.18 is 8 standard errors above it
  EXPECT_EQ(t.state().step, 63u);   // 2000 / 32 rounded up: the partial batch is kept
}

// Every pooling method of the table (at its defaults), every alias and every window pooling op
// (in place of the pool layers) trains the seed CNN above chance: 2,000 images, 1 epoch, on the
// CPU.
TEST(EndToEnd, EveryPoolingMethodLearnsOnTwoThousandImages) {
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  const Dataset train = load_cifar10(dir, "train", 2000);
  const Dataset test = load_cifar10(dir, "test", 1000);
  std::vector<std::string> pools;
  for (const PoolMethodSpec& m : pool_methods()) pools.push_back(m.name);
  for (const PoolMethodAlias& a : pool_method_aliases()) pools.push_back(a.name + ":" + a.key + "=2");
  for (const WindowPoolingOp& op : window_pooling_ops()) pools.push_back(op.name);
  for (const std::string& pool : pools) {
    TrainConfig cfg;
    cfg.epochs = 1;
    cfg.seed = 42;
    ModelSpec spec = load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg");
    apply_pool_override(spec, pool);
    auto g = Graph::build(spec, GraphOptions{Device::cpu, cfg.batch, 2});
    g->init_params(cfg.seed);
    Trainer t(*g, cfg);
    t.train_epoch(train);
    const EvalResult after = t.evaluate(test);
    std::printf("%-12s test accuracy %.3f\n", pool.c_str(), after.accuracy);
    EXPECT_GT(after.accuracy, 0.15) << pool;  // chance 0.10; 0.15 is 5 standard errors above
  }
}

// The pooling ops beside `pool` in the seed CNN: per-pixel pyramid pooling after the first
// pooling layer (32 maps -> 64), inter-map pooling after the second convolution (64 -> 32),
// and as the second pooling stage weighted pooling with one shared set of weights (padded,
// overlapping windows); the window ops at their defaults train in the test above.
TEST(EndToEnd, ThePoolingOpsLearnOnTwoThousandImages) {
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  const Dataset train = load_cifar10(dir, "train", 2000);
  const Dataset test = load_cifar10(dir, "test", 1000);
  const std::pair<const char*, const char*> runs[] = {
      {"max", "pool max size=2"}, {"mean", "weighted_pool size=3 stride=2 pad=1 shared=1"}};
  for (const auto& [mode, second_pool] : runs) {
    const std::string model = std::string(
        "input channels=3 height=32 width=32\nconv filters=32 size=3\nrelu\npool max size=2\n"
        "pyramid_pool sizes=1,3\nconv filters=64 size=3\nrelu\nintermap_pool groups=2 mode=") +
        mode + "\n" + second_pool + "\nflatten\ndense units=64\nrelu\ndense units=10\n";
    TrainConfig cfg;
    cfg.epochs = 1;
    cfg.seed = 42;
    auto g = Graph::build(parse_model_text(model, "ops"), GraphOptions{Device::cpu, cfg.batch, 2});
    g->init_params(cfg.seed);
    Trainer t(*g, cfg);
    t.train_epoch(train);
    const EvalResult after = t.evaluate(test);
    std::printf("pyramid_pool + intermap_pool %s + %s: test accuracy %.3f\n", mode, second_pool,
                after.accuracy);
    EXPECT_GT(after.accuracy, 0.15) << mode << " " << second_pool;  // chance 0.10
  }
}
