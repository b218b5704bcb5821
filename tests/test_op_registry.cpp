// The registry-walking suite: every registered op, through every example it declares, built
// into a small graph and checked the same way. An op without examples fails here.
//  - gradients against central finite differences, for the graph's input and every parameter,
//    in training mode, with the gradients of a tensor read twice (the example's extra inputs
//    come from 1x1 convolutions of the same input) accumulated by the graph;
//  - a shape the op cannot take is a one-line error that names the model file and line;
//  - a checkpoint round trip: parameters and buffers (BatchNorm's running statistics after a
//    training step) come back bit for bit and evaluation gives the same outputs;
//  - CUDA parity of forward and backward against the CPU, on a GPU when there is one.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

#include "convpool/checkpoint.h"
#include "convpool/device.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "finite_difference.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {

struct Case {
  std::string op;
  OpExample example;
};

void PrintTo(const Case& c, std::ostream* os) { *os << "'" << c.example.line << "'"; }

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const OpInfo& op : op_registry())
    for (const OpExample& e : op.examples) cases.push_back({op.name, e});
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s = info.param.example.line + "_" + std::to_string(info.index);
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// The example as a model: the graph's input has the first input's shape; every further input
// is a 1x1 convolution of the graph's input with that input's channels (so the input is read
// by several nodes and its gradient is a sum); the op is the last layer.
std::string model_text(const OpExample& e) {
  const Shape& s0 = e.inputs.at(0);
  std::ostringstream os;
  os << "input channels=" << s0.c << " height=" << s0.h << " width=" << s0.w << "\n";
  std::string ins = "input";
  for (size_t j = 1; j < e.inputs.size(); ++j) {
    EXPECT_EQ(e.inputs[j].h, s0.h) << e.line << ": the suite needs inputs of one size";
    EXPECT_EQ(e.inputs[j].w, s0.w) << e.line << ": the suite needs inputs of one size";
    os << "conv name=side" << j << " filters=" << e.inputs[j].c << " size=1 in=input\n";
    ins += ",side" + std::to_string(j);
  }
  os << e.line << (e.inputs.size() > 1 ? " in=" + ins : std::string()) << " name=op\n";
  return os.str();
}

constexpr int kBatch = 3;

std::unique_ptr<Graph> build(const OpExample& e, Device device = Device::cpu) {
  GraphOptions opts{device, kBatch, 0};
  opts.input_gradient = true;
  opts.plan_memory = true;  // what training uses: the checks see shared memory too
  return Graph::build(parse_model_text(model_text(e), "example.cfg"), opts);
}

void fill(float* p, size_t n, std::mt19937_64& rng, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  for (size_t i = 0; i < n; ++i) p[i] = u(rng);
}

// sum(dy * y) for the graph's forward in training mode at step 5.
double loss_of(Graph& g, const std::vector<float>& dy) {
  StepContext ctx{Device::cpu, true, 17, 5, nullptr};
  g.forward(ctx, kBatch);
  const Tensor y = g.output(kBatch);
  double s = 0;
  for (size_t i = 0; i < y.numel(); ++i) s += double(dy[i]) * y.data[i];
  return s;
}

// Finite differences of up to 48 random elements of v against analytic; returns how many
// were compared (those where the difference can be trusted: finite_difference.h).
size_t compare(Graph& g, const std::vector<float>& dy, float* v, const float* analytic,
               size_t count, const std::string& what, std::mt19937_64& rng) {
  const float h = 1e-2f;
  size_t compared = 0;
  std::vector<size_t> picks(count);
  for (size_t i = 0; i < count; ++i) picks[i] = i;
  std::shuffle(picks.begin(), picks.end(), rng);
  picks.resize(std::min<size_t>(count, 48));
  const DifferenceTolerance tol{2e-3, 2e-2};
  for (size_t i : picks) {
    const auto central = trusted_central_difference([&] { return loss_of(g, dy); }, v[i], h, tol);
    if (!central) continue;  // a kink (ReLU at 0, a tie) or unresolved curvature
    ++compared;
    EXPECT_NEAR(analytic[i], *central, tol.at(*central)) << what << "[" << i << "]";
  }
  return compared;
}

