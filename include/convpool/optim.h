// Optimizers over the flat parameter buffer: one pass (one kernel launch on CUDA) per step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/lr_schedule.h"
#include "convpool/tensor.h"

namespace convpool {

// adamw: Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW): the
// parameter shrinks by lr * weight_decay each step instead of the decay joining the gradient.
enum class OptimizerKind { adam, sgd, adamw };
const char* optimizer_name(OptimizerKind kind);  // "adam", "sgd", "adamw"
// Adam and AdamW keep moments (two state slots) and fold the bias correction into the step.
inline bool uses_adam_moments(OptimizerKind kind) {
  return kind == OptimizerKind::adam || kind == OptimizerKind::adamw;
}
// The CLI's and the checkpoints' names; a one-line error naming the choices otherwise.
OptimizerKind parse_optimizer_kind(const std::string& name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adam;
  float lr = 1e-3f;        // the schedule's peak
  LrSchedule schedule;     // the lr of each step (kernels/lr_schedule.cuh)
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;  // Adam, Keras defaults
  float momentum = 0.0f;                            // SGD
  bool nesterov = false;                            // SGD
  // Scales the gradients so that their global 2-norm (over every trainable parameter) is at
  // most this, before the update (torch.nn.utils.clip_grad_norm_). 0: no clipping.
  float clip_grad_norm = 0.0f;
  // Times each parameter group's wd_mult: L2 added to the gradient (adam, sgd), or AdamW's
  // decoupled decay, p *= 1 - lr * weight_decay.
  float weight_decay = 0.0f;
};

// The trainable part of the flat buffer as contiguous ranges [begin, end) that share a
// learning-rate and a weight-decay multiplier; passed by value to the update kernel.
constexpr int kMaxParamGroups = 16;
struct ParamGroups {
  int count = 0;
  size_t begin[kMaxParamGroups] = {}, end[kMaxParamGroups] = {};
  float lr_mult[kMaxParamGroups] = {}, wd_mult[kMaxParamGroups] = {};
  size_t trainable_end() const { return count ? end[count - 1] : 0; }
  static ParamGroups whole(size_t n);  // one group [0, n) with multipliers 1
};

int optimizer_state_slots(const OptimizerConfig& cfg);  // Adam(W) 2, SGD with momentum 1, else 0
void validate(const OptimizerConfig& cfg);              // one-line errors for absurd values

// The step size at `step` (counting from 1): the scheduled lr, with Adam's bias correction
// folded in. The one definition (kernels/lr_schedule.cuh): the CPU calls it here, the CUDA
// begin_step kernel on the device.
float optimizer_step_size(const OptimizerConfig& cfg, uint64_t step);
// The scheduled lr at `step` alone (no bias correction): metrics.csv's lr column.
float scheduled_lr(const OptimizerConfig& cfg, uint64_t step);

// The 2-norm of grads[0..n), summed in double in a fixed order (the CPU's clipping norm).
double grad_global_norm(const float* grads, size_t n);

// Applies one update to the trainable groups. `step` counts from 1. state0/state1 are the
// flat state buffers (may be null when the optimizer has none).
void optimizer_step(Device device, const OptimizerConfig& cfg, uint64_t step,
                    const ParamGroups& groups, float* params, const float* grads, float* state0,
                    float* state1, void* stream = nullptr);

// EMA of the weights: ema[i] = decay * ema[i] + (1 - decay) * params[i] for i < n, on `device`
// (kernels/optim.cu on CUDA, where the training step calls it inside the captured step).
void ema_update(Device device, float* ema, const float* params, size_t n, float decay,
                void* stream = nullptr);

}  // namespace convpool
