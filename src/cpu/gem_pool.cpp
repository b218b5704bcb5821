// GeM pooling on the CPU: blocks of planes in parallel. Within a block, each plane's largest
// element (one value in any order), the logarithms and powers of every element, and each
// plane's output, factor and parameter term are computed in vectors (AVX2 clones where the
// processor has them: the same operations lane by lane, no FMA); each plane's sums are taken
// one element at a time in element order. So every output, input gradient and
// parameter-gradient sum is gem_pool_math.cuh's result: the CUDA kernels' bits where the
// arithmetic is the host's (the emulated target). Planes larger than a block are taken in
// runs of it.
#include "gem_pool.h"

#include <algorithm>

#include "avx2_clones.h"

namespace convpool::cpu {

namespace {

constexpr int kBlock = 1024;  // elements whose logarithms and powers are kept at once

// Planes taken at once: as many whole planes as a block holds, else one, in runs.
int planes_per_block(int hw) { return hw <= kBlock ? std::max(1, kBlock / hw) : 1; }

// ln z of `planes` runs of len elements.
CONVPOOL_AVX2_CLONES void logs(const float* x, int count, float eps, float* lz) {
#pragma omp simd
  for (int i = 0; i < count; ++i) lz[i] = gem_log(x[i], eps);
}

// r^p of `planes` runs of len elements, run j at exponent p[j] and ln zmax lmax[j].
CONVPOOL_AVX2_CLONES void powers(const float* lz, int planes, int len, const float* p,
                                 const float* lmax, float* pw) {
  for (int j = 0; j < planes; ++j) {
    const float pj = p[j], lj = lmax[j];
    const float* l = lz + size_t(j) * len;
    float* w = pw + size_t(j) * len;
#pragma omp simd
    for (int i = 0; i < len; ++i) w[i] = gem_power(l[i], lj, pj);
  }
}

CONVPOOL_AVX2_CLONES void input_grads(const float* x, const float* lz, int planes, int len,
                                      const float* p, const float* lmax, float eps,
                                      const float* factor, float* dx) {
  for (int j = 0; j < planes; ++j) {
    const float pj = p[j], lj = lmax[j], fj = factor[j];
    const float *xj = x + size_t(j) * len, *l = lz + size_t(j) * len;
    float* d = dx + size_t(j) * len;
#pragma omp simd
    for (int i = 0; i < len; ++i) d[i] = gem_input_grad(xj[i], l[i], lj, eps, pj, fj);
  }
}

// Each plane's gem_max: the largest clamped element, in vectors (the largest of a set of
// floats above 0 is one value whatever the order), NaN where the plane holds one.
CONVPOOL_AVX2_CLONES void plane_maxima(const float* x, int planes, int len, float eps,
                                       float* zmax) {
  for (int j = 0; j < planes; ++j) {
    const float* xj = x + size_t(j) * len;
    float m = eps;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int i = 0; i < len; ++i) {
      const float z = gem_clamp(xj[i], eps);
      m = z > m ? z : m;
      nan |= z != z;
    }
    zmax[j] = nan ? cp_bits_float(0x7fc00000u) : m;
  }
}

CONVPOOL_AVX2_CLONES void plane_logs(const float* zmax, int planes, float* lmax) {
#pragma omp simd
  for (int j = 0; j < planes; ++j) lmax[j] = cp_log(zmax[j]);
}

CONVPOOL_AVX2_CLONES void outputs(const float* zmax, const float* mean_power, const float* p,
                                  int planes, float* y) {
#pragma omp simd
  for (int j = 0; j < planes; ++j) y[j] = gem_output(zmax[j], mean_power[j], p[j]);
}

// Each plane's parameter term and input-gradient factor.
CONVPOOL_AVX2_CLONES void plane_grads(const float* theta, const float* p, const float* power_log,
                                      int hw, const float* y, const float* mean_power,
                                      const float* dy, int planes, float* term, float* factor) {
#pragma omp simd
  for (int j = 0; j < planes; ++j) {
    term[j] = gem_parameter_grad(theta[j], p[j], power_log[j], hw, y[j], mean_power[j], dy[j]);
    factor[j] = gem_input_factor(dy[j], mean_power[j], p[j], hw);
  }
}

// One block's planes: their exponents, largest z and its log, and the sums of r^p (and of
// r^p ln r when power_log is given), with the logarithms and powers of the last run in lz, pw.
struct Sums {
  float theta[kBlock], p[kBlock], zmax[kBlock], lmax[kBlock], sum[kBlock], power_log[kBlock];
  float lz[kBlock], pw[kBlock];
  void take(const float* params, bool shared, int c, long q0, int count, const float* xb, int hw,
            float eps, bool with_log) {
    for (int j = 0; j < count; ++j) {
      theta[j] = params[shared ? 0 : (q0 + j) % c];
      p[j] = gem_exponent(theta[j]);
      sum[j] = power_log[j] = 0.f;
    }
    plane_maxima(xb, count, hw, eps, zmax);
    plane_logs(zmax, count, lmax);
    const bool whole = hw <= kBlock;
    for (int at = 0; at < hw; at += kBlock) {
      const int len = whole ? hw : std::min(kBlock, hw - at), planes = whole ? count : 1;
      logs(xb + at, planes * len, eps, lz);
      powers(lz, planes, len, p, lmax, pw);
      for (int j = 0; j < planes; ++j) {
        const float *w = pw + size_t(j) * len, *l = lz + size_t(j) * len;
        float s = sum[j];
        for (int i = 0; i < len; ++i) s += w[i];
        sum[j] = s;
        if (!with_log) continue;
        float t = power_log[j];
        for (int i = 0; i < len; ++i) t += w[i] * (l[i] - lmax[j]);
        power_log[j] = t;
      }
      if (whole) break;
    }
    for (int j = 0; j < count; ++j) sum[j] /= float(hw);
  }
};

}  // namespace

