// The CUDA backend against the CPU backend where cuDNN, cuBLAS or the whole graph is involved:
// convolution and dense layers, TF32, 20 training batches, checkpoints, ReLU fused into
// pooling. Outputs are poisoned with NaN first, so an element a kernel fails to write fails
// the test. Without a usable GPU each test skips with the reason. Our own kernels
// (kernels/*.cu: pooling, ReLU, bias, loss, conversion, optimizer) are tested one by one in
// tests/kernel_parity.cpp, which also runs on the emulated target in every CI run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "convpool/buffer.h"
#include "convpool/checkpoint.h"
#include "convpool/device.h"
#include "convpool/optim.h"
#include "convpool/trainer.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

#define SKIP_WITHOUT_GPU()                                               \
  do {                                                                   \
    if (!cuda_device_available())                                        \
      GTEST_SKIP() << "no usable CUDA device: " << cuda_device_report(); \
  } while (0)

// Host vector <-> device buffer.
Buffer to_device(const std::vector<float>& v) {
  Buffer b(Device::cuda, std::max<size_t>(v.size(), 1) * sizeof(float));
  copy_bytes(b.get(), Device::cuda, v.data(), Device::cpu, v.size() * sizeof(float));
  return b;
}
std::vector<float> to_host(const Buffer& b, size_t n) {
  std::vector<float> v(n);
  copy_bytes(v.data(), Device::cpu, b.get(), Device::cuda, n * sizeof(float));
  return v;
}
Buffer poisoned_device(size_t n) {
  std::vector<float> nan(n, std::nanf(""));
  return to_device(nan);
}

// Relative error in the 2-norm; every element must also be finite where the reference is.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::isfinite(got[i]), std::isfinite(want[i])) << what << "[" << i << "]";
    if (!std::isfinite(want[i])) continue;
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), tol) << what;
}

struct LayerCase {
  std::string line;
  Shape in;
  int batch;
  bool training;
};
void PrintTo(const LayerCase& c, std::ostream* os) {
  *os << c.line << " on " << c.in.str() << " x" << c.batch << (c.training ? " train" : " eval");
}

class CudaLayerParity : public ::testing::TestWithParam<LayerCase> {};

// Runs the layer of `c` on both backends with the same inputs; compares within `tol`.
void check_layer_parity(const LayerCase& c, double tol) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const bool non_negative = c.line.find("stochastic") != std::string::npos;
  LayerHarness h(c.line, c.in, c.batch, seed, non_negative ? 0.f : -1.f, 1.f);
  StepContext cpu_ctx;
  cpu_ctx.training = c.training;
  cpu_ctx.seed = seed;
  cpu_ctx.step = 7;
  h.forward(cpu_ctx);
  h.backward(cpu_ctx);

  // The same layer on the GPU, with the same parameters and inputs.
  ModelSpec spec = parse_model_text(c.line + "\n", "test");
  LayerSpec ls = spec.layers.at(0);
  ls.name = ls.type + "1";
  auto layer = make_layer(ls);
  layer->infer_shape(h.in);
  layer->prepare(Device::cuda, c.batch);
  Buffer x = to_device(h.x), dy = to_device(h.dy), params = to_device(h.params);
  Buffer y = poisoned_device(h.y.size()), dx = poisoned_device(h.dx.size());
  Buffer grads = poisoned_device(h.grads.size());
  Buffer state(Device::cuda, (layer->state_floats(c.batch) + 1) * sizeof(float));
  Buffer workspace(Device::cuda, (layer->workspace_floats(c.batch) + 1) * sizeof(float));
  Buffer step(Device::cuda, sizeof(uint64_t));
  const uint64_t step_value = cpu_ctx.step;
  copy_bytes(step.get(), Device::cuda, &step_value, Device::cpu, sizeof step_value);
  std::vector<Tensor> p, g;
  for (size_t i = 0; i < h.decls.size(); ++i) {
    p.push_back({params.as<float>() + h.offsets[i], h.decls[i].shape, Device::cuda});
    g.push_back({grads.as<float>() + h.offsets[i], h.decls[i].shape, Device::cuda});
  }
  layer->bind(p, g, state.as<float>(), workspace.as<float>());
  StepContext gpu_ctx = cpu_ctx;
  gpu_ctx.device = Device::cuda;
  gpu_ctx.device_step = step.as<uint64_t>();
  const Shape in_n = h.in.with_batch(c.batch), out_n = h.out.with_batch(c.batch);
  layer->forward(gpu_ctx, {x.as<float>(), in_n, Device::cuda},
                 {y.as<float>(), out_n, Device::cuda});
  layer->backward(gpu_ctx, {x.as<float>(), in_n, Device::cuda},
                  {y.as<float>(), out_n, Device::cuda}, {dy.as<float>(), out_n, Device::cuda},
                  {dx.as<float>(), in_n, Device::cuda});
  expect_close(to_host(y, h.y.size()), h.y, tol, "y");
  expect_close(to_host(dx, h.dx.size()), h.dx, tol, "dx");
  if (!h.grads.empty()) expect_close(to_host(grads, h.grads.size()), h.grads, tol, "grads");
}

