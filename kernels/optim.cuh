// CUDA launchers of the optimizers and the EMA (kernels/optim.cu).
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstddef>
#include <cstdint>

#include "convpool/optim.h"

namespace convpool::cuda {

// Per-step scalars kept in device memory, so a captured CUDA Graph replays with the current
// step: kernels read the step (random draws) and the Adam step size from here.
struct StepScalars {
  uint64_t step;  // the step being run, counting from 1
  float lr_t;     // the optimizer's step size at `step` (Adam's bias correction folded in)
  float lr;       // the scheduled lr at `step` (AdamW's decoupled decay is lr * wd)
  // Clipping by global norm (kernels/optim.cu): each block's sum of squared gradients, then
  // the norm and the factor the update multiplies the gradients by.
  static constexpr int kGradNormBlocks = 128;
  double grad_norm_parts[kGradNormBlocks];
  float grad_norm, grad_scale;
};

// kernels/optim.cu: step += 1, and lr_t and lr for the new step (one thread).
void begin_step(StepScalars* scalars, const OptimizerConfig& cfg, void* stream);
// Sets step (so the next begin_step runs step + 1).
void set_step(StepScalars* scalars, uint64_t step, void* stream);
// One fused update of the trainable groups of the flat buffer with the scalars' lr_t. With `first_bad_step`
// (device), a non-finite gradient lowers *first_bad_step to the step and that element is not
// updated, and a step already flagged updates nothing (kernels/optim.cu says how this differs
// from the CPU, which skips the whole step).
// With cfg.clip_grad_norm, first the global norm of the trainable gradients (a reduction in a
// fixed order) into the scalars' grad_scale, which the update then applies.
void optimizer_update(const OptimizerConfig& cfg, const ParamGroups& groups,
                      StepScalars* scalars, float* params, const float* grads, float* state0,
                      float* state1, void* stream, unsigned long long* first_bad_step = nullptr);

// kernels/optim.cu: ema = decay * ema + (1 - decay) * params over n floats; nothing once
// *first_bad_step (device, optional) flags the step, whose weights are unusable.
void ema_update(float* ema, const float* params, size_t n, float decay, void* stream,
                const unsigned long long* first_bad_step = nullptr);

}  // namespace convpool::cuda
