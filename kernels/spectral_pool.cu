// Spectral pooling: one thread per matrix entry (both matrices, built from
// spectral_pool_weight), then one per element of t = X A_w^T, of Y = A_h t, of
// dt = A_h^T dY and of dX = dt A_w, each summing in index order: the CPU's operations in the
// CPU's order, so the same bits on the emulated target. The math is spectral_pool_math.cuh.
#include "elementwise.cuh"
#include "spectral_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

// ah: h_out x h_in, then aw: w_out x w_in.
__global__ void spectral_pool_matrices_kernel(float* __restrict__ ah, float* __restrict__ aw,
                                              int h_in, int w_in, int h_out, int w_out) {
  const size_t rows = size_t(h_out) * h_in, count = rows + size_t(w_out) * w_in;
  CP_GRID_STRIDE(t, count) {
    if (t < rows)
      ah[t] = spectral_pool_weight(h_out, h_in, int(t / h_in), int(t % h_in));
    else
      aw[t - rows] =
          spectral_pool_weight(w_out, w_in, int((t - rows) / w_in), int((t - rows) % w_in));
  }
}

__global__ void spectral_pool_rows_kernel(const float* __restrict__ x, const float* __restrict__ aw,
                                          float* __restrict__ t, size_t count, int w_in,
                                          int w_out) {
  CP_GRID_STRIDE(i, count) {  // i = (plane, r, q)
    const size_t row = i / w_out;
    t[i] = spectral_pool_row(x + row * w_in, aw + size_t(i % w_out) * w_in, w_in);
  }
}

__global__ void spectral_pool_columns_kernel(const float* __restrict__ ah,
                                             const float* __restrict__ t, float* __restrict__ y,
                                             size_t count, int h_in, int h_out, int w_out) {
  CP_GRID_STRIDE(i, count) {  // i = (plane, m, q)
    const size_t plane = i / (size_t(h_out) * w_out);
    const int m = int(i / w_out % h_out), q = int(i % w_out);
    y[i] = spectral_pool_column(ah + size_t(m) * h_in, t + plane * h_in * w_out, h_in, w_out, q);
  }
}

__global__ void spectral_pool_column_grad_kernel(const float* __restrict__ ah,
                                                 const float* __restrict__ dy,
                                                 float* __restrict__ dt, size_t count, int h_in,
                                                 int h_out, int w_out) {
  CP_GRID_STRIDE(i, count) {  // i = (plane, r, q)
    const size_t plane = i / (size_t(h_in) * w_out);
    const int r = int(i / w_out % h_in), q = int(i % w_out);
    dt[i] = spectral_pool_column_grad(ah, dy + plane * h_out * w_out, h_out, h_in, w_out, r, q);
  }
}

__global__ void spectral_pool_row_grad_kernel(const float* __restrict__ dt,
                                              const float* __restrict__ aw, float* __restrict__ dx,
                                              size_t count, int w_in, int w_out) {
  CP_GRID_STRIDE(i, count) {  // i = (plane, r, n)
    const size_t row = i / w_in;
    dx[i] = spectral_pool_row_grad(dt + row * w_out, aw, w_out, w_in, int(i % w_in));
  }
}

void launch_matrices(float* scratch, int h_in, int w_in, int h_out, int w_out, void* stream) {
  const size_t count = size_t(h_out) * h_in + size_t(w_out) * w_in;
  spectral_pool_matrices_kernel<<<blocks_for(count), kThreads, 0, as_stream(stream)>>>(
      scratch, scratch + size_t(h_out) * h_in, h_in, w_in, h_out, w_out);
  CP_CUDA_CHECK_LAUNCH("spectral_pool_matrices_kernel");
}
}  // namespace

// The scratch's layout is the CPU's: A_h, A_w, A_w^T (unused here), then t.
void spectral_pool_forward(const float* x, float* y, size_t planes, int h_in, int w_in, int h_out,
                           int w_out, float* scratch, void* stream) {
  if (!planes) return;
  launch_matrices(scratch, h_in, w_in, h_out, w_out, stream);
  const float* ah = scratch;
  const float* aw = scratch + size_t(h_out) * h_in;
  float* t = scratch + size_t(h_out) * h_in + 2 * size_t(w_out) * w_in;
  const size_t ts = planes * h_in * w_out, ys = planes * h_out * w_out;
  spectral_pool_rows_kernel<<<blocks_for(ts), kThreads, 0, as_stream(stream)>>>(x, aw, t, ts, w_in,
                                                                                w_out);
  CP_CUDA_CHECK_LAUNCH("spectral_pool_rows_kernel");
  spectral_pool_columns_kernel<<<blocks_for(ys), kThreads, 0, as_stream(stream)>>>(
      ah, t, y, ys, h_in, h_out, w_out);
  CP_CUDA_CHECK_LAUNCH("spectral_pool_columns_kernel");
}

void spectral_pool_backward(const float* dy, float* dx, size_t planes, int h_in, int w_in,
                            int h_out, int w_out, float* scratch, void* stream) {
  if (!planes) return;
  launch_matrices(scratch, h_in, w_in, h_out, w_out, stream);
  const float* ah = scratch;
  const float* aw = scratch + size_t(h_out) * h_in;
  float* dt = scratch + size_t(h_out) * h_in + 2 * size_t(w_out) * w_in;
  const size_t ts = planes * h_in * w_out, xs = planes * h_in * w_in;
  spectral_pool_column_grad_kernel<<<blocks_for(ts), kThreads, 0, as_stream(stream)>>>(
      ah, dy, dt, ts, h_in, h_out, w_out);
  CP_CUDA_CHECK_LAUNCH("spectral_pool_column_grad_kernel");
  spectral_pool_row_grad_kernel<<<blocks_for(xs), kThreads, 0, as_stream(stream)>>>(dt, aw, dx, xs,
                                                                                    w_in, w_out);
  CP_CUDA_CHECK_LAUNCH("spectral_pool_row_grad_kernel");
}

}  // namespace convpool::cuda