TEST_P(CudaLayerParity, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_GPU();
  check_layer_parity(GetParam(), 1e-5);
}

// --tf32: TF32 keeps 10 mantissa bits, so products carry ~5e-4 relative error; the documented
// bound for convolutions and dense layers is 5e-3 (docs/benchmarks.md).
TEST(CudaParity, Tf32ConvolutionsAndDenseStayWithinTheDocumentedBound) {
  SKIP_WITHOUT_GPU();
  set_cuda_tf32(true);
  for (const LayerCase& c : {LayerCase{"conv filters=32 size=3", {1, 3, 32, 32}, 32, true},
                             LayerCase{"conv filters=64 size=3", {1, 32, 15, 15}, 8, true},
                             LayerCase{"dense units=64", {1, 2304, 1, 1}, 32, true}})
    check_layer_parity(c, 5e-3);
  set_cuda_tf32(false);
}

INSTANTIATE_TEST_SUITE_P(
    CudaOps, CudaLayerParity,
    ::testing::Values(
        LayerCase{"conv filters=32 size=3", {1, 3, 32, 32}, 32, true},
        LayerCase{"conv filters=7 size=3 stride=2 padding=same", {1, 5, 13, 11}, 3, true},
        // Odd total pads: the extra row/column at the bottom/right,
        // which cuDNN cannot pad, so kernels/pad.cu pads explicitly.
        LayerCase{"conv filters=6 size=3 stride=2 padding=same", {1, 3, 12, 10}, 2, true},
        LayerCase{"conv filters=4 size=2 padding=same", {1, 3, 9, 8}, 2, true},
        LayerCase{"conv filters=4 size=5 padding=2", {1, 3, 9, 17}, 2, true},
        LayerCase{"dense units=64", {1, 2304, 1, 1}, 32, true},
        LayerCase{"dense units=10", {1, 37, 1, 1}, 5, true},
        // Pooling ops built on the pool kernels, or with kernels of their own.
        LayerCase{"pyramid_pool sizes=1,3,5,7", {1, 3, 9, 7}, 3, true},
        LayerCase{"pyramid_pool sizes=3,5", {1, 2, 6, 6}, 2, false},
        LayerCase{"pyramid_pool sizes=1,3", {1, 4, 1, 1}, 3, true},  // size 1 on 1x1: global
        LayerCase{"intermap_pool groups=3", {1, 6, 5, 4}, 3, true},
        LayerCase{"intermap_pool groups=2 mode=mean", {1, 4, 3, 3}, 2, true},
        LayerCase{"weighted_pool size=3 stride=2 pad=1", {1, 3, 9, 7}, 3, true},
        LayerCase{"weighted_pool size=2 shared=1", {1, 4, 6, 6}, 2, true},
        LayerCase{"lip_pool size=3 stride=2 pad=1", {1, 3, 9, 7}, 3, true},
        // The global encoders.
        LayerCase{"gem_pool shared=0", {1, 5, 8, 8}, 3, true},
        LayerCase{"attention_pool heads=2", {1, 6, 4, 4}, 3, true},
        LayerCase{"compact_bilinear d=32 eps=0.01", {1, 6, 4, 4}, 3, true},
        LayerCase{"compact_bilinear d=32 eps=0.01 algo=fft", {1, 6, 4, 4}, 3, true},
        LayerCase{"spectral_pool factor=1.5", {1, 3, 9, 7}, 3, true},
        LayerCase{"spp_pool levels=1,3", {1, 4, 7, 5}, 3, true},
        LayerCase{"spp_pool mode=vlad clusters=3 levels=1,2", {1, 4, 6, 5}, 3, true}));

}  // namespace

