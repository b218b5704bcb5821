// What the emulated cuDNN's translation units share (cudnn.cpp: handles, descriptors and
// convolutions; cudnn_pooling.cpp: pooling): the descriptor structs behind cudnn.h's handles
// and the arithmetic both use.
#pragma once
#include "cudnn.h"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  int n = 0, c = 0, h = 0, w = 0;
  bool set = false;
};
struct cudnnFilterStruct {
  int k = 0, c = 0, h = 0, w = 0;
  bool set = false;
};
struct cudnnConvolutionStruct {
  int pad_h = 0, pad_w = 0, stride_h = 1, stride_w = 1;
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  bool set = false;
};
struct cudnnPoolingStruct {
  cudnnPoolingMode_t mode = CUDNN_POOLING_MAX;
  int kh = 0, kw = 0, ph = 0, pw = 0, sh = 1, sw = 1;
  bool set = false;
};

namespace cuda_emu::cudnn {
// Whether the handle is one cudnnCreate made and cudnnDestroy has not destroyed.
bool live_handle(cudnnHandle_t h);
inline int out_size(int in, int pad, int k, int stride) { return (in + 2 * pad - k) / stride + 1; }
// alpha * acc + beta * old; beta == 0 ignores the destination, NaN included, as cuDNN documents.
inline float blend(float alpha, double acc, float beta, float old) {
  return beta == 0.f ? float(alpha * acc) : float(alpha * acc + double(beta) * old);
}
}  // namespace cuda_emu::cudnn
