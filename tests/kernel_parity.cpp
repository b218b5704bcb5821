// The kernel parity suite: every hand-written kernel of kernels/*.cu, through its host
// launcher (src/cuda/ops.h), against the CPU backend on the same inputs. Written once for two
// targets: compiled into convpool_tests it runs on a real GPU (and skips without one); compiled
// into convpool_emu_tests (tools/cuda-emu) it runs on the emulated target in every CI run,
// under several thread schedules. Outputs are poisoned (NaN) before the kernels run, so an
// element a kernel fails to write fails the comparison. cuDNN and cuBLAS are not here: they
// are test_cuda_parity.cpp's, on a GPU only. docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../kernels/elementwise_math.cuh"
#include "../kernels/philox.cuh"
#include "convpool/data.h"
#include "convpool/optim.h"
#include "cpu/loss.h"
#include "cpu/pool.h"
#include "cuda/ops.h"
#ifdef CONVPOOL_EMULATED_CUDA
#include "cuda_emu.h"
#else
#include "convpool/device.h"
#endif

using namespace convpool;

namespace {

#ifdef CONVPOOL_EMULATED_CUDA
#define REQUIRE_DEVICE() (void)0
// Stands in for an input larger than the launcher's whole grid: the grid-stride loops of the
// kernels launched in this scope take a second pass. A GPU runs the real grid.
#define GRID_CAP(n) const cuda_emu::GridCap grid_cap_(n)
#else
#define REQUIRE_DEVICE()                                                 \
  do {                                                                   \
    if (!cuda_device_available())                                        \
      GTEST_SKIP() << "no usable CUDA device: " << cuda_device_report(); \
  } while (0)
#define GRID_CAP(n) (void)(n)
#endif

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

// A device buffer of T, filled from the host or poisoned (all bits set: NaN as float).
template <class T>
class Dev {
 public:
  explicit Dev(size_t n) : n_(n) {
    if (cudaMalloc(reinterpret_cast<void**>(&p_), std::max<size_t>(n, 1) * sizeof(T)) !=
        cudaSuccess)
      throw std::runtime_error("cudaMalloc failed");
    poison();
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { upload(v); }
  ~Dev() { cudaFree(p_); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  T* get() const { return p_; }
  void poison() { cudaMemset(p_, 0xFF, std::max<size_t>(n_, 1) * sizeof(T)); }
  void upload(const std::vector<T>& v) {
    cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  std::vector<T> download() const {
    std::vector<T> v(n_);
    if (cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost) != cudaSuccess)
      ADD_FAILURE() << "cudaMemcpy to the host failed";
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

// NaN where the reference has NaN, the same infinity where it has one, and within `tol` in
// the relative 2-norm over the finite rest.
void expect_match(const std::vector<float>& got, const std::vector<float>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i]) || std::isinf(want[i]) || !std::isfinite(got[i])) {
      const bool same = std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i];
      ASSERT_TRUE(same) << what << "[" << i << "]: got " << got[i] << ", CPU " << want[i];
      continue;
    }
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  EXPECT_LE(std::sqrt(num / std::max(den, 1e-30)), tol) << what;
}

// Input values. `special` mixes exact ties, zeros, NaN and both infinities; `ties` draws from
// a few small integers so that most windows hold equal values.
enum class Fill { uniform, non_negative, ties, special, special_non_negative };

std::vector<float> make_input(size_t n, Fill fill, std::mt19937_64& rng) {
  std::vector<float> v(n);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& x : v) {
    const unsigned r = unsigned(rng() % 32);
    switch (fill) {
      case Fill::uniform: x = u(rng); break;
      case Fill::non_negative: x = std::fabs(u(rng)); break;
      case Fill::ties: x = float(int(r % 4) - 1); break;
      case Fill::special:
        x = r == 0 ? nan : r == 1 ? inf : r == 2 ? -inf : float(int(r % 4) - 1);
        break;
      case Fill::special_non_negative:
        x = r == 0 ? nan : r == 1 ? inf : float(r % 3);
        break;
    }
  }
  return v;
}

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
  static const std::pair<const char*, PoolMethod> methods[] = {
      {"max", PoolMethod::max},         {"avg", PoolMethod::avg},
      {"min", PoolMethod::min},         {"lp", PoolMethod::lp},
      {"mixed", PoolMethod::mixed},     {"stochastic", PoolMethod::stochastic},
      {"avgtopk", PoolMethod::avgtopk}, {"tmaxavg", PoolMethod::tmaxavg},
      {"softpool", PoolMethod::softpool}};
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
    if (key == "include_pad") include_pad = v != 0;
    if (key == "learned") s.learned = v != 0;
  }
  if (stride < 0) stride = size;
  const int kh = global ? c.H : size, kw = global ? c.W : size;
  const int sh = global ? c.H : stride, sw = global ? c.W : stride;
  s.g = {c.C, c.H, c.W, kh, kw, sh, sw, pad, pad, (c.H + 2 * pad - kh) / sh + 1,
         (c.W + 2 * pad - kw) / sw + 1, include_pad, c.relu_in};
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
    cp.lambda = s.learned      ? 1.f / (1.f + std::exp(-alpha[0]))
                : c.training ? (philox_uniform(seed, kRngPoolMix, layer, uint32_t(step), 0) < 0.5f
                                    ? 1.f
                                    : 0.f)
                             : 0.5f;
  std::vector<float> y(nout), dx(nin);
  float dlambda = 0;
  const PoolRng prng{seed, layer, step};
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
                       ranked.get(), nullptr);
    cuda::pool_backward(g, s.p, seed, layer, dstep.get(), a, c.batch, dx_dev.get(), dy_out.get(),
                        ddy.get(), c.first_layer ? nullptr : ddx.get(),
                        s.learned ? dalpha.get() : nullptr, ranked.get(), nullptr);
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
        PoolCase{"pool min size=2", 3, 9, 7, 2}, PoolCase{"pool lp p=3 size=3 stride=2", 3, 9, 7, 2},
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
        with(PoolCase{"pool min size=3 stride=2", 4, 9, 9, 2}, Fill::special),
        with(PoolCase{"pool avg size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool avgtopk k=3 size=3 stride=2 pad=1", 5, 13, 11, 3}, Fill::special),
        with(PoolCase{"pool avgtopk k=2 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool tmaxavg k=2 t=0.5 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool mixed size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::ties),
        // Review items 6 and 8 of issue 12: lp at exact zeros with p < 1, NaN and +inf in lp,
        // softpool and stochastic (both modes).
        with(PoolCase{"pool lp p=0.5 size=2", 4, 8, 8, 2}, Fill::ties),
        with(PoolCase{"pool lp p=3 size=3 stride=2", 4, 9, 9, 2}, Fill::special),
        with(PoolCase{"pool softpool size=2", 4, 8, 8, 2}, Fill::special),
        with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::special_non_negative),
        eval(with(PoolCase{"pool stochastic size=2", 4, 8, 8, 2}, Fill::special_non_negative)),
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
        PoolCase{"pool avg global", 5, 32, 32, 2}, PoolCase{"pool avgtopk global k=7", 6, 17, 23, 3},
        PoolCase{"pool avgtopk global k=32", 3, 32, 32, 2},
        PoolCase{"pool tmaxavg global k=5 t=0.9", 4, 13, 11, 2},
        PoolCase{"pool lp p=2 size=9 stride=9", 3, 20, 19, 2},
        PoolCase{"pool softpool size=10 stride=12", 3, 25, 23, 2},
        with(PoolCase{"pool stochastic global", 4, 15, 15, 2}, Fill::non_negative),
        PoolCase{"pool mixed size=9", 3, 18, 20, 2}, PoolCase{"pool min size=9 pad=4", 3, 17, 11, 2},
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
        // Grid-stride second passes, pooling as the first layer, a fused ReLU.
        capped(PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}, 2),
        capped(PoolCase{"pool max size=9 stride=9", 4, 27, 18, 2}, 3),
        first(PoolCase{"pool avgtopk global k=4", 6, 7, 5, 3}),
        relu_in(with(PoolCase{"pool avgtopk global k=5", 4, 11, 13, 2}, Fill::special)),
        // Review item 7 of issue 12: the CPU runs these, CUDA refused them.
        PoolCase{"pool mixed learned=1 global", 3, 7, 5, 2},
        PoolCase{"pool max size=9 stride=1", 3, 9, 9, 2},
        PoolCase{"pool avgtopk k=3 size=10 stride=4", 2, 10, 12, 2}),
    case_name);

