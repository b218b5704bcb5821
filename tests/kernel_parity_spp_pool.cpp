// Kernel parity of spp_pool: kernels/spp_pool.cu against its CPU twin (src/cpu/spp_pool.cpp)
// on the same inputs: the output, the kept indices and the input gradient bit for bit on the
// emulated target and a GPU alike (no products: maxima, sums in element order, dy over the
// area), for max and mean, planes the levels divide and do not, levels finer than the plane,
// enough planes for the CPU's threads, on uniform values, ties and NaN/+-inf; outputs
// poisoned (NaN) before the kernels run, and the same bits under every schedule.
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cpu/spp_pool.h"
#include "cpu/spp_pool_vlad.h"
#include "kernel_parity_elementwise.h"
#include "kernels/spp_pool.cuh"
#include "kernels/spp_pool_vlad.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct SppCase {
  int n, c, h, w;
  std::vector<int> cells;
  bool max;
  SppLevels levels() const {
    SppLevels s;
    for (int L : cells) s.cells[s.count++] = L;
    s.max = max;
    return s;
  }
  std::string str() const {
    std::string l;
    for (int L : cells) l += std::to_string(L) + ",";
    return std::string("spp_pool ") + (max ? "max" : "avg") + " levels=" + l + " on " +
           std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w) + " x" +
           std::to_string(n);
  }
};

struct SppRun {
  std::vector<float> y, arg, dx;
};

SppRun run_device(const SppCase& k, const std::vector<float>& x, const std::vector<float>& dy) {
  const SppLevels s = k.levels();
  Dev<float> dxin(x), ddy(dy), dout(dy.size()), darg(dy.size()), ddx(x.size());
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::spp_pool_forward(s, dxin.get(), dout.get(), darg.get(), k.n, k.c, k.h, k.w, nullptr);
    cuda::spp_pool_backward(s, darg.get(), ddy.get(), ddx.get(), k.n, k.c, k.h, k.w, nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "spp_pool kernels";
  return {dout.download(), darg.download(), ddx.download()};
}

const SppCase kCases[] = {
    {2, 3, 8, 8, {1, 2, 4}, true},     {2, 3, 8, 8, {1, 2, 4}, false},
    {3, 2, 7, 5, {1, 3}, true},        {3, 2, 7, 5, {1, 3}, false},
    {2, 2, 3, 2, {2, 4}, true},        {2, 2, 3, 2, {2, 4}, false},
    {1, 1, 1, 1, {1, 16}, true},       {4, 5, 13, 9, {6, 5, 1}, false},
    {64, 16, 16, 16, {1, 2, 4}, true},  // the CPU's threads
};

TEST(KernelParityNn, SppPoolMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(59);
  for (const SppCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const SppLevels s = k.levels();
      const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(s);
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, fill, rng),
                               dy = make_input(outs, Fill::uniform, rng);
      const SppRun got = run_device(k, x, dy);
      std::vector<float> y(outs, std::nanf("")), arg(outs, std::nanf("")),
          dx(x.size(), std::nanf(""));
      cpu::spp_pool_forward(s, x.data(), y.data(), arg.data(), k.n, k.c, k.h, k.w);
      cpu::spp_pool_backward(s, arg.data(), dy.data(), dx.data(), k.n, k.c, k.h, k.w);
      expect_same_bits(got.y, y, what);
      expect_same_bits(got.arg, arg, what + " arg");
      expect_same_bits(got.dx, dx, what + " dx");
    }
}

TEST(KernelParityNn, SppPoolIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(60);
  for (const bool max : {true, false}) {
    const SppCase k{3, 4, 9, 7, {1, 2, 3}, max};
    const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(k.levels());
    const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, Fill::ties, rng),
                             dy = make_input(outs, Fill::uniform, rng);
    std::vector<SppRun> runs;
    run_under_four_schedules(340, [&](int) { runs.push_back(run_device(k, x, dy)); });
    for (size_t r = 1; r < runs.size(); ++r) {
      expect_same_bits(runs[r].y, runs[0].y, k.str());
      expect_same_bits(runs[r].dx, runs[0].dx, k.str() + " dx");
    }
  }
}

// NetVLAD over the pyramid (mode=vlad): the outputs, the state (assignments, residual sums and
// norms), the input and the three parameter gradients, bit for bit: each device thread runs
// the CPU's per-element function in the CPU's order.
struct VladRun {
  std::vector<float> y, state, dx, dwt, dbias, dmu;
};

struct VladCase {
  SppCase shape;
  int k;
};

