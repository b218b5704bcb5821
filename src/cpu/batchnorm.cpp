#include "batchnorm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "convpool/distributed.h"

#include "kernels/activation_math.cuh"
#include "kernels/batchnorm_math.cuh"

namespace convpool::cpu {

namespace {

// Sum over channel ch of f(element) in double, in a fixed order: element j of a plane goes to
// lane j % kLanes, and the lanes are added in order at the end. Independent lanes keep the adds
// from waiting on one another (a single accumulator is bound by the latency of each add).
constexpr int kLanes = 8;

template <class F>
double channel_sum(int n, int c, int plane, int ch, F f) {
  double lanes[kLanes] = {};
  for (int i = 0; i < n; ++i) {
    const size_t off = (size_t(i) * c + ch) * plane;
    int j = 0;
    for (; j + kLanes <= plane; j += kLanes)
      for (int l = 0; l < kLanes; ++l) lanes[l] += f(off + size_t(j + l));
    for (; j < plane; ++j) lanes[j % kLanes] += f(off + size_t(j));
  }
  double s = 0;
  for (double v : lanes) s += v;
  return s;
}

}  // namespace

// Channel statistics in double, two passes (mean, then the centred sum of squares): the
// one-pass formula loses the variance of channels whose mean is large against their spread.
// With `sync`, each pass's sums (and the element count) are summed over the ranks between
// the passes, so every rank normalises with the statistics of the whole global batch.
void batchnorm_forward_train(int n, int c, int plane, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, bool relu, const Communicator* sync) {
  // The calling thread's buffers, whose capacity stays: a steady-state step allocates nothing.
  // (Named through references: inside the parallel loops a thread_local would be each OpenMP
  // worker's own, empty, copy.)
  thread_local std::vector<double> tls_sums, tls_mean;
  std::vector<double>& sums = tls_sums;
  std::vector<double>& mean = tls_mean;
  sums.assign(size_t(c) + 1, 0.0);
  mean.assign(size_t(c), 0.0);
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch)
    sums[size_t(ch)] = channel_sum(n, c, plane, ch, [&](size_t e) { return double(x[e]); });
  sums[size_t(c)] = double(n) * plane;
  if (sync) sync->allreduce_sum(sums.data(), sums.size());
  const double m = sums[size_t(c)];
  for (int ch = 0; ch < c; ++ch) mean[size_t(ch)] = sums[size_t(ch)] / m;
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double mu = mean[size_t(ch)];
    sums[size_t(ch)] = channel_sum(n, c, plane, ch, [&](size_t e) { return (x[e] - mu) * (x[e] - mu); });
  }
  if (sync) sync->allreduce_sum(sums.data(), size_t(c));
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double var = sums[size_t(ch)] / m;
    const float invstd = float(1.0 / std::sqrt(var + eps));
    save_mean[ch] = float(mean[size_t(ch)]);
    save_invstd[ch] = invstd;
    batchnorm_update_running(running_mean[ch], running_var[ch], mean[size_t(ch)], var,
                             size_t(m), momentum);
    const float mf = float(mean[size_t(ch)]), g = gamma[ch], b = beta[ch];
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      if (relu) {
        for (int j = 0; j < plane; ++j)
          y[off + j] = relu_forward(batchnorm_apply(x[off + j], mf, invstd, g, b));
      } else {
        for (int j = 0; j < plane; ++j) y[off + j] = batchnorm_apply(x[off + j], mf, invstd, g, b);
      }
    }
  }
}

void batchnorm_forward_eval(int n, int c, int plane, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, bool relu) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int i = 0; i < n; ++i)
    for (int ch = 0; ch < c; ++ch) {
      const float invstd = 1.f / std::sqrt(running_var[ch] + eps);
      const size_t off = (size_t(i) * c + ch) * plane;
      for (int j = 0; j < plane; ++j) {
        const float v = batchnorm_apply(x[off + j], running_mean[ch], invstd, gamma[ch], beta[ch]);
        y[off + j] = relu ? relu_forward(v) : v;
      }
    }
}

void batchnorm_backward(int n, int c, int plane, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd,
                        float* dx, bool accumulate, float* dgamma, float* dbeta,
                        const float* relu_y, const Communicator* sync) {
  // The gradient reaching the normalisation: dy, or with a fused ReLU dy where y > 0.
  const auto grad = [&](size_t i) { return relu_y ? relu_backward(relu_y[i], dy[i]) : dy[i]; };
  // Per channel: sum(dy), sum(dy * xhat); then the element count.
  thread_local std::vector<double> tls_sums;  // the calling thread's; capacity stays
  std::vector<double>& sums = tls_sums;
  sums.assign(2 * size_t(c) + 1, 0.0);
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    // One pass, both sums, in channel_sum's lanes and order.
    double lanes_dy[kLanes] = {}, lanes_dy_xhat[kLanes] = {};
    const auto add = [&](size_t e, int l) {
      const double g = grad(e);
      lanes_dy[l] += g;
      lanes_dy_xhat[l] += g * ((x[e] - mean) * invstd);
    };
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      int j = 0;
      for (; j + kLanes <= plane; j += kLanes)
        for (int l = 0; l < kLanes; ++l) add(off + size_t(j + l), l);
      for (; j < plane; ++j) add(off + size_t(j), j % kLanes);
    }
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int l = 0; l < kLanes; ++l) sum_dy += lanes_dy[l], sum_dy_xhat += lanes_dy_xhat[l];
    sums[2 * size_t(ch)] = sum_dy;
    sums[2 * size_t(ch) + 1] = sum_dy_xhat;
  }
  sums[2 * size_t(c)] = double(n) * plane;
  if (sync) sync->allreduce_sum(sums.data(), sums.size());
  const double m = sums[2 * size_t(c)];
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const double sum_dy = sums[2 * size_t(ch)], sum_dy_xhat = sums[2 * size_t(ch) + 1];
    // Each rank holds the whole global sums: the parameter gradients are divided by the world
    // size when the gradients are summed over the ranks, so they are that share here.
    const double share = sync ? double(sync->size()) : 1.0;
    dgamma[ch] = float(sum_dy_xhat / share);
    dbeta[ch] = float(sum_dy / share);
    if (!dx) continue;
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    const float mean_dy = float(sum_dy / m), mean_dy_xhat = float(sum_dy_xhat / m);
    const float gm = gamma[ch];
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      const float* xs = x + off;
      float* d = dx + off;
      // One loop per case, so that each vectorises (no branch per element).
      const auto each = [&](auto&& g) {
        if (accumulate) {
#pragma omp simd
          for (int j = 0; j < plane; ++j)
            d[j] += batchnorm_input_grad(xs[j], g(j), mean, invstd, gm, mean_dy, mean_dy_xhat);
        } else {
#pragma omp simd
          for (int j = 0; j < plane; ++j)
            d[j] = batchnorm_input_grad(xs[j], g(j), mean, invstd, gm, mean_dy, mean_dy_xhat);
        }
      };
      if (relu_y) {
        each([&](int j) { return relu_backward(relu_y[off + j], dy[off + j]); });
      } else {
        each([&](int j) { return dy[off + j]; });
      }
    }
  }
}

}  // namespace convpool::cpu
