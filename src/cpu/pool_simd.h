// Vector helpers of the specialised CPU pooling paths (pool_fast.cpp, pool_fast_global.cpp):
// GCC/Clang vector extensions, branch-free selects, a vectorisable exp. Internal header.
#pragma once
#include <cmath>
#include <cstring>

#include "kernels/pool_math.cuh"
#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace convpool::cpu::simd {

// Four windows (or planes) at a time in GCC vector types. Written with explicit vectors: GCC's
// auto-vectoriser gives up on the selects of the pooling networks. On the baseline x86-64
// target a vector is one SSE register.
constexpr int kLanes = 4;
typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef int vi __attribute__((vector_size(4 * kLanes)));

// Every lane a (vf{} + a would turn -0 into +0).
inline vf splat(float a) {
  static_assert(kLanes == 4);
  return vf{a, a, a, a};
}
inline vf sel(vi m, vf a, vf b) { return m ? a : b; }
inline vi isnan(vf a) { return a != a; }
inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }
// max(x, 0) with NaN kept, as relu_forward (a fused ReLU before pooling).
inline vf relu_lanes(vf v) { return sel((v > 0.f) | isnan(v), v, splat(0.f)); }

// exp(x) for x <= 0 (or NaN): Cephes' expf polynomial with round-to-nearest range reduction,
// about 1 ulp. exp(-inf) = 0; below -87 it flushes to 0. Written for any width of GCC float
// vector (V), with the same operations lane by lane: a wider instantiation in a function built
// for a wider instruction set gives the same bits. By reference, and always inlined: a wide V
// never crosses a call.
template <class V>
[[gnu::always_inline]] inline void exp_nonpositive_lanes(const V& x, V& out) {
  using VI = decltype(x < x);
  const VI tiny = x < -87.f, nan = x != x;
  const V xc = (tiny | nan) ? V{} : x;
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const V nf = (xc * 1.44269504088896341f + magic) - magic;
  const V r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;
  V q = V{} + 1.9875691500e-4f;
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.f;
  const VI e = (__builtin_convertvector(nf, VI) + 127) << 23;
  const V res = q * (V)e;
  out = tiny ? V{} : (nan ? x : res);
}
inline vf exp_nonpositive(vf x) {
  vf out;
  exp_nonpositive_lanes(x, out);
  return out;
}

static_assert(kLanes == 4, "per_lane and load_windows build 4-lane vectors");
template <class F>
inline vf per_lane(vf a, F f) {  // scalar math (pow, sqrt) lane by lane
  return vf{f(a[0]), f(a[1]), f(a[2]), f(a[3])};
}

// Square root of four lanes: one SSE instruction where there is SSE (the same IEEE result).
inline vf vsqrt(vf a) {
#if defined(__SSE__)
  return (vf)_mm_sqrt_ps((__m128)a);
#else
  return per_lane(a, [](float x) { return std::sqrt(x); });
#endif
}

// Cube root of s >= 1 (an Lp p = 3 window sum: its largest term is 1): an initial guess
// from the exponent bits divided by 3, then three Newton steps, within a few ulp of cbrt.
// Other values are the callers' to replace (all-zero, infinite and NaN windows).
inline vf vcbrt_window(vf s) {
  const vf third = splat(1.f / 3.f);
  const vi bits = __builtin_convertvector(__builtin_convertvector((vi)s, vf) * third, vi);
  vf y = (vf)(bits + 709921077);  // 0x2A51067F: the bias that makes bits / 3 a cube root
  for (int i = 0; i < 3; ++i) y = (y + y + s / (y * y)) * third;
  return y;
}

// Lp norms with their own arithmetic: p = 1 and 2, and p = 3 (products and a vector cube root
// per window instead of a pow per element); every other p takes pow.
enum class LpKind { one, two, three, general };

// q^p, s^(1/p) and r^(p-1) for an Lp kind (q, r in [0, 1]; pm1 = p - 1).
template <LpKind L>
inline vf lp_power(vf q, float p) {
  if constexpr (L == LpKind::one)
    return q;
  else if constexpr (L == LpKind::two)
    return q * q;
  else if constexpr (L == LpKind::three)
    return q * q * q;
  else
    return per_lane(q, [p](float a) { return powf(a, p); });
}
template <LpKind L>
inline vf lp_root(vf s, float p) {
  if constexpr (L == LpKind::one)
    return s;
  else if constexpr (L == LpKind::two)
    return vsqrt(s);
  else if constexpr (L == LpKind::three)
    return vcbrt_window(s);
  else
    return per_lane(s, [p](float a) { return powf(a, 1.f / p); });
}
template <LpKind L>
inline vf lp_grad_power(vf r, float pm1) {
  if constexpr (L == LpKind::one)
    return splat(1.f);
  else if constexpr (L == LpKind::two)
    return r;
  else if constexpr (L == LpKind::three)
    return r * r;
  else
    return per_lane(r, [pm1](float a) { return powf(a, pm1); });
}