VladRun run_vlad(const VladCase& v, const std::vector<float>& wt, const std::vector<float>& bias,
                 const std::vector<float>& mu, const std::vector<float>& x,
                 const std::vector<float>& dy, bool on_device) {
  const SppCase& k = v.shape;
  const SppLevels s = k.levels();
  const size_t state = size_t(k.n) * vlad_image_state_floats(s, v.k, k.c, k.h * k.w);
  const size_t scratch = cpu::spp_pool_vlad_scratch_floats(s, k.n, v.k, k.c, k.h * k.w);
  VladRun r{
      std::vector<float>(dy.size(), std::nanf("")),   std::vector<float>(state, std::nanf("")),
      std::vector<float>(x.size(), std::nanf("")),    std::vector<float>(wt.size(), std::nanf("")),
      std::vector<float>(bias.size(), std::nanf("")), std::vector<float>(mu.size(), std::nanf(""))};
  if (!on_device) {
    std::vector<float> work(scratch, std::nanf(""));
    cpu::spp_pool_vlad_forward(s, wt.data(), bias.data(), mu.data(), v.k, x.data(), r.y.data(),
                               r.state.data(), k.n, k.c, k.h, k.w);
    cpu::spp_pool_vlad_backward(s, wt.data(), mu.data(), v.k, x.data(), r.state.data(), dy.data(),
                                r.dx.data(), r.dwt.data(), r.dbias.data(), r.dmu.data(), k.n, k.c,
                                k.h, k.w, work.data());
    return r;
  }
  Dev<float> dwt_in(wt), dbias_in(bias), dmu_in(mu), dx_in(x), ddy(dy), dy_out(r.y),
      dstate(r.state), ddx(r.dx), dgw(r.dwt), dgb(r.dbias), dgm(r.dmu),
      dwork(std::vector<float>(scratch, std::nanf("")));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::spp_pool_vlad_forward(s, dwt_in.get(), dbias_in.get(), dmu_in.get(), v.k, dx_in.get(),
                                dy_out.get(), dstate.get(), k.n, k.c, k.h, k.w, nullptr);
    cuda::spp_pool_vlad_backward(s, dwt_in.get(), dmu_in.get(), v.k, dx_in.get(), dstate.get(),
                                 ddy.get(), ddx.get(), dgw.get(), dgb.get(), dgm.get(), k.n, k.c,
                                 k.h, k.w, dwork.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "spp_pool vlad kernels";
  return {dy_out.download(), dstate.download(), ddx.download(),
          dgw.download(),    dgb.download(),    dgm.download()};
}

const VladCase kVladCases[] = {
    {{2, 3, 8, 8, {1, 2, 4}, true}, 4}, {{3, 2, 7, 5, {1, 3}, true}, 3},
    {{2, 2, 3, 2, {2, 4}, true}, 2},    {{1, 1, 1, 1, {1, 2}, true}, 1},
    {{16, 8, 8, 8, {1, 2}, true}, 8},  // the CPU's threads
};

void expect_same_vlad(const VladRun& a, const VladRun& b, const std::string& what) {
  expect_same_bits(a.y, b.y, what);
  expect_same_bits(a.state, b.state, what + " state");
  expect_same_bits(a.dx, b.dx, what + " dx");
  expect_same_bits(a.dwt, b.dwt, what + " dweight");
  expect_same_bits(a.dbias, b.dbias, what + " dbias");
  expect_same_bits(a.dmu, b.dmu, what + " dcentres");
}

TEST(KernelParityNn, SppPoolVladMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(61);
  for (const VladCase& v : kVladCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::special}) {
      const SppCase& k = v.shape;
      const std::string what = "vlad clusters=" + std::to_string(v.k) + " " + k.str() + " fill " +
                               std::to_string(int(fill));
      const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(k.levels()) * v.k;
      const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, fill, rng),
                               dy = make_input(outs, Fill::uniform, rng),
                               wt = make_input(size_t(v.k) * k.c, Fill::uniform, rng),
                               bias = make_input(size_t(v.k), Fill::uniform, rng),
                               mu = make_input(size_t(v.k) * k.c, Fill::ties, rng);
      expect_same_vlad(run_vlad(v, wt, bias, mu, x, dy, true),
                       run_vlad(v, wt, bias, mu, x, dy, false), what);
    }
}

TEST(KernelParityNn, SppPoolVladIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(62);
  const VladCase v{{3, 4, 9, 7, {1, 2, 3}, true}, 3};
  const SppCase& k = v.shape;
  const size_t outs = size_t(k.n) * k.c * spp_features_per_channel(k.levels()) * v.k;
  const std::vector<float> x = make_input(size_t(k.n) * k.c * k.h * k.w, Fill::ties, rng),
                           dy = make_input(outs, Fill::uniform, rng),
                           wt = make_input(size_t(v.k) * k.c, Fill::uniform, rng),
                           bias = make_input(size_t(v.k), Fill::uniform, rng),
                           mu = make_input(size_t(v.k) * k.c, Fill::uniform, rng);
  std::vector<VladRun> runs;
  run_under_four_schedules(341,
                           [&](int) { runs.push_back(run_vlad(v, wt, bias, mu, x, dy, true)); });
  for (size_t r = 1; r < runs.size(); ++r) expect_same_vlad(runs[r], runs[0], "vlad schedule");
}

}  // namespace
#endif
