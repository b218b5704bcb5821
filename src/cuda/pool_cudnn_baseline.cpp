// cuDNN's pooling, as the baseline `bench pool --device cuda` prints beside our max and
// average kernels (src/cuda/pool_baselines.h). The legacy pooling API is deprecated in
// cuDNN 9 but present; its warnings are silenced for this file only, as in conv_cudnn.cpp.
#define CONVPOOL_CHECK_CUDNN
#include "check.h"
#include "context.h"
#include "pool_baselines.h"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace convpool::cuda {

CudnnPoolingBaseline::CudnnPoolingBaseline(const PoolGeom& g, int n, bool max) {
  CP_CHECK(g.PH == 0 && g.PW == 0, "the cuDNN pooling baseline takes unpadded windows only");
  try {
    CP_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&pool_));
    CP_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        pool_, max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
        CUDNN_NOT_PROPAGATE_NAN, g.KH, g.KW, 0, 0, g.SH, g.SW));
    CP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&in_));
    CP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(in_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, g.C,
                                              g.H, g.W));
    CP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&out_));
    CP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(out_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, g.C,
                                              g.OH, g.OW));
  } catch (...) {
    release();  // what was created so far: a throwing constructor runs no destructor
    throw;
  }
}

CudnnPoolingBaseline::~CudnnPoolingBaseline() { release(); }

void CudnnPoolingBaseline::release() noexcept {
  if (out_) cudnnDestroyTensorDescriptor(out_);
  if (in_) cudnnDestroyTensorDescriptor(in_);
  if (pool_) cudnnDestroyPoolingDescriptor(pool_);
  out_ = in_ = nullptr;
  pool_ = nullptr;
}

void CudnnPoolingBaseline::forward(const float* x, float* y) {
  const float one = 1.f, zero = 0.f;
  CP_CUDNN_CHECK(cudnnPoolingForward(context().cudnn(), pool_, &one, in_, x, &zero, out_, y));
}

void CudnnPoolingBaseline::backward(const float* x, const float* y, const float* dy, float* dx) {
  const float one = 1.f, zero = 0.f;
  CP_CUDNN_CHECK(cudnnPoolingBackward(context().cudnn(), pool_, &one, out_, y, out_, dy, in_, x,
                                      &zero, in_, dx));
}

}  // namespace convpool::cuda
