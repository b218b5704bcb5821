// Weighted pooling's backward when windows do not overlap (SW >= KW and SH >= KH: each element
// lies in one window at most, 2x2/2 and 3x3/3 among them), in the plane's own layout: input
// row h lies in output row oh at window row kh, its element c in output column (c + PW) / S at
// window column (c + PW) % S, so dx and the logit terms are products of whole rows: the
// window weights by column (class Natural) times y and dy repeated along the row (upsampled
// once per output row). dx gets weighted_pool_math.cuh's bits: its one term, added to 0.
#include <cstring>
#include <vector>

#include "weighted_pool.h"
#include "weighted_pool_tables.h"

namespace convpool::cpu::weighted {

namespace {

class Natural {
 public:
  Natural(const PoolGeom& g, const Layout& l, const Tables& t) : g_(g) {
    Wv = round_up(g.W, V);
    shapes = 0;
    for (int oh = 0; oh < g.OH; ++oh) shapes = std::max(shapes, t.shape(oh) + 1);
    sx_.assign(size_t(shapes) * g.KH * Wv, 0.f);
    mask_.assign(size_t(shapes) * g.KH * Wv, 0);
    src_.assign(size_t(Wv), -1);
    tiled_ = g.PW == 0 && l.S == g.KW ? l.S : 0;
    for (int h = 0; h < g.H; ++h)
      if ((h + g.PH) % g.SH >= g.KH || (h + g.PH) / g.SH >= g.OH) uncovered_.push_back(h);
    for (int c = 0; c < g.W; ++c) {
      const int cp = c + g.PW, ow = cp / l.S, kw = cp % l.S;
      if (kw < g.KW && ow < g.OW) src_[c] = ow;
    }
    for (int oh = 0; oh < g.OH; ++oh) {
      const int s = t.shape(oh);
      for (int kh = 0; kh < g.KH; ++kh)
        for (int c = 0; c < g.W; ++c) {
          if (src_[c] < 0) continue;
          const int k = kh * g.KW + (c + g.PW) % l.S;
          // zero (and masked off) where the window's row kh is padding: no element there
          sx_[(size_t(s) * g.KH + kh) * Wv + c] = t.sx(s, k)[src_[c]];
          mask_[(size_t(s) * g.KH + kh) * Wv + c] = t.mask(s, k)[src_[c]];
        }
    }
  }
  const float* sx(int s, int kh) const { return sx_.data() + (size_t(s) * g_.KH + kh) * Wv; }
  const int* mask(int s, int kh) const { return mask_.data() + (size_t(s) * g_.KH + kh) * Wv; }
  // row[c] = from[ow of c], 0 where c is in no window. Where windows tile the row from its
  // first column (PW = 0, S = KW), each output's value repeated S times, by a loop the
  // compiler vectorises for S = 2 and 3; the columns past the last window stay 0 (the
  // caller zeroes `row` once).
  void upsample(const float* from, float* row) const {
    if (tiled_ == 2) return repeat<2>(from, row);
    if (tiled_ == 3) return repeat<3>(from, row);
    for (int c = 0; c < Wv; ++c) row[c] = src_[c] >= 0 ? from[src_[c]] : 0.f;
  }
  // The rows no window reaches (their dx is 0).
  const std::vector<int>& uncovered_rows() const { return uncovered_; }
  int Wv, shapes;

 private:
  template <int S>
  void repeat(const float* from, float* row) const {
    for (int ow = 0; ow < g_.OW; ++ow)
      for (int j = 0; j < S; ++j) row[ow * S + j] = from[ow];
  }
  const PoolGeom& g_;
  int tiled_;
  std::vector<float> sx_;
  std::vector<int> mask_;
  std::vector<int> src_;
  std::vector<int> uncovered_;
};

CONVPOOL_AVX2_CLONES
void plane_backward(const PoolGeom& g, const Tables& t, const Natural& nat, const float* x,
                    const float* y, const float* dy, float* dx, float* yu, float* du, float* acc) {
  const int Wv = nat.Wv, W = g.W;
  for (int oh = 0; oh < g.OH; ++oh) {
    const int s = t.shape(oh);
    nat.upsample(y + size_t(oh) * g.OW, yu);
    nat.upsample(dy + size_t(oh) * g.OW, du);
    for (int kh = 0; kh < g.KH; ++kh) {
      const int h = oh * g.SH - g.PH + kh;
      if (h < 0 || h >= g.H) continue;
      const float* xr = x + size_t(h) * W;
      float* dr = dx ? dx + size_t(h) * W : nullptr;
      const float* sx = nat.sx(s, kh);
      const int* mk = nat.mask(s, kh);
      float* a = acc + size_t(kh) * Wv;
      int c = 0;
      for (; c + V <= W; c += V) {
        const vw w = loadw(sx + c), d = loadw(du + c), xv = loadw(xr + c);
        if (dr) storew(dr + c, 0.f + w * d);
        viw m;
        std::memcpy(&m, mk + c, sizeof m);
        storew(a + c, loadw(a + c) + (vw)((viw)(w * (xv - loadw(yu + c)) * d) & m));
      }
      if (c < W) {  // the row's last floats, through a padded copy
        float xt[V] = {}, dt[V];
        std::memcpy(xt, xr + c, 4 * size_t(W - c));
        const vw w = loadw(sx + c), d = loadw(du + c);
        storew(dt, 0.f + w * d);
        if (dr) std::memcpy(dr + c, dt, 4 * size_t(W - c));
        viw m;
        std::memcpy(&m, mk + c, sizeof m);
        storew(a + c, loadw(a + c) + (vw)((viw)(w * (loadw(xt) - loadw(yu + c)) * d) & m));
      }
    }
  }
}

}  // namespace

void backward_disjoint(const PoolGeom& g, const Layout& l, const Tables& t, const float* x,
                       const float* y, const float* dy, float* dx, int n, int c, float* dlogits) {
  const size_t in_plane = size_t(g.H) * g.W, out_plane = size_t(g.OH) * g.OW;
  const Natural nat(g, l, t);
  std::vector<float> yu(size_t(nat.Wv), 0.f), du(size_t(nat.Wv), 0.f);
  std::vector<float> acc(size_t(g.KH) * nat.Wv, 0.f);  // partial sums by window row and column
  for (int i = 0; i < n; ++i) {
    const size_t p = size_t(i) * g.C + c;
    prefetch_next_plane(g, x, y, dy, p, i, n);
    float* dxp = dx ? dx + p * in_plane : nullptr;
    if (dxp)
      for (int h : nat.uncovered_rows()) std::memset(dxp + size_t(h) * g.W, 0, 4 * size_t(g.W));
    plane_backward(g, t, nat, x + p * in_plane, y + p * out_plane, dy + p * out_plane, dxp,
                   yu.data(), du.data(), acc.data());
  }
  // Each window position's sum over the columns of its window column, in column order.
  for (int k = 0; k < l.K; ++k) dlogits[k] = 0.f;
  for (int kh = 0; kh < g.KH; ++kh)
    for (int col = 0; col < g.W; ++col) {
      const int kw = (col + g.PW) % l.S;
      if (kw < g.KW) dlogits[kh * g.KW + kw] += acc[size_t(kh) * nat.Wv + col];
    }
}

}  // namespace convpool::cpu::weighted