namespace {

// The same seed and the same first 20 batches on CPU and CUDA give matching losses and
// weights, with and without the CUDA Graph, with augmentation and normalisation on.
TEST(CudaParity, TwentyBatchesOfTheReferenceNetworkMatchCpu) {
  SKIP_WITHOUT_GPU();
  TempDir d;
  // Fixed seeds: a last-bit difference between the backends can flip a max-pooling argmax at
  // a near-tie, and with fresh seeds now and then one did early enough to move the first
  // epoch's mean loss by 6e-4 (relative) on the emulated device: a failure no one could rerun.
  write_cifar_dir(d.str("data"), 128, 20261206);  // 640 training images = 20 batches of 32
  const Dataset train = load_cifar10(d.str("data"), "train");
  const Dataset test = load_cifar10(d.str("data"), "test");
  const ModelSpec spec =
      load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg");
  const uint64_t seed = 7;
  auto run = [&](Device device, bool graph) {
    auto g = Graph::build(spec, GraphOptions{device, 32, 2});
    g->init_params(seed);
    TrainConfig cfg;
    cfg.epochs = 1;
    cfg.seed = seed;
    cfg.cuda_graph = graph;
    cfg.device = device;
    cfg.input.crop_pad = 2;  // the augmentation draws must match too
    cfg.input.flip = true;
    cfg.input.mean[1] = 0.5f;
    cfg.input.std[2] = 0.3f;
    const auto m = Trainer(*g, cfg).fit(train, test);
    std::vector<float> w(g->num_params());
    copy_bytes(w.data(), Device::cpu, g->params(), device, w.size() * sizeof(float));
    return std::make_pair(m[0], w);
  };
  const auto cpu = run(Device::cpu, false);
  for (bool graph : {false, true}) {
    const auto gpu = run(Device::cuda, graph);
    EXPECT_NEAR(gpu.first.loss, cpu.first.loss, 1e-4 * cpu.first.loss) << "graph=" << graph;
    EXPECT_NEAR(gpu.first.test_loss, cpu.first.test_loss, 1e-3 * cpu.first.test_loss);
    // 2e-2: a last-bit difference between the backends flips a max-pooling argmax on a
    // near-tie now and then, and 20 training steps amplify it (with fresh seeds on the
    // emulated device, 6 runs in 8 stayed under 5e-6 and 2 reached 2.4e-3 and 6.1e-3). The
    // losses above, within 1e-4, are the sharp check; a missed synchronisation reads NaN.
    expect_close(gpu.second, cpu.second, 2e-2, graph ? "weights (graph)" : "weights (eager)");
  }
}

}  // namespace

namespace {

// A checkpoint evaluated on the CPU and on CUDA gives the same predictions and loss.
TEST(CudaParity, CheckpointEvaluatesTheSameOnCpuAndCuda) {
  SKIP_WITHOUT_GPU();
  TempDir d;
  write_cifar_dir(d.str("data"), 40, fresh_seed());
  const Dataset test = load_cifar10(d.str("data"), "test");
  const ModelSpec spec =
      load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/keras_cifar10.cfg");
  auto cpu_graph = Graph::build(spec, GraphOptions{Device::cpu, 16, 2});
  cpu_graph->init_params(fresh_seed());
  TrainState state;
  save_checkpoint(d.str("c.safetensors"), *cpu_graph, spec.text, "", state);
  const Checkpoint c = load_checkpoint(d.str("c.safetensors"));
  auto gpu_graph = Graph::build(spec, GraphOptions{Device::cuda, 16, 0});
  restore_graph(c, "c", *gpu_graph, false);
  TrainConfig cfg;
  cfg.batch = 16;
  cfg.device = Device::cuda;
  const EvalResult on_gpu = Trainer(*gpu_graph, cfg).evaluate(test);
  cfg.device = Device::cpu;
  const EvalResult on_cpu = Trainer(*cpu_graph, cfg).evaluate(test);
  EXPECT_NEAR(on_gpu.loss, on_cpu.loss, 1e-5 * on_cpu.loss);
  EXPECT_EQ(on_gpu.predictions, on_cpu.predictions);
}

}  // namespace

