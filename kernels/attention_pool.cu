// Attention pooling: one thread per (image, head, position) for the scores and their
// gradients, per (image, head) for the softmax and its backward, per output, per input
// element, and per weight (the images and positions summed in order): the CPU's operations in
// the CPU's order, so the same bits on the emulated target and no atomics. The math is
// attention_pool_math.cuh.
#include "attention_pool.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

// out[(img, k, i)] = sum_c v[img or none][k, c] x[img, c, i]: the scores (v = W, one for all
// images) or their incoming gradients (v = dy, one row of h C per image).
__global__ void attention_pool_scores_kernel(const float* __restrict__ v, bool per_image, int heads,
                                             const float* __restrict__ x, float* __restrict__ out,
                                             size_t count, int c, int hw) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(heads) * hw);
    const int k = int(t / hw % heads), i = int(t % hw);
    const float* v_k = v + (per_image ? img * heads * c : 0) + size_t(k) * c;
    out[t] = attention_pool_score(v_k, x + img * c * hw, c, hw, i);
  }
}

__global__ void attention_pool_softmax_kernel(float* __restrict__ a, size_t rows, int hw) {
  CP_GRID_STRIDE(r, rows) attention_pool_softmax(a + r * hw, hw);
}

__global__ void attention_pool_output_kernel(const float* __restrict__ a,
                                             const float* __restrict__ x, float* __restrict__ y,
                                             size_t outputs, int heads, int c, int hw) {
  CP_GRID_STRIDE(o, outputs) {
    const size_t img = o / (size_t(heads) * c);
    const int k = int(o / c % heads), ch = int(o % c);
    y[o] = attention_pool_output(a + (img * heads + k) * hw, x + (img * c + ch) * hw, hw);
  }
}

__global__ void attention_pool_score_grad_kernel(const float* __restrict__ a, float* __restrict__ g,
                                                 size_t rows, int hw) {
  CP_GRID_STRIDE(r, rows) attention_pool_score_grad(a + r * hw, g + r * hw, hw);
}

__global__ void attention_pool_input_grad_kernel(
    const float* __restrict__ a, const float* __restrict__ ds, const float* __restrict__ w,
    const float* __restrict__ dy, float* __restrict__ dx, size_t inputs, int heads, int c, int hw) {
  CP_GRID_STRIDE(t, inputs) {
    const size_t img = t / (size_t(c) * hw);
    const int ch = int(t / hw % c), i = int(t % hw);
    const size_t rows = img * heads * hw;
    dx[t] = attention_pool_input_grad(a + rows, ds + rows, w, dy + img * heads * c, heads, c, hw,
                                      ch, i);
  }
}

// dw[k, c] = sum over images, then positions, of ds_k(i) x_c(i).
__global__ void attention_pool_weight_grad_kernel(const float* __restrict__ ds,
                                                  const float* __restrict__ x,
                                                  float* __restrict__ dw, int n, int heads, int c,
                                                  int hw) {
  CP_GRID_STRIDE(t, size_t(heads) * c) {
    const int k = int(t / c), ch = int(t % c);
    float s = 0.f;
    for (int img = 0; img < n; ++img) {
      const float* d = ds + (size_t(img) * heads + k) * hw;
      const float* m = x + (size_t(img) * c + ch) * hw;
      for (int i = 0; i < hw; ++i) s += d[i] * m[i];
    }
    dw[t] = s;
  }
}
}  // namespace

void attention_pool_forward(const float* w, int heads, const float* x, float* y, float* attention,
                            int n, int c, int hw, void* stream) {
  const size_t rows = size_t(n) * heads, scores = rows * hw;
  if (!scores) return;
  attention_pool_scores_kernel<<<blocks_for(scores), kThreads, 0, as_stream(stream)>>>(
      w, false, heads, x, attention, scores, c, hw);
  CP_CUDA_CHECK_LAUNCH("attention_pool_scores_kernel");
  attention_pool_softmax_kernel<<<blocks_for(rows), kThreads, 0, as_stream(stream)>>>(attention,
                                                                                      rows, hw);
  CP_CUDA_CHECK_LAUNCH("attention_pool_softmax_kernel");
  const size_t outputs = rows * c;
  attention_pool_output_kernel<<<blocks_for(outputs), kThreads, 0, as_stream(stream)>>>(
      attention, x, y, outputs, heads, c, hw);
  CP_CUDA_CHECK_LAUNCH("attention_pool_output_kernel");
}

void attention_pool_backward(const float* w, int heads, const float* x, const float* attention,
                             const float* dy, float* dx, float* dw, int n, int c, int hw,
                             float* scratch, void* stream) {
  const size_t rows = size_t(n) * heads, scores = rows * hw;
  if (scores) {
    attention_pool_scores_kernel<<<blocks_for(scores), kThreads, 0, as_stream(stream)>>>(
        dy, true, heads, x, scratch, scores, c, hw);
    CP_CUDA_CHECK_LAUNCH("attention_pool_scores_kernel");
    attention_pool_score_grad_kernel<<<blocks_for(rows), kThreads, 0, as_stream(stream)>>>(
        attention, scratch, rows, hw);
    CP_CUDA_CHECK_LAUNCH("attention_pool_score_grad_kernel");
  }
  const size_t inputs = size_t(n) * c * hw;
  if (dx && inputs) {
    attention_pool_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
        attention, scratch, w, dy, dx, inputs, heads, c, hw);
    CP_CUDA_CHECK_LAUNCH("attention_pool_input_grad_kernel");
  }
  const size_t weights = size_t(heads) * c;
  attention_pool_weight_grad_kernel<<<blocks_for(weights), kThreads, 0, as_stream(stream)>>>(
      scratch, x, dw, n, heads, c, hw);
  CP_CUDA_CHECK_LAUNCH("attention_pool_weight_grad_kernel");
}

}  // namespace convpool::cuda
