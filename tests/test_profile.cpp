// convpool profile and bench: tables that match the network, positive times that fit in the
// step, JSON that parses, and the region timer itself.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "convpool/graph.h"
#include "convpool/profile.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
nlohmann::json run_json(const std::string& args) {
  const CommandResult r = run_convpool(args + " --json 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  try {
    return nlohmann::json::parse(r.output);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.output;
    return {};
  }
}
const std::string kModel = std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg";
}  // namespace

TEST(Regions, TotalsCountAndTimeNestedHostRegions) {
  RegionTotals t;
  install_region_timer(&t);
  const std::string outer = "outer", inner = "inner";
  for (int i = 0; i < 3; ++i) {
    Region a(outer, Device::cpu);
    Region b(inner, Device::cpu);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  install_region_timer(nullptr);
  { Region ignored(outer, Device::cpu); }  // no timer installed: not counted
  const auto totals = t.totals();
  ASSERT_EQ(totals.size(), 2u);
  EXPECT_EQ(totals[0].name, "outer");
  EXPECT_EQ(totals[0].count, 3u);
  EXPECT_EQ(totals[1].count, 3u);
  EXPECT_GE(totals[1].ms, 6.0);
  EXPECT_GE(totals[0].ms, totals[1].ms);
  t.reset();
  EXPECT_EQ(t.totals()[0].count, 0u);
}

// The profile's layers are the network's, every time is positive, and they fit in the step.
TEST(Profile, TableMatchesTheNetworkAndFitsInTheStep) {
  const auto j = run_json(
      "profile --device cpu --threads 1 --batch 8 --warmup 1 --steps 3 --pool avgtopk:k=2");
  ASSERT_TRUE(j.contains("layers")) << j.dump();
  auto graph = Graph::build(load_model_file(kModel), GraphOptions{Device::cpu, 8, 0});
  ASSERT_EQ(j["layers"].size(), graph->num_layers());
  double sum = 0;
  for (size_t i = 0; i < graph->num_layers(); ++i) {
    const auto& l = j["layers"][i];
    EXPECT_EQ(l["name"], graph->layer(i).name());
    EXPECT_GT(l["forward_ms"].get<double>(), 0) << l.dump();
    EXPECT_GT(l["backward_ms"].get<double>(), 0) << l.dump();
    sum += l["forward_ms"].get<double>() + l["backward_ms"].get<double>();
  }
  for (auto& o : j["other"]) sum += o["name"] == "data/wait" ? 0.0 : o["ms"].get<double>();
  const double step = j["step_ms"].get<double>();
  EXPECT_GT(sum, 0.5 * step);  // the regions cover the step's work
  EXPECT_LE(sum, step);
  EXPECT_GT(j["images_per_second"].get<double>(), 0);
  // The engine the layer runs (oneDNN or im2col, by shape) is the one the table names.
  EXPECT_EQ(j["layers"][0]["backend"], graph->layer(0).backend_detail(8));
}

TEST(Profile, TextTableNamesEveryLayer) {
  const CommandResult r =
      run_convpool("profile --device cpu --threads 1 --batch 4 --warmup 0 --steps 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* layer : {"conv1", "relu1", "pool1", "conv2", "pool2", "fc1", "fc2", "optimizer"})
    EXPECT_NE(r.output.find(std::string("\n") + layer + " "), std::string::npos) << layer;
  EXPECT_NE(r.output.find("images/s"), std::string::npos);
}

TEST(Bench, TrainPoolAndConvWriteJson) {
  const auto train =
      run_json("bench train --device cpu --threads 1 --batch 4,8 --warmup 1 --steps 2");
  ASSERT_EQ(train["runs"].size(), 2u) << train.dump();
  for (auto& r : train["runs"]) {
    EXPECT_GT(r["images_per_second"].get<double>(), 0);
    EXPECT_GT(r["peak_memory_bytes"].get<double>(), 1e5);
  }
  // The larger batch needs more memory.
  EXPECT_GT(train["runs"][1]["peak_memory_bytes"].get<double>(),
            train["runs"][0]["peak_memory_bytes"].get<double>());

  const auto pool = run_json(
      "bench pool --device cpu --threads 1 --method avgtopk:k=2 --shape 3,5,9,7 --size 3 --stride "
      "2 --reps 2");
  EXPECT_EQ(pool["output_shape"], (std::vector<int>{3, 5, 4, 3})) << pool.dump();
  EXPECT_GT(pool["forward_ms"].get<double>(), 0);
  EXPECT_GT(pool["backward_ms"].get<double>(), 0);
  EXPECT_GT(pool["copy_gb_per_s"].get<double>(), 0);

  const auto conv = run_json("bench conv --device cpu --threads 1 --batch 4 --reps 1");
  ASSERT_EQ(conv["layers"].size(), 2u) << conv.dump();
  EXPECT_EQ(conv["layers"][0]["backward_data_ms"].get<double>(), 0);  // no input gradient
  EXPECT_GT(conv["layers"][1]["backward_data_ms"].get<double>(), 0);
  EXPECT_GT(conv["layers"][1]["backward_filter_ms"].get<double>(), 0);
}

// `bench pool` times the pooling ops beside `pool` too: the window ops with --size/--stride/
// --pad, the others with their own parameters (a list value keeps its commas).
TEST(Bench, PoolTimesThePoolingOps) {
  for (auto [method, shape] :
       {std::pair{"intermap_pool:groups=2,mode=mean", std::vector<int>{3, 2, 9, 7}},
        std::pair{"intermap_pool:groups=4", std::vector<int>{3, 1, 9, 7}},
        std::pair{"pyramid_pool:sizes=1,3,5", std::vector<int>{3, 12, 9, 7}},
        std::pair{"weighted_pool:shared=1", std::vector<int>{3, 4, 4, 3}}}) {
    const auto pool = run_json(std::string("bench pool --device cpu --threads 1 --method ") +
                               method + " --shape 3,4,9,7 --size 3 --stride 2 --reps 2");
    EXPECT_EQ(pool["output_shape"], shape) << method << "\n" << pool.dump();
    EXPECT_GT(pool["backward_ms"].get<double>(), 0) << method;
  }
  const CommandResult r =
      run_convpool("bench pool --device cpu --method intermap_pool:groups=3 --shape 1,4,5,5");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("groups"), std::string::npos) << r.output;
  EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Bench, BadShapesAndMethodsGiveOneLine) {
  for (auto [args, needle] :
       {std::pair{"bench pool --device cpu --shape 1,2,3", "needs 4"},
        std::pair{"bench pool --device cpu --shape 1,x,3,3", "not a positive integer"},
        std::pair{"bench pool --device cpu --method maxx", "did you mean"},
        std::pair{"bench train --device cpu --batch 0", "not a positive integer"}}) {
    const CommandResult r = run_convpool(args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
    EXPECT_LE(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
}
