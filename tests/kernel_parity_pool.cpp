// The kernel parity suite, pooling: both kernel families (kernels/pool_small.cu,
// kernels/pool_warp.cu) through their launchers, against the CPU backend. Written once for
// the real GPU and the emulated target, as tests/kernel_parity.cpp (which says how).
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/philox.cuh"
#include "convpool/error.h"
#include "cpu/pool.h"
#include "kernels/pool.cuh"
#include "kernels/pool_avgtopk_baseline.cuh"
#include "kernel_parity.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// ---------------------------------------------------------------- pooling

struct PoolCase {
  std::string line;  // the model-file line: "pool avgtopk k=3 size=3 stride=2"
  int C, H, W, batch;
  bool training = true;
  Fill fill = Fill::uniform;
  unsigned grid_cap = 0;     // emulator only: force the grid-stride second pass
  bool first_layer = false;  // no dx wanted (pooling is the network's first layer)
  bool relu_in = false;      // a ReLU fused into the window reads
};
void PrintTo(const PoolCase& c, std::ostream* os) {
  *os << c.line << " on " << c.C << "x" << c.H << "x" << c.W << " x" << c.batch
      << (c.training ? " train" : " eval");
}

struct PoolSetup {
  PoolGeom g{};
  PoolWindowParams p;
  bool learned = false;
};

// The geometry and parameters the pool layer would derive from `line` (src/layers/pool.cpp).
PoolSetup parse_pool(const PoolCase& c) {
#define CONVPOOL_POOL_NAME_ROW(id, ...) {#id, PoolMethod::id},
  static const std::pair<const char*, PoolMethod> methods[] = {
      CONVPOOL_POOL_METHODS(CONVPOOL_POOL_NAME_ROW, )};
#undef CONVPOOL_POOL_NAME_ROW
  PoolSetup s;
  std::istringstream in(c.line);
  std::string word;
  in >> word;  // "pool"
  int size = 2, stride = -1, pad = 0;
  bool global = false, include_pad = true;
  while (in >> word) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos) {
      if (word == "global") global = true;
      for (auto& [name, m] : methods)
        if (word == name) s.p.method = m;
      continue;
    }
    const std::string key = word.substr(0, eq);
    const double v = std::stod(word.substr(eq + 1));
    if (key == "size") size = int(v);
    if (key == "stride") stride = int(v);
    if (key == "pad") pad = int(v);
    if (key == "k") s.p.k = int(v);
    if (key == "p") s.p.p = float(v);
    if (key == "t") s.p.threshold = float(v);
    if (key == "a") s.p.rank_a = float(v);
    if (key == "include_pad") include_pad = v != 0;
    if (key == "learned") s.learned = v != 0;
  }
  if (stride < 0) stride = size;
  const int kh = global ? c.H : size, kw = global ? c.W : size;
  const int sh = global ? c.H : stride, sw = global ? c.W : stride;
  s.g = make_pool_geom(c.C, c.H, c.W, kh, kw, sh, sw, pad, pad, include_pad, c.relu_in);
  s.p.training = c.training;
  return s;
}

class KernelParityPool : public ::testing::TestWithParam<PoolCase> {};

