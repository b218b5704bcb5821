// Faults: non-finite values, stop signals, unwritable run directories, bad checkpoints
// given to the CLI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "convpool/checkpoint.h"
#include "convpool/trainer.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
const char* kModel =
    "conv filters=4 size=3 stride=2\nrelu\npool max size=2\nflatten\ndense units=10\n";

struct Fixture {
  TempDir d;
  Dataset train, test;
  Fixture() {
    write_cifar_dir(d.str("data"), 20, fresh_seed());
    train = load_cifar10(d.str("data"), "train");
    test = load_cifar10(d.str("data"), "test");
  }
};
}  // namespace

TEST(NonFinite, StopNamesTheStepAndTheFirstBadLayer) {
  Fixture f;
  auto g = Graph::build(parse_model_text(kModel, "m"), GraphOptions{Device::cpu, 8, 2});
  g->init_params(fresh_seed());
  g->params()[g->param_infos()[2].offset] = INFINITY;  // the dense weight: conv1 stays finite
  TrainConfig cfg;
  cfg.batch = 8;
  cfg.epochs = 1;
  cfg.out_dir = f.d.str("run");
  try {
    Trainer(*g, cfg).fit(f.train, f.test);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("at step 0"), std::string::npos) << msg;
    EXPECT_NE(msg.find("output of layer dense1"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("output of layer conv1"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(f.d.str("run/last.safetensors")));
}

// Every batch skipped means nothing was learned: the run fails (it used to print loss 0 and
// exit 0), naming the count, and the weights stay as they were.
TEST(NonFinite, SkipPolicyFailsTheRunWhenEveryBatchIsSkipped) {
  Fixture f;
  auto g = Graph::build(parse_model_text(kModel, "m"), GraphOptions{Device::cpu, 8, 2});
  g->init_params(fresh_seed());
  g->params()[0] = NAN;
  const std::vector<float> before(g->params(), g->params() + g->num_params());
  TrainConfig cfg;
  cfg.batch = 8;
  cfg.epochs = 1;
  cfg.nan_policy = "skip";
  const std::string msg = error_of([&] { Trainer(*g, cfg).fit(f.train, f.test); });
  EXPECT_NE(msg.find("every batch of epoch 1 (" + std::to_string((f.train.size() + 7) / 8) + ")"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("the run has failed"), std::string::npos) << msg;
  for (size_t i = 1; i < before.size(); ++i) ASSERT_EQ(before[i], g->params()[i]) << i;
}

TEST(Signals, SigintSavesACheckpointAndExitsNonZero) {
  Fixture f;
  const std::string run = f.d.str("run");
  const std::string log = f.d.str("log.txt");
  const pid_t pid = fork();
  if (pid == 0) {
    freopen(log.c_str(), "w", stdout);
    freopen(log.c_str(), "a", stderr);
    execl(CONVPOOL_BINARY, CONVPOOL_BINARY, "train", "--device", "cpu", "--data",
          f.d.str("data").c_str(), "--epochs", "100000", "--batch", "4", "--out", run.c_str(),
          "--save-every", "3", nullptr);
    _exit(127);
  }
  // Wait until training is under way (the first periodic checkpoint exists), then interrupt.
  for (int i = 0; i < 600 && !std::filesystem::exists(run + "/last.safetensors"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string out = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 130) << out;
  EXPECT_NE(out.find("checkpoint saved to " + run + "/last.safetensors"), std::string::npos) << out;
  const Checkpoint c = load_checkpoint(run + "/last.safetensors");
  EXPECT_GT(c.state.step, 0u);
}

TEST(Signals, SecondSigintExitsAtOnceAndTheLastCheckpointSurvives) {
  Fixture f;
  const std::string run = f.d.str("run");
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    execl(CONVPOOL_BINARY, CONVPOOL_BINARY, "train", "--device", "cpu", "--data",
          f.d.str("data").c_str(), "--epochs", "100000", "--batch", "4", "--out", run.c_str(),
          "--save-every", "1", "--quiet", nullptr);
    _exit(127);
  }
  for (int i = 0; i < 600 && !std::filesystem::exists(run + "/last.safetensors"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGINT);
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_NO_THROW(load_checkpoint(run + "/last.safetensors"));
}

TEST(CliFaults, UnwritableRunDirectoryAndBadCheckpoints) {
  Fixture f;
  std::ofstream(f.d.str("a-file")) << "x";
  auto r = run_convpool("train --device cpu --epochs 1 --data " + f.d.str("data") + " --out " +
                        f.d.str("a-file/run"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot write"), std::string::npos) << r.output;

  std::ofstream(f.d.str("junk.safetensors")) << "definitely not a checkpoint";
  r = run_convpool("eval --checkpoint " + f.d.str("junk.safetensors") + " --data " +
                   f.d.str("data"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("junk.safetensors"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;

  r = run_convpool("train --device cpu --epochs 1 --batch 8 --quiet --data " + f.d.str("data") +
                   " --out " + f.d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_convpool("eval --checkpoint " + f.d.str("run/last.safetensors") + " --data " +
                   f.d.str("data") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"confusion\""), std::string::npos);
  r = run_convpool("train --resume " + f.d.str("run/last.safetensors") + " --lr 0.1 --epochs 3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--lr cannot change it"), std::string::npos) << r.output;
}

TEST(CliCheckpoints, KeepBoundsTheStepHistoryAndBestFollowsTestAccuracy) {
  Fixture f;  // 100 training images: 25 steps of 4 per epoch
  const auto r = run_convpool(
      "train --device cpu --quiet --epochs 2 --batch 4 --save-every 5 "
      "--keep 3 --data " +
      f.d.str("data") + " --out " + f.d.str("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> history;
  for (auto& e : std::filesystem::directory_iterator(f.d.str("run")))
    if (e.path().filename().string().rfind("step-", 0) == 0) history.push_back(e.path().filename());
  std::sort(history.begin(), history.end());
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history.back(), "step-0000000050.safetensors");
  const Checkpoint last = load_checkpoint(f.d.str("run/last.safetensors"));
  const Checkpoint best = load_checkpoint(f.d.str("run/best.safetensors"));
  EXPECT_EQ(last.state.step, 50u);
  EXPECT_EQ(best.state.best_accuracy, std::max(best.state.best_accuracy, last.state.best_accuracy));
}
