// CPU kernels of the network ops beyond conv, dense and pooling: batchnorm, gelu, leaky_relu,
// dropout, add, concat and scale. The per-element math is kernels/nn_math.cuh, shared with the
// CUDA launchers of the same names (src/cuda/ops_nn.h), which are tested against these.
//
// Backward functions with `accumulate` add to dx instead of overwriting it: the graph asks for
// that when a tensor feeds several nodes and another node's gradient is already there.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool {
class Communicator;
}

namespace convpool::cpu {

// Training mode: normalise each of the c channels of x (n x c x plane) with its batch mean and
// biased variance; keep mean and 1/sqrt(var + eps) (c floats each) for backward; update the
// running statistics (kernels/nn_math.cuh says how). `relu`: y = max(bn(x), 0), a ReLU fused
// in (the CPU only: the CUDA twins take no such flag).
void batchnorm_forward_train(int n, int c, int plane, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, bool relu = false,
                             const Communicator* sync = nullptr);
// Evaluation mode: the running statistics.
void batchnorm_forward_eval(int n, int c, int plane, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, bool relu = false);
// Training-mode backward. dgamma and dbeta are overwritten; dx (null: not wanted) is
// overwritten or accumulated. `relu_y`: the output of a forward with a ReLU fused in; dy then
// counts only where it is above 0. `sync` (--sync-bn): the statistics and the sums here are
// those of the whole global batch, summed over the ranks.
void batchnorm_backward(int n, int c, int plane, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, bool accumulate, float* dgamma, float* dbeta,
                        const float* relu_y = nullptr, const Communicator* sync = nullptr);

// dst = scale * src, or dst += scale * src with accumulate.
void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate);
// y = a + b
void add_forward(const float* a, const float* b, float* y, size_t n);

void gelu_forward(const float* x, float* y, size_t n);
void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate);
void leaky_relu_forward(const float* x, float* y, size_t n, float slope);
void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate);
// Element i of the batch is kept by the draw (seed, layer, step, first_element + i) of
// nn_math.cuh; first_element is the global index of element 0 (data-parallel slices).
void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     uint64_t step, uint64_t first_element = 0);
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, uint64_t step, bool accumulate, uint64_t first_element = 0);

// One input of a channel concatenation: x (n x c x plane) is channels [c_offset, c_offset + c)
// of y (n x c_total x plane); backward takes that slice of dy.
void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y);
void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate);

}  // namespace convpool::cpu
