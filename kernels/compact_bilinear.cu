// Compact bilinear pooling: one thread per (image, i, j) for the Gram matrix and its gradient,
// per (image, bin) for the sketch (it finds each i's partner j through the inverse hash: a
// gather, so no atomics, and each bin's pairs in the CPU's order), per image for the d-long
// sums, per output and per input element: the CPU's operations in the CPU's order, so the same
// bits on the emulated target. The math is compact_bilinear_math.cuh.
#include "compact_bilinear.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void compact_bilinear_gram_kernel(const float* __restrict__ x, float* __restrict__ g,
                                             size_t count, int c, int hw, size_t per) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(c) * c);
    const int i = int(t / c % c), j = int(t % c);
    g[img * per + size_t(i) * c + j] = compact_bilinear_gram(x + img * c * hw, hw, i, j);
  }
}

__global__ void compact_bilinear_sketch_kernel(CompactBilinearSketch s, const float* __restrict__ g,
                                               float* __restrict__ z, size_t count, int c,
                                               size_t per) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / s.d;
    z[t] = compact_bilinear_bin_sum(s, g + img * per, c, uint32_t(t % s.d));
  }
}

__global__ void compact_bilinear_norm_kernel(const float* __restrict__ z, float* __restrict__ norm,
                                             int n, int d, float eps) {
  CP_GRID_STRIDE(img, size_t(n)) norm[img] = compact_bilinear_norm(z + img * d, d, eps);
}

__global__ void compact_bilinear_output_kernel(const float* __restrict__ z,
                                               const float* __restrict__ norm,
                                               float* __restrict__ u, size_t count, int d,
                                               float eps) {
  CP_GRID_STRIDE(t, count) u[t] = compact_bilinear_root(z[t], eps) / norm[t / d];
}

// dot[img] = u . du, then dz, per element.
__global__ void compact_bilinear_dot_kernel(const float* __restrict__ u,
                                            const float* __restrict__ du, float* __restrict__ dz,
                                            int n, int d, size_t per) {
  CP_GRID_STRIDE(img, size_t(n)) {
    dz[img * per + d] = compact_bilinear_dot(u + img * d, du + img * d, d);
  }
}

__global__ void compact_bilinear_sketch_grad_kernel(const float* __restrict__ u,
                                                    const float* __restrict__ du,
                                                    const float* __restrict__ z,
                                                    const float* __restrict__ norm,
                                                    float* __restrict__ dz, size_t count, int d,
                                                    float eps, size_t per) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / d;
    float* dzi = dz + img * per;
    dzi[t % d] = compact_bilinear_dz(du[t], u[t], dzi[d], norm[img], z[t], eps);
  }
}

__global__ void compact_bilinear_gram_grad_kernel(CompactBilinearSketch s,
                                                  const float* __restrict__ dz,
                                                  float* __restrict__ m, size_t count, int c,
                                                  size_t per) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(c) * c);
    const uint32_t i = uint32_t(t / c % c), j = uint32_t(t % c);
    m[img * per + size_t(i) * c + j] = compact_bilinear_gram_grad(s, dz + img * per, i, j);
  }
}

__global__ void compact_bilinear_input_grad_kernel(const float* __restrict__ m,
                                                   const float* __restrict__ x,
                                                   float* __restrict__ dx, size_t count, int c,
                                                   int hw, size_t per) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(c) * hw);
    const int ch = int(t / hw % c), l = int(t % hw);
    dx[t] = compact_bilinear_input_grad(m + img * per, x + img * c * hw, c, hw, ch, l);
  }
}
}  // namespace

void compact_bilinear_forward(const CompactBilinearSketch& s, const float* x, float* u, float* z,
                              float* norm, int n, int c, int hw, float* scratch, void* stream) {
  if (n <= 0) return;
  const size_t per = compact_bilinear_scratch_floats(1, c, hw, s.d);
  const size_t pairs = size_t(n) * c * c, bins = size_t(n) * s.d;
  compact_bilinear_gram_kernel<<<blocks_for(pairs), kThreads, 0, as_stream(stream)>>>(
      x, scratch, pairs, c, hw, per);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_gram_kernel");
  compact_bilinear_sketch_kernel<<<blocks_for(bins), kThreads, 0, as_stream(stream)>>>(
      s, scratch, z, bins, c, per);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_sketch_kernel");
  compact_bilinear_normalise(z, norm, u, n, s.d, s.eps, stream);
}

void compact_bilinear_normalise(const float* z, float* norm, float* u, int n, int d, float eps,
                                void* stream) {
  if (n <= 0) return;
  compact_bilinear_norm_kernel<<<blocks_for(size_t(n)), kThreads, 0, as_stream(stream)>>>(
      z, norm, n, d, eps);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_norm_kernel");
  const size_t bins = size_t(n) * d;
  compact_bilinear_output_kernel<<<blocks_for(bins), kThreads, 0, as_stream(stream)>>>(
      z, norm, u, bins, d, eps);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_output_kernel");
}

void compact_bilinear_sketch_grad(const float* u, const float* du, const float* z,
                                  const float* norm, float* dz, size_t stride, int n, int d,
                                  float eps, void* stream) {
  if (n <= 0) return;
  compact_bilinear_dot_kernel<<<blocks_for(size_t(n)), kThreads, 0, as_stream(stream)>>>(
      u, du, dz, n, d, stride);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_dot_kernel");
  const size_t bins = size_t(n) * d;
  compact_bilinear_sketch_grad_kernel<<<blocks_for(bins), kThreads, 0, as_stream(stream)>>>(
      u, du, z, norm, dz, bins, d, eps, stride);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_sketch_grad_kernel");
}

void compact_bilinear_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                               const float* z, const float* norm, const float* du, float* dx, int n,
                               int c, int hw, float* scratch, void* stream) {
  if (n <= 0) return;
  const size_t per = compact_bilinear_scratch_floats(1, c, hw, s.d);
  const size_t pairs = size_t(n) * c * c, inputs = size_t(n) * c * hw;
  float* dz = scratch + size_t(c) * c;  // each image's dz and u . du follow its M
  compact_bilinear_sketch_grad(u, du, z, norm, dz, per, n, s.d, s.eps, stream);
  compact_bilinear_gram_grad_kernel<<<blocks_for(pairs), kThreads, 0, as_stream(stream)>>>(
      s, dz, scratch, pairs, c, per);
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_gram_grad_kernel");
  if (inputs) {
    compact_bilinear_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
        scratch, x, dx, inputs, c, hw, per);
    CP_CUDA_CHECK_LAUNCH("compact_bilinear_input_grad_kernel");
  }
}

}  // namespace convpool::cuda
