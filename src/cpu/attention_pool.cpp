// Attention pooling on the CPU: images in parallel (weights by channel), each output, score
// and gradient summed in attention_pool_math.cuh's order, so the CUDA kernels' result bit for
// bit where the arithmetic is the host's (the emulated target). The loops run over positions
// or channels side by side, each with its own sum, which the compiler vectorises without
// reordering any one sum.
#include "attention_pool.h"

namespace convpool::cpu {

namespace {

// out[k][i] = sum_c v[k][c] x[c][i] for one image: the channels in order, every position at
// once (attention_pool_score for each i).
void scores(const float* v, int heads, const float* x, int c, int hw, float* out) {
  for (int k = 0; k < heads; ++k) {
    float* o = out + size_t(k) * hw;
    const float* v_k = v + size_t(k) * c;
    for (int i = 0; i < hw; ++i) o[i] = 0.f;
    for (int ch = 0; ch < c; ++ch) {
      const float f = v_k[ch];
      const float* m = x + size_t(ch) * hw;
      for (int i = 0; i < hw; ++i) o[i] += f * m[i];
    }
  }
}

// Eight maps' weighted sums at once (attention_pool_output for each), the positions in order.
constexpr int kMaps = 8;

}  // namespace

void attention_pool_forward(const float* w, int heads, const float* x, float* y, float* attention,
                            int n, int c, int hw) {
#pragma omp parallel for schedule(static) if (long(n) * c * hw * heads > 16384)
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * hw;
    float* a = attention + size_t(img) * heads * hw;
    scores(w, heads, xi, c, hw, a);
    for (int k = 0; k < heads; ++k) attention_pool_softmax(a + size_t(k) * hw, hw);
    for (int k = 0; k < heads; ++k) {
      const float* a_k = a + size_t(k) * hw;
      float* yk = y + (size_t(img) * heads + k) * c;
      int ch = 0;
      for (; ch + kMaps <= c; ch += kMaps) {
        float s[kMaps] = {};
        for (int i = 0; i < hw; ++i)
          for (int j = 0; j < kMaps; ++j) s[j] += a_k[i] * xi[size_t(ch + j) * hw + i];
        for (int j = 0; j < kMaps; ++j) yk[ch + j] = s[j];
      }
      for (; ch < c; ++ch) yk[ch] = attention_pool_output(a_k, xi + size_t(ch) * hw, hw);
    }
  }
}

void attention_pool_backward(const float* w, int heads, const float* x, const float* attention,
                             const float* dy, float* dx, float* dw, int n, int c, int hw,
                             float* scratch) {
  const bool big = long(n) * c * hw * heads > 16384;
#pragma omp parallel for schedule(static) if (big)
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * hw;
    const float* a = attention + size_t(img) * heads * hw;
    const float* d = dy + size_t(img) * heads * c;
    float* ds = scratch + size_t(img) * heads * hw;
    scores(d, heads, xi, c, hw, ds);
    for (int k = 0; k < heads; ++k)
      attention_pool_score_grad(a + size_t(k) * hw, ds + size_t(k) * hw, hw);
    if (!dx) continue;
    for (int ch = 0; ch < c; ++ch) {
      float* o = dx + (size_t(img) * c + ch) * hw;
      for (int i = 0; i < hw; ++i) o[i] = 0.f;
      for (int k = 0; k < heads; ++k) {
        const float dyk = d[size_t(k) * c + ch], wk = w[size_t(k) * c + ch];
        const float *a_k = a + size_t(k) * hw, *ds_k = ds + size_t(k) * hw;
        for (int i = 0; i < hw; ++i) {
          o[i] += a_k[i] * dyk;
          o[i] += wk * ds_k[i];
        }
      }
    }
  }
  // dw[k, c]: channels in parallel, the images and then the positions in order.
#pragma omp parallel for schedule(static) if (big)
  for (int ch = 0; ch < c; ++ch)
    for (int k = 0; k < heads; ++k) {
      float s = 0.f;
      for (int img = 0; img < n; ++img) {
        const float* ds_k = scratch + (size_t(img) * heads + k) * hw;
        const float* m = x + (size_t(img) * c + ch) * hw;
        for (int i = 0; i < hw; ++i) s += ds_k[i] * m[i];
      }
      dw[size_t(k) * c + ch] = s;
    }
}

}  // namespace convpool::cpu
