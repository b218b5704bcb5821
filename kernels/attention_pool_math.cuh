// Attention pooling, a global encoder: h heads, each a learned 1x1 convolution of the C maps
// to one score per position, a softmax of the scores over the positions, and the maps'
// weighted sum (attention-based multiple-instance pooling, Ilse, Tomczak and Welling, ICML
// 2018, with the score linear in x where theirs passes x through a tanh layer first):
//   s_k(i) = sum_c W[k,c] x_c(i),   a_k = softmax_i(s_k),   y[k C + c] = sum_i a_k(i) x_c(i)
// so C x H x W becomes (h C) x 1 x 1, head by head. W = 0 is average pooling. The per-image
// math, shared by the CPU backend and the CUDA kernels; every sum runs in the order written.
#pragma once
#include <cmath>
#include <cstddef>

#include "exp_log.cuh"
#include "hd.cuh"

namespace convpool {

// Scratch of the backward passes: the score gradients (n x heads x hw; all the CUDA kernels
// use), and on the CPU the images' maps transposed (n x hw x c), so that sums over positions
// run along vectors of channels.
inline size_t attention_pool_scratch_floats(int n, int heads, int c, int hw) {
  return size_t(n) * hw * (size_t(heads) + size_t(c));
}

// The score of head k at position i: the channels in order. x is the image (C x hw).
CP_HD float attention_pool_score(const float* w_k, const float* x, int c, int hw, int i) {
  float s = 0.f;
  for (int ch = 0; ch < c; ++ch) s += w_k[ch] * x[size_t(ch) * hw + i];
  return s;
}

// Scores to weights in place: a softmax over the hw positions, with exp_log.cuh's exp (the
// CPU's loops vectorise it). A NaN score makes every weight NaN; +inf scores share the weight
// (exp(inf - inf) would be NaN). Separate loops, so that the independent ones vectorise.
CP_HD void attention_pool_softmax(float* a, int hw) {
  float m = a[0];
  for (int i = 1; i < hw; ++i) m = (a[i] > m || a[i] != a[i]) ? a[i] : m;
  for (int i = 0; i < hw; ++i) a[i] = cp_select(a[i] == m, 1.f, cp_exp(a[i] - m));
  float den = 0.f;
  for (int i = 0; i < hw; ++i) den += a[i];
  for (int i = 0; i < hw; ++i) a[i] = a[i] / den;
}

// The weighted sum of one map: the positions in order.
CP_HD float attention_pool_output(const float* a_k, const float* map, int hw) {
  float s = 0.f;
  for (int i = 0; i < hw; ++i) s += a_k[i] * map[i];
  return s;
}

// The gradient reaching head k's score at each position: g(i) = sum_c dy[k C + c] x_c(i)
// (attention_pool_score with dy for W), then ds(i) = a(i) (g(i) - sum_j a(j) g(j)), in place.
CP_HD void attention_pool_score_grad(const float* a_k, float* g, int hw) {
  float dot = 0.f;
  for (int i = 0; i < hw; ++i) dot += a_k[i] * g[i];
  for (int i = 0; i < hw; ++i) g[i] = a_k[i] * (g[i] - dot);
}

// dx_c(i) = sum_k (a_k(i) dy[k C + c] + W[k,c] ds_k(i)), the heads in order. a and ds hold the
// image's heads one after another (h x hw); dy is the image's h C gradients.
CP_HD float attention_pool_input_grad(const float* a, const float* ds, const float* w,
                                      const float* dy, int heads, int c, int hw, int ch, int i) {
  float s = 0.f;
  for (int k = 0; k < heads; ++k) {
    s += a[size_t(k) * hw + i] * dy[size_t(k) * c + ch];
    s += w[size_t(k) * c + ch] * ds[size_t(k) * hw + i];
  }
  return s;
}

}  // namespace convpool
