// What a first GPU run of the CUDA backend would hit, each shown on the emulated target
// (tests/cuda-emu), where lazy streams make a missing synchronisation read poison, cuDNN's
// stand-in plans and checks workspaces as cuDNN does, and NCCL's refuses two ranks on one
// device. docs/emulated-step.md lists the fault each test guards against.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "convpool/buffer.h"
#include "convpool/checkpoint.h"
#include "convpool/device.h"
#include "convpool/distributed.h"
#include "convpool/graph.h"
#include "convpool/model.h"
#include "cuda/context.h"
#include "cuda/dense_cublas.h"
#include "cuda/pinned.h"
#include "cuda_emu.h"
#include "kernels/scale.cuh"
#include "test_helpers.h"
#include "train/cuda_step.h"

using namespace convpool;
using namespace convpool::test;

namespace {

// A host-to-device copy_bytes is ordered before the compute stream's kernels: cudaMemcpy from
// pageable memory returns once the source is staged, and the compute stream (non-blocking)
// does not wait for the legacy stream the copy runs on.
TEST(CudaDefects, AHostToDeviceCopyLandsBeforeTheComputeStreamReadsIt) {
  const size_t n = 4096;
  std::vector<float> host(n);
  for (size_t i = 0; i < n; ++i) host[i] = float(i) * 0.5f;
  Buffer src(Device::cuda, n * sizeof(float)), dst(Device::cuda, n * sizeof(float));
  copy_bytes(src.get(), Device::cuda, host.data(), Device::cpu, n * sizeof(float));
  cudaStream_t s = cuda::context().stream();
  cuda::scaled_copy(src.as<float>(), dst.as<float>(), n, 2.f, false, s);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  std::vector<float> back(n);
  copy_bytes(back.data(), Device::cpu, dst.get(), Device::cuda, n * sizeof(float));
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(back[i], host[i] * 2.f) << i;
}

// What the trainer calls before it copies the weights to the host (checkpoints, the EMA
// swap): a host copy runs on the legacy stream, which does not wait for the compute stream.
TEST(CudaDefects, SynchronizeMakesTheWeightsFinalForAHostCopy) {
  auto g = Graph::build(parse_model_text("input channels=3 height=32 width=32\n"
                                         "conv filters=4 size=3\nflatten\ndense units=10\n",
                                         "t"),
                        GraphOptions{Device::cuda, 8, 2});
  g->init_params(1);
  const size_t bytes = g->num_params() * sizeof(float);
  std::vector<float> before(g->num_params()), after(before.size()), settled(before.size());
  copy_bytes(before.data(), Device::cpu, g->params(), Device::cuda, bytes);
  Dataset ds;
  ds.pixels.resize(8 * kCifarImageBytes);
  for (size_t i = 0; i < ds.pixels.size(); ++i) ds.pixels[i] = uint8_t(i * 37 % 251);
  ds.labels = {0, 1, 2, 3, 4, 5, 6, 7};
  {
    cuda::TrainStepper stepper(*g, OptimizerConfig{}, StepRecipe{}, InputTransform{}, 1, 0, false);
    const uint32_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    stepper.step(ds, idx, 8, 0, 8, 0);
    stepper.synchronize();
    copy_bytes(after.data(), Device::cpu, g->params(), Device::cuda, bytes);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    copy_bytes(settled.data(), Device::cpu, g->params(), Device::cuda, bytes);
  }
  EXPECT_NE(after, before);   // the step changed the weights ...
  EXPECT_EQ(after, settled);  // ... and synchronize() waited for it
}

// A dense layer through cuBLAS on another stream, inside a capture: cublasSetStream drops the
// workspace convpool owns, and a GEMM without one would allocate cuBLAS's own pool during the
// capture; the context sets its workspace again at every change of stream.
TEST(CudaDefects, CublasKeepsOurWorkspaceOnAnotherStreamInACapture) {
  const int n = 4, in = 8, out = 3;
  std::vector<float> x(size_t(n) * in), w(size_t(out) * in), want(size_t(n) * out, 0.f);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 7) - 3) * 0.25f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i % 5) - 2) * 0.5f;
  for (int s = 0; s < n; ++s)
    for (int o = 0; o < out; ++o)
      for (int k = 0; k < in; ++k)
        want[size_t(s) * out + o] += x[size_t(s) * in + k] * w[size_t(o) * in + k];
  Buffer dx(Device::cuda, x.size() * 4), dw(Device::cuda, w.size() * 4),
      dy(Device::cuda, want.size() * 4);
  copy_bytes(dx.get(), Device::cuda, x.data(), Device::cpu, x.size() * 4);
  copy_bytes(dw.get(), Device::cuda, w.data(), Device::cpu, w.size() * 4);
  cuda::context();  // made before any capture, as training's eager first step makes it
  cuda::Stream other;
  ASSERT_EQ(cudaStreamBeginCapture(other.get(), cudaStreamCaptureModeThreadLocal), cudaSuccess);
  EXPECT_NO_THROW(cuda::dense_forward(n, in, out, dx.as<float>(), dw.as<float>(), nullptr,
                                      dy.as<float>(), other.get()));
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(other.get(), &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, other.get()), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(other.get()), cudaSuccess);
  std::vector<float> got(want.size());
  copy_bytes(got.data(), Device::cpu, dy.get(), Device::cuda, got.size() * 4);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_FLOAT_EQ(got[i], want[i]) << i;
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