// ---------------------------------------------------------------- element-wise, bias

TEST(KernelParity, ReluForwardAndBackwardMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(11);
  const size_t n = 3001;  // 2 capped blocks of 256 threads: every thread takes several passes
  const std::vector<float> x = make_input(n, Fill::special, rng), dy = make_input(n, Fill::uniform, rng);
  std::vector<float> y(n), dx(n);
  for (size_t i = 0; i < n; ++i) y[i] = relu_forward(x[i]), dx[i] = relu_backward(y[i], dy[i]);
  Dev<float> dx_in(x), ddy(dy), dy_out(n), ddx(n);
  {
    GRID_CAP(2);
    cuda::relu_forward(dx_in.get(), dy_out.get(), n, nullptr);
    cuda::relu_backward(dy_out.get(), ddy.get(), ddx.get(), n, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  const auto gy = dy_out.download(), gdx = ddx.download();
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(std::memcmp(&gy[i], &y[i], 4), 0) << "y[" << i << "] of x " << x[i];
    ASSERT_EQ(std::memcmp(&gdx[i], &dx[i], 4), 0) << "dx[" << i << "]";
  }
}

TEST(KernelParity, BiasAddAndGradMatchCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(12);
  const int n = 3, c = 5, plane = 301;  // bias_grad: each thread sums several elements
  const size_t total = size_t(n) * c * plane;
  const std::vector<float> y0 = make_input(total, Fill::uniform, rng),
                           b = make_input(c, Fill::uniform, rng),
                           dy = make_input(total, Fill::uniform, rng);
  std::vector<float> y = y0, db(c, 0.f);
  std::vector<double> sums(c, 0.0);
  for (size_t i = 0; i < total; ++i) {
    y[i] += b[(i / plane) % c];
    sums[(i / plane) % c] += dy[i];
  }
  for (int ch = 0; ch < c; ++ch) db[ch] = float(sums[ch]);
  Dev<float> dy_dev(y0), db_in(b), ddy(dy), ddb(c);
  {
    GRID_CAP(2);
    cuda::bias_add(dy_dev.get(), db_in.get(), n, c, plane, nullptr);
  }
  cuda::bias_grad(ddy.get(), ddb.get(), n, c, plane, nullptr);
  CHECK_CUDA(cudaDeviceSynchronize());
  expect_match(dy_dev.download(), y, 0, "y");  // one float addition: exact
  expect_match(ddb.download(), db, 1e-5, "db");
}

// ---------------------------------------------------------------- loss

struct LossRun {
  std::vector<float> dz;
  double loss;
  unsigned long long correct, first_bad;
};
LossRun device_softmax_xent(int n, int classes, const std::vector<float>& z,
                            const std::vector<uint8_t>& labels, uint64_t step) {
  Dev<float> dz(z), dgrad(z.size());
  Dev<uint8_t> dlabels(labels);
  Dev<double> loss(std::vector<double>{0.0});
  Dev<unsigned long long> correct(std::vector<unsigned long long>{0}),
      first_bad(std::vector<unsigned long long>{~0ull});
  Dev<cuda::StepScalars> scalars(std::vector<cuda::StepScalars>{{step, 0.f}});
  cuda::softmax_xent(n, classes, dz.get(), dlabels.get(), dgrad.get(), 1.f / n, loss.get(),
                     correct.get(), nullptr, scalars.get(), first_bad.get());
  return {dgrad.download(), loss.download()[0], correct.download()[0], first_bad.download()[0]};
}

TEST(KernelParity, SoftmaxXentMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(13);
  const int n = 37, classes = 10;  // a partial last block; 10 classes: lanes 10..31 hold none
  std::vector<float> z(n * classes);
  for (auto& v : z) v = std::uniform_real_distribution<float>(-6.f, 6.f)(rng);
  // Exact ties of the maximum: the argmax is the first index, as on the CPU.
  for (int k = 0; k < classes; ++k) z[k] = float(k % 3);
  std::vector<uint8_t> labels(n);
  for (auto& l : labels) l = uint8_t(rng() % classes);
  labels[0] = 2;
  std::vector<float> dz(z.size());
  const auto s = cpu::softmax_xent(n, classes, z.data(), labels.data(), dz.data(), 1.f / n);
  const LossRun r = device_softmax_xent(n, classes, z, labels, 9);
  EXPECT_NEAR(r.loss, s.loss, 1e-9 * s.loss);
  EXPECT_EQ(r.correct, (unsigned long long)s.correct);
  EXPECT_EQ(r.first_bad, ~0ull) << "a finite loss flagged a step";
  expect_match(r.dz, dz, 1e-6, "dlogits");
}

TEST(KernelParity, SoftmaxXentFlagsANonFiniteLoss) {
  REQUIRE_DEVICE();
  const int n = 9, classes = 10;
  std::vector<float> z(n * classes, 0.5f);
  z[4 * classes + 3] = std::numeric_limits<float>::infinity();
  const std::vector<uint8_t> labels(n, 1);
  const LossRun r = device_softmax_xent(n, classes, z, labels, 42);
  EXPECT_EQ(r.first_bad, 42u);
}

// ---------------------------------------------------------------- input conversion

TEST(KernelParity, InputConversionMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  const Dataset ds = synthetic_cifar(12, 14);
  const int n = 7;
  std::vector<uint32_t> order(n);
  for (int i = 0; i < n; ++i) order[i] = uint32_t((i * 5 + 3) % ds.size());
  std::vector<uint8_t> px(size_t(n) * kCifarImageBytes);
  for (int i = 0; i < n; ++i)
    std::memcpy(px.data() + size_t(i) * kCifarImageBytes, ds.image(order[i]), kCifarImageBytes);
  Dev<uint8_t> src(px);
  const uint64_t step = 123, seed = 99;
  Dev<uint64_t> dstep(std::vector<uint64_t>{step});
  InputTransform aug;
  aug.crop_pad = 4;
  aug.flip = true;
  aug.mean[0] = 0.49f, aug.mean[1] = 0.48f, aug.mean[2] = 0.45f;
  aug.std[0] = 0.25f, aug.std[1] = 0.24f, aug.std[2] = 0.26f;
  for (const InputTransform& t : {InputTransform{}, aug})
    for (bool training : {false, true}) {
      Dev<float> dst(px.size());
      cuda::input_to_float(src.get(), dst.get(), n, t, training, seed, dstep.get(), nullptr);
      std::vector<float> want(px.size());
      images_to_float(ds, order.data(), n, want.data(), t, training, seed, step);
      const auto got = dst.download();
      for (size_t i = 0; i < px.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << i << " training " << training << " " << describe(t);
    }
}

// ---------------------------------------------------------------- optimizer

TEST(KernelParity, OptimizersMatchCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(15);
  const size_t n = 100003;  // not a multiple of any block size
  for (const char* kind : {"adam", "sgd"}) {
    OptimizerConfig c;
    c.kind = kind;
    c.momentum = 0.9f;
    c.weight_decay = 1e-4f;
    std::vector<float> p = make_input(n, Fill::uniform, rng), g = make_input(n, Fill::uniform, rng);
    std::vector<float> s0(n), s1(n);
    for (auto& v : s0) v = std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng);
    for (auto& v : s1) v = std::uniform_real_distribution<float>(0.f, 0.1f)(rng);
    Dev<float> dp(p), dg(g), d0(s0), d1(s1);
    Dev<cuda::StepScalars> scalars(1);
    for (uint64_t step = 1; step <= 3; ++step) {
      optimizer_step(Device::cpu, c, step, p.data(), g.data(), s0.data(), s1.data(), n);
      GRID_CAP(5);  // 5 blocks of 256 threads: about 78 passes each
      cuda::set_step(scalars.get(), step - 1, nullptr);
      cuda::begin_step(scalars.get(), c, nullptr);
      cuda::optimizer_update(c, scalars.get(), dp.get(), dg.get(), d0.get(), d1.get(), n, nullptr);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    expect_match(dp.download(), p, 1e-6, std::string(kind) + " params");
    expect_match(d0.download(), s0, 1e-6, std::string(kind) + " state");
    if (c.kind == "adam") expect_match(d1.download(), s1, 1e-6, "adam second moment");
  }
}

}  // namespace
#endif
