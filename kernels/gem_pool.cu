// GeM pooling: one thread per plane for the forward pass and for each plane's backward
// factors, one per input element for dx, one per channel to sum the parameter's gradient over
// the images in order (and one to add the channels in order for a shared parameter): the CPU's
// operations in the CPU's order, so the same bits on the emulated target and no atomics. The
// math is gem_pool_math.cuh.
#include "elementwise.cuh"
#include "gem_pool.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

__global__ void gem_pool_forward_kernel(const float* __restrict__ theta, bool shared, float eps,
                                        const float* __restrict__ x, float* __restrict__ y,
                                        size_t planes, int c, int hw) {
  CP_GRID_STRIDE(q, planes) {
    const float p = gem_exponent(theta[shared ? 0 : q % c]);
    const float* plane = x + q * hw;
    const float zmax = gem_max(plane, hw, eps);
    y[q] = gem_output(zmax, gem_mean_power(plane, hw, p, eps, cp_log(zmax)), p);
  }
}

// Each plane's input-gradient factor to factor[q], its zmax's logarithm to log_max[q] and its
// parameter-gradient term to term[q].
__global__ void gem_pool_plane_grad_kernel(const float* __restrict__ theta, bool shared, float eps,
                                           const float* __restrict__ x, const float* __restrict__ y,
                                           const float* __restrict__ dy, float* __restrict__ factor,
                                           float* __restrict__ log_max, float* __restrict__ term,
                                           size_t planes, int c, int hw) {
  CP_GRID_STRIDE(q, planes) {
    const float t = theta[shared ? 0 : q % c], p = gem_exponent(t);
    const float* plane = x + q * hw;
    const float zmax = gem_max(plane, hw, eps), lmax = cp_log(zmax);
    const float m = gem_mean_power(plane, hw, p, eps, lmax);
    factor[q] = gem_input_factor(dy[q], m, p, hw);
    log_max[q] = lmax;
    term[q] =
        gem_parameter_grad(t, p, gem_power_log_sum(plane, hw, p, eps, lmax), hw, y[q], m, dy[q]);
  }
}

__global__ void gem_pool_input_grad_kernel(const float* __restrict__ theta, bool shared, float eps,
                                           const float* __restrict__ x,
                                           const float* __restrict__ factor,
                                           const float* __restrict__ log_max,
                                           float* __restrict__ dx, size_t inputs, int c, int hw) {
  CP_GRID_STRIDE(i, inputs) {
    const size_t q = i / hw;
    const float p = gem_exponent(theta[shared ? 0 : q % c]);
    dx[i] = gem_input_grad(x[i], gem_log(x[i], eps), log_max[q], eps, p, factor[q]);
  }
}

// Channel ch's terms summed over the images in order.
__global__ void gem_pool_channel_sum_kernel(const float* __restrict__ term, int n, int c,
                                            float* __restrict__ out) {
  CP_GRID_STRIDE(ch, size_t(c)) {
    float s = 0.f;
    for (int i = 0; i < n; ++i) s += term[size_t(i) * c + ch];
    out[ch] = s;
  }
}

__global__ void gem_pool_shared_sum_kernel(const float* __restrict__ per_channel, int c,
                                           float* __restrict__ out) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    float s = 0.f;
    for (int ch = 0; ch < c; ++ch) s += per_channel[ch];
    out[0] = s;
  }
}
}  // namespace

void gem_pool_forward(const float* theta, bool shared, float eps, const float* x, float* y, int n,
                      int c, int hw, void* stream) {
  const size_t planes = size_t(n) * c;
  if (!planes) return;
  gem_pool_forward_kernel<<<blocks_for(planes), kThreads, 0, as_stream(stream)>>>(
      theta, shared, eps, x, y, planes, c, hw);
  CP_CUDA_CHECK_LAUNCH("gem_pool_forward_kernel");
}

void gem_pool_backward(const float* theta, bool shared, float eps, const float* x, const float* y,
                       const float* dy, float* dx, float* dtheta, int n, int c, int hw,
                       float* scratch, void* stream) {
  const size_t planes = size_t(n) * c;
  float *factor = scratch, *log_max = scratch + planes, *term = scratch + 2 * planes,
        *per_channel = scratch + 3 * planes;
  if (planes) {
    gem_pool_plane_grad_kernel<<<blocks_for(planes), kThreads, 0, as_stream(stream)>>>(
        theta, shared, eps, x, y, dy, factor, log_max, term, planes, c, hw);
    CP_CUDA_CHECK_LAUNCH("gem_pool_plane_grad_kernel");
  }
  const size_t inputs = planes * size_t(hw);
  if (dx && inputs) {
    gem_pool_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, as_stream(stream)>>>(
        theta, shared, eps, x, factor, log_max, dx, inputs, c, hw);
    CP_CUDA_CHECK_LAUNCH("gem_pool_input_grad_kernel");
  }
  gem_pool_channel_sum_kernel<<<blocks_for(size_t(c)), kThreads, 0, as_stream(stream)>>>(
      term, n, c, shared ? per_channel : dtheta);
  CP_CUDA_CHECK_LAUNCH("gem_pool_channel_sum_kernel");
  if (shared) {
    gem_pool_shared_sum_kernel<<<1, 32, 0, as_stream(stream)>>>(per_channel, c, dtheta);
    CP_CUDA_CHECK_LAUNCH("gem_pool_shared_sum_kernel");
  }
}

}  // namespace convpool::cuda
