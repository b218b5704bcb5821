#include "pyramid_pool.h"

#include "kernels/concat.cuh"
#include "kernels/pool.cuh"
#include "kernels/scale.cuh"

namespace convpool::cuda {

namespace {
PoolWindowParams max_pooling(bool training) {
  PoolWindowParams p;
  p.method = PoolMethod::max;
  p.training = training;
  return p;
}
}  // namespace

size_t pyramid_pool_state_ints(const PoolGeom& size, int batch) {
  return pool_state_ints(size, max_pooling(true), batch);
}

void pyramid_pool_forward(std::span<const PoolGeom> sizes, bool training, const uint64_t* step,
                          int n, const float* x, float* y, float* pooled,
                          std::span<int32_t* const> states, void* stream) {
  const int c = sizes[0].C, total = c * int(sizes.size()), plane = sizes[0].H * sizes[0].W;
  for (size_t i = 0; i < sizes.size(); ++i) {
    pool_forward(sizes[i], max_pooling(training), 0, 0, step, nullptr, n, x, pooled, states[i],
                 stream);
    concat_forward(n, c, total, c * int(i), plane, pooled, y, stream);
  }
}

void pyramid_pool_backward(std::span<const PoolGeom> sizes, bool training, const uint64_t* step,
                           int n, const float* x, const float* y, const float* dy, float* dx,
                           float* work, std::span<int32_t* const> states, void* stream) {
  const int c = sizes[0].C, total = c * int(sizes.size()), plane = sizes[0].H * sizes[0].W;
  const size_t count = size_t(n) * c * plane;
  float *dy_part = work, *dx_part = work + count, *y_part = work + 2 * count;
  for (size_t i = 0; i < sizes.size(); ++i) {
    concat_backward(n, c, total, c * int(i), plane, dy, dy_part, false, stream);
    concat_backward(n, c, total, c * int(i), plane, y, y_part, false, stream);
    pool_backward(sizes[i], max_pooling(training), 0, 0, step, nullptr, n, x, y_part, dy_part,
                  i == 0 ? dx : dx_part, nullptr, states[i], stream);
    if (i) scaled_copy(dx_part, dx, count, 1.f, true, stream);
  }
}

}  // namespace convpool::cuda