void gem_pool_forward(const float* theta, bool shared, float eps, const float* x, float* y, int n,
                      int c, int hw) {
  const long planes = long(n) * c;
  const int per = planes_per_block(hw);
  const long blocks = (planes + per - 1) / per;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long b = 0; b < blocks; ++b) {
    const long q0 = b * per;
    const int count = int(std::min<long>(per, planes - q0));
    Sums s;
    s.take(theta, shared, c, q0, count, x + size_t(q0) * hw, hw, eps, false);
    outputs(s.zmax, s.sum, s.p, count, y + q0);
  }
}

void gem_pool_backward(const float* theta, bool shared, float eps, const float* x, const float* y,
                       const float* dy, float* dx, float* dtheta, int n, int c, int hw,
                       float* scratch) {
  const long planes = long(n) * c;
  float *term = scratch + 2 * planes, *per_channel = scratch + 3 * planes;
  const int per = planes_per_block(hw);
  const long blocks = (planes + per - 1) / per;
#pragma omp parallel for schedule(static) if (planes * hw > 16384)
  for (long b = 0; b < blocks; ++b) {
    const long q0 = b * per;
    const int count = int(std::min<long>(per, planes - q0));
    const float* xb = x + size_t(q0) * hw;
    Sums s;
    s.take(theta, shared, c, q0, count, xb, hw, eps, true);
    float factor[kBlock];
    plane_grads(s.theta, s.p, s.power_log, hw, y + q0, s.sum, dy + q0, count, term + q0, factor);
    if (!dx) continue;
    float* db = dx + size_t(q0) * hw;
    if (hw <= kBlock) {  // lz holds the block's logarithms
      input_grads(xb, s.lz, count, hw, s.p, s.lmax, eps, factor, db);
      continue;
    }
    for (int at = 0; at < hw; at += kBlock) {
      const int len = std::min(kBlock, hw - at);
      logs(xb + at, len, eps, s.lz);
      input_grads(xb + at, s.lz, 1, len, s.p, s.lmax, eps, factor, db + at);
    }
  }
  float* sums = shared ? per_channel : dtheta;
  for (int ch = 0; ch < c; ++ch) {
    float t = 0.f;
    for (int i = 0; i < n; ++i) t += term[size_t(i) * c + ch];
    sums[ch] = t;
  }
  if (shared) {
    float t = 0.f;
    for (int ch = 0; ch < c; ++ch) t += per_channel[ch];
    dtheta[0] = t;
  }
}

}  // namespace convpool::cpu
