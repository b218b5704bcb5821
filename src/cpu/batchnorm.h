// CPU kernels of BatchNorm. The per-element math is kernels/batchnorm_math.cuh, shared with the
// CUDA launchers of the same names (kernels/batchnorm.cuh), which are tested against these.
// A backward with `accumulate` adds to dx instead of overwriting it: the graph asks for that
// when a tensor feeds several nodes and another node's gradient is already there.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool {
class Communicator;
}

namespace convpool::cpu {

// Training mode: normalise each of the c channels of x (n x c x plane) with its batch mean and
// biased variance; keep mean and 1/sqrt(var + eps) (c floats each) for backward; update the
// running statistics (kernels/batchnorm_math.cuh says how). `relu`: y = max(bn(x), 0), a ReLU fused
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

}  // namespace convpool::cpu
