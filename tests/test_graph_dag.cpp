// The graph of named nodes: inputs by name, topological order, the one-line errors of bad
// graphs, repeat blocks, gradient accumulation, memory planned from lifetimes, parameter
// groups, and the ResNet-20 and VGG-BN models.
#include <gtest/gtest.h>

#include <chrono>

#include <cmath>
#include <cstring>
#include <random>

#include "cpu/whiten.h"
#include "graph/memory_plan.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "layer_harness.h"

using namespace convpool;
using namespace convpool::test;

namespace {

std::string build_error(const std::string& text) {
  try {
    Graph::build(parse_model_text(text, "m.cfg"), GraphOptions{Device::cpu, 2, 0});
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    return msg;
  }
  return "";
}

const std::string kHead = "input channels=2 height=4 width=4\n";

}  // namespace

TEST(GraphErrors, ACycleIsRefusedWithFileAndLine) {
  const std::string msg = build_error(kHead +
                                      "conv name=a filters=2 size=1 in=c\n"
                                      "conv name=b filters=2 size=1 in=a\n"
                                      "add name=c in=b,input\n"
                                      "flatten in=c\n");
  EXPECT_EQ(msg.rfind("m.cfg:", 0), 0u) << msg;
  EXPECT_NE(msg.find("part of a cycle"), std::string::npos) << msg;
  EXPECT_NE(msg.find("a -> b -> c -> a"), std::string::npos) << msg;
  // A layer reading itself.
  EXPECT_NE(build_error(kHead + "relu name=r in=r\nflatten\n").find("m.cfg:2: relu 'r' is part of a cycle"),
            std::string::npos);
}

TEST(GraphErrors, AnUnknownInputNameIsRefusedWithFileLineAndASuggestion) {
  const std::string msg =
      build_error(kHead + "conv name=first filters=2 size=1\nadd name=sum in=first,frist\n");
  EXPECT_EQ(msg, "m.cfg:3: add 'sum': unknown input 'frist' (did you mean 'first'?)");
}

TEST(GraphErrors, AShapeMismatchAtAnAddIsRefusedWithFileAndLine) {
  const std::string msg = build_error(kHead +
                                      "conv name=wide filters=3 size=1\n"
                                      "conv name=narrow filters=2 size=1 in=input\n"
                                      "add name=sum in=wide,narrow\n");
  EXPECT_EQ(msg,
            "m.cfg:4: add 'sum': input 2 ('narrow', 2x4x4) does not match input 1 ('wide', 3x4x4)");
}

TEST(GraphErrors, UnusedOutputsReservedNamesAndBadRepeatsAreRefused) {
  EXPECT_NE(build_error(kHead + "conv name=lost filters=2 size=1\nrelu in=input\n")
                .find("m.cfg:2: conv 'lost': its output is never used"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "relu name=input\n").find("reserved"), std::string::npos);
  EXPECT_NE(build_error(kHead + "repeat 2\nrelu\n").find("m.cfg:2: repeat block without 'end'"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "relu\nend\n").find("m.cfg:3: 'end' without 'repeat'"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "repeat 0\nrelu\nend\n").find("repeat N"), std::string::npos);
  EXPECT_NE(build_error(kHead + "relu in=$in\n").find("only be used inside a repeat block"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "repeat 2\nrelu name=r\nend\n").find("used twice"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "relu lr_mult=-1\n").find("lr_mult=-1 is not a number"),
            std::string::npos);
  EXPECT_NE(build_error(kHead + "relu\nadd in=relu1\n").find("takes 2 to 16 inputs"),
            std::string::npos);
}

TEST(Graph, RepeatBlocksExpandWithTheirIndexAndInput) {
  const auto spec = parse_model_text(kHead +
                                         "conv name=stem filters=2 size=1\n"
                                         "repeat 3\n"
                                         "conv name=b$i_conv filters=2 size=1\n"
                                         "add name=b$i_add in=b$i_conv,$in\n"
                                         "end\n"
                                         "flatten\n",
                                     "m.cfg");
  ASSERT_EQ(spec.layers.size(), 8u);
  EXPECT_EQ(spec.layers[2].name, "b1_add");
  EXPECT_EQ(spec.layers[2].inputs, (std::vector<std::string>{"b1_conv", "stem"}));
  EXPECT_EQ(spec.layers[4].inputs, (std::vector<std::string>{"b2_conv", "b1_add"}));
  EXPECT_EQ(spec.layers[7].name, "flatten1");
  EXPECT_NE(spec.layers[6].where.find("copy 3 of the repeat block"), std::string::npos);
  EXPECT_NO_THROW(Graph::build(spec, GraphOptions{Device::cpu, 2, 0}));
}

