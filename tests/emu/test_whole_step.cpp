// The whole CUDA training step on the emulated target against the CPU backend: the same
// `train` command on both devices of build/convpool-emu (the CUDA backend's host code, its
// cuDNN, cuBLAS, NCCL and Thrust calls and our kernels, on the CPU through tests/cuda-emu),
// comparing each epoch's losses and accuracies and every tensor of the final checkpoint
// (weights, BatchNorm buffers, optimizer state, EMA). Also: a checkpoint the CUDA run saved
// evaluates the same on the CPU; two emulated ranks over NCCL equal one process; the
// cuDNN-planning and stream-ordering defects a first GPU run would have hit.
//
// Tolerances. Both backends compute in fp32 with different summation orders (cuDNN's
// stand-in accumulates each output in double, oneDNN and OpenBLAS in float blocks), and a
// last-bit difference flips max-pooling argmaxes and ReLU signs on near-ties, which real
// images have many of. Measured on 12 Adam steps of the seed CNN on CIFAR-10 (2026-12-06):
// up to 1e-3 relative in a weight tensor (a conv bias), 9e-3 in an optimizer moment; these
// synthetic runs print theirs. The bounds, 5e-3 for weights and 5e-2 for moments, stay below
// what a real fault gives: a missed synchronisation reads poison (NaN); a different dropout
// or pooling draw, a wrong batch or a skipped update moves weights by 1e-2 and moments by
// 1e-1 or more. Losses are compared to 1e-3 relative; accuracies may differ by one image.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convpool/checkpoint.h"
#include "convpool/device.h"
#include "convpool/pool_methods.h"
#include "convpool/trainer.h"
#include "cuda_emu.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct EpochRow {
  double loss, acc, test_loss, test_acc;
};
std::vector<EpochRow> metrics(const std::string& run) {
  std::ifstream in(run + "/metrics.csv");
  std::string line;
  std::getline(in, line);  // header: epoch,loss,accuracy,test_loss,test_accuracy,...
  std::vector<EpochRow> rows;
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string cell;
    std::vector<double> v;
    while (std::getline(cells, cell, ',')) v.push_back(std::stod(cell));
    if (v.size() >= 5) rows.push_back({v[1], v[2], v[3], v[4]});
  }
  return rows;
}

// Every tensor of two checkpoints, by name, relative 2-norm of the difference: at most
// `weight_tol` for weights, buffers and the EMA, `state_tol` for the optimizer's moments (the
// last steps' gradients, which carry near-tie flips of max pooling and ReLU undamped; the
// weights integrate them scaled by the learning rate). The worst of each is printed.
void expect_same_checkpoint(const std::string& a, const std::string& b, double weight_tol,
                            double state_tol) {
  const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
  ASSERT_EQ(ca.file.tensors.size(), cb.file.tensors.size());
  double worst[2] = {0, 0};
  std::string worst_name[2];
  for (const NamedTensor& t : ca.file.tensors) {
    const NamedTensor* u = cb.file.find(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.data.size(), u->data.size()) << t.name;
    double num = 0, den = 0;
    for (size_t i = 0; i < t.data.size(); ++i) {
      ASSERT_TRUE(std::isfinite(u->data[i])) << t.name << "[" << i << "]";
      num += (double(t.data[i]) - u->data[i]) * (double(t.data[i]) - u->data[i]);
      den += double(t.data[i]) * t.data[i];
    }
    const bool state = t.name.rfind("optim.", 0) == 0;
    const double d = std::sqrt(num / std::max(den, 1e-30));
    EXPECT_LE(d, state ? state_tol : weight_tol) << t.name;
    if (d >= worst[state]) worst[state] = d, worst_name[state] = t.name;
  }
  std::printf("worst relative difference: %.2e (%s) in weights, %.2e (%s) in optimizer state\n",
              worst[0], worst_name[0].c_str(), worst[1], worst_name[1].c_str());
  EXPECT_EQ(ca.state.step, cb.state.step);
}