namespace {

// A ReLU fused into the pooling layer gives on CUDA what it gives on the CPU, on both kernel
// families (small windows, and the warp kernels for global and large windows).
// The ReLU, max and top-k choices must see the same values on both devices: with a 3x3
// convolution in front, cuDNN's and the CPU's roundings could put a near-tie on opposite sides
// (one flipped choice moves a gradient far past any tolerance). So the convolution is 1x1 and
// its inputs and weights lie on a grid of 1/8: its sums of 3 products are exact in float (and
// in TF32) whatever the order, and the choices are the same, ties included.
TEST(CudaParity, FusedReluPoolMatchesCpu) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = fresh_seed();
  auto to_grid = [](float v) { return std::round(v * 8.f) / 8.f; };
  for (const char* pool : {"max size=2", "avgtopk k=3 size=3 stride=2", "mixed size=2",
                           "avgtopk k=5 global", "softpool size=10", "max global"}) {
    const std::string model = std::string("input channels=3 height=22 width=22\n") +
                              "conv filters=6 size=1\nrelu\npool " + pool +
                              "\nflatten\ndense units=4\n";
    const int n = 3;
    auto cpu = Graph::build(parse_model_text(model, "t"), GraphOptions{Device::cpu, n, 0});
    auto gpu = Graph::build(parse_model_text(model, "t"), GraphOptions{Device::cuda, n, 0});
    ASSERT_TRUE(cpu->layer(1).aliases_input());
    cpu->init_params(seed);
    gpu->init_params(seed);
    const ParamInfo &cpu_w = cpu->param_infos().at(0), &gpu_w = gpu->param_infos().at(0);
    ASSERT_EQ(cpu_w.name, cpu->layer(0).name() + ".weight");
    ASSERT_EQ(gpu_w.name, cpu_w.name);
    float* w = cpu->params() + cpu_w.offset;
    for (size_t i = 0; i < cpu_w.shape.numel(); ++i) w[i] = to_grid(w[i]);
    copy_bytes(gpu->params() + gpu_w.offset, Device::cuda, w, Device::cpu,
               cpu_w.shape.numel() * sizeof(float));
    std::mt19937_64 rng(seed);
    std::vector<float> x(cpu->input(n).numel()), dy(cpu->output_grad(n).numel());
    fill_uniform(x, rng, -1.f, 1.f);
    for (float& v : x) v = to_grid(v);
    fill_uniform(dy, rng, -1.f, 1.f);
    std::copy(x.begin(), x.end(), cpu->input(n).data);
    std::copy(dy.begin(), dy.end(), cpu->output_grad(n).data);
    copy_bytes(gpu->input(n).data, Device::cuda, x.data(), Device::cpu, x.size() * 4);
    copy_bytes(gpu->output_grad(n).data, Device::cuda, dy.data(), Device::cpu, dy.size() * 4);
    Buffer step(Device::cuda, sizeof(uint64_t));
    const uint64_t step_value = 5;
    copy_bytes(step.get(), Device::cuda, &step_value, Device::cpu, sizeof step_value);
    // Poisoned: an output or gradient the kernels leave unwritten fails the comparison.
    const std::vector<float> nan_out(cpu->output(n).numel(), std::nanf("")),
        nan_grads(cpu->num_params(), std::nanf(""));
    copy_bytes(gpu->output(n).data, Device::cuda, nan_out.data(), Device::cpu, nan_out.size() * 4);
    copy_bytes(gpu->grads(), Device::cuda, nan_grads.data(), Device::cpu, nan_grads.size() * 4);
    StepContext cctx{Device::cpu, true, seed, step_value, nullptr};
    StepContext gctx = cctx;
    gctx.device = Device::cuda;
    gctx.device_step = step.as<uint64_t>();
    cpu->forward(cctx, n);
    cpu->backward(cctx, n);
    gpu->forward(gctx, n);
    gpu->backward(gctx, n);
    std::vector<float> out(cpu->output(n).numel()), grads(cpu->num_params());
    copy_bytes(out.data(), Device::cpu, gpu->output(n).data, Device::cuda, out.size() * 4);
    copy_bytes(grads.data(), Device::cpu, gpu->grads(), Device::cuda, grads.size() * 4);
    expect_close(out, std::vector<float>(cpu->output(n).data, cpu->output(n).data + out.size()),
                 1e-5, std::string("output ") + pool);
    // Parameter by parameter: the arena's alignment gaps between them hold no gradient.
    for (const ParamInfo& p : cpu->param_infos())
      expect_close(std::vector<float>(grads.begin() + p.offset,
                                      grads.begin() + p.offset + p.shape.numel()),
                   std::vector<float>(cpu->grads() + p.offset,
                                      cpu->grads() + p.offset + p.shape.numel()),
                   1e-5, "grads of " + p.name + " under " + pool);
  }
}

}  // namespace
