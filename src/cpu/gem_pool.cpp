// GeM pooling on the CPU: blocks of planes in parallel. Within a block, the logarithms and
// powers of every element, and each plane's output, factor and exponent term, are computed in
// vectors (AVX2 clones where the processor has them: the same operations lane by lane, no
// FMA); each plane's sums are then taken one element at a time in element order. So every
// output, input gradient and exponent-gradient sum is gem_pool_math.cuh's result: the CUDA
// kernels' bits where the arithmetic is the host's (the emulated target). Planes larger than
// a block are taken in runs of it.
#include "gem_pool.h"

#include <algorithm>

namespace convpool::cpu {

namespace {

#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CONVPOOL_GEM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CONVPOOL_GEM_CLONES
#endif

constexpr int kBlock = 1024;  // elements whose logarithms and powers are kept at once

// ln z and z^p of `planes` runs of len elements, run j at exponent p[j].
CONVPOOL_GEM_CLONES void log_and_power(const float* x, int planes, int len, const float* p,
                                       float eps, float* lz, float* pw) {
  for (int j = 0; j < planes; ++j) {
    const float pj = p[j];
    const float* xj = x + size_t(j) * len;
    float *lj = lz + size_t(j) * len, *wj = pw + size_t(j) * len;
#pragma omp simd
    for (int i = 0; i < len; ++i) {
      lj[i] = gem_log(xj[i], eps);
      wj[i] = gem_power(lj[i], pj);
    }
  }
}

CONVPOOL_GEM_CLONES void logs(const float* x, int len, float eps, float* lz) {
#pragma omp simd
  for (int i = 0; i < len; ++i) lz[i] = gem_log(x[i], eps);
}

CONVPOOL_GEM_CLONES void input_grads(const float* x, const float* lz, int planes, int len,
                                     const float* p, float eps, const float* factor, float* dx) {
  for (int j = 0; j < planes; ++j) {
    const float pj = p[j], fj = factor[j];
    const float *xj = x + size_t(j) * len, *lj = lz + size_t(j) * len;
    float* dj = dx + size_t(j) * len;
#pragma omp simd
    for (int i = 0; i < len; ++i) dj[i] = gem_input_grad(xj[i], lj[i], eps, pj, fj);
  }
}

CONVPOOL_GEM_CLONES void outputs(const float* mean_power, const float* p, int planes, float* y) {
#pragma omp simd
  for (int j = 0; j < planes; ++j) y[j] = gem_output(mean_power[j], p[j]);
}

// Each plane's exponent term and input-gradient factor.
CONVPOOL_GEM_CLONES void plane_grads(const float* param, const float* power_log, int hw,
                                     const float* y, const float* mean_power, const float* dy,
                                     int planes, float* term, float* factor) {
#pragma omp simd
  for (int j = 0; j < planes; ++j) {
    term[j] = gem_exponent_grad(param[j], power_log[j], hw, y[j], mean_power[j], dy[j]);
    factor[j] = gem_input_factor(dy[j], y[j], mean_power[j], hw);
  }
}

// Sums of pw (and of pw lz) over each of `planes` runs of len, in element order, added to
// sum[j] (and power_log[j]).
void run_sums(const float* pw, const float* lz, int planes, int len, float* sum,
              float* power_log) {
  for (int j = 0; j < planes; ++j) {
    const float *wj = pw + size_t(j) * len, *lj = lz + size_t(j) * len;
    float s = sum[j];
    for (int i = 0; i < len; ++i) s += wj[i];
    sum[j] = s;
    if (!power_log) continue;
    float t = power_log[j];
    for (int i = 0; i < len; ++i) t += wj[i] * lj[i];
    power_log[j] = t;
  }
}

// Planes taken at once: as many whole planes as a block holds, else one, in runs.
int planes_per_block(int hw) { return hw <= kBlock ? std::max(1, kBlock / hw) : 1; }

}  // namespace

void gem_pool_forward(const float* exponent, bool shared, float eps, const float* x, float* y,
                      int n, int c, int hw) {
  const long planes = long(n) * c;
  const int per = planes_per_block(hw);
  const long blocks = (planes + per - 1) / per;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long b = 0; b < blocks; ++b) {
    const long q0 = b * per;
    const int count = int(std::min<long>(per, planes - q0));
    float lz[kBlock], pw[kBlock], p[kBlock], sum[kBlock];
    for (int j = 0; j < count; ++j) {
      p[j] = gem_exponent(exponent[shared ? 0 : (q0 + j) % c]);
      sum[j] = 0.f;
    }
    const float* xb = x + size_t(q0) * hw;
    if (hw <= kBlock) {
      log_and_power(xb, count, hw, p, eps, lz, pw);
      run_sums(pw, lz, count, hw, sum, nullptr);
    } else {
      for (int at = 0; at < hw; at += kBlock) {
        const int len = std::min(kBlock, hw - at);
        log_and_power(xb + at, 1, len, p, eps, lz, pw);
        run_sums(pw, lz, 1, len, sum, nullptr);
      }
    }
    for (int j = 0; j < count; ++j) sum[j] /= float(hw);
    outputs(sum, p, count, y + q0);
  }
}

void gem_pool_backward(const float* exponent, bool shared, float eps, const float* x,
                       const float* y, const float* dy, float* dx, float* dexponent, int n, int c,
                       int hw, float* scratch) {
  const long planes = long(n) * c;
  float *term = scratch + planes, *per_channel = scratch + 2 * planes;
  const int per = planes_per_block(hw);
  const long blocks = (planes + per - 1) / per;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long b = 0; b < blocks; ++b) {
    const long q0 = b * per;
    const int count = int(std::min<long>(per, planes - q0));
    float lz[kBlock], pw[kBlock], param[kBlock], p[kBlock], sum[kBlock], power_log[kBlock],
        factor[kBlock];
    for (int j = 0; j < count; ++j) {
      param[j] = exponent[shared ? 0 : (q0 + j) % c];
      p[j] = gem_exponent(param[j]);
      sum[j] = power_log[j] = 0.f;
    }
    const float* xb = x + size_t(q0) * hw;
    const bool whole = hw <= kBlock;
    if (whole) {
      log_and_power(xb, count, hw, p, eps, lz, pw);
      run_sums(pw, lz, count, hw, sum, power_log);
    } else {
      for (int at = 0; at < hw; at += kBlock) {
        const int len = std::min(kBlock, hw - at);
        log_and_power(xb + at, 1, len, p, eps, lz, pw);
        run_sums(pw, lz, 1, len, sum, power_log);
      }
    }
    for (int j = 0; j < count; ++j) sum[j] /= float(hw);
    plane_grads(param, power_log, hw, y + q0, sum, dy + q0, count, term + q0, factor);
    if (!dx) continue;
    float* db = dx + size_t(q0) * hw;
    if (whole) {
      input_grads(xb, lz, count, hw, p, eps, factor, db);
    } else {
      for (int at = 0; at < hw; at += kBlock) {
        const int len = std::min(kBlock, hw - at);
        logs(xb + at, len, eps, lz);
        input_grads(xb + at, lz, 1, len, p, eps, factor, db + at);
      }
    }
  }
  float* sums = shared ? per_channel : dexponent;
  for (int ch = 0; ch < c; ++ch) {
    float s = 0.f;
    for (int i = 0; i < n; ++i) s += term[size_t(i) * c + ch];
    sums[ch] = s;
  }
  if (shared) {
    float s = 0.f;
    for (int ch = 0; ch < c; ++ch) s += per_channel[ch];
    dexponent[0] = s;
  }
}

}  // namespace convpool::cpu