class WholeStep : public ::testing::Test {
 protected:
  void SetUp() override {
    write_cifar_dir(dir_.str("data"), 44, 11);  // 220 training images, 44 test images
  }
  std::string write_model(const std::string& name, const std::string& text) {
    const std::string path = dir_.str(name + ".cfg");
    std::ofstream(path) << text;
    return path;
  }
  // `train` with `args` on the CPU and on the emulated CUDA device (`cuda_args` there only);
  // the run directories.
  std::pair<std::string, std::string> train_both(const std::string& tag, const std::string& args,
                                                 const std::string& cuda_args = "") {
    return {train_cpu(tag, args), train_cuda(tag, args, cuda_args)};
  }
  std::string train_cpu(const std::string& tag, const std::string& args) {
    return train("cpu --threads 1", tag + "-cpu", args);
  }
  std::string train_cuda(const std::string& tag, const std::string& args,
                         const std::string& cuda_args = "") {
    return train("cuda", tag + "-cuda", args + " " + cuda_args);
  }
  // `train --device DEVICE` into dir_/NAME; the run directory.
  std::string train(const std::string& device, const std::string& name, const std::string& args) {
    const std::string out = dir_.str(name);
    const CommandResult r = run_convpool("train --device " + device + " --out " + out +
                                         " --data " + dir_.str("data") + " --quiet " + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }
  void expect_same_run(const std::string& cpu, const std::string& gpu, int train_images,
                       int test_images) {
    const auto a = metrics(cpu), b = metrics(gpu);
    ASSERT_FALSE(a.empty());
    ASSERT_EQ(a.size(), b.size());
    for (size_t e = 0; e < a.size(); ++e) {
      EXPECT_NEAR(b[e].loss, a[e].loss, 1e-3 * std::max(1.0, std::fabs(a[e].loss))) << e;
      EXPECT_NEAR(b[e].test_loss, a[e].test_loss, 1e-3 * std::max(1.0, std::fabs(a[e].test_loss)))
          << e;
      EXPECT_NEAR(b[e].acc, a[e].acc, 1.0 / train_images + 1e-9) << e;
      EXPECT_NEAR(b[e].test_acc, a[e].test_acc, 1.0 / test_images + 1e-9) << e;
    }
    expect_same_checkpoint(cpu + "/last.safetensors", gpu + "/last.safetensors", 5e-3, 5e-2);
  }
  TempDir dir_;
};

const char* kSeed = CONVPOOL_SOURCE_DIR "/models/keras_cifar10.cfg";
// 52 images at batch 8: six full batches and a partial one of 4, each epoch.
const std::string kShort = " --epochs 2 --limit-train 52 --limit-test 44 --batch 8";

// One CPU run is the reference for the emulated device's under each choice of graph capture
// and data placement (each choice trains the same numbers).
TEST_F(WholeStep, SeedCnnMatchesTheCpuWithAndWithoutGraphsPinnedOrResident) {
  const std::string args = std::string("--model ") + kSeed + kShort;
  const std::string cpu = train_cpu("seed", args);
  const char* choices[] = {"--data-placement pinned", "--no-graph --data-placement device",
                           "--data-placement device"};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(choices[i]);
    expect_same_run(cpu, train_cuda("seed" + std::to_string(i), args, choices[i]), 52, 44);
  }
}

// BatchNorm, a projection shortcut and an add; SGD with Nesterov momentum, EMA evaluated,
// gradient clipping and label smoothing.
TEST_F(WholeStep, SmallResNetWithEmaClippingAndLabelSmoothing) {
  const std::string model =
      write_model("resnet",
                  "input channels=3 height=32 width=32\n"
                  "conv name=stem filters=8 size=3 padding=1 bias=0\n"
                  "batchnorm name=stem_bn\nrelu name=stem_relu\n"
                  "conv name=c1 filters=16 size=3 stride=2 padding=1 bias=0\n"
                  "batchnorm name=bn1\nrelu name=r1\n"
                  "conv name=c2 filters=16 size=3 padding=1 bias=0\n"
                  "batchnorm name=bn2\n"
                  "conv name=proj filters=16 size=1 stride=2 bias=0 in=stem_relu\n"
                  "batchnorm name=proj_bn\n"
                  "add name=sum in=bn2,proj_bn\nrelu name=out\n"
                  "pool avg global\nflatten\ndense units=10\n");
  auto [cpu, gpu] = train_both("resnet", "--model " + model + kShort +
                                             " --optimizer sgd --lr 0.05 --momentum 0.9 --nesterov"
                                             " --ema 0.9 --eval-with ema --clip-grad-norm 0.5"
                                             " --label-smoothing 0.1");
  expect_same_run(cpu, gpu, 52, 44);
}

// A "same" convolution with an odd total padding runs cuDNN on an explicitly padded copy.
TEST_F(WholeStep, OddSamePaddingTakesTheExplicitPadPathWithAdamW) {
  const std::string model = write_model("oddpad",
                                        "input channels=3 height=32 width=32\n"
                                        "conv filters=8 size=2 padding=same\nrelu\n"
                                        "conv filters=8 size=3 stride=2 padding=same\nrelu\n"
                                        "pool max size=2\nflatten\ndense units=10\n");
  auto [cpu, gpu] =
      train_both("oddpad", "--model " + model + kShort + " --optimizer adamw --weight-decay 0.05");
  expect_same_run(cpu, gpu, 52, 44);
}