class OpRegistry : public ::testing::TestWithParam<Case> {};

TEST_P(OpRegistry, GradientsMatchFiniteDifferences) {
  const OpExample& e = GetParam().example;
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  auto g = build(e);
  g->init_params(seed);
  // Parameters with some spread (BatchNorm starts at gamma 1, beta 0; give them other values).
  for (const ParamInfo& p : g->param_infos())
    if (p.kind == ParamKind::trainable) fill(g->params() + p.offset, p.shape.numel(), rng, -1.f, 1.f);
  const Tensor x = g->input(kBatch);
  fill(x.data, x.numel(), rng, e.lo, e.hi);
  std::vector<float> dy(g->output(kBatch).numel());
  fill(dy.data(), dy.size(), rng, -1.f, 1.f);
  // A stochastic method draws from (seed, step): every forward of the check is the same one.
  loss_of(*g, dy);
  std::memcpy(g->output_grad(kBatch).data, dy.data(), dy.size() * sizeof(float));
  StepContext ctx{Device::cpu, true, 17, 5, nullptr};
  g->backward(ctx, kBatch);
  const Tensor dx = g->gradient(0, kBatch);
  const std::vector<float> input_grad(dx.data, dx.data + dx.numel());
  const std::vector<float> grads(g->grads(), g->grads() + g->num_params());
  size_t compared = compare(*g, dy, x.data, input_grad.data(), x.numel(), "input", rng);
  for (const ParamInfo& p : g->param_infos())
    if (p.kind == ParamKind::trainable)
      compared += compare(*g, dy, g->params() + p.offset, grads.data() + p.offset, p.shape.numel(),
                          p.name, rng);
  EXPECT_GT(compared, 0u) << e.line << ": nothing compared (seed " << seed << ")";
}

TEST_P(OpRegistry, AShapeItCannotTakeIsAOneLineErrorWithFileAndLine) {
  const OpExample& e = GetParam().example;
  // One input more than the example, of another size: one-input ops refuse the count, add
  // and concat the size.
  const Shape& s0 = e.inputs.at(0);
  std::ostringstream os;
  os << "input channels=" << s0.c << " height=" << s0.h << " width=" << s0.w << "\n"
     << "pool max size=1 stride=2 name=small\n"
     << "conv name=big filters=2 size=1 in=input\n";
  std::string ins = "big";
  for (size_t j = 1; j < e.inputs.size(); ++j) ins += ",big";
  os << e.line << " in=" << ins << ",small name=op\n";
  try {
    Graph::build(parse_model_text(os.str(), "bad.cfg"), GraphOptions{Device::cpu, 2, 0});
    FAIL() << "built: " << os.str();
  } catch (const Error& err) {
    const std::string msg = err.what();
    EXPECT_EQ(msg.rfind("bad.cfg:4: ", 0), 0u) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("'op'"), std::string::npos) << msg;
  }
}

TEST_P(OpRegistry, CheckpointRoundTripKeepsParametersBuffersAndOutputs) {
  const OpExample& e = GetParam().example;
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  auto a = build(e);
  a->init_params(seed);
  fill(a->input(kBatch).data, a->input(kBatch).numel(), rng, e.lo, e.hi);
  StepContext train{Device::cpu, true, 17, 5, nullptr};
  a->forward(train, kBatch);  // moves BatchNorm's running statistics off their start
  TempDir dir;
  const std::string path = (dir.path / "op.safetensors").string();
  TrainState st;
  st.optimizer.kind = OptimizerKind::sgd;  // no optimizer state: the graph was built without
  save_checkpoint(path, *a, model_text(e), "", st);
  auto b = build(e);
  b->init_params(seed + 1);
  restore_graph(load_checkpoint(path), path, *b, false);
  ASSERT_EQ(a->param_infos().size(), b->param_infos().size());
  for (size_t t = 0; t < a->param_infos().size(); ++t) {
    const ParamInfo& p = a->param_infos()[t];
    EXPECT_EQ(std::memcmp(a->params() + p.offset, b->params() + p.offset,
                          p.shape.numel() * sizeof(float)),
              0)
        << p.name << " (" << param_kind_name(p.kind) << ")";
  }
  std::memcpy(b->input(kBatch).data, a->input(kBatch).data, a->input(kBatch).numel() * 4);
  StepContext eval{Device::cpu, false, 17, 5, nullptr};
  a->forward(eval, kBatch);
  b->forward(eval, kBatch);
  const Tensor ya = a->output(kBatch), yb = b->output(kBatch);
  EXPECT_EQ(std::memcmp(ya.data, yb.data, ya.numel() * 4), 0) << e.line;
}

