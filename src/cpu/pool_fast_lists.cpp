// Window lists: max, min, avg, mixed and Lp pooling, and stochastic pooling in training, at
// any window size, stride and padding (padding smaller than the window) on the planes that run four planes per vector
// (planes_per_vector). Lists built once per geometry hold, for each output, the plane offsets
// of its window's elements in window order, and for each input element the outputs whose
// windows cover it, in output order. Forward reads a window's elements from the transposed
// planes through its list; backward computes each output's gradient share once and gives each
// input element the sum of its covering outputs' shares in output order: the sums the generic
// path forms (it adds window by window, each window's share to every element it covers), in
// the same order and with the same operations, written once per element.
//
// Why lists rather than the K x K templates of pool_fast.cpp for these methods: their window
// math is one or two passes with no per-window setup, so a template's masks, zeroed gradient
// arrays and read-modify-write of dx per window (25 per 5x5 window) cost more than the math.
// Where windows cross the plane's edge (small planes, padding), a list simply leaves the
// outside positions out.
#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include "pool_fast.h"
#include "pool_fast_planes.h"
#include "pool_simd.h"

namespace convpool::cpu {

namespace {

using namespace simd;

struct WindowLists {
  std::vector<int32_t> first;     // OHW + 1: output o's elements are elem[first[o] .. first[o + 1])
  std::vector<int32_t> elem;      // plane offsets, each window in window order
  std::vector<float> divisor;     // avg's: KH * KW with padding counted, else the element count
  std::vector<int32_t> cover_at;  // HW + 1: element i is covered by cover[cover_at[i] .. ]
  std::vector<int32_t> cover;     // output indices, ascending
};

WindowLists build_lists(const PoolGeom& g) {
  WindowLists L;
  const int OHW = g.OH * g.OW, HW = g.H * g.W;
  L.first.reserve(OHW + 1);
  L.divisor.reserve(OHW);
  L.elem.reserve(size_t(OHW) * g.KH * g.KW);
  std::vector<int32_t> covered(HW + 1, 0);
  for (int oh = 0; oh < g.OH; ++oh)
    for (int ow = 0; ow < g.OW; ++ow) {
      L.first.push_back(int32_t(L.elem.size()));
      const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
      for (int h = std::max(h0, 0); h < std::min(h0 + g.KH, g.H); ++h)
        for (int w = std::max(w0, 0); w < std::min(w0 + g.KW, g.W); ++w) {
          L.elem.push_back(h * g.W + w);
          ++covered[h * g.W + w + 1];
        }
      const int count = int(L.elem.size()) - L.first.back();
      L.divisor.push_back(float(g.include_pad ? g.KH * g.KW : count));
    }
  L.first.push_back(int32_t(L.elem.size()));
  for (int i = 0; i < HW; ++i) covered[i + 1] += covered[i];
  L.cover_at = covered;
  L.cover.resize(L.elem.size());
  for (int o = 0; o < OHW; ++o)
    for (int32_t e = L.first[o]; e < L.first[o + 1]; ++e) L.cover[covered[L.elem[e]]++] = o;
  return L;
}

// The lists of a geometry, built on first use and kept per thread (a training step then
// allocates nothing); a program has a few pooling geometries, so the cache is a short list,
// emptied if it ever grows past 64.
const WindowLists& lists_for(const PoolGeom& g) {
  using Key = std::array<int, 11>;
  thread_local std::vector<std::pair<Key, WindowLists>> cache;
  const Key key{g.H, g.W, g.KH, g.KW, g.SH, g.SW, g.PH, g.PW, g.OH, g.OW, int(g.include_pad)};
  for (const auto& [k, lists] : cache)
    if (k == key) return lists;
  if (cache.size() >= 64) cache.clear();
  cache.emplace_back(key, build_lists(g));
  return cache.back().second;
}

// The first NaN, else the first maximum (kMin: minimum) of a window, and its plane offset: the
// in-order scan that pool_argmax (pool_argmin) defines. Four quarters of the window are scanned
// side by side and their picks joined in order, the later one winning only if strictly better
// (as the window paths' tournaments do): the same pick, with a quarter of the dependency chain.
struct Pick {
  vf m;
  vi at;
};

template <bool kMin>
inline Pick join(Pick a, Pick b) {
  const vi later =
      kMin ? ~isnan(a.m) & (isnan(b.m) | (b.m < a.m)) : (isnan(b.m) & ~isnan(a.m)) | (b.m > a.m);
  return {sel(later, b.m, a.m), later ? b.at : a.at};
}

template <bool kMin>
inline Pick select_scan(const vf* T, const int32_t* e, const int32_t* end) {
  auto start = [&](const int32_t* q) { return Pick{T[*q], vi{} + *q}; };
  auto step = [&](Pick& p, const int32_t* q) { p = join<kMin>(p, start(q)); };
  const ptrdiff_t n = end - e;
  if (n < 8) {
    Pick p = start(e);
    for (const int32_t* q = e + 1; q < end; ++q) step(p, q);
    return p;
  }
  const ptrdiff_t s = n / 4;
  Pick p0 = start(e), p1 = start(e + s), p2 = start(e + 2 * s), p3 = start(e + 3 * s);
  for (ptrdiff_t j = 1; j < s; ++j) {
    step(p0, e + j);
    step(p1, e + s + j);
    step(p2, e + 2 * s + j);
    step(p3, e + 3 * s + j);
  }
  for (const int32_t* q = e + 4 * s; q < end; ++q) step(p3, q);
  return join<kMin>(join<kMin>(p0, p1), join<kMin>(p2, p3));
}

// Training-time stochastic pooling, as pool_window's stochastic_pick (pool_stochastic_pick):
// the plane offset drawn with probability max(v, 0) / sum by the uniform u (the first NaN,
// else the first +inf, with certainty; the first element of an all-zero window), in window
// order.
inline vi stochastic_pick(const vf* T, const int32_t* e, const int32_t* end, vf u) {
  vi nan_at = vi{} - 1, inf_at = vi{} - 1;
  const vi first = vi{} + *e;
  vf s = vf{};
  for (const int32_t* q = e; q < end; ++q) {
    const vf v = T[*q];
    nan_at = (isnan(v) & (nan_at < 0)) ? vi{} + *q : nan_at;
    inf_at = ((v > kPoolFloatMax) & (inf_at < 0)) ? vi{} + *q : inf_at;
    s += sel(v > 0.f, v, splat(0.f));
  }
  const vf target = u * s;
  vf c = vf{};
  vi pick = vi{} - 1, last_positive = first;
  for (const int32_t* q = e; q < end; ++q) {
    const vf w = sel(T[*q] > 0.f, T[*q], splat(0.f));
    last_positive = (w > 0.f) ? vi{} + *q : last_positive;
    c += w;
    pick = ((pick < 0) & (target < c)) ? vi{} + *q : pick;
  }
  pick = pick < 0 ? last_positive : pick;  // rounding put the target at the very end
  pick = s > 0.f ? pick : first;
  pick = inf_at >= 0 ? inf_at : pick;
  return nan_at >= 0 ? nan_at : pick;
}

// The uniforms of four planes' output o (lanes past cnt repeat the first plane's), from
// their global output indices, as the generic path draws them.
inline vf stochastic_draws(const PoolRng& rng, int p0, int cnt, int OHW, int o) {
  uint64_t index[kLanes];
  for (int l = 0; l < kLanes; ++l)
    index[l] = rng.first_output + uint64_t(p0 + (l < cnt ? l : 0)) * OHW + o;
  return pool_window::philox_uniform_lanes(rng.seed, kRngPoolSample, rng.layer,
                                           uint32_t(rng.step), index);
}

// Per-thread buffers of one group of planes, grown to the largest layout once.
template <class V>
inline V* group_buffer(std::vector<V>& b, size_t n) {
  if (b.size() < n) b.resize(n);
  return b.data();
}

// A transposed copy of four planes of n elements (no ReLU: dy, not x).
inline const vf* transposed(const float* first_plane, int n, int cnt, std::vector<vf>& b) {
  vf* out = group_buffer(b, n);
  transpose_planes(first_plane, size_t(n), n, cnt, out);
  return out;
}

template <PoolMethod M, LpKind K>
vf window_value(const PoolWindowParams& P, const WindowLists& L, const vf* T, int o, vi* at) {
  const int32_t *e = L.elem.data() + L.first[o], *end = L.elem.data() + L.first[o + 1];
  if constexpr (M == PoolMethod::lp) {  // as window_forward's lp: max |v|, then the scaled sum
    vi nan = vi{};
    vf m = vf{};
    for (const int32_t* q = e; q < end; ++q) {
      nan |= isnan(T[*q]);
      m = sel(vabs(T[*q]) > m, vabs(T[*q]), m);
    }
    vf s = vf{};
    for (const int32_t* q = e; q < end; ++q) s += lp_power<K>(vabs(T[*q]) / m, P.p);
    vf out = m * lp_root<K>(s, P.p);
    out = sel(m > kPoolFloatMax, m, out);
    out = sel(m == 0.f, splat(0.f), out);
    return sel(nan, splat(std::numeric_limits<float>::quiet_NaN()), out);
  }
  if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
    const Pick p = select_scan<M == PoolMethod::min>(T, e, end);
    if (at) *at = p.at;
    return p.m;
  }
  vf s = vf{};
  for (const int32_t* q = e; q < end; ++q) s += T[*q];
  const vf mean = s / splat(L.divisor[o]);
  if constexpr (M == PoolMethod::avg) return mean;
  return P.lambda * select_scan<false>(T, e, end).m + (1.f - P.lambda) * mean;
}

template <PoolMethod M, LpKind K>
void forward_lists(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                   const float* x, float* y, int32_t* argmax) {
  const WindowLists& L = lists_for(g);
  const int planes = n * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
  const int groups = (planes + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    const vf* T = pool_window::transposed_group(g, x + size_t(p0) * HW, cnt);
    thread_local std::vector<vf> out_buffer, at_buffer;
    vf* Y = group_buffer(out_buffer, OHW);
    vf* A = argmax ? group_buffer(at_buffer, OHW) : nullptr;
    for (int o = 0; o < OHW; ++o) {
      if constexpr (M == PoolMethod::stochastic) {
        const vi at = stochastic_pick(T, L.elem.data() + L.first[o], L.elem.data() + L.first[o + 1],
                                      stochastic_draws(rng, p0, cnt, OHW, o));
        for (int l = 0; l < kLanes; ++l) Y[o][l] = T[at[l]][l];
        if (A) A[o] = (vf)at;
        continue;
      }
      vi at = vi{};
      Y[o] = window_value<M, K>(P, L, T, o, A ? &at : nullptr);
      if (A) A[o] = (vf)at;
    }
    untranspose_planes(Y, OHW, cnt, y + size_t(p0) * OHW, size_t(OHW));
    // The offsets travel as float bit patterns: the shuffles move bits, no arithmetic.
    if (A) untranspose_planes(A, OHW, cnt, (float*)(argmax + size_t(p0) * OHW), size_t(OHW));
  }
}

// Each output's gradient share (avg: dy / divisor to every element; mixed: that times
// 1 - lambda, plus dy * lambda to the selected one; max, min: dy to the selected one, 0 to the
// rest; stochastic in training: dy to the drawn element, 0 to the rest; lp: a function of the
// element, y and dy), then per element the sum over its covering outputs in output order, from
// +0, as the generic path adds them.
template <PoolMethod M, LpKind K>
void backward_lists(const PoolGeom& g, const PoolWindowParams& P, const PoolRng& rng, int n,
                    const float* x, const float* y, const float* dy, float* dx) {
  const WindowLists& L = lists_for(g);
  const int planes = n * g.C, HW = g.H * g.W, OHW = g.OH * g.OW;
  const int groups = (planes + kLanes - 1) / kLanes;
#pragma omp parallel for schedule(static)
  for (int grp = 0; grp < groups; ++grp) {
    const int p0 = grp * kLanes, cnt = std::min(kLanes, planes - p0);
    // avg's shares do not depend on x
    const vf* T = M == PoolMethod::avg
                      ? nullptr
                      : pool_window::transposed_group(g, x + size_t(p0) * HW, cnt);
    thread_local std::vector<vf> dy_buffer, y_buffer, share_buffer, extra_buffer, grad_buffer;
    thread_local std::vector<vi> at_buffer;
    const vf* DY = transposed(dy + size_t(p0) * OHW, OHW, cnt, dy_buffer);
    vf* share = group_buffer(share_buffer, OHW);  // to every covered element (max, min: 0)
    vf* extra = group_buffer(extra_buffer, OHW);  // to the selected element instead
    vi* at = group_buffer(at_buffer, OHW);
    const vf* Y = M == PoolMethod::max || M == PoolMethod::min || M == PoolMethod::lp
                      ? transposed(y + size_t(p0) * OHW, OHW, cnt, y_buffer)
                      : nullptr;
    if constexpr (M == PoolMethod::lp) {
      // shares are per element
    } else if constexpr (M == PoolMethod::stochastic) {  // training: dy to the drawn element
      for (int o = 0; o < OHW; ++o) {
        share[o] = splat(0.f);
        extra[o] = DY[o];
        at[o] = stochastic_pick(T, L.elem.data() + L.first[o], L.elem.data() + L.first[o + 1],
                                stochastic_draws(rng, p0, cnt, OHW, o));
      }
    } else if constexpr (M == PoolMethod::max || M == PoolMethod::min) {
      // The element that gets dy is the first one equal to the output y (NaN matching NaN),
      // as the window templates find it: given this forward's y, the forward's pick.
      for (int o = 0; o < OHW; ++o) {
        vi found = vi{}, where = vi{} - 1;
        const vi y_nan = isnan(Y[o]);
        for (int32_t q = L.first[o]; q < L.first[o + 1]; ++q) {
          const vf v = T[L.elem[q]];
          const vi hit = ((v == Y[o]) | (isnan(v) & y_nan)) & ~found;
          where = hit ? vi{} + L.elem[q] : where;
          found |= hit;
        }
        share[o] = splat(0.f);
        extra[o] = DY[o];
        at[o] = where;
      }
    } else {
      for (int o = 0; o < OHW; ++o) {
        if constexpr (M == PoolMethod::avg) {
          share[o] = DY[o] / splat(L.divisor[o]);
          at[o] = vi{} - 1;
        } else {
          const int32_t *e = L.elem.data() + L.first[o], *end = L.elem.data() + L.first[o + 1];
          at[o] = select_scan<false>(T, e, end).at;
          share[o] = DY[o] * (1.f - P.lambda) / splat(L.divisor[o]);
          extra[o] = share[o] + DY[o] * P.lambda;
        }
      }
    }
    vf* D = group_buffer(grad_buffer, HW);
    [[maybe_unused]] const float pm1 = P.p - 1.f;
    for (int i = 0; i < HW; ++i) {
      vf d = vf{};
      for (int32_t q = L.cover_at[i]; q < L.cover_at[i + 1]; ++q) {
        const int o = L.cover[q];
        if constexpr (M == PoolMethod::lp)
          d += lp_grad_lanes<K>(T[i], Y[o], DY[o], pm1);
        else if constexpr (M == PoolMethod::avg)
          d += share[o];
        else
          d += sel(at[o] == i, extra[o], share[o]);
      }
      D[i] = d;
    }
    float* dxp = dx + size_t(p0) * HW;
    untranspose_planes(D, HW, cnt, dxp, size_t(HW));
    if (g.relu_in) {
      const float* xp = x + size_t(p0) * HW;
      for (size_t i = 0; i < size_t(cnt) * HW; ++i) dxp[i] = pool_input_grad(g, xp[i], dxp[i]);
    }
  }
}

template <class F>
void with_method(const PoolWindowParams& p, F&& f) {
  using General = std::integral_constant<LpKind, LpKind::general>;
  auto lp = [&](auto kind) { f(std::integral_constant<PoolMethod, PoolMethod::lp>{}, kind); };
  switch (p.method) {
    case PoolMethod::max:
      return f(std::integral_constant<PoolMethod, PoolMethod::max>{}, General{});
    case PoolMethod::min:
      return f(std::integral_constant<PoolMethod, PoolMethod::min>{}, General{});
    case PoolMethod::avg:
      return f(std::integral_constant<PoolMethod, PoolMethod::avg>{}, General{});
    case PoolMethod::stochastic:
      return f(std::integral_constant<PoolMethod, PoolMethod::stochastic>{}, General{});
    case PoolMethod::lp:
      if (p.p == 1.f) return lp(std::integral_constant<LpKind, LpKind::one>{});
      if (p.p == 2.f) return lp(std::integral_constant<LpKind, LpKind::two>{});
      if (p.p == 3.f) return lp(std::integral_constant<LpKind, LpKind::three>{});
      return lp(General{});
    default:  // mixed: pool_lists_cover admits no other method
      return f(std::integral_constant<PoolMethod, PoolMethod::mixed>{}, General{});
  }
}

}  // namespace

bool pool_lists_cover(const PoolGeom& g, const PoolWindowParams& p) {
  const bool method =
      pool_lists_method(p.method) || (p.method == PoolMethod::stochastic && p.training);
  return method && g.PH < g.KH && g.PW < g.KW && pool_window::planes_per_vector(g);
}

void pool_lists_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                        const float* x, float* y, int32_t* argmax) {
  with_method(p, [&](auto M, auto K) { forward_lists<M(), K()>(g, p, rng, n, x, y, argmax); });
}

void pool_lists_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                         const float* x, const float* y, const float* dy, float* dx) {
  with_method(p, [&](auto M, auto K) { backward_lists<M(), K()>(g, p, rng, n, x, y, dy, dx); });
}

}  // namespace convpool::cpu
