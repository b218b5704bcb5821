// ResNet-20 and VGG-BN from the command line on the CPU: they build, train and evaluate, their
// checkpoints hold the BatchNorm running statistics, and `eval` evaluates with them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convpool/checkpoint.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

class ModelFromCli : public ::testing::TestWithParam<std::string> {};

TEST_P(ModelFromCli, TrainsEvaluatesAndKeepsBatchNormStatistics) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 21);  // 40 training images, 8 test images
  const std::string model = std::string(CONVPOOL_SOURCE_DIR) + "/models/" + GetParam();
  const CommandResult train =
      run_convpool("train --model " + model + " --data " + d.str("data") +
                   " --epochs 1 --batch 20 --device cpu --threads 2 --seed 5 --quiet --out " +
                   d.str("run"));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const auto rows = read_metrics_csv(d.str("run") + "/metrics.csv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(std::isfinite(rows[0].loss));

  // The checkpoint holds every BatchNorm's running statistics, moved off their start.
  const Checkpoint c = load_checkpoint(d.str("run") + "/last.safetensors");
  size_t means = 0, vars = 0;
  bool moved = false;
  for (const NamedTensor& t : c.file.tensors) {
    const bool mean = t.name.ends_with(".running_mean"), var = t.name.ends_with(".running_var");
    means += mean, vars += var;
    for (float v : t.data) moved |= (mean && v != 0.f) || (var && v != 1.f);
  }
  auto g = Graph::build(parse_model_text(c.model_text, "checkpoint"), GraphOptions{Device::cpu, 2, 0});
  size_t bn_layers = 0;
  for (size_t i = 0; i < g->num_layers(); ++i) bn_layers += g->layer(i).type() == "batchnorm";
  EXPECT_GT(bn_layers, 0u);
  EXPECT_EQ(means, bn_layers);
  EXPECT_EQ(vars, bn_layers);
  EXPECT_TRUE(moved) << "the running statistics were saved at their initial values";

  // eval gives the loss the trainer's own evaluation gave: the same running statistics.
  const CommandResult ev = run_convpool("eval --checkpoint " + d.str("run") + "/last.safetensors" +
                                        " --data " + d.str("data") + " --device cpu --json");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto j = nlohmann::json::parse(ev.output.substr(ev.output.find('{')));
  EXPECT_NEAR(j.at("loss").get<double>(), rows[0].test_loss, 1e-6 * std::abs(rows[0].test_loss));
  EXPECT_NEAR(j.at("accuracy").get<double>(), rows[0].test_accuracy, 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Models, ModelFromCli, ::testing::Values("resnet20.cfg", "vgg_bn.cfg"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.substr(0, info.param.find('.'));
                         });

}  // namespace

// Every shipped recipe is a config `train --config` and `study --config` take, and its model
// trains one epoch and evaluates on the CPU with it (batch and epochs overridden on the
// command line).
TEST(Recipes, EveryShippedRecipeTrainsOnTheCpu) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 23);  // 40 training images, 8 test images
  size_t recipes = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(CONVPOOL_SOURCE_DIR) + "/recipes")) {
    if (entry.path().extension() != ".toml") continue;
    ++recipes;
    const std::string name = entry.path().stem().string();
    SCOPED_TRACE(name);
    // A model for other images than CIFAR's trains on an image folder of its input side and
    // class count, one image per class.
    std::string data = d.str("data");
    const std::string text = read_file(entry.path().string());
    const size_t at = text.find("model=\"") + 7;
    const ModelSpec spec = load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/" +
                                           text.substr(at, text.find('"', at) - at));
    const auto g = Graph::build(spec, GraphOptions{Device::cpu, 1, 0});
    if (spec.input.h != 32 || g->output_shape(1).numel() != 10) {
      data = d.str(name + "-images");
      write_image_folder(data, int(g->output_shape(1).numel()), 1, 1, 23);
    }
    const CommandResult r =
        run_convpool("train --config " + entry.path().string() + " --data " + data +
                     " --epochs 1 --batch 20 --device cpu --threads 2 --out " + d.str(name));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto rows = read_metrics_csv(d.str(name) + "/metrics.csv");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(std::isfinite(rows[0].loss));
    EXPECT_NE(r.output.find("test-time augmentation"), std::string::npos) << r.output;
    // A pooling study takes the same recipe (its checkpointing keys included).
    const CommandResult study = run_convpool(
        "study --config " + entry.path().string() + " --data " + data +
        " --pools avg --seeds 1 --epochs 1 --batch 20 --device cpu --threads 2 --no-plot --out " +
        d.str(name + "-study"));
    ASSERT_EQ(study.exit_code, 0) << study.output;
    EXPECT_EQ(read_metrics_csv(d.str(name) + "-study/runs/avg/seed-1/metrics.csv").size(), 1u);
  }
  EXPECT_GE(recipes, 4u);  // resnet20, vgg_bn, airbench94, resnet18_64
}