// Lp's gradient of element v of a window (or plane) whose output is y: 0 for a zero element
// or output, dy * sign(v) * (|v| / y)^(p-1), and with an infinite output dy * sign(v) for
// the infinite elements, 0 for the rest.
template <LpKind L>
inline vf lp_grad_lanes(vf v, vf y, vf dy, float pm1) {
  const vf a = vabs(v);
  const vf s = sel(v > 0.f, splat(1.f), splat(-1.f));
  vf g = dy * s * lp_grad_power<L>(a / y, pm1);
  g = sel(a > 0.f, g, splat(0.f));
  g = sel(y > kPoolFloatMax, sel(a > kPoolFloatMax, dy * s, splat(0.f)), g);
  return sel(y > 0.f, g, splat(0.f));
}

// Four contiguous floats as a vector (any alignment), and back.
inline vf load4(const float* p) {
  vf r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
inline void store4(float* p, vf v) { std::memcpy(p, &v, sizeof v); }

inline vf load_lanes(const float* p, int cnt) {
  if (cnt == kLanes) {
    vf r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  return vf{p[0], p[cnt > 1 ? 1 : 0], p[cnt > 2 ? 2 : 0], p[cnt > 3 ? 3 : 0]};
}

inline void store_lanes(float* p, vf r, int cnt) {
  if (cnt == kLanes) return std::memcpy(p, &r, sizeof r), void();
  for (int l = 0; l < cnt; ++l) p[l] = r[l];
}

// Four planes of N elements, one per lane: out[i] holds element i of each (lanes past cnt
// repeat plane 0), by contiguous loads and 4x4 shuffles (gathering each vector from four
// planes costs 4 loads and 3 inserts).
inline void transpose_planes(const float* base, size_t stride, int N, int cnt, vf* out) {
  const float* p[kLanes];
  for (int l = 0; l < kLanes; ++l) p[l] = base + (l < cnt ? l : 0) * stride;
  auto load = [](const float* a) {
    vf r;
    std::memcpy(&r, a, sizeof r);
    return r;
  };
  int i = 0;
  for (; i + 4 <= N; i += 4) {
    const vf a = load(p[0] + i), b = load(p[1] + i), c = load(p[2] + i), d = load(p[3] + i);
    const vf ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
    const vf ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
    const vf cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5);
    const vf cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);
    out[i] = __builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5);
    out[i + 1] = __builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7);
    out[i + 2] = __builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5);
    out[i + 3] = __builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7);
  }
  for (; i < N; ++i) out[i] = vf{p[0][i], p[1][i], p[2][i], p[3][i]};
}

// The inverse: lane l of in[i] to element i of plane l, for the first cnt planes.
inline void untranspose_planes(const vf* in, int N, int cnt, float* base, size_t stride) {
  int i = 0;
  if (cnt == kLanes)
    for (; i + 4 <= N; i += 4) {
      const vf a = in[i], b = in[i + 1], c = in[i + 2], d = in[i + 3];
      const vf ab_lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
      const vf ab_hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
      const vf cd_lo = __builtin_shufflevector(c, d, 0, 4, 1, 5);
      const vf cd_hi = __builtin_shufflevector(c, d, 2, 6, 3, 7);
      const vf rows[kLanes] = {__builtin_shufflevector(ab_lo, cd_lo, 0, 1, 4, 5),
                               __builtin_shufflevector(ab_lo, cd_lo, 2, 3, 6, 7),
                               __builtin_shufflevector(ab_hi, cd_hi, 0, 1, 4, 5),
                               __builtin_shufflevector(ab_hi, cd_hi, 2, 3, 6, 7)};
      for (int l = 0; l < kLanes; ++l) std::memcpy(base + l * stride + i, &rows[l], sizeof(vf));
    }
  for (; i < N; ++i)
    for (int l = 0; l < cnt; ++l) base[l * stride + i] = in[i][l];
}

}  // namespace convpool::cpu::simd
