// Kernel parity of the training recipes (kernels/optim.cu, kernels/loss.cu): the scheduled
// step size computed on the device from the device step, and the recipe updates, against the
// CPU backend on the same inputs. Part of the kernel parity suite (tests/kernel_parity.cpp
// says how it runs on a GPU and on the emulated target).
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "convpool/optim.h"
#include "cpu/loss.h"
#include "kernels/loss.cuh"
#include "kernels/optim.cuh"
#include "kernel_parity.h"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// The device's begin_step at every step of each schedule gives the CPU's step size and lr.
TEST(KernelParity, ScheduledStepSizeMatchesCpuAtEveryStep) {
  REQUIRE_DEVICE();
  std::vector<LrSchedule> schedules(4);
  schedules[0].kind = LrScheduleKind::onecycle;
  schedules[0].warmup = 0.3f;
  schedules[1].kind = LrScheduleKind::cosine;
  schedules[1].warmup = 0.1f;
  schedules[1].final_ratio = 0.05f;
  schedules[2].kind = LrScheduleKind::linear;
  schedules[3].kind = LrScheduleKind::step;
  schedules[3].milestone_count = 2;
  schedules[3].milestones[0] = 1, schedules[3].milestones[1] = 3;
  schedules[3].milestones_in_epochs = true;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd})
    for (LrSchedule s : schedules) {
      resolve_schedule(s, 5, 7);
      OptimizerConfig c;
      c.kind = kind;
      c.lr = 0.01f;
      c.schedule = s;
      Dev<cuda::StepScalars> scalars(1);
      cuda::set_step(scalars.get(), 0, nullptr);
      for (uint64_t step = 1; step <= s.total_steps + 2; ++step) {
        cuda::begin_step(scalars.get(), c, nullptr);
        const cuda::StepScalars got = scalars.download()[0];
        ASSERT_EQ(got.step, step);
        const std::string what = std::string(lr_schedule_name(s.kind)) + " " +
                                 optimizer_name(kind) + " step " + std::to_string(step);
        // The same double formula; a GPU's cos and pow may differ in the last bits.
        EXPECT_NEAR(got.lr_t, optimizer_step_size(c, step), 1e-6 * optimizer_step_size(c, step))
            << what;
        EXPECT_NEAR(got.lr, scheduled_lr(c, step), 1e-6 * scheduled_lr(c, step)) << what;
      }
    }
}

// Clipping: the device's global norm (a fixed-order reduction) and the clipped update of every
// optimizer against the CPU's, above the limit and below it (where the factor is exactly 1).
TEST(KernelParity, ClippedUpdatesMatchCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(31);
  const size_t n = 100003;
  const ParamGroups groups = ParamGroups::whole(n);
  for (float max_norm : {0.5f, 1e6f})
    for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
      OptimizerConfig c;
      c.kind = kind;
      c.momentum = 0.9f;
      c.weight_decay = 1e-3f;
      c.clip_grad_norm = max_norm;
      std::vector<float> p = make_input(n, Fill::uniform, rng), s0(n), s1(n);
      Dev<float> dp(p), d0(s0), d1(s1);
      Dev<cuda::StepScalars> scalars(1);
      cuda::set_step(scalars.get(), 0, nullptr);
      for (uint64_t step = 1; step <= 2; ++step) {
        const std::vector<float> g = make_input(n, Fill::uniform, rng);
        Dev<float> dg(g);
        optimizer_step(Device::cpu, c, step, groups, p.data(), g.data(), s0.data(), s1.data());
        cuda::begin_step(scalars.get(), c, nullptr);
        cuda::optimizer_update(c, groups, scalars.get(), dp.get(), dg.get(), d0.get(), d1.get(),
                               nullptr);
        const cuda::StepScalars got = scalars.download()[0];
        const double norm = grad_global_norm(g.data(), n);
        EXPECT_NEAR(got.grad_norm, norm, 1e-6 * norm);
        EXPECT_NEAR(got.grad_scale, max_norm < norm ? max_norm / norm : 1.0, 1e-6);
      }
      CHECK_CUDA(cudaDeviceSynchronize());
      const std::string what = std::string(optimizer_name(kind)) + " max_norm " +
                               std::to_string(max_norm);
      expect_match(dp.download(), p, 1e-6, what + " params");
      expect_match(d0.download(), s0, 1e-6, what + " state");
    }
}

// Label smoothing in the fused loss kernel: gradient and summed loss against the CPU's, for
// class counts below, at and above a warp's 32 lanes.
TEST(KernelParity, LabelSmoothedSoftmaxXentMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(77);
  for (int classes : {10, 32, 45}) {
    const int n = 37;
    const float eps = 0.15f;
    std::vector<float> z = make_input(size_t(n) * classes, Fill::uniform, rng);
    for (auto& v : z) v *= 6.f;
    std::vector<uint8_t> labels(static_cast<size_t>(n));
    for (auto& l : labels) l = uint8_t(rng() % unsigned(classes));
    std::vector<float> want(z.size());
    const auto s = cpu::softmax_xent(n, classes, z.data(), labels.data(), want.data(), 1.f / n, eps);
    Dev<float> dz(z), dgrad(z.size());
    Dev<uint8_t> dlabels(labels);
    Dev<double> loss(std::vector<double>{0.0}), sample_loss(static_cast<size_t>(n));
    Dev<unsigned long long> correct(std::vector<unsigned long long>{0});
    cuda::softmax_xent(n, classes, dz.get(), dlabels.get(), dgrad.get(), 1.f / n, eps, loss.get(),
                       sample_loss.get(), correct.get(), nullptr);
    CHECK_CUDA(cudaDeviceSynchronize());
    const std::string what = std::to_string(classes) + " classes";
    expect_match(dgrad.download(), want, 1e-6, what + " gradient");
    EXPECT_NEAR(loss.download()[0], s.loss, 1e-9 * s.loss) << what;
    EXPECT_EQ(correct.download()[0], uint64_t(s.correct)) << what;
  }
}

// The EMA kernel against the CPU's, over a grid-stride second pass; a flagged step leaves it.
TEST(KernelParity, EmaUpdateMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(5);
  const size_t n = 70001;
  std::vector<float> ema = make_input(n, Fill::uniform, rng);
  Dev<float> dema(ema);
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> p = make_input(n, Fill::uniform, rng);
    Dev<float> dp(p);
    ema_update(Device::cpu, ema.data(), p.data(), n, 0.99f);
    GRID_CAP(7);
    cuda::ema_update(dema.get(), dp.get(), n, 0.99f, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  expect_match(dema.download(), ema, 1e-6, "ema");

  const std::vector<float> before = dema.download();
  Dev<unsigned long long> flagged(std::vector<unsigned long long>{4});
  Dev<float> other(make_input(n, Fill::uniform, rng));
  cuda::ema_update(dema.get(), other.get(), n, 0.5f, nullptr, flagged.get());
  CHECK_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(dema.download(), before) << "a flagged step's weights were averaged in";
}

}  // namespace
#endif
