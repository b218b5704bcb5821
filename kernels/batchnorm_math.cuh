// Per-element formulas of BatchNorm, shared by the CPU backend and the CUDA kernels.
#pragma once
#include <cmath>
#include <cstdint>

#include "hd.cuh"

namespace convpool {

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
