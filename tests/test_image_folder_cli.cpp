// Image folders from the command line: train on a generated folder at 48x48 (in memory and
// streamed from the mapped cache), eval's and predict's class names, export's input side, the
// second run's cache, --resume, refusals with both numbers; two runs at once sharing the cache;
// profile and bench on a model of another side and class count.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convpool/checkpoint.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;
namespace fs = std::filesystem;

// The whole CLI on a generated folder at 48x48: train learns it, the class names reach eval
// and predict, a second run decodes nothing, a touched file is decoded again; a model of
// another size or class count is refused with both numbers.
TEST(ImageFolder, TrainEvalAndPredictOnAFolderAt48) {
  TempDir d;
  const std::string root = d.str("images");
  const std::vector<std::string> names = write_image_folder(root, 3, 24, 6, fresh_seed());
  const std::string model = d.str("m48.cfg");
  std::ofstream(model) << "input channels=3 height=48 width=48\n"
                          "conv filters=8 size=3 padding=same\nrelu\npool max size=2 stride=2\n"
                          "conv filters=8 size=3 padding=same\nrelu\npool avg global\nflatten\n"
                          "dense units=3\n";
  const std::string common = " --device cpu --threads 2 --batch 12 --lr 0.01 --model " + model;
  const CommandResult t = run_convpool("train --data " + root + common +
                                       " --epochs 4 --flip "
                                       "--crop-pad 4 --out " +
                                       d.str("run"));
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_NE(t.output.find("train/: 72 images in 3 classes (c0 24, c1 24, zz-c2 24)"),
            std::string::npos)
      << t.output;
  EXPECT_NE(t.output.find("train/: 72 images at 48x48 (72 decoded, 0 from the cache"),
            std::string::npos)
      << t.output;
  const Checkpoint ckpt = load_checkpoint(d.str("run/last.safetensors"));
  EXPECT_EQ(ckpt.state.dataset, "folder");
  EXPECT_EQ(ckpt.state.class_names, names);
  EXPECT_EQ(ckpt.state.input.side, 48);
  EXPECT_GT(ckpt.state.history.back().test_accuracy, 0.6);  // chance is 1/3

  const CommandResult e =
      run_convpool("eval --device cpu --checkpoint " + d.str("run/last.safetensors"));
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_NE(e.output.find("val/: 18 images at 48x48 (0 decoded, 18 from the cache"),
            std::string::npos)
      << e.output;
  for (const std::string& n : names)
    EXPECT_NE(e.output.find("\n" + n + " "), std::string::npos) << n;
  const CommandResult p = run_convpool("predict --device cpu --json --checkpoint " +
                                       d.str("run/last.safetensors") + " " + root + "/val/zz-c2");
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const auto j = nlohmann::json::parse(p.output.substr(p.output.find('{')));
  ASSERT_EQ(j["predictions"].size(), 6u);
  int right = 0;
  for (const auto& pr : j["predictions"]) right += pr["top"][0]["class"] == "zz-c2";
  EXPECT_GE(right, 4) << p.output;

  // Export carries the input side (ONNX's input is N x 3 x 48 x 48).
  const CommandResult plan = run_convpool("export --checkpoint " + d.str("run/last.safetensors") +
                                          " --plan " + d.str("plan.json"));
  ASSERT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(d.str("plan.json")))["input"],
            nlohmann::json::array({3, 48, 48}));

  // A second run: nothing decoded. One file touched: it alone.
  bump_mtime(root + "/train/c1/img5.jpg", 3);
  const CommandResult again =
      run_convpool("train --data " + root + common + " --epochs 1 --out " + d.str("run2"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("72 images at 48x48 (1 decoded, 71 from the cache"),
            std::string::npos)
      << again.output;

  // Over the memory budget the records stream from the mapped cache: the same weights, bit
  // for bit, as the run that held them in memory.
  const CommandResult streamed = run_convpool("train --data " + root + common +
                                              " --epochs 4 "
                                              "--flip --crop-pad 4 --memory-budget 10K --out " +
                                              d.str("run-streamed"));
  ASSERT_EQ(streamed.exit_code, 0) << streamed.output;
  EXPECT_NE(streamed.output.find("over the memory budget of 0.0 MiB: streamed from the "
                                 "memory-mapped cache"),
            std::string::npos)
      << streamed.output;
  const Checkpoint in_memory = load_checkpoint(d.str("run/last.safetensors"));
  const Checkpoint from_map = load_checkpoint(d.str("run-streamed/last.safetensors"));
  ASSERT_EQ(from_map.file.tensors.size(), in_memory.file.tensors.size());
  for (const NamedTensor& t : in_memory.file.tensors) {
    const NamedTensor* u = from_map.file.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(u->data.size(), t.data.size()) << t.name;
    EXPECT_EQ(std::memcmp(u->data.data(), t.data.data(), t.data.size() * sizeof(float)), 0)
        << t.name;
  }
  // Each epoch's losses and accuracies (the columns before the timings).
  const auto results = [](const std::string& csv) {
    std::istringstream in(csv);
    std::string line, out;
    while (std::getline(in, line)) {
      size_t at = 0;
      for (int comma = 0; comma < 5 && at != std::string::npos; ++comma)
        at = line.find(',', at + 1);
      out += line.substr(0, at) + "\n";
    }
    return out;
  };
  EXPECT_EQ(results(read_file(d.str("run-streamed/metrics.csv"))),
            results(read_file(d.str("run/metrics.csv"))));
  EXPECT_NE(run_convpool("train --data " + root + common + " --memory-budget 12X --out " +
                         d.str("run-bad"))
                .output.find("--memory-budget must be"),
            std::string::npos);

  // --resume finds the folder the checkpoint recorded, and goes on.
  const CommandResult resumed = run_convpool(
      "train --device cpu --threads 2 --quiet --epochs 5 "
      "--resume " +
      d.str("run/last.safetensors"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(load_checkpoint(d.str("run/last.safetensors")).state.epoch, 5);

  // --image-size fits the images to another side; the model must take it.
  const CommandResult size = run_convpool("train --data " + root + common +
                                          " --epochs 1 --image-size 40 --out " + d.str("run3"));
  EXPECT_EQ(size.exit_code, 1) << size.output;
  EXPECT_NE(size.output.find("takes 3x48x48 inputs, but the image folder " + root +
                             "'s images are 3x40x40"),
            std::string::npos)
      << size.output;
  const std::string ten = d.str("m10.cfg");
  std::ofstream(ten) << "input channels=3 height=48 width=48\nconv filters=4 size=3\nrelu\n"
                        "pool avg global\nflatten\ndense units=10\n";
  const CommandResult classes = run_convpool("train --device cpu --data " + root + " --model " +
                                             ten + " --epochs 1 --out " + d.str("run4"));
  EXPECT_EQ(classes.exit_code, 1) << classes.output;
  EXPECT_NE(classes.output.find("gives 10 outputs per image; the image folder " + root +
                                " needs 3 logits"),
            std::string::npos)
      << classes.output;
  // CIFAR's images have one size.
  const CommandResult cifar = run_convpool(
      "train --device cpu --dataset cifar10 --image-size 40"
      " --epochs 1 --out " +
      d.str("run5"));
  EXPECT_EQ(cifar.exit_code, 1);
  EXPECT_NE(cifar.output.find("CIFAR's images are 32x32"), std::string::npos) << cifar.output;
}

// Two runs started at once on a new folder (shards of a study, say) take turns at its cache:
// each image is decoded once between them, and both train.
TEST(ImageFolder, TwoRunsAtOnceDecodeEachImageOnce) {
  TempDir d;
  const std::string root = d.str("f");
  write_image_folder(root, 2, 300, 5, fresh_seed());  // long enough for the runs to overlap
  const std::string model = d.str("m.cfg");
  std::ofstream(model) << "input channels=3 height=16 width=16\nconv filters=2 size=3\n"
                          "pool avg global\nflatten\ndense units=2\n";
  const std::string run = std::string(CONVPOOL_BINARY) +
                          " train --device cpu --threads 1 --epochs 1 --batch 8 --limit-train 16"
                          " --data " +
                          root + " --model " + model + " --out ";
  const CommandResult both =
      run_command("(" + run + d.str("a") + " > " + d.str("a.txt") + " 2>&1 & " + run + d.str("b") +
                  " > " + d.str("b.txt") + " 2>&1; wait) && grep -h 'images at 16x16' " +
                  d.str("a.txt") + " " + d.str("b.txt"));
  ASSERT_EQ(both.exit_code, 0) << both.output << read_file(d.str("a.txt"))
                               << read_file(d.str("b.txt"));
  size_t decoded[2] = {0, 0};
  std::istringstream lines(both.output);
  int seen = 0;
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("x16 (");
    if (at == std::string::npos) continue;
    ++seen;
    decoded[line.find("train/") != std::string::npos ? 0 : 1] += std::stoul(line.substr(at + 5));
  }
  EXPECT_EQ(seen, 4) << both.output;
  EXPECT_EQ(decoded[0], 600u) << both.output;
  EXPECT_EQ(decoded[1], 10u) << both.output;
  EXPECT_TRUE(fs::exists(d.str("a/last.safetensors")));
  EXPECT_TRUE(fs::exists(d.str("b/last.safetensors")));
}

// profile and bench train feed a model synthetic images of its own side and class count.
TEST(ImageFolder, ProfileAndBenchTakeAModelOfAnySideAndClassCount) {
  TempDir d;
  const std::string model = d.str("m.cfg");
  std::ofstream(model) << "input channels=3 height=40 width=40\nconv filters=4 size=3\nrelu\n"
                          "pool avg global\nflatten\ndense units=7\n";
  const CommandResult p = run_convpool(
      "profile --device cpu --threads 1 --batch 4 --warmup 1 "
      "--steps 1 --model " +
      model);
  EXPECT_EQ(p.exit_code, 0) << p.output;
  const CommandResult b = run_convpool(
      "bench train --device cpu --threads 1 --batch 4 --warmup 1 "
      "--steps 1 --model " +
      model);
  EXPECT_EQ(b.exit_code, 0) << b.output;
}
