// Attention pooling on the CPU: images in parallel (the weights' gradient by channels), each
// output, score and gradient summed in attention_pool_math.cuh's order, so the CUDA kernels'
// result bit for bit where the arithmetic is the host's (the emulated target). Every loop runs
// along a vector of independent sums, each of which takes its terms in that order: scores
// along positions (the channels in turn); outputs and the weights' gradient along channels,
// from the image's maps transposed to positions x channels (the positions in turn). AVX2
// clones where the processor has them: the same operations lane by lane, no FMA.
#include "attention_pool.h"

#include <algorithm>

#include "avx2_clones.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace convpool::cpu {

namespace {

// out[k][i] = sum_c v[k][c] x[c][i] for one image: the channels in order, every position at
// once (attention_pool_score for each i).
CONVPOOL_AVX2_CLONES void scores(const float* __restrict v, int heads, const float* __restrict x,
                                 int c, int hw, float* __restrict out) {
  for (int k = 0; k < heads; ++k) {
    float* o = out + size_t(k) * hw;
    const float* v_k = v + size_t(k) * c;
    for (int i = 0; i < hw; ++i) o[i] = 0.f;
    for (int ch = 0; ch < c; ++ch) {
      const float f = v_k[ch];
      const float* m = x + size_t(ch) * hw;
#pragma omp simd
      for (int i = 0; i < hw; ++i) o[i] += f * m[i];
    }
  }
}

// xt[i][c] = x[c][i].
void transpose(const float* __restrict x, int c, int hw, float* __restrict xt) {
  for (int ch = 0; ch < c; ++ch)
    for (int i = 0; i < hw; ++i) xt[size_t(i) * c + ch] = x[size_t(ch) * hw + i];
}

// y[k][c] = sum_i a[k][i] xt[i][c] (attention_pool_output for each c): the positions in order,
// every channel at once.
CONVPOOL_AVX2_CLONES void weighted_sums(const float* __restrict a, int heads,
                                        const float* __restrict xt, int c, int hw,
                                        float* __restrict y) {
  for (int k = 0; k < heads; ++k) {
    float* yk = y + size_t(k) * c;
    const float* a_k = a + size_t(k) * hw;
    for (int ch = 0; ch < c; ++ch) yk[ch] = 0.f;
    for (int i = 0; i < hw; ++i) {
      const float f = a_k[i];
      const float* row = xt + size_t(i) * c;
#pragma omp simd
      for (int ch = 0; ch < c; ++ch) yk[ch] += f * row[ch];
    }
  }
}

// dx[c][i] = sum_k (a[k][i] dy[k][c] + w[k][c] ds[k][i]) (attention_pool_input_grad).
CONVPOOL_AVX2_CLONES void input_grads(const float* __restrict a, const float* __restrict ds,
                                      const float* __restrict w, const float* __restrict dy,
                                      int heads, int c, int hw, float* __restrict dx) {
  for (int ch = 0; ch < c; ++ch) {
    float* o = dx + size_t(ch) * hw;
    for (int i = 0; i < hw; ++i) o[i] = 0.f;
    for (int k = 0; k < heads; ++k) {
      const float dyk = dy[size_t(k) * c + ch], wk = w[size_t(k) * c + ch];
      const float *a_k = a + size_t(k) * hw, *ds_k = ds + size_t(k) * hw;
#pragma omp simd
      for (int i = 0; i < hw; ++i) {
        o[i] += a_k[i] * dyk;
        o[i] += wk * ds_k[i];
      }
    }
  }
}

// dw[k][c0, c1) += sum_i ds[k][i] xt[i][c] for one image: the positions in order.
CONVPOOL_AVX2_CLONES void weight_grads(const float* __restrict ds, int heads,
                                       const float* __restrict xt, int c, int hw, int c0, int c1,
                                       float* __restrict dw) {
  for (int k = 0; k < heads; ++k) {
    float* d = dw + size_t(k) * c;
    const float* ds_k = ds + size_t(k) * hw;
    for (int i = 0; i < hw; ++i) {
      const float f = ds_k[i];
      const float* row = xt + size_t(i) * c;
#pragma omp simd
      for (int ch = c0; ch < c1; ++ch) d[ch] += f * row[ch];
    }
  }
}

}  // namespace

void attention_pool_forward(const float* w, int heads, const float* x, float* y,
                            float* attention, int n, int c, int hw, float* scratch) {
  float* xt_all = scratch + size_t(n) * heads * hw;
#pragma omp parallel for schedule(static) if (long(n) * c * hw * heads > 16384)
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * hw;
    float* a = attention + size_t(img) * heads * hw;
    float* xt = xt_all + size_t(img) * c * hw;
    scores(w, heads, xi, c, hw, a);
    for (int k = 0; k < heads; ++k) attention_pool_softmax(a + size_t(k) * hw, hw);
    transpose(xi, c, hw, xt);
    weighted_sums(a, heads, xt, c, hw, y + size_t(img) * heads * c);
  }
}

void attention_pool_backward(const float* w, int heads, const float* x, const float* attention,
                             const float* dy, float* dx, float* dw, int n, int c, int hw,
                             float* scratch) {
  float* xt_all = scratch + size_t(n) * heads * hw;
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
    transpose(xi, c, hw, xt_all + size_t(img) * c * hw);
    if (dx) input_grads(a, ds, w, d, heads, c, hw, dx + size_t(img) * c * hw);
  }
  // dw: the channels split between the threads, each image's positions added in turn.
  for (size_t i = 0; i < size_t(heads) * c; ++i) dw[i] = 0.f;
#pragma omp parallel if (big)
  {
#ifdef _OPENMP
    const int t = omp_get_thread_num(), threads = omp_get_num_threads();
#else
    const int t = 0, threads = 1;
#endif
    const int per = (c + threads - 1) / threads, c0 = std::min(c, t * per),
              c1 = std::min(c, c0 + per);
    for (int img = 0; c0 < c1 && img < n; ++img)
      weight_grads(scratch + size_t(img) * heads * hw, heads, xt_all + size_t(img) * c * hw, c,
                   hw, c0, c1, dw);
  }
}

}  // namespace convpool::cpu