// A smaller batch can need more cuDNN workspace than the largest (here the deterministic
// backward-filter algorithm at batches under 8). Every batch size is planned with the graph,
// so the partial batch keeps the deterministic algorithm, and --deterministic holds.
class CudnnTable : public ::testing::Test {
 protected:
  void TearDown() override {
    cuda_emu::reset_conv_algorithms();
    set_cuda_deterministic(false);
    set_cuda_tf32(false);
  }
};

TEST_F(CudnnTable, APartialBatchKeepsTheDeterministicAlgorithmItNeedsMoreWorkspaceFor) {
  using cuda_emu::ConvAlgorithm;
  cuda_emu::set_conv_algorithms(
      cuda_emu::ConvPass::backward_filter,
      {ConvAlgorithm{1, true, false, 0,
                     [](int n, bool) { return n < 8 ? size_t(1) << 20 : size_t(64) << 10; }},
       ConvAlgorithm{0, false, false, 0, [](int, bool) { return size_t(0); }}});
  set_cuda_deterministic(true);
  auto g = Graph::build(parse_model_text("input channels=3 height=8 width=8\n"
                                         "conv filters=4 size=3\nflatten\ndense units=2\n",
                                         "t"),
                        GraphOptions{Device::cuda, 16, 0});
  g->init_params(3);
  EXPECT_NE(g->layer(0).backend_detail(16).find("bwd-filter algo_1"), std::string::npos)
      << g->layer(0).backend_detail(16);
  EXPECT_NE(g->layer(0).backend_detail(5).find("bwd-filter algo_1"), std::string::npos)
      << g->layer(0).backend_detail(5);
  Buffer step(Device::cuda, sizeof(uint64_t));
  const uint64_t zero = 0;
  copy_bytes(step.get(), Device::cuda, &zero, Device::cpu, sizeof zero);
  StepContext ctx{Device::cuda, true, 1, 0, cuda::context().stream()};
  ctx.device_step = step.as<uint64_t>();
  for (int n : {16, 5}) {
    g->forward(ctx, n);
    EXPECT_NO_THROW(g->backward(ctx, n)) << "batch " << n;
  }
  ASSERT_EQ(cudaStreamSynchronize(cuda::context().stream()), cudaSuccess);
}

