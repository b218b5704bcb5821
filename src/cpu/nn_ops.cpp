#include "nn_ops.h"

#include <cmath>
#include <cstring>

#include "../../kernels/elementwise_math.cuh"
#include "../../kernels/nn_math.cuh"

namespace convpool::cpu {

namespace {
// Channel statistics in double, two passes (mean, then the centred sum of squares): the
// one-pass formula loses the variance of channels whose mean is large against their spread.
void channel_moments(int n, int c, int plane, const float* x, int ch, double& mean, double& var) {
  double s = 0;
  for (int i = 0; i < n; ++i) {
    const float* p = x + (size_t(i) * c + ch) * plane;
    for (int j = 0; j < plane; ++j) s += p[j];
  }
  const double m = double(n) * plane;
  mean = s / m;
  double q = 0;
  for (int i = 0; i < n; ++i) {
    const float* p = x + (size_t(i) * c + ch) * plane;
    for (int j = 0; j < plane; ++j) q += (p[j] - mean) * (p[j] - mean);
  }
  var = q / m;
}

inline void store(float* dx, size_t i, float v, bool accumulate) {
  dx[i] = accumulate ? dx[i] + v : v;
}
}  // namespace

void batchnorm_forward_train(int n, int c, int plane, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* y,
                             float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var, bool relu) {
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    double mean, var;
    channel_moments(n, c, plane, x, ch, mean, var);
    const float invstd = float(1.0 / std::sqrt(var + eps));
    save_mean[ch] = float(mean);
    save_invstd[ch] = invstd;
    batchnorm_update_running(running_mean[ch], running_var[ch], mean, var,
                             size_t(n) * plane, momentum);
    const float m = float(mean), g = gamma[ch], b = beta[ch];
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      if (relu) {
        for (int j = 0; j < plane; ++j)
          y[off + j] = relu_forward(batchnorm_apply(x[off + j], m, invstd, g, b));
      } else {
        for (int j = 0; j < plane; ++j) y[off + j] = batchnorm_apply(x[off + j], m, invstd, g, b);
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
                        const float* relu_y) {
  // The gradient reaching the normalisation: dy, or with a fused ReLU dy where y > 0.
  const auto grad = [&](size_t i) { return relu_y ? relu_backward(relu_y[i], dy[i]) : dy[i]; };
#pragma omp parallel for schedule(static)
  for (int ch = 0; ch < c; ++ch) {
    const float mean = save_mean[ch], invstd = save_invstd[ch];
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      for (int j = 0; j < plane; ++j) {
        const float g = grad(off + j);
        sum_dy += g;
        sum_dy_xhat += double(g) * ((x[off + j] - mean) * invstd);
      }
    }
    dgamma[ch] = float(sum_dy_xhat);
    dbeta[ch] = float(sum_dy);
    if (!dx) continue;
    const double m = double(n) * plane;
    const float mean_dy = float(sum_dy / m), mean_dy_xhat = float(sum_dy_xhat / m);
    for (int i = 0; i < n; ++i) {
      const size_t off = (size_t(i) * c + ch) * plane;
      for (int j = 0; j < plane; ++j)
        store(dx, off + j,
              batchnorm_input_grad(x[off + j], grad(off + j), mean, invstd, gamma[ch], mean_dy,
                                   mean_dy_xhat),
              accumulate);
    }
  }
}

void scaled_copy(const float* src, float* dst, size_t n, float scale, bool accumulate) {
  const long len = long(n);
  if (accumulate) {
#pragma omp parallel for simd schedule(static) if (len > 65536)
    for (long i = 0; i < len; ++i) dst[i] += scale * src[i];
  } else {
#pragma omp parallel for simd schedule(static) if (len > 65536)
    for (long i = 0; i < len; ++i) dst[i] = scale * src[i];
  }
}

void add_forward(const float* a, const float* b, float* y, size_t n) {
  const long len = long(n);
#pragma omp parallel for simd schedule(static) if (len > 65536)
  for (long i = 0; i < len; ++i) y[i] = a[i] + b[i];
}

void gelu_forward(const float* x, float* y, size_t n) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i) y[i] = ::convpool::gelu_forward(x[i]);
}
void gelu_backward(const float* x, const float* dy, float* dx, size_t n, bool accumulate) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i) store(dx, size_t(i), ::convpool::gelu_backward(x[i], dy[i]), accumulate);
}

void leaky_relu_forward(const float* x, float* y, size_t n, float slope) {
  const long len = long(n);
#pragma omp parallel for simd schedule(static) if (len > 65536)
  for (long i = 0; i < len; ++i) y[i] = ::convpool::leaky_relu_forward(x[i], slope);
}
void leaky_relu_backward(const float* x, const float* dy, float* dx, size_t n, float slope,
                         bool accumulate) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 65536)
  for (long i = 0; i < len; ++i)
    store(dx, size_t(i), ::convpool::leaky_relu_backward(x[i], dy[i], slope), accumulate);
}

void dropout_forward(const float* x, float* y, size_t n, float p, uint64_t seed, uint32_t layer,
                     uint64_t step) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i) y[i] = x[i] * dropout_factor(seed, layer, step, uint64_t(i), p);
}
void dropout_backward(const float* dy, float* dx, size_t n, float p, uint64_t seed,
                      uint32_t layer, uint64_t step, bool accumulate) {
  const long len = long(n);
#pragma omp parallel for schedule(static) if (len > 16384)
  for (long i = 0; i < len; ++i)
    store(dx, size_t(i), dy[i] * dropout_factor(seed, layer, step, uint64_t(i), p), accumulate);
}

void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y) {
  const size_t slice = size_t(c) * plane;
#pragma omp parallel for schedule(static) if (size_t(n) * slice > 65536)
  for (int i = 0; i < n; ++i)
    std::memcpy(y + (size_t(i) * c_total + c_offset) * plane, x + i * slice, slice * sizeof(float));
}
void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate) {
  const size_t slice = size_t(c) * plane;
#pragma omp parallel for schedule(static) if (size_t(n) * slice > 65536)
  for (int i = 0; i < n; ++i) {
    const float* src = dy + (size_t(i) * c_total + c_offset) * plane;
    float* dst = dx + i * slice;
    for (size_t j = 0; j < slice; ++j) dst[j] = accumulate ? dst[j] + src[j] : src[j];
  }
}

}  // namespace convpool::cpu
