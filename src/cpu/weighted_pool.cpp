// Weighted pooling on the CPU. Every output and every dx element gets weighted_pool_math.cuh's
// result bit for bit, in vector loops over contiguous rows:
// - The plane is zero-padded and split into its S column phases (S the column stride): window
//   column kw of output ow reads phase kw % S at ow + kw / S, so a row of outputs reads
//   contiguous floats for each window position.
// - Each window's weights come from tables by window position and output column, one table
//   for each shape of the windows' row part (top edge, whole, bottom edge): edge windows have
//   weighted_pool_weights' own weights, padded positions weight 0 (reading the zero padding).
//   A term 0 * 0 leaves a sum that started at +0 unchanged, so every sum is the per-window
//   one, term for term.
// - dx is gathered by phase: element (h, c) sums its covering windows in output order, as
//   the per-window loops (and the CUDA gather) add them. Windows that do not overlap take
//   their backward in the plane's own layout (weighted_pool_disjoint.cpp).
// tests/kernel_parity_weighted_pool.cpp checks the CUDA kernels against these files.
#include "weighted_pool.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "convpool/error.h"
#include "pool_simd.h"
#include "weighted_pool_tables.h"

namespace convpool::cpu {

namespace {

using namespace weighted;
using simd::load4;
using simd::store4;
using simd::vf;
using simd::vi;
constexpr int L = simd::kLanes;

// Groups of S floats at src split into S rows qs floats apart (row q, element m: src[m S + q],
// m < count; only the first `phases` rows where S is not a constant), and back; by shuffles
// of whole vectors for S = 2 and 3, else one by one.
template <int S>
[[gnu::always_inline]] inline void split_phases(const float* src, float* dst, size_t qs, int count,
                                                int s, int phases) {
  int m = 0;
  if constexpr (S == 2)
    for (; m < count && count >= L; m += L) {
      m = std::min(m, count - L);  // the last vector overlaps the one before: no scalar tail
      const vf a = load4(src + 2 * m), b = load4(src + 2 * m + L);
      store4(dst + m, __builtin_shufflevector(a, b, 0, 2, 4, 6));
      store4(dst + qs + m, __builtin_shufflevector(a, b, 1, 3, 5, 7));
    }
  if constexpr (S == 3)
    for (; m < count && count >= L; m += L) {
      m = std::min(m, count - L);
      const vf a = load4(src + 3 * m), b = load4(src + 3 * m + L), c = load4(src + 3 * m + 2 * L);
      store4(dst + m,
             __builtin_shufflevector(__builtin_shufflevector(a, b, 0, 3, 6, 7), c, 0, 1, 2, 5));
      store4(dst + qs + m,
             __builtin_shufflevector(__builtin_shufflevector(a, b, 1, 4, 7, 7), c, 0, 1, 2, 6));
      store4(dst + 2 * qs + m,
             __builtin_shufflevector(__builtin_shufflevector(a, b, 2, 5, 5, 5), c, 0, 1, 4, 7));
    }
  const int sn = S ? S : s, kept = S ? S : phases;
  for (; m < count; ++m)
    for (int q = 0; q < kept; ++q) dst[q * qs + m] = src[m * sn + q];
}
template <int S>
[[gnu::always_inline]] inline void join_phases(const float* src, size_t qs, float* dst, int count,
                                               int s) {
  int m = 0;
  if constexpr (S == 2)
    for (; m < count && count >= L; m += L) {
      m = std::min(m, count - L);  // the last vector overlaps the one before: no scalar tail
      const vf a = load4(src + m), b = load4(src + qs + m);
      store4(dst + 2 * m, __builtin_shufflevector(a, b, 0, 4, 1, 5));
      store4(dst + 2 * m + L, __builtin_shufflevector(a, b, 2, 6, 3, 7));
    }
  if constexpr (S == 3)
    for (; m < count && count >= L; m += L) {
      m = std::min(m, count - L);
      const vf a = load4(src + m), b = load4(src + qs + m), c = load4(src + 2 * qs + m);
      const vf t = __builtin_shufflevector(a, b, 0, 4, 1, 5),
               u = __builtin_shufflevector(a, b, 2, 6, 3, 7);
      store4(dst + 3 * m, __builtin_shufflevector(t, c, 0, 1, 4, 2));
      store4(dst + 3 * m + L,
             __builtin_shufflevector(__builtin_shufflevector(t, c, 3, 5, 5, 5), u, 0, 1, 4, 5));
      store4(dst + 3 * m + 2 * L, __builtin_shufflevector(u, c, 6, 2, 3, 7));
    }
  const int sn = S ? S : s;
  for (; m < count; ++m)
    for (int q = 0; q < sn; ++q) dst[m * sn + q] = src[q * qs + m];
}

// The plane's elements into their places in the phase buffer (class Phases): whole groups of
// S columns (padded columns m S .. m S + S - 1 all inside the plane) by split_phases, the few
// columns at either end one by one.
CONVPOOL_AVX2_CLONES
void split_plane(const PoolGeom& g, const Layout& l, const float* plane, float* buf) {
  const int S = l.S, W = g.W, PW = g.PW, m_lo = l.m_lo, m_hi = l.m_hi;
  const size_t phase = size_t(l.Hp) * l.M;
  const int edges = int(l.split_edge.size());
  const int* split_edge = l.split_edge.data();
  const size_t* split_at = l.split_at.data();
  for (int h = 0; h < g.H; ++h) {
    const float* src = plane + size_t(h) * W;
    float* dst = buf + size_t(h + g.PH) * l.M;
    const float* from = src + m_lo * S - PW;
    if (S == 1)
      std::memcpy(dst + m_lo, from, 4 * size_t(m_hi - m_lo));
    else if (S == 2)
      split_phases<2>(from, dst + m_lo, phase, m_hi - m_lo, S, 2);
    else if (S == 3)
      split_phases<3>(from, dst + m_lo, phase, m_hi - m_lo, S, 3);
    else
      split_phases<0>(from, dst + m_lo, phase, m_hi - m_lo, S, l.P);
    for (int i = 0; i < edges; ++i) dst[split_at[i]] = src[split_edge[i]];
  }
}

// The plane, zero-padded and split by column phase: phase q row r holds padded columns
// q, q + S, q + 2S, ... of padded row r (for the kept phases, Layout::P). Only the plane's own
// elements are written: the padding stays as zeroed at the start.
class Phases {
 public:
  Phases(const PoolGeom& g, const Layout& l) : g_(g), l_(l), buf_(size_t(l.P) * l.Hp * l.M, 0.f) {}
  const float* row(int q, int r) const { return buf_.data() + (size_t(q) * l_.Hp + r) * l_.M; }
  void fill(const float* plane) { split_plane(g_, l_, plane, buf_.data()); }

