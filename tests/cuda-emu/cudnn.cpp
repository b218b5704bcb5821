// The emulated target's cuDNN (include/cudnn.h): the legacy convolution and pooling calls as
// direct loops, queued on the handle's stream with the descriptors as they were at the call.
// What it checks as cuDNN does: descriptor shapes against the output-size rule, the workspace
// an algorithm needs (per batch and per math variant, from the table in cuda_emu.h) against
// the workspace given, null pointers. What it adds: the workspace is poisoned before every
// convolution runs, so nothing may keep data there between calls. Tensor-op variants round
// their inputs to TF32 (10 mantissa bits), as tensor cores do.
#include "cudnn.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <vector>

#include "cuda_emu.h"
#include "cudnn_internal.h"
#include "emu_api.h"

namespace {
using cuda_emu::ConvAlgorithm;
using cuda_emu::ConvPass;
using cuda_emu::cudnn::blend;
using cuda_emu::cudnn::out_size;

std::mutex g_mu;
std::set<const void*> g_handles;

std::vector<ConvAlgorithm> default_algorithms(ConvPass pass) {
  auto per_image = [](size_t fp32, size_t tensor) {
    return [=](int n, bool t) { return size_t(n) * (t ? tensor : fp32); };
  };
  switch (pass) {
    case ConvPass::forward:
      return {
          {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, true, true, 0, per_image(4096, 2048)},
          {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, true, false, 0, per_image(0, 0)},
          {CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, true, false, 0,
           [](int n, bool) { return (size_t(1) << 20) + size_t(n) * 65536; }}};
    case ConvPass::backward_data:
      return {{CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, true, true, 0, per_image(8192, 4096)},
              {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, false, false, 0, per_image(0, 0)}};
    case ConvPass::backward_filter:
      return {{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, true, true, 0,
               [](int n, bool t) { return size_t(16384) + size_t(n) * (t ? 512 : 1024); }},
              {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, false, false, 0, per_image(0, 0)},
              {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, false, false, 0, per_image(2048, 2048)}};
  }
  return {};
}

std::vector<ConvAlgorithm> g_table[3] = {default_algorithms(ConvPass::forward),
                                         default_algorithms(ConvPass::backward_data),
                                         default_algorithms(ConvPass::backward_filter)};

bool allows_tensor_ops(cudnnMathType_t m) { return m != CUDNN_FMA_MATH; }
bool runs_tensor_ops(cudnnMathType_t m) {
  return m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The table's entries as cudnnGet*Algorithm_v7 lists them for this descriptor and batch.
template <class Perf, class Algo>
cudnnStatus_t list(ConvPass pass, const cudnnConvolutionStruct& conv, int n, int requested,
                   int* returned, Perf* perf) {
  if (!returned || !perf || requested < 1) return CUDNN_STATUS_BAD_PARAM;
  std::lock_guard lock(g_mu);
  const auto& table = g_table[int(pass)];
  int count = 0;
  for (const ConvAlgorithm& a : table) {
    if (count == requested) break;
    Perf p{};
    p.algo = Algo(a.algo);
    p.status = cudnnStatus_t(a.status);
    p.time = -1.f;  // heuristics do not time
    const bool tensor = a.tensor_ops && allows_tensor_ops(conv.math);
    p.mathType = tensor ? CUDNN_TENSOR_OP_MATH
                        : (conv.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
    if (a.listed_math >= 0) p.mathType = cudnnMathType_t(a.listed_math);
    p.memory = a.workspace(n, tensor);
    p.determinism = a.deterministic ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    perf[count++] = p;
  }
  *returned = count;
  return CUDNN_STATUS_SUCCESS;
}

// The workspace algorithm `algo` needs for a batch of n under the descriptor's math type at the
// call (which picks the variant that runs), or SIZE_MAX when the table does not offer it.
size_t needed(ConvPass pass, int algo, const cudnnConvolutionStruct& conv, int n, bool* tensor) {
  std::lock_guard lock(g_mu);
  for (const ConvAlgorithm& a : g_table[int(pass)])
    if (a.algo == algo) {
      if (a.status != 0) return SIZE_MAX;
      *tensor = a.tensor_ops && runs_tensor_ops(conv.math);
      return a.workspace(n, *tensor);
    }
  return SIZE_MAX;
}

// Shapes: x [N, C, H, W], w [K, C, R, S], y [N, K, OH, OW]; the descriptors must agree.
struct ConvShape {
  int N, C, H, W, K, R, S, OH, OW, PH, PW, SH, SW;
};
bool shape(const cudnnTensorStruct* x, const cudnnFilterStruct* w, const cudnnTensorStruct* y,
           const cudnnConvolutionStruct* c, ConvShape& s) {
  if (!x || !w || !y || !c || !x->set || !w->set || !y->set || !c->set) return false;
  s = {x->n, x->c, x->h,     x->w,     w->k,        w->h,       w->w,
       y->h, y->w, c->pad_h, c->pad_w, c->stride_h, c->stride_w};
  return x->c == w->c && y->n == x->n && y->c == w->k &&
         y->h == out_size(x->h, c->pad_h, w->h, c->stride_h) &&
         y->w == out_size(x->w, c->pad_w, w->w, c->stride_w) && y->h > 0 && y->w > 0;
}

// Whether the input, filter and output tensors of shape `s` lie in device memory.
bool on_device(const ConvShape& s, const void* x, const void* w, const void* y) {
  return cuda_emu::is_device(x, size_t(s.N) * s.C * s.H * s.W * 4) &&
         cuda_emu::is_device(w, size_t(s.K) * s.C * s.R * s.S * 4) &&
         cuda_emu::is_device(y, size_t(s.N) * s.K * s.OH * s.OW * 4);
}

// A convolution call: checked now, queued on the handle's stream with copies of what it reads.
template <class Body>
cudnnStatus_t queue_conv(cudnnHandle_t h, ConvPass pass, int algo, const cudnnConvolutionStruct* c,
                         int n, void* workspace, size_t workspace_bytes, const char* what,
                         Body body) {
  if (!cuda_emu::cudnn::live_handle(h)) return CUDNN_STATUS_BAD_PARAM;
  bool tensor = false;
  const size_t need = needed(pass, algo, *c, n, &tensor);
  if (need == SIZE_MAX) return CUDNN_STATUS_NOT_SUPPORTED;
  if (workspace_bytes < need || (need && !workspace)) return CUDNN_STATUS_BAD_PARAM;
  if (workspace_bytes && !cuda_emu::is_device(workspace, workspace_bytes))
    return CUDNN_STATUS_BAD_PARAM;
  const cudaError_t e = cuda_emu::enqueue(h->stream, what, [=] {
    if (workspace_bytes) std::memset(workspace, 0xFF, workspace_bytes);
    body(tensor);
  });
  return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

}  // namespace

namespace cuda_emu::cudnn {
bool live_handle(cudnnHandle_t h) {
  std::lock_guard lock(g_mu);
  return g_handles.count(h) != 0;
}
}  // namespace cuda_emu::cudnn

namespace cuda_emu {
void set_conv_algorithms(ConvPass pass, std::vector<ConvAlgorithm> best_first) {
  std::lock_guard lock(g_mu);
  g_table[int(pass)] = std::move(best_first);
}
void reset_conv_algorithms() {
  std::lock_guard lock(g_mu);
  for (ConvPass p : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
    g_table[int(p)] = default_algorithms(p);
}
}  // namespace cuda_emu

size_t cudnnGetVersion() { return CUDNN_VERSION; }
const char* cudnnGetErrorString(cudnnStatus_t s) {
  switch (s) {
    case CUDNN_STATUS_SUCCESS:
      return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED:
      return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM:
      return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER:
      return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_NOT_SUPPORTED:
      return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR:
      return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED:
      return "CUDNN_STATUS_EXECUTION_FAILED";
  }
  return "CUDNN_STATUS_UNKNOWN";
}
cudnnStatus_t cudnnCreate(cudnnHandle_t* h) {
  if (!h) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  *h = new cudnnContext;
  std::lock_guard lock(g_mu);
  g_handles.insert(*h);
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
  std::lock_guard lock(g_mu);
  if (!g_handles.erase(h)) return CUDNN_STATUS_BAD_PARAM;
  delete h;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
  std::lock_guard lock(g_mu);
  if (!g_handles.count(h) || !cuda_emu::valid_stream(s)) return CUDNN_STATUS_BAD_PARAM;
  h->stream = s;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetStream(cudnnHandle_t h, cudaStream_t* s) {
  std::lock_guard lock(g_mu);
  if (!g_handles.count(h) || !s) return CUDNN_STATUS_BAD_PARAM;
  *s = h->stream;
  return CUDNN_STATUS_SUCCESS;
}

#define CUDNN_EMU_DESCRIPTOR(Type, Struct, Create, Destroy) \
  cudnnStatus_t Create(Type* d) {                           \
    if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;     \
    *d = new Struct;                                        \
    return CUDNN_STATUS_SUCCESS;                            \
  }                                                         \
  cudnnStatus_t Destroy(Type d) {                           \
    delete d;                                               \
    return CUDNN_STATUS_SUCCESS;                            \
  }
CUDNN_EMU_DESCRIPTOR(cudnnTensorDescriptor_t, cudnnTensorStruct, cudnnCreateTensorDescriptor,
                     cudnnDestroyTensorDescriptor)
CUDNN_EMU_DESCRIPTOR(cudnnFilterDescriptor_t, cudnnFilterStruct, cudnnCreateFilterDescriptor,
                     cudnnDestroyFilterDescriptor)
CUDNN_EMU_DESCRIPTOR(cudnnConvolutionDescriptor_t, cudnnConvolutionStruct,
                     cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor)
CUDNN_EMU_DESCRIPTOR(cudnnPoolingDescriptor_t, cudnnPoolingStruct, cudnnCreatePoolingDescriptor,
                     cudnnDestroyPoolingDescriptor)
#undef CUDNN_EMU_DESCRIPTOR

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format,
                                         cudnnDataType_t type, int n, int c, int h, int w) {
  if (!d || format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT || n < 1 || c < 1 || h < 1 ||
      w < 1)
    return format == CUDNN_TENSOR_NCHW && type == CUDNN_DATA_FLOAT ? CUDNN_STATUS_BAD_PARAM
                                                                   : CUDNN_STATUS_NOT_SUPPORTED;
  *d = {n, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type,
                                         cudnnTensorFormat_t format, int k, int c, int h, int w) {
  if (!d || format != CUDNN_TENSOR_NCHW || type != CUDNN_DATA_FLOAT)
    return CUDNN_STATUS_NOT_SUPPORTED;
  if (k < 1 || c < 1 || h < 1 || w < 1) return CUDNN_STATUS_BAD_PARAM;
  *d = {k, c, h, w, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w,
                                              int u, int v, int dilation_h, int dilation_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute_type) {
  if (!d || pad_h < 0 || pad_w < 0 || u < 1 || v < 1) return CUDNN_STATUS_BAD_PARAM;
  // convpool's convolutions: cross-correlation, no dilation, fp32 accumulation.
  if (dilation_h != 1 || dilation_w != 1 || mode != CUDNN_CROSS_CORRELATION ||
      compute_type != CUDNN_DATA_FLOAT)
    return CUDNN_STATUS_NOT_SUPPORTED;
  const cudnnMathType_t math = d->math;
  *d = {pad_h, pad_w, u, v, mode, math, true};
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (!d || math < CUDNN_DEFAULT_MATH || math > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
  d->math = math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t* math) {
  if (!d || !math) return CUDNN_STATUS_BAD_PARAM;
  *math = d->math;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t conv,
                                                    cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int* n, int* c,
                                                    int* h, int* wo) {
  if (!conv || !x || !w || !conv->set || !x->set || !w->set || !n || !c || !h || !wo ||
      x->c != w->c)
    return CUDNN_STATUS_BAD_PARAM;
  *n = x->n;
  *c = w->k;
  *h = out_size(x->h, conv->pad_h, w->h, conv->stride_h);
  *wo = out_size(x->w, conv->pad_w, w->w, conv->stride_w);
  return *h > 0 && *wo > 0 ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t conv,
                                                     cudnnTensorDescriptor_t y, int requested,
                                                     int* returned,
                                                     cudnnConvolutionFwdAlgoPerf_t* perf) {
  ConvShape s;
  if (!shape(x, w, y, conv, s)) return CUDNN_STATUS_BAD_PARAM;
  return list<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      ConvPass::forward, *conv, s.N, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, cudnnFilterDescriptor_t w,
                                                          cudnnTensorDescriptor_t dy,
                                                          cudnnConvolutionDescriptor_t conv,
                                                          cudnnTensorDescriptor_t dx, int requested,
                                                          int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* perf) {
  ConvShape s;
  if (!shape(dx, w, dy, conv, s)) return CUDNN_STATUS_BAD_PARAM;
  return list<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      ConvPass::backward_data, *conv, s.N, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t conv, cudnnFilterDescriptor_t dw, int requested, int* returned,
    cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
  ConvShape s;
  if (!shape(x, dw, dy, conv, s)) return CUDNN_STATUS_BAD_PARAM;
  return list<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      ConvPass::backward_filter, *conv, s.N, requested, returned, perf);
}

// ---- the convolutions: one output plane (or filter) at a time, accumulated in double ----

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void* alpha,
                                      cudnnTensorDescriptor_t xd, const void* x,
                                      cudnnFilterDescriptor_t wd, const void* w,
                                      cudnnConvolutionDescriptor_t conv,
                                      cudnnConvolutionFwdAlgo_t algo, void* workspace,
                                      size_t workspace_bytes, const void* beta,
                                      cudnnTensorDescriptor_t yd, void* y) {
  ConvShape s;
  if (!alpha || !beta || !x || !w || !y || !shape(xd, wd, yd, conv, s))
    return CUDNN_STATUS_BAD_PARAM;
  if (!on_device(s, x, w, y)) return CUDNN_STATUS_BAD_PARAM;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const auto* X = static_cast<const float*>(x);
  const auto* Wt = static_cast<const float*>(w);
  auto* Y = static_cast<float*>(y);
  return queue_conv(h, ConvPass::forward, algo, conv, s.N, workspace, workspace_bytes,
                    "cudnnConvolutionForward", [=](bool tensor) {
                      const size_t planes = size_t(s.N) * s.K;
#pragma omp parallel for schedule(static)
                      for (size_t p = 0; p < planes; ++p) {
                        const int n = int(p / s.K), k = int(p % s.K);
                        std::vector<double> acc(size_t(s.OH) * s.OW, 0.0);
                        for (int c = 0; c < s.C; ++c)
                          for (int r = 0; r < s.R; ++r)
                            for (int q = 0; q < s.S; ++q) {
                              float wv = Wt[((size_t(k) * s.C + c) * s.R + r) * s.S + q];
                              if (tensor) wv = cuda_emu::round_to_tf32(wv);
                              const float* plane = X + (size_t(n) * s.C + c) * s.H * s.W;
                              for (int oh = 0; oh < s.OH; ++oh) {
                                const int ih = oh * s.SH - s.PH + r;
                                if (ih < 0 || ih >= s.H) continue;
                                for (int ow = 0; ow < s.OW; ++ow) {
                                  const int iw = ow * s.SW - s.PW + q;
                                  if (iw < 0 || iw >= s.W) continue;
                                  float xv = plane[size_t(ih) * s.W + iw];
                                  if (tensor) xv = cuda_emu::round_to_tf32(xv);
                                  acc[size_t(oh) * s.OW + ow] += double(wv) * xv;
                                }
                              }
                            }
                        float* out = Y + p * s.OH * s.OW;
                        for (size_t i = 0; i < acc.size(); ++i)
                          out[i] = blend(a, acc[i], b, out[i]);
                      }
                    });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void* alpha,
                                           cudnnFilterDescriptor_t wd, const void* w,
                                           cudnnTensorDescriptor_t dyd, const void* dy,
                                           cudnnConvolutionDescriptor_t conv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workspace,
                                           size_t workspace_bytes, const void* beta,
                                           cudnnTensorDescriptor_t dxd, void* dx) {
  ConvShape s;
  if (!alpha || !beta || !w || !dy || !dx || !shape(dxd, wd, dyd, conv, s))
    return CUDNN_STATUS_BAD_PARAM;
  if (!on_device(s, dx, w, dy)) return CUDNN_STATUS_BAD_PARAM;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const auto* Wt = static_cast<const float*>(w);
  const auto* DY = static_cast<const float*>(dy);
  auto* DX = static_cast<float*>(dx);
  return queue_conv(h, ConvPass::backward_data, algo, conv, s.N, workspace, workspace_bytes,
                    "cudnnConvolutionBackwardData", [=](bool tensor) {
                      const size_t planes = size_t(s.N) * s.C;
#pragma omp parallel for schedule(static)
                      for (size_t p = 0; p < planes; ++p) {
                        const int n = int(p / s.C), c = int(p % s.C);
                        std::vector<double> acc(size_t(s.H) * s.W, 0.0);
                        for (int k = 0; k < s.K; ++k)
                          for (int r = 0; r < s.R; ++r)
                            for (int q = 0; q < s.S; ++q) {
                              float wv = Wt[((size_t(k) * s.C + c) * s.R + r) * s.S + q];
                              if (tensor) wv = cuda_emu::round_to_tf32(wv);
                              const float* g = DY + (size_t(n) * s.K + k) * s.OH * s.OW;
                              for (int oh = 0; oh < s.OH; ++oh) {
                                const int ih = oh * s.SH - s.PH + r;
                                if (ih < 0 || ih >= s.H) continue;
                                for (int ow = 0; ow < s.OW; ++ow) {
                                  const int iw = ow * s.SW - s.PW + q;
                                  if (iw < 0 || iw >= s.W) continue;
                                  float gv = g[size_t(oh) * s.OW + ow];
                                  if (tensor) gv = cuda_emu::round_to_tf32(gv);
                                  acc[size_t(ih) * s.W + iw] += double(wv) * gv;
                                }
                              }
                            }
                        float* out = DX + p * s.H * s.W;
                        for (size_t i = 0; i < acc.size(); ++i)
                          out[i] = blend(a, acc[i], b, out[i]);
                      }
                    });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void* alpha,
                                             cudnnTensorDescriptor_t xd, const void* x,
                                             cudnnTensorDescriptor_t dyd, const void* dy,
                                             cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace,
                                             size_t workspace_bytes, const void* beta,
                                             cudnnFilterDescriptor_t dwd, void* dw) {
  ConvShape s;
  if (!alpha || !beta || !x || !dy || !dw || !shape(xd, dwd, dyd, conv, s))
    return CUDNN_STATUS_BAD_PARAM;
  if (!on_device(s, x, dw, dy)) return CUDNN_STATUS_BAD_PARAM;
  const float a = *static_cast<const float*>(alpha), b = *static_cast<const float*>(beta);
  const auto* X = static_cast<const float*>(x);
  const auto* DY = static_cast<const float*>(dy);
  auto* DW = static_cast<float*>(dw);
  return queue_conv(
      h, ConvPass::backward_filter, algo, conv, s.N, workspace, workspace_bytes,
      "cudnnConvolutionBackwardFilter", [=](bool tensor) {
        const size_t filters = size_t(s.K) * s.C;
#pragma omp parallel for schedule(static)
        for (size_t f = 0; f < filters; ++f) {
          const int k = int(f / s.C), c = int(f % s.C);
          for (int r = 0; r < s.R; ++r)
            for (int q = 0; q < s.S; ++q) {
              double acc = 0;
              for (int n = 0; n < s.N; ++n) {
                const float* plane = X + (size_t(n) * s.C + c) * s.H * s.W;
                const float* g = DY + (size_t(n) * s.K + k) * s.OH * s.OW;
                for (int oh = 0; oh < s.OH; ++oh) {
                  const int ih = oh * s.SH - s.PH + r;
                  if (ih < 0 || ih >= s.H) continue;
                  for (int ow = 0; ow < s.OW; ++ow) {
                    const int iw = ow * s.SW - s.PW + q;
                    if (iw < 0 || iw >= s.W) continue;
                    float xv = plane[size_t(ih) * s.W + iw], gv = g[size_t(oh) * s.OW + ow];
                    if (tensor) xv = cuda_emu::round_to_tf32(xv), gv = cuda_emu::round_to_tf32(gv);
                    acc += double(xv) * gv;
                  }
                }
              }
              float& out = DW[(f * s.R + r) * s.S + q];
              out = blend(a, acc, b, out);
            }
        }
      });
}
