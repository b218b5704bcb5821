#include "convpool/optim.h"

#include <cmath>

#include "../../kernels/elementwise_math.cuh"
#include "convpool/buffer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "../cuda/ops.h"
#endif
#include "convpool/error.h"

namespace convpool {

int optimizer_state_slots(const OptimizerConfig& cfg) {
  if (cfg.kind == "adam") return 2;
  return cfg.momentum > 0.f ? 1 : 0;
}

void validate(const OptimizerConfig& cfg) {
  if (cfg.kind != "adam" && cfg.kind != "sgd")
    CP_USER_ERROR("unknown optimizer '" << cfg.kind << "' (expected adam or sgd)");
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
}

// The step size each kind uses at `step`: Adam folds its bias correction in here, in double.
static float step_size(const OptimizerConfig& cfg, uint64_t step) {
  if (cfg.kind != "adam") return cfg.lr;
  const double t = double(step);
  return float(cfg.lr * std::sqrt(1.0 - std::pow(double(cfg.beta2), t)) /
               (1.0 - std::pow(double(cfg.beta1), t)));
}

void optimizer_step(Device device, const OptimizerConfig& cfg, uint64_t step, float* params,
                    const float* grads, float* state0, float* state1, size_t n, void* stream) {
  CP_CHECK(step >= 1, "optimizer steps count from 1");
  const float lr_t = step_size(cfg, step);
  if (device == Device::cuda) {
#ifdef CONVPOOL_HAVE_CUDA
    // A stand-alone update (tests, tools): the trainer keeps its own scalars instead.
    Buffer scalars(Device::cuda, sizeof(cuda::StepScalars));
    cuda::set_step(scalars.as<cuda::StepScalars>(), step - 1, stream);
    cuda::begin_step(scalars.as<cuda::StepScalars>(), cfg, stream);
    cuda::optimizer_update(cfg, scalars.as<cuda::StepScalars>(), params, grads, state0, state1, n,
                           stream);
    float check = 0;  // the synchronous copy orders the free of `scalars` after the kernels
    copy_bytes(&check, Device::cpu, params, Device::cuda, sizeof check);
    return;
#else
    (void)stream;
    CP_USER_ERROR("this convpool binary was built without CUDA");
#endif
  }
  const bool adam = cfg.kind == "adam";
  const float wd = cfg.weight_decay;
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; ++i) {
    const float g = grads[i] + wd * params[i];
    if (adam) {
      adam_update(params[i], g, state0[i], state1[i], lr_t, cfg.beta1, cfg.beta2, cfg.eps);
    } else {
      sgd_update(params[i], g, state0 ? state0 + i : nullptr, lr_t, cfg.momentum, cfg.nesterov);
    }
  }
}

}  // namespace convpool