 private:
  const PoolGeom& g_;
  const Layout& l_;
  std::vector<float> buf_;
};

// Where window position k reads: phase kw % S, rows kh on from the window's first row, kw / S
// columns on: an offset into the phase buffer from the output row's first padded row.
std::vector<size_t> position_offsets(const PoolGeom& g, const Layout& l) {
  std::vector<size_t> at(size_t(l.K));
  for (int kh = 0; kh < g.KH; ++kh)
    for (int kw = 0; kw < g.KW; ++kw)
      at[kh * g.KW + kw] = (size_t(kw % l.S) * l.Hp + kh) * l.M + kw / l.S;
  return at;
}

void require_window_fits(const PoolGeom& g) {
  CP_CHECK(weighted_pool_window_fits(g),
           "weighted_pool: windows of at most 8 columns and 64 "
           "positions, not "
               << g.KH << "x" << g.KW);
}

// y of the plane, 2L outputs of a row at a time: each sum gains its window positions' terms
// in window order.
CONVPOOL_AVX2_CLONES
void plane_forward(const PoolGeom& g, const Layout& l, const Tables& t, const Phases& ph,
                   const size_t* offsets, float* out) {
  for (int oh = 0; oh < g.OH; ++oh) {
    const int s = t.shape(oh);
    const float* base = ph.row(0, oh * g.SH);
    const float* den = t.den(s);
    float* row = out + size_t(oh) * g.OW;
    for (int ow = 0; ow < g.OW; ow += 2 * V) {
      vw a0 = vw{}, a1 = vw{};
      for (int k = 0; k < l.K; ++k) {
        const float* e = t.e(s, k) + ow;
        const float* xr = base + offsets[k] + ow;
        a0 += loadw(e) * loadw(xr);
        a1 += loadw(e + V) * loadw(xr + V);
      }
      float y[2 * V];
      storew(y, a0 / loadw(den + ow));
      storew(y + V, a1 / loadw(den + ow + V));
      std::memcpy(row + ow, y, 4 * size_t(std::min(2 * V, g.OW - ow)));
    }
  }
}

}  // namespace

void weighted_pool_forward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                           float* y, int n) {
  require_window_fits(g);
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const Layout l(g);
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * K > 32768)
  for (int c = 0; c < g.C; ++c) {
    const Tables tables(g, l, logits + (shared ? 0 : size_t(c) * K));
    Phases phases(g, l);
    const std::vector<size_t> offsets = position_offsets(g, l);
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      if (i + 1 < n) prefetch(x + (p + g.C) * in_plane, in_plane);
      phases.fill(x + p * in_plane);
      plane_forward(g, l, tables, phases, offsets.data(), y + p * out_plane);
    }
  }
}

