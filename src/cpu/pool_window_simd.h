// The per-window math of the CPU's fast pooling paths (pool_fast.cpp), in vectors of four
// windows, the window size N known at compile time: each method's forward and gradient as
// pool_math.cuh's pool_window_forward / pool_window_backward compute them, written
// branch-free. Internal header of pool_fast.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/philox.cuh"
#include "pool.h"
#include "pool_avgtopk_network.h"
#include "pool_simd.h"

namespace convpool::cpu::pool_window {

using namespace simd;

// ---- per-window math, window size N known at compile time ----
//
// kMasked: some of a lane's N positions are not window elements (padding, or the columns and
// rows a smaller or non-square window leaves of the K x K template): ok[i] says which are.
// Every masked position is left out as the generic path leaves it out of its gathered
// window: extremes skip it, sums add -0 (which changes no float), counts and ranks skip it.

template <bool kMasked, int N>
struct Mask {
  const vi* ok;
  vi at(int i) const {
    if constexpr (kMasked)
      return ok[i];
    else
      return vi{} - 1;
  }
  // Lane-wise count of window elements, as floats.
  vf count() const {
    if constexpr (kMasked) {
      vi c = vi{};
      for (int i = 0; i < N; ++i) c -= ok[i];
      return __builtin_convertvector(c, vf);
    } else {
      return splat(float(N));
    }
  }
  vf only(int i, vf x, float other) const {
    if constexpr (kMasked)
      return sel(ok[i], x, splat(other));
    else
      return x;
  }
};

// The selected element of each lane's window and its position: max as pool_argmax ranks (the
// first NaN, else the first maximum), min as pool_argmin (the first NaN, else the first
// minimum). A tree of pairwise tournaments in which the later half wins only if strictly
// better picks what the in-order scan picks, with a dependency chain of log2(N) steps instead
// of N.
struct Pick {
  vf m;
  vi at, have;
};

template <bool kMin, bool kM, int N, int lo, int hi>
inline Pick pick_range(const vf (&v)[N], Mask<kM, N> ok) {
  if constexpr (hi - lo == 1) {
    return {v[lo], vi{} + lo, ok.at(lo)};
  } else {
    constexpr int mid = lo + (hi - lo) / 2;
    const Pick a = pick_range<kMin, kM, N, lo, mid>(v, ok);
    const Pick b = pick_range<kMin, kM, N, mid, hi>(v, ok);
    vi later =
        kMin ? ~isnan(a.m) & (isnan(b.m) | (b.m < a.m)) : (isnan(b.m) & ~isnan(a.m)) | (b.m > a.m);
    if constexpr (kM) later = b.have & (later | ~a.have);
    return {sel(later, b.m, a.m), later ? b.at : a.at, a.have | b.have};
  }
}

template <bool kM, int N>
inline vf top_value(const vf (&v)[N], Mask<kM, N> ok, vi* at = nullptr) {
  const Pick p = pick_range<false, kM, N, 0, N>(v, ok);
  if (at) *at = p.at;
  return p.m;
}

template <bool kM, int N>
inline vf min_value(const vf (&v)[N], Mask<kM, N> ok, vi* at = nullptr) {
  const Pick p = pick_range<true, kM, N, 0, N>(v, ok);
  if (at) *at = p.at;
  return p.m;
}

template <bool kM, int N>
inline vf sum_in_order(const vf (&v)[N], Mask<kM, N> ok) {
  vf s = vf{};
  for (int i = 0; i < N; ++i) s += ok.only(i, v[i], -0.f);
  return s;
}

// fmaxf over the window, as pool_softpool computes it (NaN dropped unless all are NaN).
template <bool kM, int N>
inline vf fmax_all(const vf (&v)[N], Mask<kM, N> ok) {
  vf m = v[0];
  vi have = ok.at(0);
  for (int i = 1; i < N; ++i) {
    vi t = (v[i] > m) | isnan(m);
    if constexpr (kM) {
      t = ok.at(i) & (t | ~have);
      have |= ok.at(i);
    }
    m = sel(t, v[i], m);
  }
  return m;
}

// The window's values sorted descending (NaN first), masked positions as -inf: they sort
// behind every element (an element equal to -inf ties with them in value only, and the
// callers read values, never positions, of the sorted copy).
template <bool kM, int N>
inline void sorted_values(const vf (&v)[N], Mask<kM, N> ok, vf (&w)[N]) {
  for (int i = 0; i < N; ++i) w[i] = ok.only(i, v[i], -std::numeric_limits<float>::infinity());
  sort_descending(w);
}

// What the per-method math needs of a lane's window beyond its values: which positions are
// elements, how many of the largest it averages (k, or fewer in a window with fewer elements)
// and an average's divisor.
template <bool kM, int N>
struct WindowShape {
  Mask<kM, N> ok;
  vi k;         // avgtopk, tmaxavg: min(k, elements)
  vf divisor;   // avg, mixed
  vi count;     // rwp, rsp: the elements
  vf u = vf{};  // stochastic, rsp, training: each window's uniform draw
};

template <bool kM, int N>
inline WindowShape<kM, N> window_shape(const PoolWindowParams& P, int full_size, bool include_pad,
                                       const vi* ok) {
  const Mask<kM, N> m{ok};
  const vf count = m.count();
  const vi elements = __builtin_convertvector(count, vi);
  const vi k = elements < P.k ? elements : vi{} + P.k;
  return {m, k, include_pad ? splat(float(full_size)) : count, elements};
}

// rwp's and rsp's unnormalised rank weights a (1 - a)^r, r = 0..N-1, formed as
// pool_math.cuh forms them (one multiplication a rank).
template <int N>
struct RankWeights {
  float w[N];
  explicit RankWeights(float a) {
    w[0] = a;
    for (int r = 1; r < N; ++r) w[r] = w[r - 1] * (1.f - a);
  }
  // Their sum over each lane's elements, in rank order (pool_rank_weight_sum).
  vf sum(vi count) const {
    vf s = vf{};
    for (int r = 0; r < N; ++r) s += sel(count > r, splat(w[r]), splat(-0.f));
    return s;
  }
};

// pool_rank_draw, lane-wise: the rank rsp draws (0 surely where the window holds a NaN).
template <int N>
inline vi rank_draw(const RankWeights<N>& rw, vi count, vf u, vi has_nan) {
  const vf target = u * rw.sum(count);
  vf c = vf{};
  vi pick = vi{} - 1, last = vi{};
  for (int r = 0; r < N; ++r) {
    const vi in = count > r;
    if (rw.w[r] > 0.f) last = in ? vi{} + r : last;
    c += sel(in, splat(rw.w[r]), splat(-0.f));
    pick = (in & (pick < 0) & (target < c)) ? vi{} + r : pick;
  }
  pick = pick < 0 ? last : pick;
  return has_nan ? vi{} : pick;
}

// Each element's rank (0 = first) in pool_ranks_before's order among the lane's elements.
template <bool kM, int N>
inline void ranks_of(const vf (&v)[N], Mask<kM, N> ok, vi (&rank)[N]) {
  vi nan[N];
  for (int i = 0; i < N; ++i) nan[i] = isnan(v[i]), rank[i] = vi{};
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      if (j == i) continue;
      // j before i: NaN before a number, then the larger, then (a tie) the lower index.
      vi before = (nan[j] & ~nan[i]) | (v[j] > v[i]);
      if (j < i) before |= (v[j] == v[i]) | (nan[j] & nan[i]);
      rank[i] -= ok.at(j) & before;
    }
}