// Every pooling method side by side, and dropout: their random draws (stochastic pooling,
// mixed pooling's lambda, dropout masks) must be the CPU's, or the weights part at once.
TEST_F(WholeStep, EveryPoolingMethodAndDropoutDrawLikeTheCpu) {
  std::string text =
      "input channels=3 height=32 width=32\nconv name=c filters=4 size=3 padding=1\n"
      "relu name=r\n";
  // Every row of the method table at its defaults, and parameters away from them.
  std::vector<std::string> pools = {"lp p=3", "mixed learned=1", "tmaxavg k=2 t=0.5",
                                    "rwp a=0.3", "rsp a=0.7"};
  for (const PoolMethodSpec& m : pool_methods()) pools.push_back(m.name);
  // Concatenated in groups of up to 8 (concat takes at most 16 inputs), then the groups.
  std::string inputs;
  for (size_t i = 0; i < pools.size(); ++i) {
    text += "pool name=p" + std::to_string(i) + " " + pools[i] + " size=2 in=r\n";
    if (i % 8 != 7 && i + 1 != pools.size()) continue;
    std::string names;
    for (size_t j = i - i % 8; j <= i; ++j)
      names += std::string(j % 8 ? "," : "") + "p" + std::to_string(j);
    const std::string group = "g" + std::to_string(i / 8);
    if (i % 8 == 0)  // a group of one
      text += "scale factor=1 name=" + group + " in=" + names + "\n";
    else
      text += "concat name=" + group + " in=" + names + "\n";
    inputs += group + ",";
  }
  inputs.pop_back();
  if (pools.size() > 8) text += "concat in=" + inputs + "\n";
  // Per-pixel pyramid pooling of them all (C -> 2C) and inter-map pooling, both modes
  // (2C -> C -> C/2; C = 4 per pool layer), then weighted pooling with weights per channel
  // (padded, overlapping), spectral pooling by 1.5 and weighted pooling shared, and local
  // importance pooling; its planes flattened beside the global encoders' features (GeM with an
  // exponent per channel, attention with two heads, compact bilinear (its FFT form, through cuFFT;
  // the Gram form's kernels have their parity tests), a spatial pyramid of means and one of
  // NetVLAD).
  text +=
      "pyramid_pool sizes=1,3\nintermap_pool groups=2\nintermap_pool groups=2 mode=mean\n"
      "weighted_pool size=3 stride=1 pad=1\nspectral_pool factor=1.5\nweighted_pool size=2 "
      "shared=1\n"
      "lip_pool size=3 stride=1 pad=1 name=lip\ngem_pool shared=0 name=gem in=lip\n"
      "attention_pool heads=2 name=att in=lip\ncompact_bilinear d=128 algo=fft name=cbp in=lip\n"
      "spp_pool levels=1,3 mode=avg name=spp in=lip\n"
      "spp_pool levels=1,2 mode=vlad clusters=3 name=vlad in=lip\nflatten name=flat in=lip\n"
      "concat in=flat,gem,att,cbp,spp,vlad\ndropout p=0.3\ndense units=10\n";
  auto [cpu, gpu] = train_both("pools", "--model " + write_model("pools", text) + kShort);
  expect_same_run(cpu, gpu, 52, 44);
}

