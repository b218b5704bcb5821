// The dropout draw, shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cstdint>

#include "hd.cuh"
#include "philox.cuh"

namespace convpool {

// Dropout (inverted): an element is kept with probability 1 - p and scaled by 1 / (1 - p).
// The draw is a function of (seed, layer, step, element), so backward recomputes the mask
// instead of storing it, and the CPU and CUDA backends drop the same elements.
CP_HD float dropout_factor(uint64_t seed, uint32_t layer, uint64_t step, uint64_t element,
                           float p) {
  const float u = philox_uniform(seed, kRngDropout, layer, uint32_t(step), element);
  return u < p ? 0.f : 1.f / (1.f - p);
}

}  // namespace convpool