template <bool kM, int N>
inline vi any_nan(const vf (&v)[N], Mask<kM, N> ok) {
  vi nan = vi{};
  for (int i = 0; i < N; ++i) nan |= ok.at(i) & isnan(v[i]);
  return nan;
}

// pool_stochastic_pick, lane-wise: the window position drawn with probability max(v, 0) / sum
// (the first NaN, else the first +inf, with certainty; the first element of an all-zero
// window), scanning in window order as the generic path does.
template <bool kM, int N>
inline vi stochastic_pick(const vf (&v)[N], Mask<kM, N> ok, vf u) {
  vi nan_at = vi{} - 1, inf_at = vi{} - 1, first = vi{} - 1;
  vf s = vf{};
  for (int i = 0; i < N; ++i) {
    const vi here = ok.at(i);
    nan_at = (here & isnan(v[i]) & (nan_at < 0)) ? vi{} + i : nan_at;
    inf_at = (here & (v[i] > kPoolFloatMax) & (inf_at < 0)) ? vi{} + i : inf_at;
    first = (here & (first < 0)) ? vi{} + i : first;
    s += ok.only(i, sel(v[i] > 0.f, v[i], splat(0.f)), 0.f);
  }
  const vf target = u * s;
  vf c = vf{};
  vi pick = vi{} - 1, last_positive = first;
  for (int i = 0; i < N; ++i) {
    const vf w = ok.only(i, sel(v[i] > 0.f, v[i], splat(0.f)), 0.f);
    last_positive = (w > 0.f) ? vi{} + i : last_positive;
    c += w;
    pick = (ok.at(i) & (pick < 0) & (target < c)) ? vi{} + i : pick;
  }
  pick = pick < 0 ? last_positive : pick;  // rounding put the target at the very end
  pick = s > 0.f ? pick : first;
  pick = inf_at >= 0 ? inf_at : pick;
  return nan_at >= 0 ? nan_at : pick;
}

