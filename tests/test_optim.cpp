// Optimizer steps against values computed by hand (and, for Adam, by its closed form).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "convpool/error.h"
#include "convpool/optim.h"

using namespace convpool;

TEST(Adam, FirstTwoStepsMatchHandComputedValues) {
  OptimizerConfig c;  // Keras defaults: lr 1e-3, 0.9, 0.999, 1e-7
  float p[2] = {0.5f, -1.0f}, g[2] = {0.2f, -0.4f}, m[2] = {0, 0}, v[2] = {0, 0};
  optimizer_step(Device::cpu, c, 1, ParamGroups::whole(2), p, g, m, v);
  // Step 1: m = 0.1 g, v = 0.001 g^2, lr_t = 1e-3 * sqrt(0.001) / 0.1, so the update is
  // lr_t * 0.1 g / (sqrt(0.001)|g| + 1e-7) ~= 1e-3 * sign(g).
  EXPECT_NEAR(m[0], 0.02, 1e-8);
  EXPECT_NEAR(v[1], double(1.f - 0.999f) * 0.16, 1e-6 * 0.00016);  // as float computes 1 - beta2
  EXPECT_NEAR(p[0], 0.5 - 1e-3 * 0.02 * std::sqrt(0.001) / 0.1 / (std::sqrt(0.001 * 0.04) + 1e-7),
              1e-7);
  EXPECT_NEAR(p[1], -1.0 + 1e-3, 1e-6);
  // Step 2 with a new gradient.
  const float g2[2] = {-0.1f, 0.3f};
  const double m2 = 0.9 * 0.02 + 0.1 * -0.1, v2 = 0.999 * 0.001 * 0.04 + 0.001 * 0.01;
  const double lr2 = 1e-3 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.9 * 0.9);
  const double want = p[0] - lr2 * m2 / (std::sqrt(v2) + 1e-7);
  optimizer_step(Device::cpu, c, 2, ParamGroups::whole(2), p, g2, m, v);
  EXPECT_NEAR(p[0], want, 1e-7);
}

TEST(Sgd, PlainMomentumNesterovAndWeightDecay) {
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  c.lr = 0.1f;
  float p = 1.f, g = 0.5f;
  optimizer_step(Device::cpu, c, 1, ParamGroups::whole(1), &p, &g, nullptr, nullptr);
  EXPECT_FLOAT_EQ(p, 0.95f);

  c.momentum = 0.9f;
  float q = 1.f, vel = 0.f;
  optimizer_step(Device::cpu, c, 1, ParamGroups::whole(1), &q, &g, &vel, nullptr);  // vel = -0.05
  optimizer_step(Device::cpu, c, 2, ParamGroups::whole(1), &q, &g, &vel, nullptr);  // vel = -0.045 - 0.05
  EXPECT_FLOAT_EQ(vel, -0.095f);
  EXPECT_FLOAT_EQ(q, 1.f - 0.05f - 0.095f);

  c.nesterov = true;
  float r = 1.f, vr = 0.f;
  optimizer_step(Device::cpu, c, 1, ParamGroups::whole(1), &r, &g, &vr, nullptr);  // r += 0.9*(-0.05) - 0.05
  EXPECT_FLOAT_EQ(r, 1.f - 0.045f - 0.05f);

  OptimizerConfig wd;
  wd.kind = OptimizerKind::sgd;
  wd.lr = 0.1f;
  wd.weight_decay = 0.01f;
  float s = 2.f, zero = 0.f;
  optimizer_step(Device::cpu, wd, 1, ParamGroups::whole(1), &s, &zero, nullptr, nullptr);
  EXPECT_FLOAT_EQ(s, 2.f - 0.1f * 0.02f);
}

// AdamW: the parameter shrinks by (scheduled lr x group lr_mult) x (weight decay x group
// wd_mult) before Adam's step on the gradient alone, as PyTorch's AdamW; in double by hand.
TEST(AdamW, DecoupledDecayFollowsTheScheduledLrAndGroupMultipliers) {
  OptimizerConfig c;
  c.kind = OptimizerKind::adamw;
  c.lr = 0.01f;
  c.weight_decay = 0.1f;
  c.schedule.kind = LrScheduleKind::step;  // halved from the second step on
  c.schedule.gamma = 0.5f;
  c.schedule.milestone_count = 1;
  c.schedule.milestones[0] = 1;
  resolve_schedule(c.schedule, 1, 10);
  ParamGroups groups = ParamGroups::whole(1);
  groups.lr_mult[0] = 2.f, groups.wd_mult[0] = 0.5f;
  float p = 0.5f, m = 0, v = 0;
  const double b1 = double(c.beta1), b2 = double(c.beta2), eps = double(c.eps);
  double want_p = 0.5, want_m = 0, want_v = 0;
  const float grads[2] = {0.2f, -0.3f};
  for (uint64_t t = 1; t <= 2; ++t) {
    const float g = grads[t - 1];
    optimizer_step(Device::cpu, c, t, groups, &p, &g, &m, &v);
    const double lr = (t == 1 ? 0.01 : 0.005) * 2.0;  // scheduled, times lr_mult
    want_p *= 1.0 - lr * 0.1 * 0.5;                   // decoupled decay
    want_m = b1 * want_m + (1 - b1) * g;
    want_v = b2 * want_v + (1 - b2) * double(g) * g;
    const double lr_t = lr * std::sqrt(1 - std::pow(b2, double(t))) / (1 - std::pow(b1, double(t)));
    want_p -= lr_t * want_m / (std::sqrt(want_v) + eps);
    EXPECT_NEAR(m, want_m, 1e-8) << "step " << t;
    EXPECT_NEAR(v, want_v, 1e-9) << "step " << t;
    EXPECT_NEAR(p, want_p, 2e-7) << "step " << t;
  }
  // The decay is not in the moments: a zero gradient leaves them at zero.
  float q = 1.f, mq = 0, vq = 0, zero = 0;
  optimizer_step(Device::cpu, c, 1, groups, &q, &zero, &mq, &vq);
  EXPECT_EQ(mq, 0.f);
  EXPECT_NEAR(q, 1.0 - 0.02 * 0.05, 1e-7);
}