// A checkpoint saved by the emulated CUDA run loads on the CPU and evaluates the same.
// The user's own images: an image folder of mixed sizes and formats fitted to 48x48 (decoded
// once into the cache the runs share), augmented with crop, flip and cutout at that side,
// through the CUDA step with pinned, resident and memory-mapped (streamed) data; then eval on
// each device, and predict on the emulated one naming the classes.
TEST_F(WholeStep, ImageFolderAt48MatchesTheCpuPinnedAndResident) {
  const std::string images = dir_.str("images");
  write_image_folder(images, 3, 12, 4, 21);
  const std::string model = write_model("m48",
                                        "input channels=3 height=48 width=48\n"
                                        "conv filters=8 size=3 padding=same\nrelu\n"
                                        "pool max size=2 stride=2\n"
                                        "conv filters=8 size=3 padding=same\nrelu\n"
                                        "pool avg global\nflatten\ndense units=3\n");
  const std::string args =
      " --quiet --model " + model + " --data " + images +
      " --epochs 2 --batch 8 --crop-pad 4 --pad-mode reflect --flip --cutout 8";
  auto run = [&](const std::string& device, const std::string& name) {
    const CommandResult r =
        run_convpool("train --device " + device + " --out " + dir_.str(name) + args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir_.str(name);
  };
  const std::string cpu = run("cpu --threads 1", "folder-cpu");
  expect_same_run(cpu, run("cuda --data-placement pinned", "folder-pinned"), 36, 12);
  expect_same_run(cpu, run("cuda --data-placement device", "folder-device"), 36, 12);
  // Streamed from the memory-mapped cache through the pinned path: the same again.
  expect_same_run(cpu, run("cuda --data-placement pinned --memory-budget 1K", "folder-mapped"), 36,
                  12);
  const std::string ckpt = " --checkpoint " + cpu + "/last.safetensors";
  const CommandResult on_cpu = run_convpool("eval --device cpu --json" + ckpt);
  const CommandResult on_gpu = run_convpool("eval --device cuda --json" + ckpt);
  ASSERT_EQ(on_cpu.exit_code, 0) << on_cpu.output;
  ASSERT_EQ(on_gpu.exit_code, 0) << on_gpu.output;
  EXPECT_NE(on_gpu.output.find("\"zz-c2\""), std::string::npos) << on_gpu.output;
  const CommandResult predicted =
      run_convpool("predict --device cuda" + ckpt + " " + images + "/val/c1/img0.png");
  ASSERT_EQ(predicted.exit_code, 0) << predicted.output;
  EXPECT_NE(predicted.output.find("img0.png: "), std::string::npos) << predicted.output;
  EXPECT_NE(predicted.output.find("zz-c2 "), std::string::npos) << predicted.output;
}

// --data-placement device refuses, with one line, data sets that do not fit on the GPU (the
// emulated one holds 16 GiB); auto streams them through pinned memory instead.
TEST(DataPlacement, DeviceRefusesWhatDoesNotFitAndAutoStreamsIt) {
  const size_t too_big = size_t(15) << 30, small = size_t(1) << 20;
  EXPECT_NE(error_of([&] {
              resolve_data_placement(DataPlacement::device, Device::cuda, too_big);
            }).find("do not fit in 80% of the GPU's free memory"),
            std::string::npos);
  EXPECT_EQ(resolve_data_placement(DataPlacement::automatic, Device::cuda, too_big),
            DataPlacement::pinned);
  EXPECT_EQ(resolve_data_placement(DataPlacement::device, Device::cuda, small),
            DataPlacement::device);
  EXPECT_EQ(resolve_data_placement(DataPlacement::automatic, Device::cuda, small),
            DataPlacement::device);
}

TEST_F(WholeStep, CudaCheckpointEvaluatesTheSameOnTheCpu) {
  const std::string gpu = train_cuda("ckpt", std::string("--model ") + kSeed + kShort);
  const std::string ckpt = gpu + "/last.safetensors";
  const std::string common =
      " --data " + dir_.str("data") + " --limit-test 44 --checkpoint " + ckpt;
  const CommandResult on_cpu = run_convpool("eval --device cpu" + common);
  const CommandResult on_gpu = run_convpool("eval --device cuda" + common);
  ASSERT_EQ(on_cpu.exit_code, 0) << on_cpu.output;
  ASSERT_EQ(on_gpu.exit_code, 0) << on_gpu.output;
  auto accuracy = [](const std::string& out) {
    const size_t at = out.find("acc");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_FALSE(accuracy(on_cpu.output).empty()) << on_cpu.output;
  EXPECT_EQ(accuracy(on_cpu.output), accuracy(on_gpu.output));
}

}  // namespace

namespace {

// The profiler's device intervals (CUDA events) and the pooling benchmark's baselines (cuDNN
// pooling, CUB's segmented sort) on the emulated device: their times mean nothing here, but
// their host code runs, and the baselines' outputs must equal our kernels'.
TEST(EmulatedTools, ProfileAndBenchPoolRunTheirCudaPaths) {
  const CommandResult p = run_convpool("profile --device cuda --batch 8 --warmup 1 --steps 2");
  EXPECT_EQ(p.exit_code, 0) << p.output;
  EXPECT_NE(p.output.find("with the CUDA Graph"), std::string::npos) << p.output;
  EXPECT_NE(p.output.find("cuDNN fwd"), std::string::npos) << p.output;
  for (const char* method : {"max", "avg", "avgtopk:k=2"}) {
    const CommandResult b = run_convpool(std::string("bench pool --device cuda --shape 4,8,16,16 "
                                                     "--reps 2 --method ") +
                                         method);
    EXPECT_EQ(b.exit_code, 0) << b.output;
    EXPECT_NE(b.output.find("baseline "), std::string::npos) << b.output;
    const std::string key = "max |difference| of its forward from ours ";
    const size_t at = b.output.find(key);
    ASSERT_NE(at, std::string::npos) << b.output;
    EXPECT_LE(std::stod(b.output.substr(at + key.size())), 1e-6) << b.output;  // sum order
  }
}

}  // namespace