// sum v^2 / sum v over v > 0: evaluation-time stochastic pooling's sums, in window order.
template <bool kM, int N>
inline void stochastic_sums(const vf (&v)[N], Mask<kM, N> ok, vf& s, vf& q) {
  s = vf{}, q = vf{};
  for (int i = 0; i < N; ++i) {
    const vf w = ok.only(i, sel(v[i] > 0.f, v[i], splat(0.f)), 0.f);
    s += w;
    q += w * w;
  }
}

template <PoolMethod M, bool kM, int N, LpKind L>
inline vf window_forward(const PoolWindowParams& P, const WindowShape<kM, N>& ws, vf (&v)[N]) {
  const Mask<kM, N> ok = ws.ok;
  if constexpr (M == PoolMethod::max) {
    return top_value(v, ok);
  } else if constexpr (M == PoolMethod::min) {
    return min_value(v, ok);
  } else if constexpr (M == PoolMethod::stochastic) {
    if (P.training) {
      const vi at = stochastic_pick(v, ok, ws.u);
      vf out = v[0];
      for (int i = 1; i < N; ++i) out = sel(at == i, v[i], out);
      return out;
    }
    vi nan_at = vi{} - 1, inf = vi{};
    for (int i = 0; i < N; ++i) {
      nan_at = (ok.at(i) & isnan(v[i]) & (nan_at < 0)) ? vi{} + i : nan_at;
      inf |= ok.at(i) & (v[i] > kPoolFloatMax);
    }
    vf s, q, nan = v[0];
    stochastic_sums(v, ok, s, q);
    for (int i = 1; i < N; ++i) nan = sel(nan_at == i, v[i], nan);
    vf out = sel(s > 0.f, q / s, splat(0.f));
    out = sel(inf, splat(HUGE_VALF), out);
    return sel(nan_at >= 0, nan, out);
  } else if constexpr (M == PoolMethod::avg) {
    return sum_in_order(v, ok) / ws.divisor;
  } else if constexpr (M == PoolMethod::mixed) {
    return P.lambda * top_value(v, ok) + (1.f - P.lambda) * (sum_in_order(v, ok) / ws.divisor);
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    vf w[N];
    sorted_values(v, ok, w);
    vf s = vf{};
    for (int r = 0; r < N; ++r) s += sel(ws.k > r, w[r], splat(-0.f));  // in rank order
    const vf mean = s / __builtin_convertvector(ws.k, vf);
    if constexpr (M == PoolMethod::tmaxavg) return sel(w[0] >= P.threshold, w[0], mean);
    return mean;
  } else if constexpr (M == PoolMethod::softpool) {
    const vf m = fmax_all(v, ok);
    vf num = vf{}, den = vf{};
    for (int i = 0; i < N; ++i) {
      const vf e = exp_nonpositive(v[i] - m);
      num += ok.only(i, e * v[i], -0.f);
      den += ok.only(i, e, -0.f);
    }
    return sel(m > kPoolFloatMax, m, num / den);
  } else if constexpr (M == PoolMethod::rwp || M == PoolMethod::rsp) {
    const RankWeights<N> rw(P.rank_a);
    if (M == PoolMethod::rsp && P.training) {
      // The drawn element by its rank, not the sorted copy: of -0 and +0 (equal values) the
      // generic path returns the one of the lower window index.
      vi rank[N];
      ranks_of(v, ok, rank);
      const vi at = rank_draw(rw, ws.count, ws.u, any_nan(v, ok));
      vf out = vf{};
      for (int i = 0; i < N; ++i) out = sel(ok.at(i) & (rank[i] == at), v[i], out);
      return out;
    }
    vf w[N];
    sorted_values(v, ok, w);
    vf num = vf{};
    for (int r = 0; r < N; ++r)  // in rank order; a zero weight leaves its element out
      if (rw.w[r] > 0.f) num += sel(ws.count > r, rw.w[r] * w[r], splat(-0.f));
    return num / rw.sum(ws.count);
  } else {  // lp
    vi nan = vi{};
    vf m = vf{};
    for (int i = 0; i < N; ++i) {
      nan |= ok.at(i) & isnan(v[i]);
      const vf a = ok.only(i, vabs(v[i]), 0.f);
      m = sel(a > m, a, m);
    }
    vf s = vf{};
    for (int i = 0; i < N; ++i) s += ok.only(i, lp_power<L>(vabs(v[i]) / m, P.p), -0.f);
    vf out = m * lp_root<L>(s, P.p);
    out = sel(m > kPoolFloatMax, m, out);
    out = sel(m == 0.f, splat(0.f), out);
    return sel(nan, splat(std::numeric_limits<float>::quiet_NaN()), out);
  }
}