// Clipping by global norm (torch.nn.utils.clip_grad_norm_): every gradient times
// max_norm / (norm + 1e-6) when the norm is above max_norm, over all trainable groups.
TEST(ClipGradNorm, ScalesByTheGlobalNormOfAllGroups) {
  std::vector<float> g = {3.f, 0.f, -4.f, 12.f};  // norm 13, across two groups
  EXPECT_DOUBLE_EQ(grad_global_norm(g.data(), g.size()), 13.0);
  ParamGroups groups;
  groups.count = 2;
  groups.begin[0] = 0, groups.end[0] = 2, groups.begin[1] = 2, groups.end[1] = 4;
  groups.lr_mult[0] = groups.lr_mult[1] = groups.wd_mult[0] = groups.wd_mult[1] = 1.f;
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  c.lr = 0.1f;
  c.clip_grad_norm = 6.5f;
  std::vector<float> p(4, 1.f);
  optimizer_step(Device::cpu, c, 1, groups, p.data(), g.data(), nullptr, nullptr);
  const double scale = 6.5 / (13.0 + 1e-6);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(p[i], 1.0 - 0.1 * g[i] * scale, 1e-7) << i;

  // Below the limit nothing changes: the same bits as without clipping, for every optimizer.
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    OptimizerConfig plain;
    plain.kind = kind;
    plain.weight_decay = 0.01f;
    OptimizerConfig clipped = plain;
    clipped.clip_grad_norm = 13.5f;
    std::vector<float> a(4, 0.5f), b(4, 0.5f), ma(4), va(4), mb(4), vb(4);
    optimizer_step(Device::cpu, plain, 1, groups, a.data(), g.data(), ma.data(), va.data());
    optimizer_step(Device::cpu, clipped, 1, groups, b.data(), g.data(), mb.data(), vb.data());
    EXPECT_EQ(a, b) << optimizer_name(kind);
  }
  c.clip_grad_norm = -1.f;
  EXPECT_THROW(validate(c), Error);
}

TEST(OptimizerConfig, AbsurdValuesAreRejected) {
  OptimizerConfig c;
  c.lr = -1.f;
  EXPECT_THROW(validate(c), Error);
  EXPECT_THROW(parse_optimizer_kind("adamx"), Error);
  EXPECT_EQ(parse_optimizer_kind("adamw"), OptimizerKind::adamw);
  EXPECT_EQ(parse_optimizer_kind(optimizer_name(OptimizerKind::sgd)), OptimizerKind::sgd);
  c = {};
  c.beta1 = 1.f;
  EXPECT_THROW(validate(c), Error);
  c = {};
  c.kind = OptimizerKind::sgd;
  c.nesterov = true;
  EXPECT_THROW(validate(c), Error);
  EXPECT_NO_THROW(validate(OptimizerConfig{}));
}

// Groups: each range gets its own learning-rate and weight-decay multipliers, and elements
// outside every group (frozen parameters, buffers) are left alone.
TEST(Sgd, ParamGroupsScaleLearningRateAndWeightDecay) {
  OptimizerConfig c;
  c.kind = OptimizerKind::sgd;
  c.lr = 0.1f;
  c.weight_decay = 0.5f;
  ParamGroups groups;
  groups.count = 2;
  groups.begin[0] = 0, groups.end[0] = 2, groups.lr_mult[0] = 1.f, groups.wd_mult[0] = 1.f;
  groups.begin[1] = 2, groups.end[1] = 3, groups.lr_mult[1] = 2.f, groups.wd_mult[1] = 0.f;
  float p[4] = {1.f, 1.f, 1.f, 1.f};
  const float g[4] = {0.5f, 0.f, 0.5f, 0.5f};
  optimizer_step(Device::cpu, c, 1, groups, p, g, nullptr, nullptr);
  EXPECT_FLOAT_EQ(p[0], 1.f - 0.1f * (0.5f + 0.5f));
  EXPECT_FLOAT_EQ(p[1], 1.f - 0.1f * 0.5f);  // decay alone
  EXPECT_FLOAT_EQ(p[2], 1.f - 0.2f * 0.5f);  // twice the rate, no decay
  EXPECT_EQ(p[3], 1.f);                      // in no group: untouched
}
