// Per-element formulas of the network ops added with the graph of named nodes (gelu,
// leaky_relu, dropout, batchnorm), shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.cuh"
#include "philox.cuh"

namespace convpool {

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

// Dropout (inverted): an element is kept with probability 1 - p and scaled by 1 / (1 - p).
// The draw is a function of (seed, layer, step, element), so backward recomputes the mask
// instead of storing it, and the CPU and CUDA backends drop the same elements.
CP_HD float dropout_factor(uint64_t seed, uint32_t layer, uint64_t step, uint64_t element,
                           float p) {
  const float u = philox_uniform(seed, kRngDropout, layer, uint32_t(step), element);
  return u < p ? 0.f : 1.f / (1.f - p);
}

// BatchNorm of one element given its channel's statistics.
CP_HD float batchnorm_apply(float x, float mean, float invstd, float gamma, float beta) {
  return (x - mean) * invstd * gamma + beta;
}
// Training-mode input gradient, from the channel sums sum_dy = sum(dy) and
// sum_dy_xhat = sum(dy * xhat) over its m = n * plane elements:
// dx = gamma * invstd * (dy - sum_dy / m - xhat * sum_dy_xhat / m).
CP_HD float batchnorm_input_grad(float x, float dy, float mean, float invstd, float gamma,
                                 float mean_dy, float mean_dy_xhat) {
  const float xhat = (x - mean) * invstd;
  return gamma * invstd * (dy - mean_dy - xhat * mean_dy_xhat);
}
// Running statistics, PyTorch's convention: the running variance takes the unbiased batch
// variance; running = (1 - momentum) * running + momentum * batch.
CP_HD void batchnorm_update_running(float& running_mean, float& running_var, double mean,
                                    double biased_var, size_t m, float momentum) {
  const double unbiased = m > 1 ? biased_var * double(m) / double(m - 1) : biased_var;
  running_mean = float((1.0 - momentum) * running_mean + momentum * mean);
  running_var = float((1.0 - momentum) * running_var + momentum * unbiased);
}

}  // namespace convpool