TEST_P(KernelParityPool, ForwardAndBackwardMatchCpu) {
  REQUIRE_DEVICE();
  const PoolCase& c = GetParam();
  const PoolSetup s = parse_pool(c);
  const PoolGeom& g = s.g;
  const uint64_t seed = std::hash<std::string>{}(c.line) % 100000 + c.H * 7 + c.training;
  const uint64_t step = 7;
  const uint32_t layer = 3;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const size_t nin = size_t(c.batch) * g.C * g.H * g.W, nout = size_t(c.batch) * g.C * g.OH * g.OW;
  const std::vector<float> x = make_input(nin, c.fill, rng);
  std::vector<float> dy(nout), alpha{0.3f};
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& d : dy) d = u(rng);

  // The CPU backend, with the lambda the pool layer gives it (src/layers/pool.cpp).
  PoolWindowParams cp = s.p;
  if (cp.method == PoolMethod::mixed)
    cp.lambda =
        s.learned ? 1.f / (1.f + std::exp(-alpha[0]))
        : c.training
            ? (philox_uniform(seed, kRngPoolMix, layer, uint32_t(step), 0) < 0.5f ? 1.f : 0.f)
            : 0.5f;
  std::vector<float> y(nout), dx(nin);
  float dlambda = 0;
  // As a data-parallel rank's slice starting at sample 5 would draw: keyed by global index.
  const uint64_t first_output = uint64_t(5) * g.C * g.OH * g.OW;
  const PoolRng prng{seed, layer, step, first_output};
  cpu::pool_forward(g, cp, prng, c.batch, x.data(), y.data(), nullptr);
  cpu::pool_backward(g, cp, prng, c.batch, x.data(), y.data(), dy.data(), dx.data(),
                     s.learned ? &dlambda : nullptr, nullptr);
  const float dalpha_cpu = dlambda * cp.lambda * (1.f - cp.lambda);

  Dev<float> dx_dev(x), ddy(dy), dy_out(nout), ddx(nin), dalpha(1), dalpha_param(alpha);
  Dev<int32_t> ranked(cuda::pool_state_ints(g, s.p, c.batch) + 1);
  Dev<uint64_t> dstep(std::vector<uint64_t>{step});
  {
    GRID_CAP(c.grid_cap);
    const float* a = s.learned ? dalpha_param.get() : nullptr;
    cuda::pool_forward(g, s.p, seed, layer, dstep.get(), a, c.batch, dx_dev.get(), dy_out.get(),
                       ranked.get(), nullptr, first_output);
    cuda::pool_backward(g, s.p, seed, layer, dstep.get(), a, c.batch, dx_dev.get(), dy_out.get(),
                        ddy.get(), c.first_layer ? nullptr : ddx.get(),
                        s.learned ? dalpha.get() : nullptr, ranked.get(), nullptr, first_output);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaGetLastError());
  expect_match(dy_out.download(), y, 1e-5, "y");
  if (!c.first_layer) expect_match(ddx.download(), dx, 1e-5, "dx");
  if (c.first_layer) {  // dx was not wanted: the kernels must not have written it
    for (float v : ddx.download()) ASSERT_TRUE(std::isnan(v)) << "dx written for a first layer";
  }
  if (s.learned) expect_match(dalpha.download(), {dalpha_cpu}, 1e-4, "dalpha");
}

