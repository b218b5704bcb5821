// Global pooling (one window over the whole plane, any plane size):
// four planes at a time, one per vector lane, the window loop at run time in window order, so
// each plane's sums keep the generic path's order. Max, min, avg, mixed, Lp and SoftPool;
// Avg-TopK and T-Max-Avg keep a sorted list of each plane's k top-ranked elements (TopList).
// Max and min over planes of 64 elements or more (and mixed's max part) scan one plane at a
// time instead (plane_select), and avg's and mixed's sums on such planes run sixteen planes
// at a time (planes_sums); the gradients that need no sum in window order (avg's, mixed's on
// such planes, Lp's) are written on each plane as it lies.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "pool_fast.h"
#include "pool_simd.h"

namespace convpool::cpu {

namespace {

using namespace simd;

// A group of up to four planes, one per lane: at(i) is element i of each (lanes past cnt
// repeat plane 0), read from a transposed copy made once per group with contiguous loads and
// 4x4 shuffles (gathering each vector from four planes costs 4 loads and 3 inserts, on every
// pass of a method over the plane). The copy lives in a per-thread buffer that grows to the
// largest plane once.
struct PlaneLanes {
  const PoolGeom& g;
  const float* base;  // first plane of the group
  int N, cnt;         // elements per plane, planes in this group
  const vf* t;
  PlaneLanes(const PoolGeom& g_, const float* base_, int N_, int cnt_)
      : g(g_), base(base_), N(N_), cnt(cnt_) {
    thread_local std::vector<vf> buffer;
    if (buffer.size() < size_t(N)) buffer.resize(N);
    vf* out = buffer.data();
    transpose_planes(base, N, N, cnt, out);
    if (g.relu_in)
      for (int i = 0; i < N; ++i) out[i] = sel((out[i] > 0.f) | isnan(out[i]), out[i], splat(0.f));
    t = out;
  }
  vf at(int i) const { return t[i]; }
};

constexpr bool global_method(PoolMethod m) {
  return m == PoolMethod::max || m == PoolMethod::min || m == PoolMethod::avg ||
         m == PoolMethod::mixed || m == PoolMethod::lp || m == PoolMethod::softpool ||
         m == PoolMethod::avgtopk || m == PoolMethod::tmaxavg;
}

// pool_ranks_before, lane-wise: (a, ia) ranks before (b, ib): NaN first, then larger values,
// then the lower index.
inline vi ranks_before(vf a, vi ia, vf b, vi ib) {
  const vi na = isnan(a), nb = isnan(b);
  const vi tie = (a == b) | (na & nb);
  return (na & ~nb) | (~na & ~nb & (a > b)) | (tie & (ia < ib));
}

inline bool any(vi m) {
#if defined(__SSE__)
  return _mm_movemask_ps((__m128)m) != 0;
#else
  return m[0] | m[1] | m[2] | m[3];
#endif
}

// The kk top-ranked elements of each lane's plane, in rank order, with their plane offsets:
// one pass, each element inserted into a sorted list only if it ranks before the list's last
// (on most data, few do once the list has filled). Empty slots hold (-inf, offset N), behind
// every element.
struct TopList {
  vf value[kPoolMaxTopK];
  vi at[kPoolMaxTopK];
  TopList(const PlaneLanes& w, int kk) {
    for (int r = 0; r < kk; ++r)
      value[r] = splat(-std::numeric_limits<float>::infinity()), at[r] = vi{} + w.N;
    for (int i = 0; i < w.N; ++i) {
      vf cur = w.at(i);
      vi ci = vi{} + i;
      if (!any(ranks_before(cur, ci, value[kk - 1], at[kk - 1]))) continue;
      for (int r = 0; r < kk; ++r) {  // the displaced entry moves down one slot
        const vi before = ranks_before(cur, ci, value[r], at[r]);
        const vf v = value[r];
        const vi a = at[r];
        value[r] = sel(before, cur, v);
        at[r] = before ? ci : a;
        cur = sel(before, v, cur);
        ci = before ? a : ci;
      }
    }
  }
};

// The top-ranked (max) or first minimum value and position over the plane.
template <PoolMethod M>
inline vf global_select(const PlaneLanes& w, vi& at) {
  vf m = w.at(0);
  at = vi{};
  for (int i = 1; i < w.N; ++i) {
    const vf v = w.at(i);
    const vi t =
        M == PoolMethod::min ? ~isnan(m) & (isnan(v) | (v < m)) : (isnan(v) & ~isnan(m)) | (v > m);
    m = sel(t, v, m);
    at = t ? vi{} + i : at;
  }
  return m;
}

// ---- one large plane at a time (max and min) ----
//
// Max and min only compare, so the selection need not come from one sequential scan: a large
// plane is read as it lies, its extreme value found with four independent max (min) chains
// and a NaN flag, then the first position holding it (or the first NaN) found by a second
// scan that stops there, from cache. The transposed copy and one dependent chain over the
// plane, as above, left global max on 32x32 planes at PyTorch's speed.
constexpr int kPlaneScanMin = 64;  // smaller planes: four per vector, as above

template <bool kMin>
float plane_select(const float* p, int N, bool relu, int32_t* at) {
  constexpr int kChains = 4, kBlock = kChains * kLanes;
  auto in = [relu](vf v) { return relu ? relu_lanes(v) : v; };
  vf m[kChains];
  vi nan = vi{};
  for (int c = 0; c < kChains; ++c) m[c] = in(load_lanes(p + c * kLanes, kLanes));
  const int blocks = N / kBlock;
  for (int j = 1; j < blocks; ++j)
    for (int c = 0; c < kChains; ++c) {
      const vf v = in(load_lanes(p + j * kBlock + c * kLanes, kLanes));
      nan |= isnan(v);
      m[c] = kMin ? sel(v < m[c], v, m[c]) : sel(v > m[c], v, m[c]);  // minps / maxps
    }
  for (int c = 0; c < kChains; ++c) nan |= isnan(m[c]);  // the first block's NaNs
  float best = m[0][0];
  bool any_nan = any(nan);
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) best = kMin ? std::min(best, m[c][l]) : std::max(best, m[c][l]);
  const int tail = blocks * kBlock;
  for (int i = tail; i < N; ++i) {
    const float v = in(splat(p[i]))[0];
    any_nan |= v != v;
    best = kMin ? std::min(best, v) : std::max(best, v);
  }
  // The first NaN, else the first element equal to the extreme (either zero matches a zero,
  // and the element's own sign is returned, as the sequential scan's strict comparison keeps
  // the first of equal values).
  const vf target = splat(best);
  for (int i = 0; i + kLanes <= tail; i += kLanes) {
    const vf v = in(load_lanes(p + i, kLanes));
    const vi hit = any_nan ? isnan(v) : v == target;
    if (any(hit))
      for (int l = 0; l < kLanes; ++l)
        if (hit[l]) {
          *at = i + l;
          return v[l];
        }
  }
  for (int i = tail; i < N; ++i) {
    const float v = in(splat(p[i]))[0];
    if (any_nan ? v != v : v == best) {
      *at = i;
      return v;
    }
  }
  *at = 0;  // not reached: the extreme is one of the elements
  return p[0];
}

// The max and its first position over each lane's plane (mixed pooling's max part): the
// plane scan above on large planes.
inline vf planes_top(const float* base, int N, int cnt, bool relu, vi& at) {
  vf m;
  for (int l = 0; l < kLanes; ++l) {
    int32_t a;
    m[l] = plane_select<false>(base + size_t(l < cnt ? l : 0) * N, N, relu, &a);
    at[l] = a;
  }
  return m;
}
inline vf lanes_top(const PlaneLanes& w, vi& at) {
  if (w.N < kPlaneScanMin) return global_select<PoolMethod::max>(w, at);
  return planes_top(w.base, w.N, w.cnt, w.g.relu_in, at);
}

// ---- sums in window order, sixteen planes at a time ----
//
// A plane's sum in window order is a chain of N dependent adds; four planes per vector keep
// one chain in flight, so on large planes the adds' latency, not memory, set the pace. Four
// groups of four planes side by side keep four chains in flight, each plane's sum still in
// window order (the generic path's bits).
constexpr int kSumGroups = 4, kSumPlanes = kSumGroups * kLanes;

// The sums of up to sixteen planes starting at base: sums[q] lane l is plane 4q + l's (lanes
// past cnt repeat their group's first plane; groups past cnt, the set's first plane).
inline void planes_sums(const PoolGeom& g, const float* base, int N, int cnt,
                        vf (&sums)[kSumGroups]) {
  thread_local std::vector<vf> buffer;
  if (buffer.size() < size_t(kSumGroups) * N) buffer.resize(size_t(kSumGroups) * N);
  const vf* t[kSumGroups];
  for (int q = 0; q < kSumGroups; ++q) {
    const int c = std::clamp(cnt - q * kLanes, 1, kLanes);  // empty groups repeat a plane
    const int first = q * kLanes < cnt ? q * kLanes : 0;
    vf* out = buffer.data() + size_t(q) * N;
    transpose_planes(base + size_t(first) * N, N, N, c, out);
    if (g.relu_in)
      for (int i = 0; i < N; ++i) out[i] = relu_lanes(out[i]);
    t[q] = out;
    sums[q] = vf{};
  }
  for (int i = 0; i < N; ++i)
    for (int q = 0; q < kSumGroups; ++q) sums[q] += t[q][i];
}

// SoftPool's shift, fmaxf over the plane as pool_softpool takes it (NaN dropped unless all
// are), in four chains: the same value as one scan but for the sign of a zero maximum (which
// shifts every weight by the same 0) and the payload of an all-NaN plane's NaN.
inline vf softpool_shift(const PlaneLanes& w) {
  auto take = [](vf m, vf v) { return sel((v > m) | isnan(m), v, m); };
  if (w.N < 8) {
    vf m = w.at(0);
    for (int i = 1; i < w.N; ++i) m = take(m, w.at(i));
    return m;
  }
  vf m0 = w.at(0), m1 = w.at(1), m2 = w.at(2), m3 = w.at(3);
  int i = 4;
  for (; i + 4 <= w.N; i += 4) {
    m0 = take(m0, w.at(i));
    m1 = take(m1, w.at(i + 1));
    m2 = take(m2, w.at(i + 2));
    m3 = take(m3, w.at(i + 3));
  }
  for (; i < w.N; ++i) m0 = take(m0, w.at(i));
  return take(take(m0, m1), take(m2, m3));
}

template <PoolMethod M, LpKind L>
inline vf global_forward_lanes(const PoolWindowParams& P, const PlaneLanes& w) {
  const int N = w.N;
  vi at;
  if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    const int kk = std::min(P.k, N);
    const TopList top(w, kk);
    vf s = vf{};
    for (int r = 0; r < kk; ++r) s += top.value[r];  // in rank order
    const vf mean = s / float(kk);
    if constexpr (M == PoolMethod::tmaxavg)
      return sel(top.value[0] >= P.threshold, top.value[0], mean);
    return mean;
  } else if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    return global_select<M>(w, at);
  } else if constexpr (M == PoolMethod::avg || M == PoolMethod::mixed) {
    vf s = vf{};
    for (int i = 0; i < N; ++i) s += w.at(i);
    if constexpr (M == PoolMethod::avg)
      return s / float(N);
    else
      return P.lambda * lanes_top(w, at) + (1.f - P.lambda) * (s / float(N));
  } else if constexpr (M == PoolMethod::softpool) {
    const vf m = softpool_shift(w);
    vf num = vf{}, den = vf{};
    for (int i = 0; i < N; ++i) {
      const vf v = w.at(i), e = exp_nonpositive(v - m);
      num += e * v;
      den += e;
    }
    return sel(m > kPoolFloatMax, m, num / den);
  } else {  // lp
    // The largest |v| in four independent chains (a max: any order gives the same value).
    vi nan = vi{};
    vf m0 = vf{}, m1 = vf{}, m2 = vf{}, m3 = vf{};
    auto take = [&](vf& m, vf v) {
      nan |= isnan(v);
      m = sel(vabs(v) > m, vabs(v), m);
    };
    int i = 0;
    for (; i + 4 <= N; i += 4) {
      take(m0, w.at(i));
      take(m1, w.at(i + 1));
      take(m2, w.at(i + 2));
      take(m3, w.at(i + 3));
    }
    for (; i < N; ++i) take(m0, w.at(i));
    m0 = sel(m1 > m0, m1, m0);
    m2 = sel(m3 > m2, m3, m2);
    const vf m = sel(m2 > m0, m2, m0);
    vf s = vf{};
    if constexpr (L == LpKind::two || L == LpKind::three) {
      // Within float rounding of the generic path already (sqrt, cube root): the sum too
      // runs in four chains.
      vf s1 = vf{}, s2 = vf{}, s3 = vf{};
      int i = 0;
      for (; i + 4 <= N; i += 4) {
        s += lp_power<L>(vabs(w.at(i)) / m, P.p);
        s1 += lp_power<L>(vabs(w.at(i + 1)) / m, P.p);
        s2 += lp_power<L>(vabs(w.at(i + 2)) / m, P.p);
        s3 += lp_power<L>(vabs(w.at(i + 3)) / m, P.p);
      }
      for (; i < N; ++i) s += lp_power<L>(vabs(w.at(i)) / m, P.p);
      s = (s + s1) + (s2 + s3);
    } else {
      for (int i = 0; i < N; ++i) s += lp_power<L>(vabs(w.at(i)) / m, P.p);
    }
    vf out = m * lp_root<L>(s, P.p);
    out = sel(m > kPoolFloatMax, m, out);
    out = sel(m == 0.f, splat(0.f), out);
    return sel(nan, splat(std::numeric_limits<float>::quiet_NaN()), out);
  }
}

