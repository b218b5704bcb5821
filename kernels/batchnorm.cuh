// CUDA launchers of the network ops beyond conv, dense and pooling (batchnorm, gelu,
// leaky_relu, dropout, add, concat, scale). Same arguments and meaning as their CPU twins in
// src/cpu/nn_ops.h, plus a stream; pointers are device memory. Defined in kernels/*.cu and
// tested against the CPU twins in tests/kernel_parity_nn.cpp (on the emulated target in CI).
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

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate,
                 void* stream);
void add_forward(const float* a, const float* b, float* y, size_t n, void* stream);

void gelu_forward(const float* x, float* y, size_t n, void* stream);
void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate,
                   void* stream);
void leaky_relu_forward(const float* x, float* y, size_t n, float slope, void* stream);
void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate, void* stream);
// `step` is a device pointer (read at run time, so a captured graph replays correctly);
// `first_element`: the global index of element 0 (data-parallel ranks train on slices).
void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     const uint64_t* step, void* stream, uint64_t first_element = 0);
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, const uint64_t* step, bool accumulate, void* stream,
                      uint64_t first_element = 0);

void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y,
                    void* stream);
void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate, void* stream);

}  // namespace convpool::cuda
