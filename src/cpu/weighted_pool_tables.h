// Weighted pooling's CPU internals shared by src/cpu/weighted_pool.cpp (the forward, and the
// backward of overlapping windows) and src/cpu/weighted_pool_disjoint.cpp (the backward of
// windows that do not overlap): vector types, each channel's window weights by window shape
// and output column, and the sizes of the working buffers. Internal header.
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "cpu/avx2_clones.h"
#include "kernels/weighted_pool_math.cuh"

// The 32-byte vectors below never cross a call (every function taking one is inlined).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace convpool::cpu::weighted {

// The compute loops' vectors: V floats, one AVX register (in the AVX2 clones), two SSE ones.
constexpr int V = 8;
typedef float vw __attribute__((vector_size(4 * V)));
typedef int viw __attribute__((vector_size(4 * V)));
[[gnu::always_inline]] inline vw loadw(const float* p) {
  vw v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void storew(float* p, vw v) { std::memcpy(p, &v, sizeof v); }
inline int round_up(int v, int to) { return (v + to - 1) / to * to; }

// A channel's window weights by the shape of the window's valid part: computed once per
// shape, the same bits for every window of that shape (weighted_pool_weights').
class ChannelWeights {
 public:
  ChannelWeights(const PoolGeom& g, const float* logits) : g_(g), logits_(logits) {}
  // e (valid positions in window order) and den of r's shape.
  float get(const PoolWindowRect& r, const float** e) {
    const int k0h = r.k0 / g_.KW, k0w = r.k0 % g_.KW;
    const int key[4] = {k0h, k0w, r.h_hi - r.h_lo, r.w_hi - r.w_lo};
    for (int i = 0; i < count_; ++i)
      if (std::equal(key, key + 4, key_[i])) return *e = e_[i], den_[i];
    if (count_ == kSlots) {  // rare: many shapes (large windows on small planes)
      *e = spare_;
      return weighted_pool_weights(g_, r, logits_, spare_);
    }
    std::copy(key, key + 4, key_[count_]);
    den_[count_] = weighted_pool_weights(g_, r, logits_, e_[count_]);
    *e = e_[count_];
    return den_[count_++];
  }

 private:
  static constexpr int kSlots = 16;
  const PoolGeom& g_;
  const float* logits_;
  int count_ = 0;
  int key_[kSlots][4];
  float e_[kSlots][kWeightedPoolMaxWindow], den_[kSlots];
  float spare_[kWeightedPoolMaxWindow];
};

// Asks for floats [p, p + n) ahead of use: a channel's next plane lies C planes on, past the
// page the hardware prefetchers follow.
inline void prefetch(const float* p, size_t n) {
  for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
}
// The backward's inputs of plane p + C, when image i + 1 exists.
inline void prefetch_next_plane(const PoolGeom& g, const float* x, const float* y, const float* dy,
                                size_t p, int i, int n) {
  if (i + 1 >= n) return;
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  prefetch(x + (p + g.C) * in_plane, in_plane);
  prefetch(y + (p + g.C) * out_plane, out_plane);
  prefetch(dy + (p + g.C) * out_plane, out_plane);
}

// Sizes of a channel's working buffers.
struct Layout {
  int K, S, T;  // window positions; the column stride; the most taps a phase has
  int P;        // phases kept: those the windows read (all S up to 3, else the first KW)
  int Hp, M;    // padded rows; floats of a phase row
  int Mg;       // phase positions the dx gather computes (a multiple of V)
  int TL;       // floats of a table row: output columns -T .. from offset T, zero outside
  int OWp;      // output columns rounded up to 2V
  // Padded columns m S .. m S + S - 1 are all inside the plane for m in [m_lo, m_hi); the
  // plane's other columns (fewer than S at either end) are `edge`, with their places among
  // the gather's sums (sums_at: q Mg + m), and those of a kept phase `split_edge`, with their
  // places in a phase buffer row (split_at: phase q at q Hp M, position m).
  int m_lo, m_hi;
  std::vector<int> edge, split_edge;
  std::vector<size_t> split_at, sums_at;
  Layout(const PoolGeom& g) {
    K = g.KH * g.KW;
    S = g.SW;
    T = (g.KW + S - 1) / S;
    P = S <= 3 ? S : std::min(S, g.KW);
    OWp = round_up(g.OW, 2 * V);
    Hp = std::max(g.H + g.PH, (g.OH - 1) * g.SH + g.KH);
    Mg = round_up((g.PW + g.W - 1) / S + 1, V);
    M = std::max(OWp + (g.KW - 1) / S, Mg) + V;
    TL = T + std::max(OWp, Mg) + V;
    m_lo = (g.PW + S - 1) / S;
    m_hi = std::max(m_lo, (g.PW + g.W) / S);
    auto add = [&](int c) {
      const int cp = c + g.PW;
      edge.push_back(c);
      sums_at.push_back(size_t(cp % S) * Mg + cp / S);
      if (cp % S >= P) return;
      split_edge.push_back(c);
      split_at.push_back(size_t(cp % S) * Hp * M + cp / S);
    };
    for (int c = 0; c < std::min(g.W, m_lo * S - g.PW); ++c) add(c);
    for (int c = std::max({0, m_hi * S - g.PW, m_lo * S - g.PW}); c < g.W; ++c) add(c);
  }
};

// A channel's weight tables, one set per shape of the windows' row part: for window position
// k and output column ow, at [k][T + ow], the window's e_k (E), e_k / den (the factor of
// weighted_pool_input_grad and weighted_pool_logit_grad, Sx) and an all-ones mask where k is
// a valid position (Mask); den at [T + ow]. Zero outside the windows.
class Tables {
 public:
  Tables(const PoolGeom& g, const Layout& l, const float* logits) : l_(l) {
    ChannelWeights weights(g, logits);
    std::vector<int> first_row;  // a row of outputs of each shape
    for (int oh = 0; oh < g.OH; ++oh) {
      const PoolWindowRect r = pool_window_rect(g, oh, 0);
      const int key[2] = {r.k0 / g.KW, r.h_hi - r.h_lo};
      int s = 0;
      while (s < int(keys_.size()) && !(keys_[s][0] == key[0] && keys_[s][1] == key[1])) ++s;
      if (s == int(keys_.size())) keys_.push_back({key[0], key[1]}), first_row.push_back(oh);
      shape_of_.push_back(s);
    }
    const size_t per = size_t(l.K) * l.TL;
    e_.assign(per * keys_.size(), 0.f);
    sx_.assign(per * keys_.size(), 0.f);
    mask_.assign(per * keys_.size(), 0);
    den_.assign(size_t(l.TL) * keys_.size(), 0.f);
    for (size_t s = 0; s < keys_.size(); ++s)
      for (int ow = 0; ow < g.OW; ++ow) {
        const PoolWindowRect r = pool_window_rect(g, first_row[s], ow);
        const float* e;
        const float den = weights.get(r, &e);
        den_[s * l.TL + l.T + ow] = den;
        int j = 0;
        for (int h = r.h_lo; h < r.h_hi; ++h)
          for (int w = r.w_lo; w < r.w_hi; ++w, ++j) {
            const size_t at =
                s * per + size_t(r.k0 + (h - r.h_lo) * g.KW + (w - r.w_lo)) * l.TL + l.T + ow;
            e_[at] = e[j];
            sx_[at] = e[j] / den;
            mask_[at] = -1;
          }
      }
  }
  int shape(int oh) const { return shape_of_[oh]; }
  // Pointers to output column 0 of position k's row in shape s's tables.
  const float* e(int s, int k) const { return e_.data() + (size_t(s) * l_.K + k) * l_.TL + l_.T; }
  const float* sx(int s, int k) const { return sx_.data() + (size_t(s) * l_.K + k) * l_.TL + l_.T; }
  const int* mask(int s, int k) const {
    return mask_.data() + (size_t(s) * l_.K + k) * l_.TL + l_.T;
  }
  const float* den(int s) const { return den_.data() + size_t(s) * l_.TL + l_.T; }

 private:
  const Layout& l_;
  std::vector<std::array<int, 2>> keys_;
  std::vector<int> shape_of_;
  std::vector<float> e_, sx_, den_;
  std::vector<int> mask_;
};

// The backward of one channel's n planes (planes c, c + C, ...) when windows do not overlap
// (SW >= KW and SH >= KH): dx (may be null) overwritten, the channel's logit gradient into
// dlogits (K floats).
void backward_disjoint(const PoolGeom& g, const Layout& l, const Tables& t, const float* x,
                       const float* y, const float* dy, float* dx, int n, int c, float* dlogits);

}  // namespace convpool::cpu::weighted
