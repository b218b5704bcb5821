// Per-element formulas of the optimizers, shared by both backends.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.cuh"

namespace convpool {

// Adam's step size at step t (from 1), in double: lr * sqrt(1 - beta2^t) / (1 - beta1^t).
// Computed by the CPU's optimizer_step_size and by the CUDA begin_step kernel alike.
CP_HD float adam_step_size(float lr, float beta1, float beta2, uint64_t t) {
  return float(double(lr) * sqrt(1.0 - pow(double(beta2), double(t))) /
               (1.0 - pow(double(beta1), double(t))));
}

// Adam, as Keras does it: the bias correction folded into the step size.
// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); p -= lr_t * m / (sqrt(v) + eps).
CP_HD void adam_update(float& p, float g, float& m, float& v, float lr_t, float beta1, float beta2,
                       float eps) {
  m = beta1 * m + (1.f - beta1) * g;
  v = beta2 * v + (1.f - beta2) * g * g;
  p -= lr_t * m / (sqrtf(v) + eps);
}

// The exponential moving average of a weight after a step: ema = decay * ema + (1 - decay) * p.
CP_HD void ema_step(float& ema, float p, float decay) { ema = decay * ema + (1.f - decay) * p; }

// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: the gradients are
// multiplied by max_norm / (norm + 1e-6), at most 1 (so exactly 1, a no-op, below the limit,
// and for a non-finite norm, which the non-finite checks then report).
CP_HD float grad_clip_scale(double norm, float max_norm) {
  const double coef = double(max_norm) / (norm + 1e-6);
  return coef < 1.0 ? float(coef) : 1.f;
}

// AdamW: the decoupled decay first (p *= 1 - lr * wd, as PyTorch's AdamW), then Adam's step on
// the gradient alone. `decay` = lr * wd (scheduled lr times the group's multipliers).
CP_HD void adamw_update(float& p, float g, float& m, float& v, float lr_t, float decay, float beta1,
                        float beta2, float eps) {
  p *= 1.f - decay;
  adam_update(p, g, m, v, lr_t, beta1, beta2, eps);
}

// SGD with momentum (Keras form: velocity = momentum*velocity - lr*g), optional Nesterov.
CP_HD void sgd_update(float& p, float g, float* velocity, float lr, float momentum, bool nesterov) {
  if (!velocity) {
    p -= lr * g;
    return;
  }
  const float vel = momentum * *velocity - lr * g;
  *velocity = vel;
  p += nesterov ? momentum * vel - lr * g : vel;
}

}  // namespace convpool