namespace {

// y and dy rows into rows of TL floats at offset T (short rows: inline copies, not calls).
CONVPOOL_AVX2_CLONES
void copy_rows(const PoolGeom& g, const Layout& l, const float* y, const float* dy, float* yr,
               float* dyr) {
  for (int oh = 0; oh < g.OH; ++oh) {
    const float* ys = y + size_t(oh) * g.OW;
    const float* ds = dy + size_t(oh) * g.OW;
    float* yd = yr + size_t(oh) * l.TL + l.T;
    float* dd = dyr + size_t(oh) * l.TL + l.T;
    int ow = 0;
    for (; ow + V <= g.OW; ow += V) {
      storew(yd + ow, loadw(ys + ow));
      storew(dd + ow, loadw(ds + ow));
    }
    for (; ow < g.OW; ++ow) yd[ow] = ys[ow], dd[ow] = ds[ow];
  }
}

// A plane's y and dy, by output row, at offset T of rows of TL floats, zero elsewhere (the
// columns the gather's taps reach outside the outputs).
class OutputRows {
 public:
  OutputRows(const PoolGeom& g, const Layout& l)
      : g_(g), l_(l), y_(size_t(g.OH) * l.TL, 0.f), dy_(size_t(g.OH) * l.TL, 0.f) {}
  void fill(const float* y, const float* dy) { copy_rows(g_, l_, y, dy, y_.data(), dy_.data()); }
  const float* y(int oh) const { return y_.data() + size_t(oh) * l_.TL + l_.T; }
  const float* dy(int oh) const { return dy_.data() + size_t(oh) * l_.TL + l_.T; }

 private:
  const PoolGeom& g_;
  const Layout& l_;
  std::vector<float> y_, dy_;
};

// Each window position's logit-gradient terms s_k (x - y) dy over the plane's windows, added
// into V partial sums a position (acc[k]): a fixed order, whatever the thread count.
CONVPOOL_AVX2_CLONES
void plane_logit_grad(const PoolGeom& g, const Layout& l, const Tables& t, const Phases& ph,
                      const OutputRows& rows, const size_t* offsets, vw* acc) {
  for (int oh = 0; oh < g.OH; ++oh) {
    const int s = t.shape(oh);
    const float* base = ph.row(0, oh * g.SH);
    const float* yr = rows.y(oh);
    const float* dr = rows.dy(oh);
    for (int k = 0; k < l.K; ++k) {
      const float* xr = base + offsets[k];
      const float* sx = t.sx(s, k);
      const int* mk = t.mask(s, k);
      vw a = acc[k];
      for (int ow = 0; ow < l.OWp; ow += V) {
        const vw term = loadw(sx + ow) * (loadw(xr + ow) - loadw(yr + ow)) * loadw(dr + ow);
        viw m;
        std::memcpy(&m, mk + ow, sizeof m);
        a += (vw)((viw)term & m);
      }
      acc[k] = a;
    }
  }
}

// The terms of dx, the same for every plane of a channel: element (h, c) at padded column
// c + PW = m S + q sums, for each covering output row in order, the windows ow = m - t (t = the
// taps of phase q, largest first, so ow ascends) at window column kw = q + t S. Term i of row
// h and phase q multiplies weights w[i] + m by dy dr[i] + m (window columns outside the
// outputs read zero weights and zero dy).
struct GatherPlan {
  std::vector<int> first;  // (h, q)'s terms: [first[h S + q], first[h S + q + 1])
  std::vector<const float*> w, dr;
  GatherPlan(const PoolGeom& g, const Layout& l, const Tables& t, const OutputRows& rows) {
    const int S = l.S;
    for (int h = 0; h < g.H; ++h) {
      const PoolCoverage cov = pool_covering_outputs(g, h, 0);
      for (int q = 0; q < S; ++q) {
        first.push_back(int(w.size()));
        const int taps = q < g.KW ? (g.KW - 1 - q) / S + 1 : 0;
        for (int oh = cov.oh_lo; oh <= cov.oh_hi && taps; ++oh) {
          const int kh = h + g.PH - oh * g.SH, s = t.shape(oh);
          for (int tap = taps - 1; tap >= 0; --tap) {
            w.push_back(t.sx(s, kh * g.KW + q + tap * S) - tap);
            dr.push_back(rows.dy(oh) - tap);
          }
        }
      }
    }
    first.push_back(int(w.size()));
  }
};

// dx of the plane by the plan; sums holds each phase's Mg sums of a row.
CONVPOOL_AVX2_CLONES
void plane_input_grad(const PoolGeom& g, const Layout& l, const GatherPlan& plan, float* dxp,
                      float* sums) {
  const int S = l.S, Mg = l.Mg;
  const int edges = int(l.edge.size());
  const int* edge = l.edge.data();
  const size_t* sums_at = l.sums_at.data();
  const int* first = plan.first.data();
  const float* const* w = plan.w.data();
  const float* const* dr = plan.dr.data();
  for (int h = 0; h < g.H; ++h) {
    for (int q = 0; q < S; ++q) {
      float* d = sums + size_t(q) * Mg;
      const int i0 = first[size_t(h) * S + q], i1 = first[size_t(h) * S + q + 1];
      int m = 0;
      for (; m + 2 * V <= Mg; m += 2 * V) {  // two sums at once: their adds overlap
        vw a0 = vw{}, a1 = vw{};
        for (int i = i0; i < i1; ++i) {
          a0 += loadw(w[i] + m) * loadw(dr[i] + m);
          a1 += loadw(w[i] + m + V) * loadw(dr[i] + m + V);
        }
        storew(d + m, a0);
        storew(d + m + V, a1);
      }
      if (m < Mg) {
        vw a = vw{};
        for (int i = i0; i < i1; ++i) a += loadw(w[i] + m) * loadw(dr[i] + m);
        storew(d + m, a);
      }
    }
    float* row = dxp + size_t(h) * g.W;
    if (S == 1) {
      std::memcpy(row, sums + g.PW, 4 * size_t(g.W));
      continue;
    }
    // Whole groups of S columns by join_phases, the few at either end one by one.
    const int m_lo = l.m_lo, m_hi = l.m_hi;
    const float* from = sums + m_lo;
    float* to = row + (m_lo * S - g.PW);
    if (S == 2)
      join_phases<2>(from, l.Mg, to, m_hi - m_lo, S);
    else if (S == 3)
      join_phases<3>(from, l.Mg, to, m_hi - m_lo, S);
    else
      join_phases<0>(from, l.Mg, to, m_hi - m_lo, S);
    for (int i = 0; i < edges; ++i) row[edge[i]] = sums[sums_at[i]];
  }
}

}  // namespace

