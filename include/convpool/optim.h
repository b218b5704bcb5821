// Optimizers over the flat parameter buffer: one pass (one kernel launch on CUDA) per step.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "convpool/tensor.h"

namespace convpool {

struct OptimizerConfig {
  std::string kind = "adam";  // "adam" | "sgd"
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;  // Adam, Keras defaults
  float momentum = 0.0f;                            // SGD
  bool nesterov = false;                            // SGD
  float weight_decay = 0.0f;                        // L2, added to the gradient before the update
};

int optimizer_state_slots(const OptimizerConfig& cfg);  // Adam 2, SGD with momentum 1, else 0
void validate(const OptimizerConfig& cfg);              // one-line errors for absurd values

// Applies one update. `step` counts from 1 (Adam's bias correction uses it).
// state0/state1 are the flat state buffers (may be null when the optimizer has none).
void optimizer_step(Device device, const OptimizerConfig& cfg, uint64_t step, float* params,
                    const float* grads, float* state0, float* state1, size_t n,
                    void* stream = nullptr);

}  // namespace convpool
