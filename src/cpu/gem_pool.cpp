// GeM pooling on the CPU: the planes in parallel; within a plane the logarithms and powers of
// a run of elements in vectors (AVX2 clones where the processor has them: the same
// operations lane by lane, no FMA), then summed one by one in element order. Every output,
// input gradient and exponent-gradient sum is gem_pool_math.cuh's result, so the CUDA
// kernels' bits where the arithmetic is the host's (the emulated target).
#include "gem_pool.h"

#include <algorithm>

namespace convpool::cpu {

namespace {

#if defined(__x86_64__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CONVPOOL_GEM_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CONVPOOL_GEM_CLONES
#endif

constexpr int kRun = 256;  // elements whose logarithms and powers are kept at once

// ln z and z^p of len elements.
CONVPOOL_GEM_CLONES void log_and_power(const float* x, int len, float p, float eps, float* lz,
                                       float* pw) {
#pragma omp simd
  for (int i = 0; i < len; ++i) {
    lz[i] = gem_log(x[i], eps);
    pw[i] = gem_power(lz[i], p);
  }
}

CONVPOOL_GEM_CLONES void input_grads(const float* x, const float* lz, int len, float p,
                                     float eps, float factor, float* dx) {
#pragma omp simd
  for (int i = 0; i < len; ++i) dx[i] = gem_input_grad(x[i], lz[i], eps, p, factor);
}

CONVPOOL_GEM_CLONES void logs(const float* x, int len, float eps, float* lz) {
#pragma omp simd
  for (int i = 0; i < len; ++i) lz[i] = gem_log(x[i], eps);
}

}  // namespace

void gem_pool_forward(const float* exponent, bool shared, float eps, const float* x, float* y,
                      int n, int c, int hw) {
  const long planes = long(n) * c;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long q = 0; q < planes; ++q) {
    const float p = gem_exponent(exponent[shared ? 0 : q % c]);
    const float* plane = x + size_t(q) * hw;
    float lz[kRun], pw[kRun], s = 0.f;
    for (int at = 0; at < hw; at += kRun) {
      const int len = std::min(kRun, hw - at);
      log_and_power(plane + at, len, p, eps, lz, pw);
      for (int i = 0; i < len; ++i) s += pw[i];
    }
    y[q] = gem_output(s / float(hw), p);
  }
}

void gem_pool_backward(const float* exponent, bool shared, float eps, const float* x,
                       const float* y, const float* dy, float* dx, float* dexponent, int n, int c,
                       int hw, float* scratch) {
  const long planes = long(n) * c;
  float *term = scratch + planes, *per_channel = scratch + 2 * planes;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long q = 0; q < planes; ++q) {
    const float param = exponent[shared ? 0 : q % c], p = gem_exponent(param);
    const float* plane = x + size_t(q) * hw;
    float lz[kRun], pw[kRun], sum = 0.f, power_log = 0.f;
    for (int at = 0; at < hw; at += kRun) {
      const int len = std::min(kRun, hw - at);
      log_and_power(plane + at, len, p, eps, lz, pw);
      for (int i = 0; i < len; ++i) sum += pw[i];
      for (int i = 0; i < len; ++i) power_log += pw[i] * lz[i];
    }
    const float m = sum / float(hw);
    term[q] = gem_exponent_grad(param, power_log, hw, y[q], m, dy[q]);
    if (!dx) continue;
    const float factor = gem_input_factor(dy[q], y[q], m, hw);
    for (int at = 0; at < hw; at += kRun) {
      const int len = std::min(kRun, hw - at);
      if (hw > kRun) logs(plane + at, len, eps, lz);  // else lz holds the plane's
      input_grads(plane + at, lz, len, p, eps, factor, dx + size_t(q) * hw + at);
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
