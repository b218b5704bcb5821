// Vector helpers of the specialised CPU pooling paths (pool_fast.cpp, pool_fast_global.cpp):
// GCC/Clang vector extensions, branch-free selects, a vectorisable exp. Internal header.
#pragma once
#include <cmath>
#include <cstring>

namespace convpool::cpu::simd {

// Four windows (or planes) at a time in GCC vector types. Written with explicit vectors: GCC's
// auto-vectoriser gives up on the selects of the pooling networks. On the baseline x86-64
// target a vector is one SSE register.
constexpr int kLanes = 4;
typedef float vf __attribute__((vector_size(4 * kLanes)));
typedef int vi __attribute__((vector_size(4 * kLanes)));

inline vf splat(float a) { return vf{} + a; }
inline vf sel(vi m, vf a, vf b) { return m ? a : b; }
inline vi isnan(vf a) { return a != a; }
inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }

// exp(x) for x <= 0 (or NaN): Cephes' expf polynomial with round-to-nearest range reduction,
// about 1 ulp. exp(-inf) = 0; below -87 it flushes to 0.
inline vf exp_nonpositive(vf x) {
  const vi tiny = x < -87.f, nan = isnan(x);
  vf xc = sel(tiny | nan, splat(0.f), x);
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const vf nf = (xc * 1.44269504088896341f + magic) - magic;
  const vf r = (xc - nf * 0.693359375f) - nf * -2.12194440e-4f;
  vf q = splat(1.9875691500e-4f);
  q = q * r + 1.3981999507e-3f;
  q = q * r + 8.3334519073e-3f;
  q = q * r + 4.1665795894e-2f;
  q = q * r + 1.6666665459e-1f;
  q = q * r + 5.0000001201e-1f;
  q = q * r * r + r + 1.f;
  const vi e = (__builtin_convertvector(nf, vi) + 127) << 23;
  const vf res = q * (vf)e;
  return sel(tiny, splat(0.f), sel(nan, x, res));
}

static_assert(kLanes == 4, "per_lane and load_windows build 4-lane vectors");
template <class F>
inline vf per_lane(vf a, F f) {  // scalar math (pow, sqrt) lane by lane
  return vf{f(a[0]), f(a[1]), f(a[2]), f(a[3])};
}

// Lp norms with their own arithmetic: p = 1 and 2, and p = 3 (products and one cube root per
// window instead of a pow per element); every other p takes pow.
enum class LpKind { one, two, three, general };

// q^p, s^(1/p) and r^(p-1) for an Lp kind (q, r in [0, 1]; pm1 = p - 1).
template <LpKind L>
inline vf lp_power(vf q, float p) {
  if constexpr (L == LpKind::one) return q;
  else if constexpr (L == LpKind::two) return q * q;
  else if constexpr (L == LpKind::three) return q * q * q;
  else return per_lane(q, [p](float a) { return powf(a, p); });
}
template <LpKind L>
inline vf lp_root(vf s, float p) {
  if constexpr (L == LpKind::one) return s;
  else if constexpr (L == LpKind::two) return per_lane(s, [](float a) { return std::sqrt(a); });
  else if constexpr (L == LpKind::three) return per_lane(s, [](float a) { return std::cbrt(a); });
  else return per_lane(s, [p](float a) { return powf(a, 1.f / p); });
}
template <LpKind L>
inline vf lp_grad_power(vf r, float pm1) {
  if constexpr (L == LpKind::one) return splat(1.f);
  else if constexpr (L == LpKind::two) return r;
  else if constexpr (L == LpKind::three) return r * r;
  else return per_lane(r, [pm1](float a) { return powf(a, pm1); });
}

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

}  // namespace convpool::cpu::simd