TEST(Graph, NodesAreOrderedTopologicallyWhateverTheFileOrder) {
  // `late` is defined after the node that reads it.
  auto g = Graph::build(parse_model_text(kHead +
                                             "add name=sum in=early,late\n"
                                             "conv name=early filters=2 size=1 in=input\n"
                                             "conv name=late filters=2 size=3 padding=same in=input\n"
                                             "flatten in=sum\n",
                                         "m.cfg"),
                        GraphOptions{Device::cpu, 2, 0});
  ASSERT_EQ(g->num_layers(), 4u);
  EXPECT_EQ(g->layer(0).name(), "early");
  EXPECT_EQ(g->layer(1).name(), "late");
  EXPECT_EQ(g->layer(2).name(), "sum");
  EXPECT_EQ(g->node_inputs(2), (std::vector<int>{1, 2}));
}

// A tensor read by several nodes gets the sum of their gradients: y = conv(x) + x read three
// times (through the add and two scales), against the same sum written out by hand.
TEST(Graph, ATensorReadTwiceGetsTheSumOfBothGradients) {
  const uint64_t seed = fresh_seed();
  GraphOptions opts{Device::cpu, 2, 0};
  opts.input_gradient = true;
  auto g = Graph::build(parse_model_text(kHead +
                                             "conv name=c filters=2 size=3 padding=same\n"
                                             "scale name=s factor=3 in=input\n"
                                             "add name=sum in=c,input,s\n"
                                             "flatten\n",
                                         "m.cfg"),
                        opts);
  g->init_params(seed);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  const Tensor x = g->input(2), dy = g->output_grad(2);
  for (size_t i = 0; i < x.numel(); ++i) x.data[i] = u(rng);
  for (size_t i = 0; i < dy.numel(); ++i) dy.data[i] = u(rng);
  StepContext ctx{Device::cpu, true, 1, 1, nullptr};
  g->forward(ctx, 2);
  g->backward(ctx, 2);
  // d/dx of sum(dy * (conv(x) + x + 3x)) = conv^T(dy) + 4 dy. conv^T(dy) alone, from a graph
  // holding only the conv with the same weights:
  auto c = Graph::build(parse_model_text(kHead + "conv name=c filters=2 size=3 padding=same\n", "c.cfg"),
                        opts);
  std::memcpy(c->params(), g->params(), c->num_params() * sizeof(float));
  std::memcpy(c->input(2).data, x.data, x.numel() * sizeof(float));
  std::memcpy(c->output_grad(2).data, dy.data, dy.numel() * sizeof(float));
  c->forward(ctx, 2);
  c->backward(ctx, 2);
  const Tensor dx = g->gradient(0, 2), conv_dx = c->gradient(0, 2);
  for (size_t i = 0; i < dx.numel(); ++i)
    EXPECT_NEAR(dx.data[i], conv_dx.data[i] + 4.f * dy.data[i], 1e-5) << i;
}

