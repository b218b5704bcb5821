// Kernel parity of batchnorm: the launchers of kernels/batchnorm.cuh against their CPU twins
// in src/cpu/batchnorm.h on the same inputs. Written once for the real GPU
// (convpool_tests, skipped without a device) and the emulated target (convpool_emu_tests, under
// several thread schedules), as tests/kernel_parity.cpp. Outputs are poisoned (NaN) before the
// kernels run; backward kernels run both overwriting dx and accumulating into a random prefill,
// compared with the CPU accumulating into the same prefill. docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/batchnorm.h"
#include "kernels/batchnorm.cuh"
#include "kernel_parity_elementwise.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// ---------------------------------------------------------------- batchnorm

struct BnCase {
  int n, c, plane;
};
// 3 x 5 x 7: 21 elements a channel, fewer than a block's threads; 4 x 3 x 100: 400, so each
// thread takes two passes over its channel.
const BnCase kBnCases[] = {{3, 5, 7}, {4, 3, 100}};

// Channel 1 constant (variance 0), channel 2 with a large mean against its spread, the rest
// uniform.
std::vector<float> bn_input(const BnCase& s, std::mt19937_64& rng) {
  std::vector<float> x = make_input(size_t(s.n) * s.c * s.plane, Fill::uniform, rng);
  const float constant = std::uniform_real_distribution<float>(-2.f, 2.f)(rng);
  for (int i = 0; i < s.n; ++i)
    for (int j = 0; j < s.plane; ++j) {
      x[(size_t(i) * s.c + 1) * s.plane + j] = constant;
      x[(size_t(i) * s.c + 2) * s.plane + j] += 1000.f;
    }
  return x;
}

struct BnTrain {
  std::vector<float> y, mean, invstd, running_mean, running_var;
};
BnTrain bn_train_device(const BnCase& s, const std::vector<float>& x,
                        const std::vector<float>& gamma, const std::vector<float>& beta,
                        const std::vector<float>& rm, const std::vector<float>& rv, float eps,
                        float momentum) {
  Dev<float> dx(x), dg(gamma), db(beta), dy(x.size()), dm(s.c), dis(s.c), drm(rm), drv(rv);
  cuda::batchnorm_forward_train(s.n, s.c, s.plane, dx.get(), dg.get(), db.get(), eps, momentum,
                                dy.get(), dm.get(), dis.get(), drm.get(), drv.get(), nullptr);
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "batchnorm_forward_train";
  return {dy.download(), dm.download(), dis.download(), drm.download(), drv.download()};
}