std::string case_name(const ::testing::TestParamInfo<PoolCase>& info) {
  std::string n = info.param.line.substr(5);
  for (char& ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  static const char* fills[] = {"", "_nonneg", "_ties", "_special", "_special_nonneg"};
  n += fills[int(info.param.fill)];
  if (!info.param.training) n += "_eval";
  if (info.param.grid_cap) n += "_gridstride";
  if (info.param.first_layer) n += "_first_layer";
  if (info.param.relu_in) n += "_relu_in";
  return n + "_" + std::to_string(info.index);
}

PoolCase with(PoolCase c, Fill f) {
  c.fill = f;
  return c;
}
PoolCase eval(PoolCase c) {
  c.training = false;
  return c;
}
PoolCase capped(PoolCase c, unsigned cap) {
  c.grid_cap = cap;
  return c;
}
PoolCase first(PoolCase c) {
  c.first_layer = true;
  return c;
}
PoolCase relu_in(PoolCase c) {
  c.relu_in = true;
  return c;
}

// kernels/pool_small.cu: windows of up to 64 elements.
INSTANTIATE_TEST_SUITE_P(
    Small, KernelParityPool,
    ::testing::Values(
        PoolCase{"pool max size=2", 32, 30, 30, 4},
        PoolCase{"pool max size=3 stride=2 pad=1", 5, 13, 11, 3},
        PoolCase{"pool avg size=3 stride=2 pad=1", 5, 13, 11, 3},
        PoolCase{"pool avg size=3 stride=2 pad=1 include_pad=0", 5, 13, 11, 3},
        PoolCase{"pool min size=2", 3, 9, 7, 2},
        PoolCase{"pool lp p=3 size=3 stride=2", 3, 9, 7, 2},
        PoolCase{"pool mixed size=2", 3, 9, 7, 2}, eval(PoolCase{"pool mixed size=2", 3, 9, 7, 2}),
        PoolCase{"pool mixed learned=1 size=3 stride=2", 3, 9, 7, 2},
        with(PoolCase{"pool stochastic size=2", 3, 9, 7, 2}, Fill::non_negative),
        eval(with(PoolCase{"pool stochastic size=3 stride=2", 3, 9, 7, 2}, Fill::non_negative)),
        PoolCase{"pool avgtopk k=2 size=2", 32, 30, 30, 4},
        PoolCase{"pool avgtopk k=3 size=3 stride=2 pad=1", 5, 13, 11, 3},
        PoolCase{"pool tmaxavg k=3 t=0.5 size=3 stride=2", 3, 9, 7, 2},
        PoolCase{"pool softpool size=3 stride=2 pad=1", 3, 9, 7, 2},
        PoolCase{"pool avgtopk k=2 size=3 stride=3", 6, 7, 5, 3},
        // NaN, infinities and exact ties.
        with(PoolCase{"pool max size=3 stride=2 pad=1", 5, 13, 11, 3}, Fill::special),
        with(PoolCase{"pool max size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool max size=2", 4, 12, 10, 2}, Fill::special),  // vectors and a tail
        // The CPU's contiguous-load windows (3x3/3, 3x3/2) over whole vectors and tails.
        with(PoolCase{"pool max size=3 stride=3", 4, 12, 15, 2}, Fill::special),
        with(PoolCase{"pool max size=3 stride=2", 4, 11, 13, 2}, Fill::special),
        with(PoolCase{"pool avgtopk k=5 size=3 stride=3", 4, 12, 15, 2}, Fill::ties),
        with(PoolCase{"pool softpool size=3 stride=3", 4, 12, 15, 2}, Fill::special),
        PoolCase{"pool lp p=2 size=3 stride=3", 3, 12, 15, 2},
        PoolCase{"pool tmaxavg k=5 t=0.5 size=3 stride=3", 3, 12, 15, 2},
        relu_in(PoolCase{"pool avg size=3 stride=3", 3, 12, 12, 2}),
        relu_in(PoolCase{"pool min size=3 stride=2", 3, 11, 13, 2}),
        with(PoolCase{"pool min size=3 stride=2", 4, 9, 9, 2}, Fill::special),
        with(PoolCase{"pool avg size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool avgtopk k=3 size=3 stride=2 pad=1", 5, 13, 11, 3}, Fill::special),
        with(PoolCase{"pool avgtopk k=2 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool tmaxavg k=2 t=0.5 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool mixed size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::ties),
        // Lp at exact zeros with p < 1, NaN and +inf in lp,
        // softpool and stochastic (both modes).
        with(PoolCase{"pool lp p=0.5 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool lp p=3 size=3 stride=2", 4, 9, 9, 2}, Fill::special),
        with(PoolCase{"pool softpool size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::special_non_negative),
        eval(with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::special_non_negative)),
        // Rank-weighted: NaN and infinities (a = 1 beside -inf), ties in both modes.
        with(PoolCase{"pool rwp size=3 stride=2 pad=1 a=0.3", 5, 13, 11, 3}, Fill::special),
        with(PoolCase{"pool rwp size=2 a=1", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool rsp size=3 stride=2 a=0.6", 4, 9, 9, 2}, Fill::special),
        with(PoolCase{"pool rsp size=2 a=0.4", 4, 8, 8, 2}, Fill::ties),
        eval(with(PoolCase{"pool rsp size=2 a=0.4", 4, 8, 8, 2}, Fill::ties)),
        // Stride above the window: uncovered elements get a zero gradient.
        PoolCase{"pool max size=2 stride=3", 3, 11, 10, 2},
        PoolCase{"pool avgtopk k=2 size=2 stride=3", 3, 11, 10, 2},
        // Grid-stride second passes, pooling as the first layer, a fused ReLU.
        capped(PoolCase{"pool avg size=2", 8, 30, 30, 2}, 2),
        capped(PoolCase{"pool max size=3 stride=2 pad=1", 8, 17, 17, 2}, 2),
        first(PoolCase{"pool max size=2", 3, 8, 8, 2}),
        first(PoolCase{"pool mixed learned=1 size=2", 3, 8, 8, 2}),
        relu_in(PoolCase{"pool max size=2", 3, 8, 8, 2}),
        relu_in(with(PoolCase{"pool avgtopk k=2 size=3 stride=2", 3, 9, 9, 2}, Fill::special))),
    case_name);

// kernels/pool_warp.cu: global pooling and windows above 64 elements, one warp per window.
INSTANTIATE_TEST_SUITE_P(
    Warp, KernelParityPool,
    ::testing::Values(
        PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}, PoolCase{"pool max global", 6, 31, 29, 3},
        PoolCase{"pool avg global", 5, 32, 32, 2},
        PoolCase{"pool avgtopk global k=7", 6, 17, 23, 3},
        PoolCase{"pool avgtopk global k=32", 3, 32, 32, 2},
        PoolCase{"pool tmaxavg global k=5 t=0.9", 4, 13, 11, 2},
        PoolCase{"pool lp p=2 size=9 stride=9", 3, 20, 19, 2},
        PoolCase{"pool lp p=3 global", 4, 9, 11, 2},  // the CPU's global p = 3 path
        PoolCase{"pool softpool size=10 stride=12", 3, 25, 23, 2},
        with(PoolCase{"pool stochastic global", 4, 15, 15, 2}, Fill::non_negative),
        PoolCase{"pool mixed size=9", 3, 18, 20, 2},
        PoolCase{"pool min size=9 pad=4", 3, 17, 11, 2},
        // Eval mode, include_pad=0, stride above the window.
        eval(PoolCase{"pool mixed size=9", 3, 18, 20, 2}),
        eval(with(PoolCase{"pool stochastic global", 4, 15, 15, 2}, Fill::non_negative)),
        eval(PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}),
        PoolCase{"pool avg size=9 pad=4 include_pad=0", 3, 17, 11, 2},
        PoolCase{"pool max size=9 stride=11", 3, 20, 21, 2},
        // NaN, infinities and exact ties.
        with(PoolCase{"pool max global", 6, 9, 9, 3}, Fill::special),
        with(PoolCase{"pool avgtopk global k=7", 6, 17, 23, 3}, Fill::special),
        with(PoolCase{"pool avgtopk global k=40", 3, 16, 16, 2}, Fill::ties),
        with(PoolCase{"pool tmaxavg global k=5 t=0.9", 4, 13, 11, 2}, Fill::ties),
        with(PoolCase{"pool min size=9 pad=4", 3, 17, 11, 2}, Fill::special),
        with(PoolCase{"pool avg global", 3, 12, 12, 2}, Fill::special),
        with(PoolCase{"pool mixed size=9", 3, 18, 20, 2}, Fill::special),
        with(PoolCase{"pool stochastic global", 4, 15, 15, 2}, Fill::ties),
        with(PoolCase{"pool stochastic global", 4, 3, 3, 2}, Fill::special_non_negative),
        with(PoolCase{"pool lp p=0.5 size=9", 3, 18, 9, 2}, Fill::ties),
        with(PoolCase{"pool lp p=2 size=9", 3, 18, 9, 2}, Fill::special),
        with(PoolCase{"pool softpool size=9", 3, 18, 9, 2}, Fill::special),
        // Rank-weighted over the largest window it takes (64 elements), NaN and ties.
        with(PoolCase{"pool rwp global a=0.2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool rsp global a=0.5", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool rsp global a=0.5", 4, 7, 9, 2}, Fill::special),
        // Grid-stride second passes, pooling as the first layer, a fused ReLU.
        capped(PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}, 2),
        capped(PoolCase{"pool max size=9 stride=9", 4, 27, 18, 2}, 3),
        first(PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}),
        relu_in(with(PoolCase{"pool avgtopk global k=5", 4, 11, 13, 2}, Fill::special)),
        // Shapes the CPU runs, which CUDA must run too.
        PoolCase{"pool mixed learned=1 global", 3, 7, 5, 2},
        PoolCase{"pool max size=9 stride=1", 3, 9, 9, 2},
        PoolCase{"pool avgtopk k=3 size=10 stride=4", 2, 10, 12, 2}),
    case_name);

// Every row of the method table (kernels/pool_methods.cuh), generated from it: a method added
// there runs through both kernel families here, in training and in evaluation, at the
// table's defaults, with no edit of this file. Small: the window geometries of the pooling
// benchmark matrix (2x2/2, 3x3/2 pad 1, 3x3/3, 5x5/2 pad 2); Warp: global pooling (also under
// each forced warp selection, as the other Warp cases).
std::string table_params(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}
std::string param_text(const char* key, double value) {
  std::ostringstream os;
  os << " " << key << "=" << value;
  return os.str();
}
std::vector<PoolCase> every_method(bool warp) {
  std::vector<PoolCase> cases;
  const std::vector<std::string> geometries =
      warp ? std::vector<std::string>{" global"}
           : std::vector<std::string>{" size=2", " size=3 stride=2 pad=1", " size=3 stride=3",
                                      " size=5 stride=2 pad=2"};
#define CONVPOOL_POOL_CASE_PARAM(key, kind, def, lo, hi) param_text(#key, def)
#define CONVPOOL_POOL_CASE_ROW(id, cls, onnx, study, inputs, definition, ...)                    \
  for (const std::string& geometry : geometries)                                               \
    for (const bool training : {true, false}) {                                                \
      PoolCase c{"pool " #id + geometry + table_params({__VA_ARGS__}), 3, 9, 7, 2};            \
      c.training = training;                                                                   \
      c.fill = std::string(#inputs) == "nonneg" ? Fill::non_negative : Fill::uniform;          \
      cases.push_back(c);                                                                      \
    }
  CONVPOOL_POOL_METHODS(CONVPOOL_POOL_CASE_ROW, CONVPOOL_POOL_CASE_PARAM)
#undef CONVPOOL_POOL_CASE_ROW
#undef CONVPOOL_POOL_CASE_PARAM
  return cases;
}
INSTANTIATE_TEST_SUITE_P(EveryMethodSmall, KernelParityPool,
                         ::testing::ValuesIn(every_method(false)), case_name);
INSTANTIATE_TEST_SUITE_P(EveryMethodWarp, KernelParityPool,
                         ::testing::ValuesIn(every_method(true)), case_name);

// The warp family's backward checks the selection state it reads,
// as its forward does, instead of dereferencing a null pointer on the device.
TEST(KernelParityPoolChecks, WarpBackwardRefusesAMissingSelection) {
  REQUIRE_DEVICE();
  const PoolSetup s = parse_pool(PoolCase{"pool max global", 2, 9, 9, 1});
  ASSERT_TRUE(cuda::pool_uses_warp_kernels(s.g));
  Dev<float> x(2 * 81), y(2), dy(2), dx(2 * 81);
  Dev<uint64_t> step(std::vector<uint64_t>{1});
  EXPECT_THROW(cuda::pool_backward(s.g, s.p, 1, 0, step.get(), nullptr, 1, x.get(), y.get(),
                                   dy.get(), dx.get(), nullptr, nullptr, nullptr),
               Error);
}

// The library baseline of Avg-TopK (gather windows, CUB's segmented sort, mean of
// the leading k). Its two kernels (kernels/pool_avgtopk_baseline.cu) run here with the sort done by std::sort on the host in
// between (CUB's runs only on a GPU, where `bench pool` compares the whole baseline with our
// kernels); the result must be the CPU's avgtopk bit for bit (both add the top k largest
// first), on inputs full of ties, with overlapping windows and a partial last window dropped.
TEST(KernelParityPoolBaseline, GatheredSortedWindowsGiveTheCpuAvgTopk) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(2026);
  for (const PoolCase& c : {PoolCase{"pool avgtopk k=2 size=2", 3, 8, 8, 2},
                            PoolCase{"pool avgtopk k=5 size=3 stride=3", 2, 11, 10, 3},
                            PoolCase{"pool avgtopk k=4 size=3 stride=2", 4, 9, 9, 2}}) {
    const PoolSetup s = parse_pool(c);
    const int window = s.g.KH * s.g.KW;
    const long long outputs = (long long)c.batch * s.g.C * s.g.OH * s.g.OW;
    const std::vector<float> host_x =
        make_input(size_t(c.batch) * s.g.C * s.g.H * s.g.W, Fill::ties, rng);
    Dev<float> x(host_x), segments(static_cast<size_t>(outputs * window)),
        y(static_cast<size_t>(outputs));
    cuda::gather_windows(s.g, c.batch, x.get(), segments.get(), nullptr);
    std::vector<float> sorted = segments.download();
    for (long long o = 0; o < outputs; ++o)
      std::sort(sorted.begin() + o * window, sorted.begin() + (o + 1) * window,
                std::greater<float>());
    Dev<float> dsorted(sorted);
    cuda::mean_of_leading(outputs, window, s.p.k, dsorted.get(), y.get(), nullptr);
    std::vector<float> want(size_t(outputs), std::nanf(""));
    cpu::pool_forward(s.g, s.p, PoolRng{}, c.batch, host_x.data(), want.data(), nullptr);
    const std::vector<float> got = y.download();
    for (long long o = 0; o < outputs; ++o)
      ASSERT_EQ(got[size_t(o)], want[size_t(o)]) << c.line << " output " << o;
  }
}

}  // namespace
#endif
