// `--global-pool`: a global encoder in place of a model's last pool layer, from the command
// line. ResNet-20 trains above chance with each encoder in one short epoch on real CIFAR-10;
// the run's checkpoint holds the rewritten model, which eval and a resume read back; bad
// input is one line and a non-zero exit.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "convpool/checkpoint.h"
#include "convpool/metrics.h"
#include "convpool/pool_methods.h"
#include "convpool/pooling.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

const std::string kModels = std::string(CONVPOOL_SOURCE_DIR) + "/models/";

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// 2,000 training images, one epoch, 1,000 test images, at the encoders' defaults and with
// two attention heads.
TEST(GlobalPool, ResNet20LearnsWithEachEncoderInOneShortEpoch) {
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  std::vector<std::string> encoders;
  for (const WindowPoolingOp& op : global_encoder_ops()) encoders.push_back(op.name);
  encoders.push_back("attention_pool:heads=2");
  encoders.push_back("spp_pool:mode=vlad,clusters=8");
  encoders.push_back("compact_bilinear:d=2048,algo=fft");  // the FFT form, end to end
  for (const std::string& encoder : encoders) {
    TempDir d;
    const CommandResult r = run_convpool(
        "train --model " + kModels + "resnet20.cfg --global-pool " + encoder + " --data " + dir +
        " --epochs 1 --limit-train 2000 --limit-test 1000 --device cpu --threads 2 --seed 1 "
        "--quiet --out " +
        d.str("run"));
    ASSERT_EQ(r.exit_code, 0) << encoder << ": " << r.output;
    const auto rows = read_metrics_csv(d.str("run") + "/metrics.csv");
    ASSERT_EQ(rows.size(), 1u) << encoder;
    std::printf("resnet20 --global-pool %-24s test accuracy %.3f\n", encoder.c_str(),
                rows[0].test_accuracy);
    EXPECT_GT(rows[0].test_accuracy, 0.15) << encoder;  // chance 0.10; 5 standard errors above
  }
}

// On synthetic data: the checkpoint's model is the rewritten one (the encoder on the replaced
// layer's line, under its name, and a comment saying what it replaced), --pool still applies to
// the other pool layers, eval reads the checkpoint back to the trainer's test loss, and a
// resume refuses a new --global-pool.
TEST(GlobalPool, TheCheckpointHoldsTheRewrittenModel) {
  TempDir d;
  write_cifar_dir(d.str("data"), 8, 23);
  const CommandResult r = run_convpool(
      "train --model " + kModels +
      "vgg_bn.cfg --global-pool attention_pool:heads=2 "
      "--pool avg --data " +
      d.str("data") + " --epochs 1 --batch 20 --device cpu --threads 2 --seed 3 --quiet --out " +
      d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Checkpoint c = load_checkpoint(d.str("run") + "/last.safetensors");
  EXPECT_NE(c.model_text.find("\nattention_pool heads=2 name=pool4\n"), std::string::npos)
      << c.model_text;
  EXPECT_NE(c.model_text.find("# --global-pool attention_pool:heads=2 replaced line"),
            std::string::npos);
  EXPECT_EQ(c.pool_override, "avg");
  bool weights = false;
  for (const NamedTensor& t : c.file.tensors) weights |= t.name == "pool4.weight";
  EXPECT_TRUE(weights) << "no attention weights in the checkpoint";

  const auto rows = read_metrics_csv(d.str("run") + "/metrics.csv");
  ASSERT_EQ(rows.size(), 1u);
  const CommandResult ev = run_convpool("eval --checkpoint " + d.str("run") + "/last.safetensors" +
                                        " --data " + d.str("data") + " --device cpu --json");
  ASSERT_EQ(ev.exit_code, 0) << ev.output;
  const auto j = nlohmann::json::parse(ev.output.substr(ev.output.find('{')));
  EXPECT_NEAR(j.at("loss").get<double>(), rows[0].test_loss, 1e-6 * std::abs(rows[0].test_loss));

  const CommandResult again = run_convpool("train --resume " + d.str("run") +
                                           "/last.safetensors --global-pool gem_pool --epochs 2");
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.output.find("--global-pool cannot change it"), std::string::npos) << again.output;
}