TEST(MemoryPlan, TensorsAliveTogetherNeverShareBytesAndThePlanIsNearThePeak) {
  std::mt19937_64 rng(fresh_seed());
  for (int round = 0; round < 100; ++round) {
    // Even rounds: greedy by size; odd rounds: the time-order scan of large graphs.
    const size_t greedy_limit = round % 2 ? 0 : kPlanGreedyLimit;
    std::vector<PlannedTensor> t(1 + rng() % 60);
    for (auto& x : t) {
      x.floats = 1 + rng() % 5000;
      x.first = int(rng() % 40);
      x.last = x.first + int(rng() % 10);
    }
    const MemoryPlan plan = plan_memory(t, greedy_limit);
    EXPECT_GE(plan.extent, plan.peak);
    EXPECT_LE(plan.extent, plan.naive);
    for (size_t a = 0; a < t.size(); ++a) {
      EXPECT_EQ(plan.offsets[a] % 64, 0u);
      EXPECT_LE(plan.offsets[a] + t[a].floats, plan.extent);
      for (size_t b = a + 1; b < t.size(); ++b) {
        const bool together = t[a].first <= t[b].last && t[b].first <= t[a].last;
        const bool overlap = plan.offsets[a] < plan.offsets[b] + t[b].floats &&
                             plan.offsets[b] < plan.offsets[a] + t[a].floats;
        EXPECT_FALSE(together && overlap) << "tensors " << a << " and " << b;
      }
    }
  }
}

// A chain of n layers as the planner sees it: each output lives from its forward step to its
// backward step, each input gradient for two steps of the backward.
std::vector<PlannedTensor> chain_tensors(int n) {
  std::vector<PlannedTensor> t;
  for (int i = 0; i < n; ++i) {
    t.push_back({size_t(1000 + i % 7 * 100), i, 2 * n - i});
    t.push_back({size_t(1000 + i % 7 * 100), 2 * n - i, 2 * n - i + 1});
  }
  return t;
}

double seconds_to_plan(const std::vector<PlannedTensor>& t) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const MemoryPlan plan = plan_memory(t);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_GE(plan.extent, plan.peak);
    best = std::min(best, s);
  }
  return best;
}

// Planning grows as n log n: 100,000 layers (200,000 tensors) in under 2 s, and at most 30
// times the time of 10,000 (n log n: about 12; quadratic: 100).
TEST(MemoryPlan, A100kLayerChainPlansInNLogN) {
  const double small = seconds_to_plan(chain_tensors(10000));
  const double large = seconds_to_plan(chain_tensors(100000));
  EXPECT_LT(large, 2.0);
  EXPECT_LT(large, 30 * std::max(small, 1e-4)) << "10k: " << small << " s, 100k: " << large << " s";
}

// The planned graph trains exactly as the one-buffer-per-tensor graph: same outputs and
// gradients, for a residual network where memory is reused the most.
TEST(MemoryPlan, ResNetStepIsTheSameWithAndWithoutPlanning) {
  const auto spec = load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg");
  GraphOptions planned{Device::cpu, 2, 0}, naive = planned;
  naive.plan_memory = false;
  auto a = Graph::build(spec, planned), b = Graph::build(spec, naive);
  EXPECT_LT(a->activation_memory().planned, a->activation_memory().naive);
  EXPECT_EQ(b->activation_memory().planned, b->activation_memory().naive);
  a->init_params(3);
  b->init_params(3);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (size_t i = 0; i < a->input(2).numel(); ++i) a->input(2).data[i] = b->input(2).data[i] = u(rng);
  for (size_t i = 0; i < a->output_grad(2).numel(); ++i)
    a->output_grad(2).data[i] = b->output_grad(2).data[i] = u(rng);
  StepContext ctx{Device::cpu, true, 1, 1, nullptr};
  a->forward(ctx, 2);
  b->forward(ctx, 2);
  EXPECT_EQ(std::memcmp(a->output(2).data, b->output(2).data, a->output(2).numel() * 4), 0);
  a->backward(ctx, 2);
  b->backward(ctx, 2);
  EXPECT_EQ(std::memcmp(a->grads(), b->grads(), a->num_params() * 4), 0);
}