TEST(KernelParityNn, BatchnormTrainForwardMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(36);
  const float eps = 1e-5f, momentum = 0.1f;
  for (const BnCase& s : kBnCases) {
    SCOPED_TRACE(std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.plane));
    const std::vector<float> x = bn_input(s, rng), gamma = make_input(s.c, Fill::uniform, rng),
                             beta = make_input(s.c, Fill::uniform, rng),
                             rm = make_input(s.c, Fill::uniform, rng),
                             rv = make_input(s.c, Fill::non_negative, rng);
    BnTrain want{std::vector<float>(x.size()), std::vector<float>(s.c), std::vector<float>(s.c), rm,
                 rv};
    cpu::batchnorm_forward_train(s.n, s.c, s.plane, x.data(), gamma.data(), beta.data(), eps,
                                 momentum, want.y.data(), want.mean.data(), want.invstd.data(),
                                 want.running_mean.data(), want.running_var.data());
    const BnTrain got = bn_train_device(s, x, gamma, beta, rm, rv, eps, momentum);
    expect_match(got.y, want.y, 1e-5, "y");
    expect_match(got.mean, want.mean, 1e-5, "save_mean");
    expect_match(got.invstd, want.invstd, 1e-5, "save_invstd");
    expect_match(got.running_mean, want.running_mean, 1e-5, "running_mean");
    expect_match(got.running_var, want.running_var, 1e-5, "running_var");
    // The constant channel: mean exact, variance 0, so y is beta, the invstd 1/sqrt(eps), and
    // both backends agree to the bit.
    EXPECT_EQ(got.mean[1], want.mean[1]);
    EXPECT_EQ(got.invstd[1], want.invstd[1]);
    EXPECT_EQ(got.invstd[1], float(1.0 / std::sqrt(double(eps))));
    for (int i = 0; i < s.n; ++i)
      for (int j = 0; j < s.plane; ++j)
        ASSERT_EQ(got.y[(size_t(i) * s.c + 1) * s.plane + j], beta[1]);
    // The large-mean channel keeps its variance (that of the values before + 1000, which are
    // exact in float to within 2^-14): no precision lost to a one-pass formula.
    double mean2 = 0, var2 = 0;
    for (int pass = 0; pass < 2; ++pass)
      for (int i = 0; i < s.n; ++i)
        for (int j = 0; j < s.plane; ++j) {
          const double v = x[(size_t(i) * s.c + 2) * s.plane + j];
          if (pass == 0)
            mean2 += v / (double(s.n) * s.plane);
          else
            var2 += (v - mean2) * (v - mean2) / (double(s.n) * s.plane);
        }
    EXPECT_NEAR(got.invstd[2], want.invstd[2], 1e-5 * want.invstd[2]);
    EXPECT_NEAR(got.invstd[2], 1.0 / std::sqrt(var2 + eps), 1e-5 * want.invstd[2]);
  }
}

