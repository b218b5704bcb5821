// BatchNorm over NCHW (launchers in batchnorm.cuh, CPU twins in src/cpu/batchnorm.cpp, the
// per-element math in batchnorm_math.cuh). Training forward and backward: one block per channel,
// whose statistics are reduced in double in a fixed order (thread t takes elements t, t + 256,
// ... in turn, then cub's block reduction adds the 256 partial sums), so the results are the
// same bits under every thread schedule. Forward takes two passes over the channel as the
// CPU's channel_moments does: the mean, then the centred sum of squares.
#include <cub/block/block_reduce.cuh>

#include "cuda/check.h"
#include "batchnorm.cuh"
#include "batchnorm_math.cuh"

namespace convpool::cuda {

namespace {
constexpr int kThreads = 256;

// Element k (0 <= k < n * plane) of channel ch: image k / plane, position k % plane.
__device__ __forceinline__ size_t channel_index(size_t k, int c, int plane, int ch) {
  return ((k / plane) * c + ch) * plane + k % plane;
}

__global__ void __launch_bounds__(kThreads)
    batchnorm_train_kernel(int n, int c, int plane, const float* __restrict__ x,
                           const float* __restrict__ gamma, const float* __restrict__ beta,
                           float eps, float momentum, float* __restrict__ y,
                           float* __restrict__ save_mean, float* __restrict__ save_invstd,
                           float* __restrict__ running_mean, float* __restrict__ running_var) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ double mean_shared;
  __shared__ float stats[2];  // float(mean), invstd
  const int ch = blockIdx.x;
  const size_t m = size_t(n) * plane;
  double s = 0;
  for (size_t k = threadIdx.x; k < m; k += kThreads) s += x[channel_index(k, c, plane, ch)];
  const double sum = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) mean_shared = sum / double(m);
  __syncthreads();  // the mean to every thread; tmp is free again for the second reduction
  const double mean = mean_shared;
  double q = 0;
  for (size_t k = threadIdx.x; k < m; k += kThreads) {
    const double d = x[channel_index(k, c, plane, ch)] - mean;
    q += d * d;
  }
  const double sq = Reduce(tmp).Sum(q);
  if (threadIdx.x == 0) {
    const double var = sq / double(m);
    const float invstd = float(1.0 / sqrt(var + eps));
    save_mean[ch] = float(mean);
    save_invstd[ch] = invstd;
    ::convpool::batchnorm_update_running(running_mean[ch], running_var[ch], mean, var, m, momentum);
    stats[0] = float(mean);
    stats[1] = invstd;
  }
  __syncthreads();  // the statistics to every thread
  const float mf = stats[0], invstd = stats[1], g = gamma[ch], b = beta[ch];
  for (size_t k = threadIdx.x; k < m; k += kThreads) {
    const size_t i = channel_index(k, c, plane, ch);
    y[i] = ::convpool::batchnorm_apply(x[i], mf, invstd, g, b);
  }
}

__global__ void batchnorm_eval_kernel(int c, int plane, const float* __restrict__ x,
                                      const float* __restrict__ gamma,
                                      const float* __restrict__ beta,
                                      const float* __restrict__ running_mean,
                                      const float* __restrict__ running_var, float eps,
                                      float* __restrict__ y, size_t total) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total;
       i += size_t(gridDim.x) * blockDim.x) {
    const int ch = int((i / plane) % c);
    const float invstd = 1.f / sqrtf(running_var[ch] + eps);
    y[i] = ::convpool::batchnorm_apply(x[i], running_mean[ch], invstd, gamma[ch], beta[ch]);
  }
}

__global__ void __launch_bounds__(kThreads)
    batchnorm_backward_kernel(int n, int c, int plane, const float* __restrict__ x,
                              const float* __restrict__ dy, const float* __restrict__ gamma,
                              const float* __restrict__ save_mean,
                              const float* __restrict__ save_invstd, float* __restrict__ dx,
                              bool accumulate, float* __restrict__ dgamma,
                              float* __restrict__ dbeta) {
  using Reduce = cub::BlockReduce<double, kThreads>;
  // One storage per sum: the second reduction needs no barrier after the first.
  __shared__ typename Reduce::TempStorage tmp_dy;
  __shared__ typename Reduce::TempStorage tmp_dy_xhat;
  __shared__ float means[2];  // mean(dy), mean(dy * xhat)
  const int ch = blockIdx.x;
  const size_t m = size_t(n) * plane;
  const float mean = save_mean[ch], invstd = save_invstd[ch];
  double s = 0, t = 0;
  for (size_t k = threadIdx.x; k < m; k += kThreads) {
    const size_t i = channel_index(k, c, plane, ch);
    s += dy[i];
    t += double(dy[i]) * ((x[i] - mean) * invstd);
  }
  const double sum_dy = Reduce(tmp_dy).Sum(s);
  const double sum_dy_xhat = Reduce(tmp_dy_xhat).Sum(t);
  if (threadIdx.x == 0) {
    dgamma[ch] = float(sum_dy_xhat);
    dbeta[ch] = float(sum_dy);
    means[0] = float(sum_dy / double(m));
    means[1] = float(sum_dy_xhat / double(m));
  }
  if (!dx) return;  // the same for the whole block
  __syncthreads();  // the sums to every thread
  const float mean_dy = means[0], mean_dy_xhat = means[1], g = gamma[ch];
  for (size_t k = threadIdx.x; k < m; k += kThreads) {
    const size_t i = channel_index(k, c, plane, ch);
    const float v =
        ::convpool::batchnorm_input_grad(x[i], dy[i], mean, invstd, g, mean_dy, mean_dy_xhat);
    dx[i] = accumulate ? __fadd_rn(dx[i], v) : v;
  }
}
}  // namespace

void batchnorm_forward_train(int n, int c, int plane, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, void* stream) {
  if (c <= 0) return;
  batchnorm_train_kernel<<<c, kThreads, 0, as_stream(stream)>>>(n, c, plane, x, gamma, beta, eps,
                                                                momentum, y, save_mean, save_invstd,
                                                                running_mean, running_var);
  CP_CUDA_CHECK_LAUNCH("batchnorm_train_kernel");
}

void batchnorm_forward_eval(int n, int c, int plane, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, void* stream) {
  const size_t total = size_t(n) * c * plane;
  if (!total) return;
  batchnorm_eval_kernel<<<std::min(ceil_div(total, kThreads), 8192u), kThreads, 0,
                          as_stream(stream)>>>(c, plane, x, gamma, beta, running_mean, running_var,
                                               eps, y, total);
  CP_CUDA_CHECK_LAUNCH("batchnorm_eval_kernel");
}

void batchnorm_backward(int n, int c, int plane, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, bool accumulate, float* dgamma, float* dbeta, void* stream) {
  if (c <= 0) return;
  batchnorm_backward_kernel<<<c, kThreads, 0, as_stream(stream)>>>(
      n, c, plane, x, dy, gamma, save_mean, save_invstd, dx, accumulate, dgamma, dbeta);
  CP_CUDA_CHECK_LAUNCH("batchnorm_backward_kernel");
}

}  // namespace convpool::cuda