// The rewrite keeps the layer's name, inputs, multipliers (the same floats) and freezing, and
// leaves a comment on the line alone.
TEST(GlobalPool, TheRewriteKeepsTheLayersNameInputsAndMultipliers) {
  ModelSpec spec = parse_model_text(
      "input channels=3 height=8 width=8\nconv filters=4 size=3 name=c\nrelu name=r\n"
      "pool avg global name=head in=c lr_mult=0.1234567 frozen=1  # costs $5\nflatten\n"
      "dense units=10\n",
      "m.cfg");
  apply_global_pool_override(spec, "gem_pool:p=2.5,shared=0");
  const LayerSpec& l = spec.layers.at(2);
  EXPECT_EQ(l.type, "gem_pool");
  EXPECT_EQ(l.name, "head");
  EXPECT_EQ(l.inputs, std::vector<std::string>{"c"});
  EXPECT_EQ(l.lr_mult, 0.1234567f);
  EXPECT_TRUE(l.frozen);
  EXPECT_EQ(l.where, "m.cfg:4");
  EXPECT_NE(spec.text.find("# --global-pool gem_pool:p=2.5,shared=0 replaced line 4: pool avg"),
            std::string::npos);
  // A number after a comma continues a list.
  ModelSpec pyramid = parse_model_text(
      "input channels=3 height=8 width=8\nconv filters=4 size=3\npool max global\n", "m.cfg");
  apply_global_pool_override(pyramid, "spp_pool:levels=1,3,4,mode=avg");
  EXPECT_EQ(pyramid.layers.at(1).type, "spp_pool");
  EXPECT_NE(pyramid.text.find("\nspp_pool levels=1,3,4 mode=avg name="), std::string::npos)
      << pyramid.text;
  for (const char* bad : {"gem_pool:p=2\nrelu", "gem_pool:p=\t2", "gem_pool:p=2#x"})
    EXPECT_NE(error_of([&] {
                ModelSpec again = parse_model_text(
                    "input channels=3 height=8 width=8\npool avg "
                    "global\nflatten\ndense units=10\n",
                    "m.cfg");
                apply_global_pool_override(again, bad);
              }).find("malformed parameter"),
              std::string::npos)
        << bad;
}

TEST(GlobalPool, BadInputIsOneLine) {
  TempDir d;
  write_cifar_dir(d.str("data"), 2, 29);
  write_file(d.str("nopool.cfg"),
             "input channels=3 height=32 width=32\nconv filters=4 size=3\nflatten\n"
             "dense units=10\n");
  write_file(d.str("repeat.cfg"),
             "input channels=3 height=32 width=32\nrepeat 2\nconv filters=4 size=3 padding=1\n"
             "pool avg size=2\nend\nflatten\ndense units=10\n");
  const std::pair<std::string, std::string> cases[] = {
      {kModels + "resnet20.cfg --global-pool foo", "unknown global encoder 'foo'"},
      {kModels + "resnet20.cfg --global-pool avg", "unknown global encoder 'avg'"},
      {kModels + "resnet20.cfg --global-pool gem_pool:p", "malformed parameter 'p'"},
      {kModels + "resnet20.cfg --global-pool gem_pool:", "nothing after ':'"},
      {kModels + "resnet20.cfg --global-pool gem_pool:p=2,p=3", "'p' is given twice"},
      {kModels + "resnet20.cfg --global-pool gem_pool:name=x", "name= is the replaced layer's"},
      {kModels + "resnet20.cfg --global-pool gem_pool:p=0", "p=0 is out of range"},
      {kModels + "resnet20.cfg --global-pool attention_pool:size=2", "size"},
      {d.str("nopool.cfg") + " --global-pool gem_pool", "has no pool layer to replace"},
      {d.str("repeat.cfg") + " --global-pool gem_pool", "inside a repeat block"},
  };
  for (const auto& [args, want] : cases) {
    const CommandResult r =
        run_convpool("train --data " + d.str("data") + " --device cpu --epochs 1 --model " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(want), std::string::npos) << args << ": " << r.output;
    EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << args << ": " << r.output;
  }
}

}  // namespace