// gr[i] = dy * d(forward)/d(v_i), as pool_window_backward_ranked computes it (masked
// positions receive values no caller reads).
template <PoolMethod M, bool kM, int N, LpKind L>
inline void window_backward(const PoolWindowParams& P, const WindowShape<kM, N>& ws,
                            const vf (&v)[N], vf y, vf dy, vf (&gr)[N]) {
  const Mask<kM, N> ok = ws.ok;
  if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    // The element pool_argmax (pool_argmin) picks is the first one equal to the output, NaN
    // matching NaN (the first NaN wins; else the first extreme, -0 and +0 being equal): N
    // independent compares instead of the forward's serial tournament.
    vi found = vi{};
    const vi y_nan = isnan(y);
    for (int i = 0; i < N; ++i) {
      const vi hit = ok.at(i) & ((v[i] == y) | (isnan(v[i]) & y_nan)) & ~found;
      gr[i] = sel(hit, dy, splat(0.f));
      found |= hit;
    }
  } else if constexpr (M == PoolMethod::stochastic) {
    if (P.training) {
      const vi at = stochastic_pick(v, ok, ws.u);
      for (int i = 0; i < N; ++i) gr[i] = sel(at == i, dy, splat(0.f));
      return;
    }
    vf s, q;
    stochastic_sums(v, ok, s, q);
    for (int i = 0; i < N; ++i) {
      const vf g = dy * (2.f * v[i] * s - q) / (s * s);
      gr[i] = sel((s > 0.f) & (v[i] > 0.f), g, splat(0.f));
    }
  } else if constexpr (M == PoolMethod::avg) {
    for (int i = 0; i < N; ++i) gr[i] = dy / ws.divisor;
  } else if constexpr (M == PoolMethod::mixed) {
    vi at;
    top_value(v, ok, &at);
    const vf base = dy * (1.f - P.lambda) / ws.divisor, top = dy * P.lambda;
    for (int i = 0; i < N; ++i) gr[i] = sel(at == i, base + top, base);
  } else if constexpr (M == PoolMethod::avgtopk || M == PoolMethod::tmaxavg) {
    // Selected = ranked among the first kk (pool_ranks_before: NaN first, then larger, then
    // the lower window index). With t the kk-th largest value: every element ranked above t
    // is selected, and of those equal to t the first (kk - above) in window order. One sort
    // and two passes instead of N * N rank comparisons.
    vf w[N];
    sorted_values(v, ok, w);
    vi only_max = vi{};
    if constexpr (M == PoolMethod::tmaxavg) only_max = w[0] >= P.threshold;
    const vi kk = only_max ? vi{} + 1 : ws.k;
    const vf share = sel(only_max, dy, dy / __builtin_convertvector(ws.k, vf));
    vf t = w[0];
    for (int r = 1; r < N; ++r) t = sel(kk > r, w[r], t);
    const vi t_nan = isnan(t);
    vi above[N], equal[N], left = kk;
    for (int i = 0; i < N; ++i) {
      above[i] = ok.at(i) & ((isnan(v[i]) & ~t_nan) | (v[i] > t));
      equal[i] = ok.at(i) & ((v[i] == t) | (isnan(v[i]) & t_nan));
      left += above[i];  // a true mask is -1
    }
    for (int i = 0; i < N; ++i) {
      const vi take = above[i] | (equal[i] & (left > 0));
      left += equal[i];
      gr[i] = sel(take, share, splat(0.f));
    }
  } else if constexpr (M == PoolMethod::softpool) {
    const vf m = fmax_all(v, ok);
    vi count = vi{};
    vf den = vf{}, e[N];
    for (int i = 0; i < N; ++i) {
      count -= ok.at(i) & (v[i] > kPoolFloatMax);
      e[i] = exp_nonpositive(v[i] - m);
      den += ok.only(i, e[i], -0.f);
    }
    const vi inf = m > kPoolFloatMax;
    const vf inf_share = dy / __builtin_convertvector(count > 0 ? count : vi{} + 1, vf);
    const vf scale = dy / den;  // one division per window (the generic path divides per element)
    for (int i = 0; i < N; ++i) {
      const vf g = scale * e[i] * (1.f + v[i] - y);
      gr[i] = sel(inf, sel(v[i] > kPoolFloatMax, inf_share, splat(0.f)), g);
    }
  } else if constexpr (M == PoolMethod::rwp || M == PoolMethod::rsp) {
    // Each element's rank by N * N comparisons (no sort: the gradient goes to positions).
    const RankWeights<N> rw(P.rank_a);
    vi rank[N];
    ranks_of(v, ok, rank);
    if (M == PoolMethod::rsp && P.training) {
      const vi at = rank_draw(rw, ws.count, ws.u, any_nan(v, ok));
      for (int i = 0; i < N; ++i) gr[i] = sel(rank[i] == at, dy, splat(0.f));
      return;
    }
    const vf share = dy / rw.sum(ws.count);
    for (int i = 0; i < N; ++i) {
      vf wt = vf{};
      for (int r = 0; r < N; ++r) wt = sel(rank[i] == r, splat(rw.w[r]), wt);
      gr[i] = wt * share;
    }
  } else {  // lp
    const float pm1 = P.p - 1.f;
    for (int i = 0; i < N; ++i) gr[i] = lp_grad_lanes<L>(v[i], y, dy, pm1);
  }
}

