// Per-element formulas of the activations (relu, gelu, leaky_relu), shared by the CPU backend
// and the CUDA kernels.
#pragma once
#include <cmath>

#include "hd.cuh"

namespace convpool {

// NaN passes through (as in PyTorch), so a broken value is never hidden from the checks.
CP_HD float relu_forward(float x) { return cp_select((x > 0.f) | (x != x), x, 0.f); }
// Uses the output: y > 0 exactly where x > 0, so the input need not be kept.
CP_HD float relu_backward(float y, float dy) { return cp_select(y > 0.f, dy, 0.f); }

// GELU, exact (erf) form, as torch.nn.GELU() by default. NaN passes through.
CP_HD float gelu_forward(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }
CP_HD float gelu_backward(float x, float dy) {
  const float cdf = 0.5f * (1.f + erff(x * 0.70710678118654752f));
  const float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
  return dy * (cdf + x * pdf);
}

// Leaky ReLU with a slope for x < 0 (NaN passes through); backward reads the input.
CP_HD float leaky_relu_forward(float x, float slope) { return x < 0.f ? x * slope : x; }
CP_HD float leaky_relu_backward(float x, float dy, float slope) {
  return x < 0.f ? dy * slope : dy;
}

}  // namespace convpool