void weighted_pool_backward(const PoolGeom& g, const float* logits, bool shared, const float* x,
                            const float* y, const float* dy, float* dx, float* dlogits, int n,
                            float* scratch) {
  require_window_fits(g);
  const int K = g.KH * g.KW;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const Layout l(g);
  float* per_channel = shared ? scratch : dlogits;
  const bool disjoint = g.SW >= g.KW && g.SH >= g.KH;
#pragma omp parallel for schedule(static) if (long(n) * g.C * long(out_plane) * K > 32768)
  for (int c = 0; c < g.C; ++c) {
    const Tables tables(g, l, logits + (shared ? 0 : size_t(c) * K));
    if (disjoint) {
      backward_disjoint(g, l, tables, x, y, dy, dx, n, c, per_channel + size_t(c) * K);
      continue;
    }
    Phases phases(g, l);
    OutputRows rows(g, l);
    const std::vector<size_t> offsets = position_offsets(g, l);
    const GatherPlan plan(g, l, tables, rows);
    std::vector<float> sums(size_t(l.S) * l.Mg);
    vw acc[kWeightedPoolMaxWindow];
    for (int k = 0; k < K; ++k) acc[k] = vw{};
    for (int i = 0; i < n; ++i) {
      const size_t p = size_t(i) * g.C + c;
      prefetch_next_plane(g, x, y, dy, p, i, n);
      phases.fill(x + p * in_plane);
      rows.fill(y + p * out_plane, dy + p * out_plane);
      plane_logit_grad(g, l, tables, phases, rows, offsets.data(), acc);
      if (dx) plane_input_grad(g, l, plan, dx + p * in_plane, sums.data());
    }
    for (int k = 0; k < K; ++k)
      per_channel[size_t(c) * K + k] = ((acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3])) +
                                       ((acc[k][4] + acc[k][5]) + (acc[k][6] + acc[k][7]));
  }
  if (shared)
    for (int k = 0; k < K; ++k) {
      float s = 0.f;
      for (int c = 0; c < g.C; ++c) s += scratch[size_t(c) * K + k];
      dlogits[k] = s;
    }
}

}  // namespace convpool::cpu