TEST(Graph, ParameterKindsAndMultipliersGroupTheFlatBuffer) {
  auto g = Graph::build(parse_model_text(kHead +
                                             "conv name=c filters=2 size=3 padding=same\n"
                                             "batchnorm name=bn\n"
                                             "conv name=f filters=2 size=1 frozen=1\n"
                                             "conv name=slow filters=2 size=1 lr_mult=0.1\n"
                                             "flatten\n",
                                         "m.cfg"),
                        GraphOptions{Device::cpu, 2, 0});
  const ParamGroups& groups = g->param_groups();
  ASSERT_EQ(groups.count, 4);  // weights; biases and BN (no decay); slow weight; slow bias
  size_t seen_buffers = 0, frozen = 0;
  for (const ParamInfo& p : g->param_infos()) {
    const bool bias_like = p.name.ends_with(".bias") || p.name == "bn.weight";
    if (p.kind == ParamKind::buffer) {
      ++seen_buffers;
      EXPECT_GE(p.offset, groups.trainable_end()) << p.name;
    } else if (p.kind == ParamKind::frozen) {
      ++frozen;
      EXPECT_TRUE(p.name.rfind("f.", 0) == 0) << p.name;
      EXPECT_GE(p.offset, groups.trainable_end()) << p.name;
    } else {
      EXPECT_EQ(p.wd_mult, bias_like ? 0.f : 1.f) << p.name;
      EXPECT_EQ(p.lr_mult, p.name.rfind("slow.", 0) == 0 ? 0.1f : 1.f) << p.name;
      int k = 0;
      while (p.offset >= groups.end[k]) ++k;
      EXPECT_EQ(groups.wd_mult[k], p.wd_mult) << p.name;
      EXPECT_EQ(groups.lr_mult[k], p.lr_mult) << p.name;
    }
  }
  EXPECT_EQ(seen_buffers, 2u);  // bn.running_mean, bn.running_var
  EXPECT_EQ(frozen, 2u);
  EXPECT_NE(g->summary().find("(6 frozen); buffers: 4"), std::string::npos) << g->summary();
}

TEST(Graph, InitialisersFollowTheirDefinitions) {
  auto g = Graph::build(parse_model_text("input channels=64 height=5 width=5\n"
                                         "conv name=he filters=64 size=3 bias=0 init=he_normal\n"
                                         "conv name=id filters=64 size=3 padding=same bias=0 init=dirac\n"
                                         "batchnorm name=bn\n"
                                         "flatten\n",
                                         "m.cfg"),
                        GraphOptions{Device::cpu, 2, 0});
  g->init_params(fresh_seed());
  const auto& infos = g->param_infos();
  // he_normal: mean 0, variance 2 / fan_in (fan_in 576) over 36864 draws.
  const float* he = g->params() + infos[0].offset;
  double s = 0, s2 = 0;
  const size_t n = infos[0].shape.numel();
  for (size_t i = 0; i < n; ++i) s += he[i], s2 += double(he[i]) * he[i];
  // 6 standard deviations of each (4 would fail 1 run in 16,000); a wrong law is far outside.
  EXPECT_NEAR(s / n, 0.0, 6 * std::sqrt(2.0 / 576 / n));
  EXPECT_NEAR(s2 / n, 2.0 / 576, 0.05 * 2.0 / 576);  // 6.8 of sqrt(2 / n) = 0.74 %
  // dirac: the convolution is the identity.
  const float* id = g->params() + infos[1].offset;
  for (int o = 0; o < 64; ++o)
    for (int c = 0; c < 64; ++c)
      for (int k = 0; k < 9; ++k)
        ASSERT_EQ(id[(o * 64 + c) * 9 + k], (o == c && k == 4) ? 1.f : 0.f);
  // batchnorm: gamma 1, beta 0, running mean 0, running variance 1.
  const float want[4] = {1.f, 0.f, 0.f, 1.f};
  for (int t = 0; t < 4; ++t)
    for (int c = 0; c < 64; ++c) EXPECT_EQ(g->params()[infos[2 + t].offset + c], want[t]) << infos[2 + t].name;
}

TEST(Models, ResNet20AndVggBnHaveTheirPublishedParameterCounts) {
  const std::string dir = std::string(CONVPOOL_SOURCE_DIR) + "/models/";
  struct Want {
    const char* file;
    size_t params, buffers;
  };
  for (const Want& w : {Want{"resnet20.cfg", 272474, 1568}, Want{"vgg_bn.cfg", 1183466, 1920}}) {
    auto g = Graph::build(load_model_file(dir + w.file), GraphOptions{Device::cpu, 2, 0});
    size_t params = 0, buffers = 0;
    for (const ParamInfo& p : g->param_infos())
      (p.kind == ParamKind::buffer ? buffers : params) += p.shape.numel();
    EXPECT_EQ(params, w.params) << w.file;
    EXPECT_EQ(buffers, w.buffers) << w.file;
    EXPECT_EQ(g->output_shape(1), (Shape{1, 10, 1, 1})) << w.file;
  }
}