template <PoolMethod M, LpKind L>
void global_forward(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, float* y) {
  const int planes = n * g.C, N = g.H * g.W, groups = (planes + kLanes - 1) / kLanes;
  if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    if (N >= kPlaneScanMin) {
#pragma omp parallel for schedule(static)
      for (int pl = 0; pl < planes; ++pl) {
        int32_t at;
        y[pl] = plane_select<M == PoolMethod::min>(x + size_t(pl) * N, N, g.relu_in, &at);
      }
      return;
    }
  }
  if constexpr (M == PoolMethod::avg || M == PoolMethod::mixed) {
    if (N >= kPlaneScanMin) {
      const int sets = (planes + kSumPlanes - 1) / kSumPlanes;
#pragma omp parallel for schedule(static)
      for (int set = 0; set < sets; ++set) {
        const int p0 = set * kSumPlanes, cnt = std::min(kSumPlanes, planes - p0);
        vf sums[kSumGroups];
        planes_sums(g, x + size_t(p0) * N, N, cnt, sums);
        for (int q = 0; q * kLanes < cnt; ++q) {
          const int first = p0 + q * kLanes, c = std::min(kLanes, cnt - q * kLanes);
          const vf mean = sums[q] / float(N);
          vf r = mean;
          if constexpr (M == PoolMethod::mixed) {
            vi at;
            r = P.lambda * planes_top(x + size_t(first) * N, N, c, g.relu_in, at) +
                (1.f - P.lambda) * mean;
          }
          store_lanes(y + first, r, c);
        }
      }
      return;
    }
  }
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    const PlaneLanes w(g, x + size_t(p0) * N, N, cnt);
    store_lanes(y + p0, global_forward_lanes<M, L>(P, w), cnt);
  }
}