TEST(KernelParityNn, BatchnormEvalForwardMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(37);
  const float eps = 1e-3f;
  for (const BnCase& s : kBnCases) {
    const std::vector<float> x = bn_input(s, rng), gamma = make_input(s.c, Fill::uniform, rng),
                             beta = make_input(s.c, Fill::uniform, rng),
                             rm = make_input(s.c, Fill::uniform, rng),
                             rv = make_input(s.c, Fill::non_negative, rng);
    std::vector<float> y(x.size());
    cpu::batchnorm_forward_eval(s.n, s.c, s.plane, x.data(), gamma.data(), beta.data(), rm.data(),
                                rv.data(), eps, y.data());
    Dev<float> dx(x), dg(gamma), db(beta), drm(rm), drv(rv), dy(x.size());
    {
      GRID_CAP(2);
      cuda::batchnorm_forward_eval(s.n, s.c, s.plane, dx.get(), dg.get(), db.get(), drm.get(),
                                   drv.get(), eps, dy.get(), nullptr);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
#ifdef CONVPOOL_EMULATED_CUDA
    expect_same_bits(dy.download(), y, "eval y");
#else
    expect_match(dy.download(), y, 1e-6, "eval y");  // nvcc may contract into FMA
#endif
  }
}

TEST(KernelParityNn, BatchnormBackwardMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(38);
  const float eps = 1e-5f;
  for (const BnCase& s : kBnCases) {
    SCOPED_TRACE(std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.plane));
    const size_t total = size_t(s.n) * s.c * s.plane;
    const std::vector<float> x = bn_input(s, rng), dy = make_input(total, Fill::uniform, rng),
                             gamma = make_input(s.c, Fill::uniform, rng),
                             beta = make_input(s.c, Fill::uniform, rng),
                             prefill = make_input(total, Fill::uniform, rng);
    // The saved statistics of the CPU's forward, for both backends.
    std::vector<float> y(total), mean(s.c), invstd(s.c), rm(s.c, 0.f), rv(s.c, 1.f);
    cpu::batchnorm_forward_train(s.n, s.c, s.plane, x.data(), gamma.data(), beta.data(), eps, 0.1f,
                                 y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
    Dev<float> dx_in(x), ddy(dy), dg(gamma), dm(mean), dis(invstd);
    for (int mode = 0; mode < 3; ++mode) {  // no dx, dx overwritten, dx accumulated
      const bool want_dx = mode > 0, accumulate = mode == 2;
      std::vector<float> dx = prefill, dgamma(s.c), dbeta(s.c);
      cpu::batchnorm_backward(s.n, s.c, s.plane, x.data(), dy.data(), gamma.data(), mean.data(),
                              invstd.data(), want_dx ? dx.data() : nullptr, accumulate,
                              dgamma.data(), dbeta.data());
      Dev<float> ddx(total), ddg(s.c), ddb(s.c);
      if (accumulate) ddx.upload(prefill);
      cuda::batchnorm_backward(s.n, s.c, s.plane, dx_in.get(), ddy.get(), dg.get(), dm.get(),
                               dis.get(), want_dx ? ddx.get() : nullptr, accumulate, ddg.get(),
                               ddb.get(), nullptr);
      CHECK_CUDA(cudaDeviceSynchronize());
      const std::string what = mode == 0 ? " (no dx)" : mode == 1 ? "" : " (accumulate)";
      expect_match(ddg.download(), dgamma, 1e-5, "dgamma" + what);
      expect_match(ddb.download(), dbeta, 1e-5, "dbeta" + what);
      const auto got_dx = ddx.download();
      if (want_dx) {
        expect_match(got_dx, dx, 1e-5, "dx" + what);
      } else {
        for (size_t i = 0; i < total; ++i)
          ASSERT_TRUE(std::isnan(got_dx[i])) << "dx[" << i << "] written though not wanted";
      }
    }
  }
}

// The per-channel sums are in a fixed order: the same bits under every thread and block
// order. On the emulator each run takes another schedule; on a GPU the runs repeat under the
// hardware's own scheduling.
TEST(KernelParityNn, BatchnormIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(39);
  const BnCase s{5, 3, 130};  // 650 elements a channel: three passes of the block
  std::vector<float> x = make_input(size_t(s.n) * s.c * s.plane, Fill::uniform, rng);
  for (size_t i = 0; i < x.size(); ++i)  // magnitudes over several orders: rounding shows
    x[i] *= std::pow(10.f, float(int(i % 7) - 3));
  const std::vector<float> dy = make_input(x.size(), Fill::uniform, rng),
                           gamma = make_input(s.c, Fill::uniform, rng),
                           beta = make_input(s.c, Fill::uniform, rng), rm(s.c, 0.5f), rv(s.c, 2.f);
  auto run_once = [&] {
    BnTrain r = bn_train_device(s, x, gamma, beta, rm, rv, 1e-5f, 0.1f);
    Dev<float> dx_in(x), ddy(dy), dg(gamma), dm(r.mean), dis(r.invstd), ddx(x.size()), ddg(s.c),
        ddb(s.c);
    cuda::batchnorm_backward(s.n, s.c, s.plane, dx_in.get(), ddy.get(), dg.get(), dm.get(),
                             dis.get(), ddx.get(), false, ddg.get(), ddb.get(), nullptr);
    if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "batchnorm_backward";
    return std::vector<std::vector<float>>{
        r.y,           r.mean,         r.invstd,       r.running_mean,
        r.running_var, ddx.download(), ddg.download(), ddb.download()};
  };
  std::vector<std::vector<std::vector<float>>> runs;
  run_under_four_schedules(200, [&](int) { runs.push_back(run_once()); });
  const char* names[] = {"y",           "save_mean", "save_invstd", "running_mean",
                         "running_var", "dx",        "dgamma",      "dbeta"};
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t k = 0; k < runs[0].size(); ++k) {
      ASSERT_EQ(runs[r][k].size(), runs[0][k].size());
      EXPECT_EQ(std::memcmp(runs[r][k].data(), runs[0][k].data(), runs[0][k].size() * 4), 0)
          << "run " << r << ": " << names[k] << " differs";
    }
}

}  // namespace
#endif