// philox_uniform (kernels/philox.cuh) for four indices at once, one per lane: Philox4x32-10
// on four counters in parallel, the same numbers as the scalar function the generic path
// calls (four scalar calls cost four times the rounds).
typedef uint32_t vu __attribute__((vector_size(4 * kLanes)));
typedef uint64_t vu64 __attribute__((vector_size(8 * kLanes)));

inline void philox_mulhilo_lanes(uint32_t m, vu a, vu& hi, vu& lo) {
  const vu64 p = __builtin_convertvector(a, vu64) * uint64_t(m);
  hi = __builtin_convertvector(p >> 32, vu);
  lo = __builtin_convertvector(p, vu);
}

inline vf philox_uniform_lanes(uint64_t seed, uint32_t purpose, uint32_t a, uint32_t b,
                               const uint64_t (&index)[kLanes]) {
  vu c0 = vu{} + purpose, c1 = vu{} + a, c2, c3, word;
  for (int l = 0; l < kLanes; ++l) {
    c2[l] = b ^ uint32_t(index[l] >> 34);
    c3[l] = uint32_t(index[l] >> 2);
    word[l] = uint32_t(index[l] & 3);
  }
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    vu hi0, lo0, hi1, lo1;
    philox_mulhilo_lanes(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo_lanes(0xCD9E8D57u, c2, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  const vu bits = word == 0 ? c0 : word == 1 ? c1 : word == 2 ? c2 : c3;
  // uniform_from_bits: 24 bits, exact in a float whichever conversion.
  return __builtin_convertvector((vi)(bits >> 8), vf) * (1.0f / 16777216.0f);
}

// The draws of stochastic pooling and rsp for the chunk's windows, from their global output indices, as
// the generic path draws them (training only; other methods draw nothing).
// Lane l's output is first_output + l * lane_stride.
template <PoolMethod M, bool kM, int N>
inline void draw(WindowShape<kM, N>& ws, const PoolWindowParams& P, const PoolRng& rng,
                 uint64_t first_output, int cnt, uint64_t lane_stride = 1) {
  if constexpr (pool_draws_per_window(M)) {
    if (!P.training) return;
    uint64_t index[kLanes];
    for (int l = 0; l < kLanes; ++l)
      index[l] = rng.first_output + first_output + (l < cnt ? l : 0) * lane_stride;
    ws.u = philox_uniform_lanes(rng.seed, kRngPoolSample, rng.layer, uint32_t(rng.step), index);
  } else {
    (void)ws, (void)P, (void)rng, (void)first_output, (void)cnt, (void)lane_stride;
  }
}

}  // namespace convpool::cpu::pool_window