#ifdef CONVPOOL_HAVE_CUDA
TEST_P(OpRegistry, CudaMatchesCpu) {
  if (!cuda_device_available()) GTEST_SKIP() << "no usable CUDA device: " << cuda_device_report();
  const OpExample& e = GetParam().example;
  const uint64_t seed = fresh_seed();
  std::mt19937_64 rng(seed);
  auto cpu = build(e), gpu = build(e, Device::cuda);
  cpu->init_params(seed);
  gpu->init_params(seed);
  const Tensor x = cpu->input(kBatch), dy = cpu->output_grad(kBatch);
  fill(x.data, x.numel(), rng, e.lo, e.hi);
  copy_bytes(gpu->input(kBatch).data, Device::cuda, x.data, Device::cpu, x.numel() * 4);
  StepContext ctx{Device::cpu, true, 17, 5, nullptr};
  cpu->forward(ctx, kBatch);
  fill(dy.data, dy.numel(), rng, -1.f, 1.f);
  cpu->backward(ctx, kBatch);
  // The device step for the kernels' draws.
  Buffer step(Device::cuda, sizeof(uint64_t));
  const uint64_t five = 5;
  copy_bytes(step.get(), Device::cuda, &five, Device::cpu, sizeof five);
  StepContext dctx{Device::cuda, true, 17, 5, nullptr, step.as<uint64_t>()};
  gpu->forward(dctx, kBatch);
  copy_bytes(gpu->output_grad(kBatch).data, Device::cuda, dy.data, Device::cpu, dy.numel() * 4);
  gpu->backward(dctx, kBatch);
  auto host = [](const Tensor& t) {
    std::vector<float> v(t.numel());
    copy_bytes(v.data(), Device::cpu, t.data, Device::cuda, v.size() * 4);
    return v;
  };
  auto close = [&](const std::vector<float>& got, const float* want, const std::string& what) {
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-4 + 1e-3 * std::abs(want[i])) << what << "[" << i << "]";
  };
  close(host(gpu->output(kBatch)), cpu->output(kBatch).data, "output");
  close(host(gpu->gradient(0, kBatch)), cpu->gradient(0, kBatch).data, "input gradient");
  std::vector<float> grads(gpu->num_params());
  copy_bytes(grads.data(), Device::cpu, gpu->grads(), Device::cuda, grads.size() * 4);
  close(grads, cpu->grads(), "parameter gradients");
}
#endif

INSTANTIATE_TEST_SUITE_P(Ops, OpRegistry, ::testing::ValuesIn(all_cases()), case_name);

// The suite above covers an op only through its examples: an op without them is untested.
TEST(OpRegistryCoverage, EveryOpHasExamples) {
  for (const OpInfo& op : op_registry()) {
    EXPECT_FALSE(op.examples.empty()) << "op '" << op.name << "' declares no examples";
    for (const OpExample& e : op.examples) {
      EXPECT_EQ(e.line.rfind(op.name, 0), 0u) << op.name << ": example '" << e.line << "'";
      EXPECT_FALSE(e.inputs.empty()) << op.name << ": example '" << e.line << "' has no inputs";
    }
  }
}

TEST(OpRegistryCoverage, ModelFilesUseOnlyRegisteredOps) {
  // Every example and every model in models/ builds: a registry row that lost its factory or
  // a model naming a missing op fails here.
  for (auto& entry : std::filesystem::directory_iterator(std::string(CONVPOOL_SOURCE_DIR) + "/models"))
    EXPECT_NO_THROW(Graph::build(load_model_file(entry.path().string()),
                                 GraphOptions{Device::cpu, 2, 0}))
        << entry.path();
}

}  // namespace
