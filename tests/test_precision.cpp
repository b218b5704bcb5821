// --precision: the names and refusals (fp16 not built, bf16 on CUDA, or on a CPU without bf16
// arithmetic: one line each), what a built graph's convolutions say they run, and ResNet-20
// trained in bf16 on real images beside the same run in fp32 (same seed): the losses close and
// the accuracy above chance. The convolutions' own numerics in bf16: test_conv_engines.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "convpool/precision.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

// Restores the process-wide precision when a test ends.
struct PrecisionScope {
  explicit PrecisionScope(Precision p) { set_precision(p); }
  ~PrecisionScope() { set_precision(Precision::fp32); }
};

TEST(Precision, NamesAndRefusals) {
  for (Precision p : {Precision::fp32, Precision::bf16, Precision::fp16})
    EXPECT_EQ(parse_precision(precision_name(p)), p);
  EXPECT_THROW(parse_precision("fp8"), Error);
  EXPECT_NO_THROW(require_precision_supported(Precision::fp32, true));
  try {
    require_precision_supported(Precision::fp16, false);
    ADD_FAILURE() << "fp16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not built yet"), std::string::npos) << e.what();
  }
  try {
    require_precision_supported(Precision::bf16, true);
    ADD_FAILURE() << "bf16 on CUDA accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("CPU only"), std::string::npos) << e.what();
  }
  if (!cpu_has_bf16()) {
    EXPECT_THROW(require_precision_supported(Precision::bf16, false), Error);
    const CommandResult r = run_convpool("model --precision bf16 " +
                                         std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("needs a CPU with bf16 arithmetic"), std::string::npos) << r.output;
  }
  const CommandResult r = run_convpool("bench train --precision fp16 --device cpu --steps 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("fp16 is not built yet"), std::string::npos) << r.output;
}

TEST(Precision, Bf16GraphsRunTheirConvolutionsInBf16) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 arithmetic (AVX512-BF16, AMX)";
  const std::string text =
      "input channels=3 height=8 width=8\nconv filters=16 size=3 padding=same\n"
      "conv filters=16 size=1\npool max size=2\nflatten\ndense units=4\n";
  for (const Precision p : {Precision::fp32, Precision::bf16}) {
    PrecisionScope scope(p);
    const auto g = Graph::build(parse_model_text(text, "m"), GraphOptions{Device::cpu, 4, 0});
    for (size_t i : {size_t(0), size_t(1)}) {
      const std::string detail = g->layer(i).backend_detail(4);
      EXPECT_EQ(detail.find("bf16") != std::string::npos, p == Precision::bf16)
          << precision_name(p) << ": " << detail;
    }
  }
}

TEST(Precision, ResNet20TrainsInBf16LikeInFp32) {
  if (!cpu_has_bf16()) GTEST_SKIP() << "this CPU has no bf16 arithmetic (AVX512-BF16, AMX)";
  const std::string dir = real_cifar_dir();
  if (dir.empty()) GTEST_SKIP() << "CIFAR-10 not found: set CIFAR10_DIR (tests/test-data does)";
  std::vector<EpochMetrics> runs[2];
  for (int b = 0; b < 2; ++b) {
    TempDir d;
    const CommandResult r = run_convpool(
        "train --model " + std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg --data " + dir +
        " --epochs 1 --limit-train 2000 --limit-test 1000 --device cpu --threads 2 " +
        "--seed 3 --quiet --precision " + (b ? "bf16" : "fp32") + " --out " + d.str("run"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    runs[b] = read_metrics_csv(d.str("run") + "/metrics.csv");
    ASSERT_EQ(runs[b].size(), 1u);
  }
  std::printf("resnet20 one epoch: fp32 loss %.4f test acc %.3f, bf16 loss %.4f test acc %.3f\n",
              runs[0][0].loss, runs[0][0].test_accuracy, runs[1][0].loss, runs[1][0].test_accuracy);
  EXPECT_NEAR(runs[1][0].loss, runs[0][0].loss, 0.05);
  EXPECT_GT(runs[1][0].test_accuracy, 0.15);  // chance 0.10; 5 standard errors above
}

}  // namespace