TEST(Models, ResNet20PlannedActivationMemoryIsBelowOneBufferPerTensor) {
  auto g = Graph::build(load_model_file(std::string(CONVPOOL_SOURCE_DIR) + "/models/resnet20.cfg"),
                        GraphOptions{Device::cpu, 128, 2});
  const ActivationMemory& m = g->activation_memory();
  EXPECT_GE(m.planned, m.peak);
  EXPECT_LT(m.planned, m.naive);
  std::printf("ResNet-20, batch 128, CPU: activation memory planned %.1f MiB, peak alive %.1f MiB, "
              "one buffer per tensor %.1f MiB\n",
              m.planned / 1048576.0, m.peak / 1048576.0, m.naive / 1048576.0);
}

// Evaluation normalises with the running statistics (training with the batch's): set them by
// hand and the outputs follow (x - mean) / sqrt(var + eps) * gamma + beta.
TEST(BatchNorm, EvaluationUsesTheRunningStatistics) {
  auto g = Graph::build(parse_model_text("input channels=2 height=1 width=3\nbatchnorm eps=0.5\nflatten\n", "m.cfg"),
                        GraphOptions{Device::cpu, 2, 0});
  float* p = g->params();
  const auto& info = g->param_infos();  // weight, bias, running_mean, running_var
  const float gamma[2] = {2.f, -1.f}, beta[2] = {0.5f, 0.f}, mean[2] = {1.f, -2.f},
              var[2] = {3.5f, 0.5f};
  for (int c = 0; c < 2; ++c) {
    p[info[0].offset + c] = gamma[c], p[info[1].offset + c] = beta[c];
    p[info[2].offset + c] = mean[c], p[info[3].offset + c] = var[c];
  }
  const Tensor x = g->input(2);
  for (size_t i = 0; i < x.numel(); ++i) x.data[i] = float(i) - 4.f;
  g->forward(StepContext{Device::cpu, false, 1, 1, nullptr}, 2);
  const Tensor y = g->output(2);
  for (size_t i = 0; i < y.numel(); ++i) {
    const int c = int(i / 3) % 2;
    EXPECT_FLOAT_EQ(y.data[i], (x.data[i] - mean[c]) / std::sqrt(var[c] + 0.5f) * gamma[c] + beta[c]) << i;
  }
  // Training mode ignores them: each channel of the batch comes out with mean beta.
  g->forward(StepContext{Device::cpu, true, 1, 1, nullptr}, 2);
  for (int c = 0; c < 2; ++c) {
    double s = 0;
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 3; ++k) s += y.data[(n * 2 + c) * 3 + k];
    EXPECT_NEAR(s / 6, beta[c], 1e-5) << c;
  }
}

TEST(Initialisers, JacobiEigenDecompositionOfARandomSymmetricMatrix) {
  std::mt19937_64 rng(fresh_seed());
  std::uniform_real_distribution<double> u(-1, 1);
  const int k = 12;
  std::vector<double> a(size_t(k) * k);
  for (int r = 0; r < k; ++r)
    for (int c = 0; c <= r; ++c) a[size_t(r) * k + c] = a[size_t(c) * k + r] = u(rng);
  std::vector<double> values, vectors;
  cpu::symmetric_eigen(a, k, values, vectors);
  for (int i = 0; i < k; ++i) {
    if (i) {
      EXPECT_GE(values[size_t(i - 1)], values[size_t(i)]);
    }
    double norm = 0;
    for (int r = 0; r < k; ++r) {
      double av = 0;
      for (int c = 0; c < k; ++c) av += a[size_t(r) * k + c] * vectors[size_t(i) * k + c];
      EXPECT_NEAR(av, values[size_t(i)] * vectors[size_t(i) * k + r], 1e-9) << i;
      norm += vectors[size_t(i) * k + r] * vectors[size_t(i) * k + r];
    }
    EXPECT_NEAR(norm, 1.0, 1e-9);
  }
}

