// Spatial pyramid pooling: one thread per output cell (spp_cell_pool), and one per input
// element gathering its cells' gradients level by level, cell by cell (spp_input_grad): the
// CPU's operations in the CPU's order, so the same bits on the emulated target, and no
// atomics. The math is spp_pool_math.cuh.
#include "elementwise.cuh"
#include "spp_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void spp_pool_forward_kernel(SppLevels s, const float* __restrict__ x,
                                        float* __restrict__ y, float* __restrict__ arg,
                                        size_t count, int c, int h, int w) {
  const int per_channel = spp_features_per_channel(s), per_image = c * per_channel;
  CP_GRID_STRIDE(o, count) {
    const int img = int(o / per_image), f = int(o % per_image);
    int t = 0, start = 0;
    while (f >= start + c * s.cells[t] * s.cells[t]) start += c * s.cells[t] * s.cells[t], ++t;
    const int L = s.cells[t], ch = (f - start) / (L * L), cell = (f - start) % (L * L);
    const int a = cell / L, b = cell % L;
    int at = -1;
    y[o] = spp_cell_pool(x + (size_t(img) * c + ch) * h * w, w, spp_cell_begin(a, L, h),
                         spp_cell_end(a, L, h), spp_cell_begin(b, L, w), spp_cell_end(b, L, w),
                         s.max, &at);
    arg[o] = float(at);
  }
}

__global__ void spp_pool_backward_kernel(SppLevels s, const float* __restrict__ arg,
                                         const float* __restrict__ dy, float* __restrict__ dx,
                                         size_t count, int c, int h, int w) {
  const size_t per_image = size_t(c) * spp_features_per_channel(s);
  CP_GRID_STRIDE(i, count) {
    const size_t plane = i / (size_t(h) * w), img = plane / c;
    const int ch = int(plane % c), r = int(i / w % h), col = int(i % w);
    dx[i] = spp_input_grad(s, dy + img * per_image, arg + img * per_image, c, ch, h, w, r, col);
  }
}
}  // namespace

void spp_pool_forward(const SppLevels& s, const float* x, float* y, float* arg, int n, int c, int h,
                      int w, void* stream) {
  const size_t count = size_t(n) * c * spp_features_per_channel(s);
  if (!count) return;
  spp_pool_forward_kernel<<<blocks_for(count), kThreads, 0, as_stream(stream)>>>(s, x, y, arg,
                                                                                 count, c, h, w);
  CP_CUDA_CHECK_LAUNCH("spp_pool_forward_kernel");
}

void spp_pool_backward(const SppLevels& s, const float* arg, const float* dy, float* dx, int n,
                       int c, int h, int w, void* stream) {
  const size_t count = size_t(n) * c * h * w;
  if (!count) return;
  spp_pool_backward_kernel<<<blocks_for(count), kThreads, 0, as_stream(stream)>>>(s, arg, dy, dx,
                                                                                  count, c, h, w);
  CP_CUDA_CHECK_LAUNCH("spp_pool_backward_kernel");
}

}  // namespace convpool::cuda
