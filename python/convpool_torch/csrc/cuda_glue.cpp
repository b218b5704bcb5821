// CUDA tensors -> convpool's pooling launchers (kernels/pool.cuh, defined in
// kernels/pool_small.cu and kernels/pool_warp.cu; kernels/intermap_pool.cuh), compiled by nvcc
// into this extension.
// Built only with CONVPOOL_TORCH_CUDA (scripts/build-torch-ext --cuda).
//
// Stream: PyTorch's current stream when the torch we build against has CUDA
// (CONVPOOL_TORCH_CUDA_STREAM, set by python/setup.py); else the legacy default stream, which is
// also PyTorch's default stream unless the caller switched streams.
#include <cuda_runtime.h>
#include <torch/extension.h>

#include <algorithm>

#include "kernels/intermap_pool.cuh"
#include "kernels/lip_pool.cuh"
#include "kernels/weighted_pool.cuh"
#include "kernels/pool.cuh"
#ifdef CONVPOOL_TORCH_CUDA_STREAM
#include <ATen/cuda/CUDAContext.h>
#endif

namespace cp = convpool;

namespace {

void* current_stream() {
#ifdef CONVPOOL_TORCH_CUDA_STREAM
  return at::cuda::getCurrentCUDAStream().stream();
#else
  return nullptr;
#endif
}

const float* alpha_ptr(const at::Tensor& alpha, const at::Tensor& x) {
  if (!alpha.defined() || alpha.numel() == 0) return nullptr;
  TORCH_CHECK(alpha.is_cuda() && alpha.device() == x.device() && alpha.scalar_type() == at::kFloat,
              "convpool_torch: alpha must be a float32 tensor on the input's device");
  return alpha.data_ptr<float>();
}

// The step as the kernels read it: one uint64 in device memory.
at::Tensor device_step(uint64_t step, const at::Tensor& x) {
  return at::full({1}, int64_t(step), x.options().dtype(at::kLong));
}

}  // namespace

std::vector<at::Tensor> cuda_pool_forward(const cp::PoolGeom& g, const cp::PoolWindowParams& p,
                                          uint64_t seed, uint32_t layer, uint64_t step,
                                          const at::Tensor& alpha, const at::Tensor& x) {
  const int n = int(x.size(0));
  at::Tensor y = at::empty({n, g.C, g.OH, g.OW}, x.options());
  const size_t nr = cp::cuda::pool_state_ints(g, p, n);
  at::Tensor ranked = at::empty({int64_t(std::max<size_t>(nr, 1))}, x.options().dtype(at::kInt));
  at::Tensor s = device_step(step, x);
  cp::cuda::pool_forward(g, p, seed, layer, reinterpret_cast<const uint64_t*>(s.data_ptr<int64_t>()),
                         alpha_ptr(alpha, x), n, x.data_ptr<float>(), y.data_ptr<float>(),
                         ranked.data_ptr<int32_t>(), current_stream());
  return {y, ranked};
}

std::vector<at::Tensor> cuda_pool_backward(const cp::PoolGeom& g, const cp::PoolWindowParams& p,
                                           uint64_t seed, uint32_t layer, uint64_t step,
                                           const at::Tensor& alpha, const at::Tensor& x,
                                           const at::Tensor& y, const at::Tensor& dy,
                                           const at::Tensor& ranked) {
  TORCH_CHECK(y.is_cuda() && dy.is_cuda() && ranked.is_cuda() && ranked.scalar_type() == at::kInt,
              "convpool_torch: y, dy and the saved selection must be CUDA tensors");
  const int n = int(x.size(0));
  TORCH_CHECK(ranked.numel() >= int64_t(cp::cuda::pool_state_ints(g, p, n)),
              "convpool_torch: the saved selection does not match this call");
  at::Tensor dx = at::empty_like(x);
  const float* a = alpha_ptr(alpha, x);
  at::Tensor dalpha = a ? at::zeros({1}, x.options()) : at::Tensor();
  at::Tensor s = device_step(step, x);
  cp::cuda::pool_backward(g, p, seed, layer,
                          reinterpret_cast<const uint64_t*>(s.data_ptr<int64_t>()), a, n,
                          x.data_ptr<float>(), y.data_ptr<float>(), dy.data_ptr<float>(),
                          dx.data_ptr<float>(), a ? dalpha.data_ptr<float>() : nullptr,
                          ranked.data_ptr<int32_t>(), current_stream());
  return {dx, dalpha};
}

at::Tensor cuda_intermap_forward(cp::InterMapMode mode, int groups, const at::Tensor& x) {
  at::Tensor y = at::empty({x.size(0), x.size(1) / groups, x.size(2), x.size(3)}, x.options());
  cp::cuda::intermap_pool_forward(mode, groups, x.data_ptr<float>(), y.data_ptr<float>(),
                                  int(x.size(0)), int(x.size(1)), size_t(x.size(2) * x.size(3)),
                                  current_stream());
  return y;
}

at::Tensor cuda_intermap_backward(cp::InterMapMode mode, int groups, const at::Tensor& x,
                                  const at::Tensor& dy) {
  TORCH_CHECK(dy.is_cuda() && dy.device() == x.device(),
              "convpool_torch: dy must be on the input's CUDA device");
  at::Tensor dx = at::empty_like(x);
  cp::cuda::intermap_pool_backward(mode, groups, x.data_ptr<float>(), dy.data_ptr<float>(),
                                   dx.data_ptr<float>(), int(x.size(0)), int(x.size(1)),
                                   size_t(x.size(2) * x.size(3)), current_stream());
  return dx;
}

at::Tensor cuda_weighted_forward(const cp::PoolGeom& g, bool shared, const at::Tensor& x,
                                 const at::Tensor& w) {
  at::Tensor y = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options());
  cp::cuda::weighted_pool_forward(g, w.data_ptr<float>(), shared, x.data_ptr<float>(),
                                  y.data_ptr<float>(), int(x.size(0)), current_stream());
  return y;
}

std::vector<at::Tensor> cuda_weighted_backward(const cp::PoolGeom& g, bool shared,
                                               const at::Tensor& x, const at::Tensor& w,
                                               const at::Tensor& y, const at::Tensor& dy) {
  at::Tensor dx = at::empty_like(x), dw = at::empty_like(w);
  at::Tensor scratch = at::empty({int64_t(cp::weighted_pool_scratch_floats(g, shared))},
                                 x.options());
  cp::cuda::weighted_pool_backward(g, w.data_ptr<float>(), shared, x.data_ptr<float>(),
                                   y.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(),
                                   dw.data_ptr<float>(), int(x.size(0)),
                                   shared ? scratch.data_ptr<float>() : nullptr, current_stream());
  return {dx, dw};
}

at::Tensor cuda_lip_forward(const cp::PoolGeom& g, const at::Tensor& x, const at::Tensor& gamma) {
  at::Tensor y = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options());
  cp::cuda::lip_pool_forward(g, gamma.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(),
                             int(x.size(0)), current_stream());
  return y;
}

std::vector<at::Tensor> cuda_lip_backward(const cp::PoolGeom& g, const at::Tensor& x,
                                          const at::Tensor& gamma, const at::Tensor& y,
                                          const at::Tensor& dy) {
  at::Tensor dx = at::empty_like(x), dgamma = at::empty_like(gamma);
  cp::cuda::lip_pool_backward(g, gamma.data_ptr<float>(), x.data_ptr<float>(),
                              y.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(),
                              dgamma.data_ptr<float>(), int(x.size(0)), current_stream());
  return {dx, dgamma};
}
