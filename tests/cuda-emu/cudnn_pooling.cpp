// The emulated cuDNN's pooling (the baseline `bench pool` times beside our kernels): max
// (the gradient to the window's first maximum) and average, including or excluding padding,
// as direct loops queued on the handle's stream, with alpha and beta.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cudnn_internal.h"
#include "emu_api.h"

using cuda_emu::cudnn::blend;
using cuda_emu::cudnn::out_size;

cudnnStatus_t cudnnSetPooling2dDescriptor(cudnnPoolingDescriptor_t d, cudnnPoolingMode_t mode,
                                          cudnnNanPropagation_t, int window_h, int window_w,
                                          int pad_h, int pad_w, int stride_h, int stride_w) {
  if (!d || window_h < 1 || window_w < 1 || pad_h < 0 || pad_w < 0 || stride_h < 1 || stride_w < 1)
    return CUDNN_STATUS_BAD_PARAM;
  *d = {mode, window_h, window_w, pad_h, pad_w, stride_h, stride_w, true};
  return CUDNN_STATUS_SUCCESS;
}

namespace {
bool pool_shapes(const cudnnPoolingStruct* p, const cudnnTensorStruct* x,
                 const cudnnTensorStruct* y) {
  return p && x && y && p->set && x->set && y->set && x->n == y->n && x->c == y->c &&
         y->h == out_size(x->h, p->ph, p->kh, p->sh) && y->w == out_size(x->w, p->pw, p->kw, p->sw);
}
// Calls f(input index) over the window of output (plane, oh, ow), in row-major order.
template <class F>
void window(const cudnnPoolingStruct& p, const cudnnTensorStruct& x, int oh, int ow, F f) {
  for (int r = 0; r < p.kh; ++r)
    for (int q = 0; q < p.kw; ++q) {
      const int ih = oh * p.sh - p.ph + r, iw = ow * p.sw - p.pw + q;
      if (ih >= 0 && ih < x.h && iw >= 0 && iw < x.w) f(size_t(ih) * x.w + iw);
    }
}
bool is_max(cudnnPoolingMode_t m) {
  return m == CUDNN_POOLING_MAX || m == CUDNN_POOLING_MAX_DETERMINISTIC;
}
}  // namespace

cudnnStatus_t cudnnPoolingForward(cudnnHandle_t h, cudnnPoolingDescriptor_t pool, const void* alpha,
                                  cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                  cudnnTensorDescriptor_t yd, void* y) {
  if (!alpha || !beta || !x || !y || !pool_shapes(pool, xd, yd)) return CUDNN_STATUS_BAD_PARAM;
  if (!cuda_emu::cudnn::live_handle(h)) return CUDNN_STATUS_BAD_PARAM;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const cudnnPoolingStruct p = *pool;
  const cudnnTensorStruct X = *xd, Y = *yd;
  const auto* in = static_cast<const float*>(x);
  auto* out = static_cast<float*>(y);
  const cudaError_t e = cuda_emu::enqueue(h->stream, "cudnnPoolingForward", [=] {
    for (size_t plane = 0; plane < size_t(X.n) * X.c; ++plane)
      for (int oh = 0; oh < Y.h; ++oh)
        for (int ow = 0; ow < Y.w; ++ow) {
          const float* src = in + plane * X.h * X.w;
          double acc = is_max(p.mode) ? -INFINITY : 0.0;
          int count = 0;
          window(p, X, oh, ow, [&](size_t i) {
            acc = is_max(p.mode) ? std::max(acc, double(src[i])) : acc + src[i];
            ++count;
          });
          if (!is_max(p.mode))
            acc /= p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING ? p.kh * p.kw
                                                                         : std::max(count, 1);
          float& o = out[(plane * Y.h + oh) * Y.w + ow];
          o = blend(a, acc, b, o);
        }
  });
  return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

cudnnStatus_t cudnnPoolingBackward(cudnnHandle_t h, cudnnPoolingDescriptor_t pool,
                                   const void* alpha, cudnnTensorDescriptor_t yd, const void* y,
                                   cudnnTensorDescriptor_t dyd, const void* dy,
                                   cudnnTensorDescriptor_t xd, const void* x, const void* beta,
                                   cudnnTensorDescriptor_t dxd, void* dx) {
  if (!alpha || !beta || !y || !dy || !x || !dx || !pool_shapes(pool, xd, yd) || !dyd || !dxd)
    return CUDNN_STATUS_BAD_PARAM;
  if (!cuda_emu::cudnn::live_handle(h)) return CUDNN_STATUS_BAD_PARAM;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const cudnnPoolingStruct p = *pool;
  const cudnnTensorStruct X = *xd, Y = *yd;
  const auto* in = static_cast<const float*>(x);
  const auto* outv = static_cast<const float*>(y);
  const auto* g = static_cast<const float*>(dy);
  auto* dst = static_cast<float*>(dx);
  const cudaError_t e = cuda_emu::enqueue(h->stream, "cudnnPoolingBackward", [=] {
    const size_t plane_in = size_t(X.h) * X.w, plane_out = size_t(Y.h) * Y.w;
    std::vector<double> acc(plane_in);
    for (size_t plane = 0; plane < size_t(X.n) * X.c; ++plane) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* src = in + plane * plane_in;
      for (int oh = 0; oh < Y.h; ++oh)
        for (int ow = 0; ow < Y.w; ++ow) {
          const size_t o = plane * plane_out + size_t(oh) * Y.w + ow;
          if (is_max(p.mode)) {  // the first maximum of the window takes the gradient
            bool done = false;
            window(p, X, oh, ow, [&](size_t i) {
              if (!done && src[i] == outv[o]) acc[i] += g[o], done = true;
            });
          } else {
            int count = 0;
            window(p, X, oh, ow, [&](size_t) { ++count; });
            const double div = p.mode == CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                   ? p.kh * p.kw
                                   : std::max(count, 1);
            window(p, X, oh, ow, [&](size_t i) { acc[i] += g[o] / div; });
          }
        }
      for (size_t i = 0; i < plane_in; ++i) {
        float& d = dst[plane * plane_in + i];
        d = blend(a, acc[i], b, d);
      }
    }
  });
  return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}