template <PoolMethod M, LpKind L>
void global_backward(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x,
                     const float* y, const float* dy, float* dx) {
  const int planes = n * g.C, N = g.H * g.W, groups = (planes + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    float* out = dx + size_t(p0) * N;
    // Gradients that need no sum over the plane in window order are written on each plane as
    // it lies (0 + g, as below), without the transposed copy: avg's, one value per plane;
    // mixed's, one more at the plane's max; Lp's, elementwise given the plane's y.
    auto finish = [&] {
      if (g.relu_in) {
        const float* xp = x + size_t(p0) * N;
        for (size_t i = 0; i < size_t(cnt) * N; ++i) out[i] = pool_input_grad(g, xp[i], out[i]);
      }
    };
    if constexpr (M == PoolMethod::avg || M == PoolMethod::mixed) {
      if (M == PoolMethod::avg || N >= kPlaneScanMin) {
        const vf d = load_lanes(dy + p0, cnt);
        const vf base = M == PoolMethod::avg ? d / float(N) : d * (1.f - P.lambda) / float(N);
        const vf rest = vf{} + base, at_top = vf{} + (base + d * P.lambda);
        for (int l = 0; l < cnt; ++l) {
          float* plane = out + size_t(l) * N;
          std::fill(plane, plane + N, rest[l]);
          if constexpr (M == PoolMethod::mixed) {
            int32_t a;
            plane_select<false>(x + size_t(p0 + l) * N, N, g.relu_in, &a);
            plane[a] = at_top[l];
          }
        }
        finish();
        continue;
      }
    } else if constexpr (M == PoolMethod::lp) {
      const float pm1 = P.p - 1.f;
      for (int l = 0; l < cnt; ++l) {
        const float* xp = x + size_t(p0 + l) * N;
        float* plane = out + size_t(l) * N;
        const vf yv = splat(y[p0 + l]), d = splat(dy[p0 + l]);
        for (int i = 0; i < N; i += kLanes) {
          const int c = std::min(kLanes, N - i);
          const vf v = g.relu_in ? relu_lanes(load_lanes(xp + i, c)) : load_lanes(xp + i, c);
          store_lanes(plane + i, vf{} + lp_grad_lanes<L>(v, yv, d, pm1), c);
        }
      }
      finish();
      continue;
    }
    const PlaneLanes w(g, x + size_t(p0) * N, N, cnt);
    const vf yv = load_lanes(y + p0, cnt), d = load_lanes(dy + p0, cnt);
    // 0 + g, as the generic path adds each gradient to a zeroed dx: a -0 gradient lands as +0.
    // Element i of each plane goes to a transposed buffer, stored back by 4x4 shuffles.
    thread_local std::vector<vf> grads;
    if (grads.size() < size_t(N)) grads.resize(N);
    vf* gb = grads.data();
    auto put = [&](int i, vf gv) { gb[i] = vf{} + gv; };
    if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
      const int kk = std::min(P.k, N);
      const TopList top(w, kk);
      for (size_t i = 0; i < size_t(cnt) * N; ++i) out[i] = 0.f;
      vi only_max = vi{};
      if constexpr (M == PoolMethod::tmaxavg) only_max = top.value[0] >= P.threshold;
      const vf share = sel(only_max, d, d / float(kk));
      for (int r = 0; r < kk; ++r)
        for (int l = 0; l < cnt; ++l)
          if (r == 0 || !only_max[l]) out[size_t(l) * N + top.at[r][l]] = 0.f + share[l];
    } else if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
      vi at;
      global_select<M>(w, at);
      for (int i = 0; i < N; ++i) put(i, sel(at == i, d, splat(0.f)));
    } else if constexpr (M == PoolMethod::mixed) {
      vi at;
      global_select<PoolMethod::max>(w, at);
      const vf base = d * (1.f - P.lambda) / float(N), top = d * P.lambda;
      for (int i = 0; i < N; ++i) put(i, sel(at == i, base + top, base));
    } else if constexpr (M == PoolMethod::softpool) {
      const vf m = softpool_shift(w);
      vi count = vi{};
      vf den = vf{};
      for (int i = 0; i < N; ++i) {  // each exp kept in gb[i] until its gradient replaces it
        const vf v = w.at(i);
        count -= v > kPoolFloatMax;
        gb[i] = exp_nonpositive(v - m);
        den += gb[i];
      }
      const vi inf = m > kPoolFloatMax;
      const vf inf_share = d / __builtin_convertvector(count > 0 ? count : vi{} + 1, vf);
      const vf scale = d / den;
      for (int i = 0; i < N; ++i) {
        const vf v = w.at(i);
        const vf gv = scale * gb[i] * (1.f + v - yv);
        put(i, sel(inf, sel(v > kPoolFloatMax, inf_share, splat(0.f)), gv));
      }
    }  // lp: written above
    if constexpr (M != PoolMethod::avgtopk && M != PoolMethod::tmaxavg)
      untranspose_planes(gb, N, cnt, out, N);
    finish();
  }
}

