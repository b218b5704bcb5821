// Learning-rate schedules (kernels/lr_schedule.cuh) against values computed by hand, in
// double, from the formulas they document (PyTorch's OneCycleLR for onecycle).
#include <gtest/gtest.h>

#include <cmath>

#include "convpool/error.h"
#include "convpool/optim.h"

using namespace convpool;

namespace {
constexpr double kPi = 3.14159265358979323846;

LrSchedule resolved(LrScheduleKind kind, float warmup, int epochs, uint64_t steps_per_epoch) {
  LrSchedule s;
  s.kind = kind;
  s.warmup = warmup;
  resolve_schedule(s, epochs, steps_per_epoch);
  return s;
}

OptimizerConfig sgd_with(const LrSchedule& s, float lr) {
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  c.lr = lr;
  c.schedule = s;
  return c;
}
}  // namespace

TEST(LrSchedule, ConstantWithoutWarmupIsThePeakBitForBit) {
  OptimizerConfig c;  // Adam, constant: the step size must be what it was before schedules
  for (uint64_t t : {1ull, 2ull, 1000ull})
    EXPECT_EQ(optimizer_step_size(c, t),
              float(double(c.lr) * std::sqrt(1.0 - std::pow(double(c.beta2), double(t))) /
                    (1.0 - std::pow(double(c.beta1), double(t)))))
        << t;
  EXPECT_EQ(scheduled_lr(c, 12345), c.lr);
}

TEST(LrSchedule, WarmupThenCosineAndLinearDecay) {
  // 100 steps, 10 of them warm-up, decaying to 0.1 * peak at step 100.
  for (LrScheduleKind kind : {LrScheduleKind::cosine, LrScheduleKind::linear}) {
    LrSchedule s = resolved(kind, 0.1f, 10, 10);
    s.final_ratio = 0.1f;
    const OptimizerConfig c = sgd_with(s, 0.5f);
    EXPECT_NEAR(scheduled_lr(c, 1), 0.05, 1e-7);    // 1/10 of the peak
    EXPECT_NEAR(scheduled_lr(c, 5), 0.25, 1e-7);    // 5/10
    EXPECT_NEAR(scheduled_lr(c, 10), 0.5, 1e-7);    // warm-up done
    EXPECT_NEAR(scheduled_lr(c, 11), 0.5, 1e-7);    // decay starts at the peak
    EXPECT_NEAR(scheduled_lr(c, 100), 0.05, 1e-7);  // and ends at final_ratio * peak
    EXPECT_NEAR(scheduled_lr(c, 500), 0.05, 1e-7);  // past the end: held
    const double q = (60.0 - 10.0) / 89.0;          // step 61 has taken 60 steps
    const double want = kind == LrScheduleKind::cosine
                            ? 0.5 * (0.1 + 0.9 * 0.5 * (1 + std::cos(kPi * q)))
                            : 0.5 * (1 - 0.9 * q);
    EXPECT_NEAR(scheduled_lr(c, 61), want, 1e-7) << lr_schedule_name(kind);
    EXPECT_EQ(optimizer_step_size(c, 61), scheduled_lr(c, 61)) << "SGD: no bias correction";
  }
}

TEST(LrSchedule, OneCycleFollowsPyTorch) {
  // torch.optim.lr_scheduler.OneCycleLR(max_lr=1, total_steps=10, pct_start=0.3,
  // div_factor=25, final_div_factor=1e4, anneal_strategy="cos"): phase one ends at step_num
  // 0.3 * 10 - 1 = 2, phase two at 9; anneal(a, b, pct) = b + (a - b) / 2 * (cos(pi pct) + 1).
  LrSchedule s = resolved(LrScheduleKind::onecycle, 0.3f, 2, 5);
  const OptimizerConfig c = sgd_with(s, 1.f);
  auto anneal = [](double a, double b, double pct) {
    return b + (a - b) / 2 * (std::cos(kPi * pct) + 1);
  };
  const double start = 1.0 / 25, end = start / 1e4;
  const double want[10] = {start,
                           anneal(start, 1, 0.5),
                           1.0,
                           anneal(1, end, 1 / 7.0),
                           anneal(1, end, 2 / 7.0),
                           anneal(1, end, 3 / 7.0),
                           anneal(1, end, 4 / 7.0),
                           anneal(1, end, 5 / 7.0),
                           anneal(1, end, 6 / 7.0),
                           end};
  for (int k = 0; k < 10; ++k)
    EXPECT_NEAR(scheduled_lr(c, uint64_t(k + 1)), want[k], 1e-6 * std::max(want[k], 1e-3))
        << "step_num " << k;
  // Adam folds its bias correction into the scheduled lr.
  OptimizerConfig adam = c;
  adam.kind = OptimizerKind::adam;
  EXPECT_NEAR(optimizer_step_size(adam, 4),
              want[3] * std::sqrt(1 - std::pow(double(0.999f), 4)) / (1 - std::pow(double(0.9f), 4)),
              1e-6);
}

TEST(LrSchedule, StepMilestonesInEpochsOrSteps) {
  LrSchedule s;
  s.kind = LrScheduleKind::step;
  s.gamma = 0.5f;
  s.milestone_count = 2;
  s.milestones[0] = 2, s.milestones[1] = 3;  // epochs
  s.milestones_in_epochs = true;
  resolve_schedule(s, 5, 4);
  EXPECT_EQ(s.milestones[0], 8u);
  EXPECT_EQ(s.milestones[1], 12u);
  EXPECT_EQ(s.total_steps, 20u);
  const OptimizerConfig c = sgd_with(s, 0.8f);
  EXPECT_FLOAT_EQ(scheduled_lr(c, 8), 0.8f);    // epoch 2's last step (7 taken before it)
  EXPECT_FLOAT_EQ(scheduled_lr(c, 9), 0.4f);    // epoch 3's first
  EXPECT_FLOAT_EQ(scheduled_lr(c, 13), 0.2f);   // epoch 4's first
  EXPECT_FLOAT_EQ(scheduled_lr(c, 200), 0.2f);
  resolve_schedule(s, 50, 1000);  // a second resolution (a resume) changes nothing
  EXPECT_EQ(s.milestones[0], 8u);
  EXPECT_EQ(s.total_steps, 20u);
}

TEST(LrSchedule, BadValuesAreOneLineErrors) {
  EXPECT_THROW(parse_lr_schedule_kind("cosin"), Error);
  for (LrScheduleKind k : {LrScheduleKind::constant, LrScheduleKind::cosine,
                           LrScheduleKind::linear, LrScheduleKind::onecycle, LrScheduleKind::step})
    EXPECT_EQ(parse_lr_schedule_kind(lr_schedule_name(k)), k);
  LrSchedule s;
  s.warmup = 1.5f;
  EXPECT_THROW(validate(s), Error);
  s = {};
  s.warmup = -0.1f;
  EXPECT_THROW(validate(s), Error);
  s = {};
  s.kind = LrScheduleKind::step;  // no milestones
  EXPECT_THROW(validate(s), Error);
  s.milestone_count = 2;
  s.milestones[0] = 5, s.milestones[1] = 5;  // not increasing
  EXPECT_THROW(validate(s), Error);
  s = {};
  s.gamma = 0.f;
  EXPECT_THROW(validate(s), Error);
  s = {};
  s.start_div = 0.5f;
  EXPECT_THROW(validate(s), Error);
  EXPECT_NO_THROW(validate(LrSchedule{}));
}
