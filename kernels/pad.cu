// Explicit zero padding of NCHW planes and its adjoint, the crop. cuDNN pads symmetrically;
// "same" convolutions with an odd total pad (TensorFlow's rule puts the extra row and column
// at the bottom and right: stride 2 with an odd kernel on an even input, any even kernel) run
// cuDNN without padding on a copy padded here, and crop its input gradient back
// (src/cuda/conv_cudnn.cpp).
#include "cuda/check.h"
#include "pad.cuh"

namespace convpool::cuda {

namespace {
// xp[p][i][j] = x[p][i - top][j - left], or 0 outside x. One thread per element of xp.
__global__ void pad_planes_kernel(const float* __restrict__ x, float* __restrict__ xp,
                                  size_t planes, int H, int W, int top, int left, int HP, int WP) {
  const size_t total = planes * size_t(HP) * WP;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < total;
       e += size_t(gridDim.x) * blockDim.x) {
    const int j = int(e % WP), i = int(e / WP % HP);
    const size_t p = e / (size_t(HP) * WP);
    const int si = i - top, sj = j - left;
    xp[e] = si >= 0 && si < H && sj >= 0 && sj < W ? x[(p * H + si) * W + sj] : 0.f;
  }
}

// dx[p][i][j] = dxp[p][i + top][j + left]: the gradient of the padding itself is dropped.
__global__ void crop_planes_kernel(const float* __restrict__ dxp, float* __restrict__ dx,
                                   size_t planes, int H, int W, int top, int left, int HP, int WP) {
  const size_t total = planes * size_t(H) * W;
  for (size_t e = blockIdx.x * size_t(blockDim.x) + threadIdx.x; e < total;
       e += size_t(gridDim.x) * blockDim.x) {
    const int j = int(e % W), i = int(e / W % H);
    const size_t p = e / (size_t(H) * W);
    dx[e] = dxp[(p * HP + i + top) * WP + j + left];
  }
}

constexpr unsigned kThreads = 256;
unsigned blocks_for(size_t n) { return std::min(ceil_div(n, kThreads), 8192u); }
}  // namespace

void pad_planes(const float* x, float* xp, size_t planes, int H, int W, int top, int left, int HP,
                int WP, void* stream) {
  CP_CHECK(top >= 0 && left >= 0 && HP >= H + top && WP >= W + left, "bad padding geometry");
  const size_t total = planes * size_t(HP) * WP;
  if (!total) return;
  pad_planes_kernel<<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(x, xp, planes, H, W,
                                                                           top, left, HP, WP);
  CP_CUDA_CHECK_LAUNCH("pad_planes_kernel");
}

void crop_planes(const float* dxp, float* dx, size_t planes, int H, int W, int top, int left,
                 int HP, int WP, void* stream) {
  CP_CHECK(top >= 0 && left >= 0 && HP >= H + top && WP >= W + left, "bad padding geometry");
  const size_t total = planes * size_t(H) * W;
  if (!total) return;
  crop_planes_kernel<<<blocks_for(total), kThreads, 0, as_stream(stream)>>>(dxp, dx, planes, H, W,
                                                                            top, left, HP, WP);
  CP_CUDA_CHECK_LAUNCH("crop_planes_kernel");
}

}  // namespace convpool::cuda