// Under --tf32 the heuristics offer tensor-op entries whose workspace differs from the
// default variant's: the descriptor takes the chosen entry's math type, so the variant that
// runs is the one planned (else cuDNN refuses the call with CUDNN_STATUS_BAD_PARAM).
TEST_F(CudnnTable, TheDescriptorTakesTheChosenEntrysMathType) {
  using cuda_emu::ConvAlgorithm;
  auto tensor_smaller = [](int n, bool tensor) { return size_t(n) * (tensor ? 1024 : 65536); };
  for (auto pass : {cuda_emu::ConvPass::forward, cuda_emu::ConvPass::backward_data,
                    cuda_emu::ConvPass::backward_filter})
    cuda_emu::set_conv_algorithms(pass, {ConvAlgorithm{1, true, true, 0, tensor_smaller}});
  set_cuda_tf32(true);
  auto g = Graph::build(parse_model_text("input channels=2 height=6 width=6\n"
                                         "conv filters=3 size=3\nconv filters=2 size=3\n"
                                         "flatten\ndense units=2\n",
                                         "t"),
                        GraphOptions{Device::cuda, 4, 0});
  g->init_params(5);
  Buffer step(Device::cuda, sizeof(uint64_t));
  const uint64_t zero = 0;
  copy_bytes(step.get(), Device::cuda, &zero, Device::cpu, sizeof zero);
  StepContext ctx{Device::cuda, true, 1, 0, cuda::context().stream()};
  ctx.device_step = step.as<uint64_t>();
  g->forward(ctx, 4);
  EXPECT_NO_THROW(g->backward(ctx, 4));
  ASSERT_EQ(cudaStreamSynchronize(cuda::context().stream()), cudaSuccess);
}

// Without --tf32 an entry listed with another math type than fp32 FMA is passed over: taking
// its math type onto the descriptor would let CUDNN_DEFAULT_MATH run TF32 on Ampere and later.
TEST_F(CudnnTable, WithoutTf32OnlyFmaEntriesAreChosen) {
  using cuda_emu::ConvAlgorithm;
  ConvAlgorithm listed_default{1, true, false, 0, [](int, bool) { return size_t(0); }};
  listed_default.listed_math = 0;  // CUDNN_DEFAULT_MATH
  cuda_emu::set_conv_algorithms(
      cuda_emu::ConvPass::forward,
      {listed_default, ConvAlgorithm{0, true, false, 0, [](int, bool) { return size_t(0); }}});
  auto g = Graph::build(parse_model_text("input channels=2 height=6 width=6\n"
                                         "conv filters=3 size=3\nflatten\ndense units=2\n",
                                         "t"),
                        GraphOptions{Device::cuda, 4, 0});
  const std::string chosen = g->layer(0).backend_detail(4);
  EXPECT_NE(chosen.find("cuDNN fwd implicit_gemm,"), std::string::npos) << chosen;
}

// The decision behind the NCCL watchdog: success and "in progress" pass, anything else is one
// line naming the rank.
TEST(CudaDefects, AnAsynchronousNcclErrorNamesTheRank) {
  EXPECT_EQ(nccl_async_failure(0, "no error", 1, 4), "");
  EXPECT_EQ(nccl_async_failure(7, "in progress", 1, 4), "");
  const std::string why = nccl_async_failure(6, "remote process exited", 3, 4);
  EXPECT_NE(why.find("rank 3 of 4"), std::string::npos) << why;
  EXPECT_NE(why.find("remote process exited"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos);
}

// A collective that fails asynchronously (the emulated NCCL makes the fourth fail as a dead
// peer does) ends the run with that line instead of a wait that never returns.
TEST(CudaDefects, ADeadPeerEndsTheRunWithOneLineInsteadOfAHang) {
  TempDir d;
  write_cifar_dir(d.str("data"), 16, 4);
  const CommandResult r =
      run_command("CONVPOOL_NCCL=1 CUDA_EMU_NCCL_PEER_FAILS_AFTER=3 timeout 300 " CONVPOOL_BINARY
                  " train --device cuda --quiet --epochs 1 --batch 8 --data " +
                  d.str("data") + " --out " + d.str("run") + " 2>&1");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.exit_code, 124) << "hung: " << r.output;
  EXPECT_NE(r.output.find("convpool: error: rank 0 of 1: NCCL failed asynchronously"),
            std::string::npos)
      << r.output;
}