// conv init=whiten through the graph's from-data hook: on the batch it was made from, the
// outputs of the first half of the filters are decorrelated with unit variance (where the
// eigenvalue is well above eps), and the second half is the first negated.
TEST(Initialisers, WhiteningConvDecorrelatesThePatchesItWasMadeFrom) {
  auto g = Graph::build(parse_model_text("input channels=3 height=10 width=10\n"
                                         "conv name=w filters=24 size=2 bias=0 init=whiten\n"
                                         "flatten\n",
                                         "m.cfg"),
                        GraphOptions{Device::cpu, 16, 0});
  EXPECT_TRUE(g->needs_data_init());
  g->init_params(1);
  // Correlated inputs: smooth random images (neighbouring pixels and channels alike).
  std::mt19937_64 rng(fresh_seed());
  std::normal_distribution<float> z(0.f, 1.f);
  const Tensor x = g->input(16);
  for (int n = 0; n < 16; ++n)
    for (int h = 0; h < 10; ++h)
      for (int w = 0; w < 10; ++w) {
        const float base = z(rng) + 0.5f * float(h + w) / 10.f;
        for (int c = 0; c < 3; ++c) x.data[((n * 3 + c) * 10 + h) * 10 + w] = base + 0.3f * z(rng);
      }
  g->init_from_data(16);
  g->forward(StepContext{Device::cpu, false, 1, 1, nullptr}, 16);
  const Tensor y = g->output(16);  // 16 x (24 * 9 * 9)
  const int K = 12, P = 81;
  std::vector<double> mean(K, 0), cov(size_t(K) * K, 0);
  for (int n = 0; n < 16; ++n)
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < K; ++i) {
        mean[size_t(i)] += y.data[(size_t(n) * 24 + i) * P + p];
        EXPECT_EQ(y.data[(size_t(n) * 24 + i + K) * P + p], -y.data[(size_t(n) * 24 + i) * P + p]);
      }
  for (auto& m : mean) m /= 16.0 * P;
  for (int n = 0; n < 16; ++n)
    for (int p = 0; p < P; ++p)
      for (int i = 0; i < K; ++i)
        for (int j = 0; j < K; ++j)
          cov[size_t(i) * K + j] += (y.data[(size_t(n) * 24 + i) * P + p] - mean[size_t(i)]) *
                                    (y.data[(size_t(n) * 24 + j) * P + p] - mean[size_t(j)]);
  for (auto& c : cov) c /= 16.0 * P - 1;
  for (int i = 0; i < 8; ++i)  // the 8 largest of the 12 eigenvalues (>> eps = 5e-4)
    for (int j = 0; j < 8; ++j)
      EXPECT_NEAR(cov[size_t(i) * K + j], i == j ? 1.0 : 0.0, 0.02) << i << "," << j;
  EXPECT_NE(g->summary().find("init whiten"), std::string::npos);
  // A filter count that is not the patch size or twice it is a one-line error.
  EXPECT_NE(build_error("input channels=3 height=4 width=4\nconv filters=5 size=2 init=whiten\n")
                .find("init=whiten needs filters=12 or 24"),
            std::string::npos);
}

// Fuzz find (tests/fuzz/regressions/model_file): a model that is a lone flatten has an output
// that is its input reinterpreted, with no gradient memory from the input; the loss's gradient
// still needs its own. It used to index storage -1.
TEST(Graph, AModelThatOnlyReinterpretsItsInputBuildsAndSteps) {
  auto g = Graph::build(parse_model_text("input channels=2 height=2 width=2\nflatten\n", "m.cfg"),
                        GraphOptions{Device::cpu, 2, 0});
  ASSERT_NE(g->output_grad(2).data, nullptr);
  EXPECT_NE(g->output_grad(2).data, g->output(2).data);
  for (size_t i = 0; i < g->input(2).numel(); ++i) g->input(2).data[i] = float(i);
  const StepContext ctx{Device::cpu, true, 1, 1, nullptr};
  g->forward(ctx, 2);
  for (size_t i = 0; i < g->output(2).numel(); ++i) EXPECT_EQ(g->output(2).data[i], float(i));
  g->backward(ctx, 2);
}