template <bool kForward>
void dispatch(const PoolGeom& g, const PoolWindowParams& P, int n, const float* x, const float* y,
              const float* dy, float* out) {
  auto go = [&](auto m, auto l) {
    constexpr PoolMethod M = decltype(m)::value;
    constexpr LpKind L = decltype(l)::value;
    if constexpr (kForward)
      global_forward<M, L>(g, P, n, x, out);
    else
      global_backward<M, L>(g, P, n, x, y, dy, out);
  };
  using G = std::integral_constant<LpKind, LpKind::general>;
  switch (P.method) {
    case PoolMethod::max:
      return go(std::integral_constant<PoolMethod, PoolMethod::max>{}, G{});
    case PoolMethod::min:
      return go(std::integral_constant<PoolMethod, PoolMethod::min>{}, G{});
    case PoolMethod::avg:
      return go(std::integral_constant<PoolMethod, PoolMethod::avg>{}, G{});
    case PoolMethod::mixed:
      return go(std::integral_constant<PoolMethod, PoolMethod::mixed>{}, G{});
    case PoolMethod::softpool:
      return go(std::integral_constant<PoolMethod, PoolMethod::softpool>{}, G{});
    case PoolMethod::avgtopk:
      return go(std::integral_constant<PoolMethod, PoolMethod::avgtopk>{}, G{});
    case PoolMethod::tmaxavg:
      return go(std::integral_constant<PoolMethod, PoolMethod::tmaxavg>{}, G{});
    case PoolMethod::lp: {
      using Lp = std::integral_constant<PoolMethod, PoolMethod::lp>;
      if (P.p == 1.f) return go(Lp{}, std::integral_constant<LpKind, LpKind::one>{});
      if (P.p == 2.f) return go(Lp{}, std::integral_constant<LpKind, LpKind::two>{});
      if (P.p == 3.f) return go(Lp{}, std::integral_constant<LpKind, LpKind::three>{});
      return go(Lp{}, G{});
    }
    default:
      return;  // not covered (pool_global_covers)
  }
}

}  // namespace

