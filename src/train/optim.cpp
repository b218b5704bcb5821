#include "convpool/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/optim_math.cuh"
#include "kernels/lr_schedule.cuh"
#include "convpool/buffer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/optim.cuh"
#endif
#include "convpool/error.h"

namespace convpool {

const char* optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::adam:
      return "adam";
    case OptimizerKind::adamw:
      return "adamw";
    case OptimizerKind::sgd:
      break;
  }
  return "sgd";
}

OptimizerKind parse_optimizer_kind(const std::string& name) {
  if (name == "adam") return OptimizerKind::adam;
  if (name == "adamw") return OptimizerKind::adamw;
  if (name == "sgd") return OptimizerKind::sgd;
  CP_USER_ERROR("unknown optimizer '" << name << "' (expected adam, adamw or sgd)");
}

ParamGroups ParamGroups::whole(size_t n) {
  ParamGroups g;
  if (n == 0) return g;
  g.count = 1;
  g.begin[0] = 0, g.end[0] = n, g.lr_mult[0] = 1.f, g.wd_mult[0] = 1.f;
  return g;
}

int optimizer_state_slots(const OptimizerConfig& cfg) {
  if (uses_adam_moments(cfg.kind)) return 2;
  return cfg.momentum > 0.f ? 1 : 0;
}

void validate(const OptimizerConfig& cfg) {
  if (!(cfg.lr > 0.f) || !std::isfinite(cfg.lr) || cfg.lr > 10.f)
    CP_USER_ERROR("learning rate must be in (0, 10] (got " << cfg.lr << ")");
  if (!(cfg.beta1 >= 0.f && cfg.beta1 < 1.f) || !(cfg.beta2 >= 0.f && cfg.beta2 < 1.f))
    CP_USER_ERROR("Adam betas must be in [0, 1)");
  if (!(cfg.eps > 0.f)) CP_USER_ERROR("Adam epsilon must be positive");
  if (!(cfg.momentum >= 0.f && cfg.momentum < 1.f))
    CP_USER_ERROR("momentum must be in [0, 1) (got " << cfg.momentum << ")");
  if (!(cfg.weight_decay >= 0.f && cfg.weight_decay < 1.f))
    CP_USER_ERROR("weight decay must be in [0, 1) (got " << cfg.weight_decay << ")");
  if (cfg.nesterov && !(cfg.momentum > 0.f)) CP_USER_ERROR("--nesterov needs a momentum above 0");
  if (!(cfg.clip_grad_norm >= 0.f) || !std::isfinite(cfg.clip_grad_norm))
    CP_USER_ERROR("--clip-grad-norm must be a finite number >= 0 (0: off; got "
                  << cfg.clip_grad_norm << ")");
  validate(cfg.schedule);
}

float optimizer_step_size(const OptimizerConfig& cfg, uint64_t step) {
  return optimizer_step_size(cfg.schedule, cfg.lr, uses_adam_moments(cfg.kind), cfg.beta1,
                             cfg.beta2, step);
}

float scheduled_lr(const OptimizerConfig& cfg, uint64_t step) {
  return scheduled_lr(cfg.schedule, cfg.lr, step);
}

double grad_global_norm(const float* grads, size_t n) {
  // Fixed chunks summed in parallel, then in chunk order: the same bits for any thread count.
  constexpr size_t kChunk = 1 << 15;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  // Kept between calls: a steady-state step allocates nothing.
  static thread_local std::vector<double> parts;
  parts.resize(chunks);
  double* part_sums = parts.data();  // OpenMP workers write through the caller's buffer
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (size_t c = 0; c < chunks; ++c) {
    double sum = 0;
    for (size_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i)
      sum += double(grads[i]) * grads[i];
    part_sums[c] = sum;
  }
  double sum = 0;
  for (size_t c = 0; c < chunks; ++c) sum += part_sums[c];
  return std::sqrt(sum);
}

void ema_update(Device device, float* ema, const float* params, size_t n, float decay,
                void* stream) {
  if (device == Device::cuda) {
#ifdef CONVPOOL_HAVE_CUDA
    cuda::ema_update(ema, params, n, decay, stream);
    return;
#else
    (void)stream;
    CP_USER_ERROR("this convpool binary was built without CUDA");
#endif
  }
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) ema_step(ema[i], params[i], decay);
}

void optimizer_step(Device device, const OptimizerConfig& cfg, uint64_t step,
                    const ParamGroups& groups, float* params, const float* grads, float* state0,
                    float* state1, void* stream) {
  CP_CHECK(step >= 1, "optimizer steps count from 1");
  if (device == Device::cuda) {
#ifdef CONVPOOL_HAVE_CUDA
    // A stand-alone update (tests, tools): the trainer keeps its own scalars instead.
    Buffer scalars(Device::cuda, sizeof(cuda::StepScalars));
    cuda::set_step(scalars.as<cuda::StepScalars>(), step - 1, stream);
    cuda::begin_step(scalars.as<cuda::StepScalars>(), cfg, stream);
    cuda::optimizer_update(cfg, groups, scalars.as<cuda::StepScalars>(), params, grads, state0,
                           state1, stream);
    float check = 0;  // the synchronous copy orders the free of `scalars` after the kernels
    copy_bytes(&check, Device::cpu, params, Device::cuda, sizeof check);
    return;
#else
    (void)stream;
    CP_USER_ERROR("this convpool binary was built without CUDA");
#endif
  }
  const float lr_t = optimizer_step_size(cfg, step), scheduled = scheduled_lr(cfg, step);
  const bool adam = uses_adam_moments(cfg.kind), decoupled = cfg.kind == OptimizerKind::adamw;
  // 1 exactly (a no-op) without clipping or below the limit.
  const float clip = cfg.clip_grad_norm > 0.f
                         ? grad_clip_scale(grad_global_norm(grads, groups.trainable_end()),
                                           cfg.clip_grad_norm)
                         : 1.f;
  for (int gi = 0; gi < groups.count; ++gi) {
    const float lr = lr_t * groups.lr_mult[gi], wd = cfg.weight_decay * groups.wd_mult[gi];
    // AdamW shrinks the parameter by lr * wd (kernels/optim.cu computes the same products);
    // the others add wd * p to the gradient (L2).
    const float decay = decoupled ? scheduled * groups.lr_mult[gi] * wd : 0.f;
    const size_t begin = groups.begin[gi], end = groups.end[gi];
#pragma omp parallel for simd schedule(static) if (end - begin > 65536)
    for (size_t i = begin; i < end; ++i) {
      if (decoupled) {
        adamw_update(params[i], grads[i] * clip, state0[i], state1[i], lr, decay, cfg.beta1, cfg.beta2,
                     cfg.eps);
        continue;
      }
      const float g = grads[i] * clip + wd * params[i];
      if (adam) {
        adam_update(params[i], g, state0[i], state1[i], lr, cfg.beta1, cfg.beta2, cfg.eps);
      } else {
        sgd_update(params[i], g, state0 ? state0 + i : nullptr, lr, cfg.momentum, cfg.nesterov);
      }
    }
  }
}

}  // namespace convpool