// ---- data-parallel CUDA over the emulated NCCL (mpirun) ----

std::string mpi_missing() {
  if (std::getenv("CONVPOOL_SKIP_MPI")) return "CONVPOOL_SKIP_MPI is set";
  if (!mpi_available()) return "built without MPI";
  if (run_command("command -v mpirun").exit_code != 0) return "mpirun not found";
  return "";
}

CommandResult train_cuda(int ranks, int devices, const std::string& args) {
  std::string cmd = "CUDA_EMU_DEVICES=" + std::to_string(devices) + " ";
  if (ranks > 1)
    cmd += "mpirun --allow-run-as-root --oversubscribe -x CUDA_EMU_DEVICES -np " +
           std::to_string(ranks) + " ";
  return run_command(cmd + CONVPOOL_BINARY + " train --device cuda --quiet " + args + " 2>&1");
}

double weight_distance(const std::string& a, const std::string& b) {
  const Checkpoint ca = load_checkpoint(a), cb = load_checkpoint(b);
  double num = 0, den = 0;
  for (const NamedTensor& t : ca.file.tensors) {
    const NamedTensor* u = cb.file.find(t.name);
    EXPECT_NE(u, nullptr) << t.name;
    if (!u) continue;
    for (size_t i = 0; i < t.data.size(); ++i) {
      num += (double(t.data[i]) - u->data[i]) * (double(t.data[i]) - u->data[i]);
      den += double(t.data[i]) * t.data[i];
    }
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Two ranks of one node, each on its own GPU by its local rank, all-reducing through NCCL,
// train the weights one process trains on the global batch. (Were every rank on GPU 0, NCCL
// would refuse the duplicate device.)
TEST(CudaDataParallel, TwoEmulatedRanksGiveTheWeightsOfOneProcess) {
  if (const std::string why = mpi_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir d;
  // 159 training images: 9 global batches of 16, then one of 15, whose slices are 7 and 8
  // images: rank 1's has the full slice's size at another place (its captured graph's
  // offset does not apply: that step runs eagerly).
  write_cifar_dir(d.str("data"), 32, 6);
  const std::string args =
      " --epochs 1 --batch 16 --limit-train 159 --limit-test 32 --data " + d.str("data");
  const CommandResult one = train_cuda(1, 1, "--out " + d.str("one") + args);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const CommandResult two = train_cuda(2, 2, "--out " + d.str("two") + args);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  // BatchNorm-free seed CNN: the slices' gradients sum to the global batch's, up to the order
  // of the all-reduce's float additions.
  EXPECT_LE(weight_distance(d.str("one/last.safetensors"), d.str("two/last.safetensors")), 1e-5);
}

TEST(CudaDataParallel, TwoRanksOnOneDeviceAreRefusedByNccl) {
  if (const std::string why = mpi_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir d;
  write_cifar_dir(d.str("data"), 16, 6);
  const CommandResult r =
      train_cuda(2, 1, "--epochs 1 --batch 8 --out " + d.str("r") + " --data " + d.str("data"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("Duplicate GPU detected"), std::string::npos) << r.output;
}

TEST(CudaDataParallel, SyncBatchNormOnCudaIsRefusedNotIgnored) {
  if (const std::string why = mpi_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir d;
  write_cifar_dir(d.str("data"), 16, 6);
  const CommandResult r = train_cuda(
      2, 2, "--sync-bn --epochs 1 --batch 8 --out " + d.str("r") + " --data " + d.str("data"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error: --sync-bn runs on the CPU backend only"), std::string::npos)
      << r.output;
}

}  // namespace