bool pool_global_covers(const PoolGeom& g, const PoolWindowParams& p) {
  return g.KH == g.H && g.KW == g.W && g.PH == 0 && g.PW == 0 && g.OH == 1 && g.OW == 1 &&
         global_method(p.method);
}

const char* pool_global_path(const PoolGeom& g, const PoolWindowParams& p) {
  const bool selects = p.method == PoolMethod::max || p.method == PoolMethod::min;
  return selects && g.H * g.W >= kPlaneScanMin ? "global, each plane in four chains"
                                               : "global, four planes per vector";
}

void pool_global_select_recording(const PoolGeom& g, const PoolWindowParams& p, int n,
                                  const float* x, float* y, int32_t* argmax) {
  const int planes = n * g.C, N = g.H * g.W, groups = (planes + kLanes - 1) / kLanes;
  const bool min = p.method == PoolMethod::min;
  if (N >= kPlaneScanMin) {
#pragma omp parallel for schedule(static)
    for (int pl = 0; pl < planes; ++pl) {
      const float* xp = x + size_t(pl) * N;
      y[pl] = min ? plane_select<true>(xp, N, g.relu_in, argmax + pl)
                  : plane_select<false>(xp, N, g.relu_in, argmax + pl);
    }
    return;
  }
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    const PlaneLanes w(g, x + size_t(p0) * N, N, cnt);
    vi at;
    const vf m =
        min ? global_select<PoolMethod::min>(w, at) : global_select<PoolMethod::max>(w, at);
    store_lanes(y + p0, m, cnt);
    for (int l = 0; l < cnt; ++l) argmax[p0 + l] = at[l];
  }
}

void pool_global_forward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                         float* y) {
  dispatch<true>(g, p, n, x, nullptr, nullptr, y);
}

void pool_global_backward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                          const float* y, const float* dy, float* dx) {
  dispatch<false>(g, p, n, x, y, dy, dx);
}

}  // namespace convpool::cpu
