// CUDA launchers: BatchNorm over NCHW: training forward (batch statistics, running update), evaluation forward, training backward (kernels/batchnorm.cu).
// Same arguments and meaning as the CPU twin in src/cpu/batchnorm.h, plus a stream; pointers are
// device memory. Tested against the CPU in tests/kernel_parity_batchnorm.cpp (emulated in CI).
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cuda {

void batchnorm_forward_train(int n, int c, int plane, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, void* stream);

void batchnorm_forward_eval(int n, int c, int plane, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, void* stream);

void batchnorm_backward(int n, int c, int plane, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, bool accumulate, float* dgamma, float* dbeta, void* stream);

}  // namespace convpool::cuda
