// Spectral pooling on the CPU: planes in parallel, each sum in spectral_pool_math.cuh's order,
// so the CUDA kernels' result bit for bit where the arithmetic is the host's (the emulated
// target). Every loop runs along a vector of independent sums, each taking its terms in that
// order: along the output columns q for t = X A_w^T (the input columns in turn, from A_w
// transposed), y = A_h t and dt = A_h^T dy (the rows in turn); along the input columns for
// dx = dt A_w (the output columns in turn). AVX2 clones where the processor has them: the same
// operations lane by lane, no FMA.
#include "spectral_pool.h"

#include "avx2_clones.h"

namespace convpool::cpu {

namespace {

struct Matrices {
  float *ah, *aw, *awt, *t;
};

// A_h, A_w and A_w^T into the scratch; t follows them.
Matrices matrices(float* scratch, int h_in, int w_in, int h_out, int w_out) {
  Matrices m{scratch, scratch + size_t(h_out) * h_in, nullptr, nullptr};
  m.awt = m.aw + size_t(w_out) * w_in;
  m.t = m.awt + size_t(w_out) * w_in;
  for (int i = 0; i < h_out; ++i)
    for (int r = 0; r < h_in; ++r)
      m.ah[size_t(i) * h_in + r] = spectral_pool_weight(h_out, h_in, i, r);
  for (int q = 0; q < w_out; ++q)
    for (int n = 0; n < w_in; ++n)
      m.awt[size_t(n) * w_out + q] = m.aw[size_t(q) * w_in + n] =
          spectral_pool_weight(w_out, w_in, q, n);
  return m;
}

// One plane: t = x A_w^T (H x w), then y = A_h t.
CONVPOOL_AVX2_CLONES void forward_plane(const float* __restrict x, const float* __restrict ah,
                                        const float* __restrict awt, int h_in, int w_in, int h_out,
                                        int w_out, float* __restrict t, float* __restrict y) {
  for (int r = 0; r < h_in; ++r) {
    float* tr = t + size_t(r) * w_out;
    const float* xr = x + size_t(r) * w_in;
    for (int q = 0; q < w_out; ++q) tr[q] = 0.f;
    for (int n = 0; n < w_in; ++n) {
      const float f = xr[n];
      const float* a = awt + size_t(n) * w_out;
#pragma omp simd
      for (int q = 0; q < w_out; ++q) tr[q] += f * a[q];
    }
  }
  for (int m = 0; m < h_out; ++m) {
    float* ym = y + size_t(m) * w_out;
    const float* a = ah + size_t(m) * h_in;
    for (int q = 0; q < w_out; ++q) ym[q] = 0.f;
    for (int r = 0; r < h_in; ++r) {
      const float f = a[r];
      const float* tr = t + size_t(r) * w_out;
#pragma omp simd
      for (int q = 0; q < w_out; ++q) ym[q] += f * tr[q];
    }
  }
}

// One plane: dt = A_h^T dy (H x w), then dx = dt A_w.
CONVPOOL_AVX2_CLONES void backward_plane(const float* __restrict dy, const float* __restrict ah,
                                         const float* __restrict aw, int h_in, int w_in, int h_out,
                                         int w_out, float* __restrict dt, float* __restrict dx) {
  for (int r = 0; r < h_in; ++r) {
    float* d = dt + size_t(r) * w_out;
    for (int q = 0; q < w_out; ++q) d[q] = 0.f;
    for (int m = 0; m < h_out; ++m) {
      const float f = ah[size_t(m) * h_in + r];
      const float* g = dy + size_t(m) * w_out;
#pragma omp simd
      for (int q = 0; q < w_out; ++q) d[q] += f * g[q];
    }
  }
  for (int r = 0; r < h_in; ++r) {
    float* o = dx + size_t(r) * w_in;
    const float* d = dt + size_t(r) * w_out;
    for (int n = 0; n < w_in; ++n) o[n] = 0.f;
    for (int q = 0; q < w_out; ++q) {
      const float f = d[q];
      const float* a = aw + size_t(q) * w_in;
#pragma omp simd
      for (int n = 0; n < w_in; ++n) o[n] += f * a[n];
    }
  }
}

bool parallel(size_t planes, int h_in, int w_in, int w_out) {
  return planes * h_in * (w_in + 1) * w_out > 65536;
}

}  // namespace

void spectral_pool_forward(const float* x, float* y, size_t planes, int h_in, int w_in, int h_out,
                           int w_out, float* scratch) {
  const Matrices m = matrices(scratch, h_in, w_in, h_out, w_out);
  const long count = long(planes);
#pragma omp parallel for schedule(static) if (parallel(planes, h_in, w_in, w_out))
  for (long p = 0; p < count; ++p)
    forward_plane(x + size_t(p) * h_in * w_in, m.ah, m.awt, h_in, w_in, h_out, w_out,
                  m.t + size_t(p) * h_in * w_out, y + size_t(p) * h_out * w_out);
}

void spectral_pool_backward(const float* dy, float* dx, size_t planes, int h_in, int w_in,
                            int h_out, int w_out, float* scratch) {
  const Matrices m = matrices(scratch, h_in, w_in, h_out, w_out);
  const long count = long(planes);
#pragma omp parallel for schedule(static) if (parallel(planes, h_in, w_in, w_out))
  for (long p = 0; p < count; ++p)
    backward_plane(dy + size_t(p) * h_out * w_out, m.ah, m.aw, h_in, w_in, h_out, w_out,
                   m.t + size_t(p) * h_in * w_out, dx + size_t(p) * h_in * w_in);
}

}  // namespace convpool::cpu
