// Fused optimizer update over the flat parameter buffer: one launch per training step.
#include "../src/cuda/check.h"
#include "convpool/optim.h"
#include "elementwise_math.cuh"

namespace convpool::cuda {

namespace {

__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v, size_t n, float lr_t,
                            float beta1, float beta2, float eps, float wd) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    adam_update(pi, g[i] + wd * pi, mi, vi, lr_t, beta1, beta2, eps);
    p[i] = pi, m[i] = mi, v[i] = vi;
  }
}

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g,
                           float* __restrict__ vel, size_t n, float lr, float momentum,
                           bool nesterov, float wd) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    float pi = p[i];
    sgd_update(pi, g[i] + wd * pi, vel ? vel + i : nullptr, lr, momentum, nesterov);
    p[i] = pi;
  }
}

}  // namespace

void optimizer_step(const OptimizerConfig& cfg, float lr_t, float* params, const float* grads,
                    float* state0, float* state1, size_t n, void* stream) {
  if (n == 0) return;
  constexpr unsigned kThreads = 256;
  const unsigned blocks = std::min(ceil_div(n, kThreads), 4096u);
  if (cfg.kind == "adam") {
    adam_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(
        params, grads, state0, state1, n, lr_t, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    CP_CUDA_CHECK_LAUNCH("adam_kernel");
  } else {
    sgd_kernel<<<blocks, kThreads, 0, as_stream(stream)>>>(params, grads, state0, n, lr_t,
                                                           cfg.momentum, cfg.nesterov,
                                                           cfg.weight_decay);
    CP_CUDA_CHECK_LAUNCH("sgd_kernel");
  }
}

}  // namespace convpool::cuda
