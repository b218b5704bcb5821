// cuDNN 9's legacy convolution API is deprecated but present and well understood; it is used
// here deliberately, with the deprecation warnings silenced for this file only.
#define CONVPOOL_CHECK_CUDNN
#include "conv_cudnn.h"

#include <algorithm>
#include <map>
#include <vector>

#include "check.h"
#include "context.h"
#include "convpool/device.h"
#include "kernels/bias.cuh"
#include "kernels/pad.cuh"

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace convpool::cuda {

namespace {
struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int n, int c, int h, int w) {
    CP_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    CP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, w));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

// Picks the first (fastest by heuristics) algorithm that succeeds within the workspace limit,
// preferring deterministic ones when `prefer_deterministic`. Under --deterministic
// (cuda_deterministic()) only deterministic ones qualify, and a shape with none is refused
// with the reason instead of falling back. Without --tf32 only fp32 FMA entries qualify: the
// descriptor takes the chosen entry's math type, and CUDNN_DEFAULT_MATH permits TF32 on
// Ampere and later.
template <class Perf>
Perf pick(const std::vector<Perf>& perfs, int count, size_t limit, bool prefer_deterministic,
          const char* what) {
  const bool required = cuda_deterministic();
  for (int pass = prefer_deterministic || required ? 0 : 1; pass < (required ? 1 : 2); ++pass)
    for (int i = 0; i < count; ++i) {
      const Perf& p = perfs[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > limit) continue;
      if (!cuda_tf32() && p.mathType != CUDNN_FMA_MATH) continue;
      if (pass == 0 && p.determinism != CUDNN_DETERMINISTIC) continue;
      return p;
    }
  if (required)
    CP_USER_ERROR("--deterministic: cuDNN offers no deterministic "
                  << what << " convolution algorithm for this shape within the " << (limit >> 20)
                  << " MiB workspace; run without --deterministic, or with --device cpu");
  CP_FAIL("cuDNN offers no usable " << what << " algorithm for this shape");
}
}  // namespace

// cuDNN pads symmetrically. A "same" convolution whose total pad is odd (the extra row or
// column goes to the bottom or right, TensorFlow's rule, which the CPU backend follows) runs
// cuDNN unpadded on a copy of its input padded by kernels/pad.cu: the padded extent is
// exactly what the outputs read, (OH - 1) * SH + KH rows and (OW - 1) * SW + KW columns.
struct ExplicitPad {
  bool on = false;
  int HP = 0, WP = 0;  // padded height and width (top and left padding are PH and PW)
  explicit ExplicitPad(const cpu::ConvGeom& g) {
    const int rows = (g.OH - 1) * g.SH + g.KH, cols = (g.OW - 1) * g.SW + g.KW;
    on = rows > g.H + 2 * g.PH || cols > g.W + 2 * g.PW;
    HP = std::max(rows, g.H + 2 * g.PH);
    WP = std::max(cols, g.W + 2 * g.PW);
  }
};

class ConvPlan {
  static constexpr size_t kWorkspaceCap = size_t(256) << 20;  // per convolution

 public:
  ConvPlan(const cpu::ConvGeom& g, int max_batch) : g_(g), pad_(g), max_batch_(max_batch) {
    CP_CUDNN_CHECK(cudnnCreateFilterDescriptor(&filter_));
    CP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(filter_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g.OC,
                                              g.C, g.KH, g.KW));
    CP_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv_));
    CP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv_, pad_.on ? 0 : g.PH, pad_.on ? 0 : g.PW,
                                                   g.SH, g.SW, 1, 1, CUDNN_CROSS_CORRELATION,
                                                   CUDNN_DATA_FLOAT));
    // fp32 FMA only by default: no TF32 rounding, so results match the CPU oracle to ~1e-6.
    // --tf32 lets cuDNN use tensor cores with TF32 inputs.
    CP_CUDNN_CHECK(
        cudnnSetConvolutionMathType(conv_, cuda_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
    // Every batch size that can run (a partial last batch, evaluation batches, a rank's
    // slice) is planned now, each with its best algorithms within the cap, and the workspace
    // covers them all: a smaller batch can need more workspace than the largest, and planning
    // it later, inside the largest batch's workspace, would fall back to another algorithm
    // (a non-deterministic one, or a --deterministic failure an epoch into the run).
    workspace_limit_ = kWorkspaceCap;
    size_t need = 0;
    for (int n = 1; n <= max_batch; ++n) need = std::max(need, batch(n).workspace);
    workspace_limit_ = need;
    planned_ = true;
  }
  ~ConvPlan() {
    cudnnDestroyConvolutionDescriptor(conv_);
    cudnnDestroyFilterDescriptor(filter_);
  }

  struct Batch {
    std::unique_ptr<TensorDesc> x, y;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    // The math type of each chosen heuristic entry: set on the descriptor before its call, so
    // that the variant that runs is the one whose workspace the entry reported.
    cudnnMathType_t fwd_math, bwd_data_math, bwd_filter_math;
    size_t workspace = 0;
  };

  // Descriptors and algorithms for batch n (planned when the plan was made).
  const Batch& batch(int n) {
    auto it = batches_.find(n);
    if (it != batches_.end()) return it->second;
    CP_CHECK(n >= 1 && n <= max_batch_ && !planned_,
             "convolution batch " << n << " outside the planned 1.." << max_batch_);
    Batch b;
    // With explicit padding, cuDNN sees the padded copy.
    b.x = std::make_unique<TensorDesc>(n, g_.C, pad_.on ? pad_.HP : g_.H, pad_.on ? pad_.WP : g_.W);
    b.y = std::make_unique<TensorDesc>(n, g_.OC, g_.OH, g_.OW);
    int on, oc, oh, ow;
    CP_CUDNN_CHECK(
        cudnnGetConvolution2dForwardOutputDim(conv_, b.x->d, filter_, &on, &oc, &oh, &ow));
    CP_CHECK(on == n && oc == g_.OC && oh == g_.OH && ow == g_.OW,
             "cuDNN output shape " << on << "x" << oc << "x" << oh << "x" << ow
                                   << " differs from the graph's");
    cudnnHandle_t h = context().cudnn();
    int count = 0;
    std::vector<cudnnConvolutionFwdAlgoPerf_t> fwd(CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    CP_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, b.x->d, filter_, conv_, b.y->d,
                                                          int(fwd.size()), &count, fwd.data()));
    const auto f = pick(fwd, count, workspace_limit_, false, "forward");
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> bd(CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    CP_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, filter_, b.y->d, conv_, b.x->d,
                                                               int(bd.size()), &count, bd.data()));
    const auto d = pick(bd, count, workspace_limit_, true, "backward-data");
    std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> bf(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT);
    CP_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(
        h, b.x->d, b.y->d, conv_, filter_, int(bf.size()), &count, bf.data()));
    const auto w = pick(bf, count, workspace_limit_, true, "backward-filter");
    b.fwd = f.algo;
    b.bwd_data = d.algo;
    b.bwd_filter = w.algo;
    b.fwd_math = f.mathType;
    b.bwd_data_math = d.mathType;
    b.bwd_filter_math = w.mathType;
    b.workspace = std::max({f.memory, d.memory, w.memory});
    return batches_.emplace(n, std::move(b)).first->second;
  }

  const cpu::ConvGeom& geom() const { return g_; }
  const ExplicitPad& pad() const { return pad_; }
  // The padded copy lives after cuDNN's workspace (256-byte aligned), sized for max_batch.
  size_t padded_offset() const { return (workspace_limit_ + 255) & ~size_t(255); }
  size_t workspace_bytes() const {
    if (!pad_.on) return workspace_limit_;
    return padded_offset() + size_t(max_batch_) * g_.C * pad_.HP * pad_.WP * sizeof(float);
  }
  float* padded_copy(void* workspace) const {
    return reinterpret_cast<float*>(static_cast<char*>(workspace) + padded_offset());
  }
  // x padded into the workspace when this shape needs it, else x itself.
  const float* cudnn_input(int n, const float* x, void* workspace, void* stream) const {
    if (!pad_.on) return x;
    float* xp = padded_copy(workspace);
    pad_planes(x, xp, size_t(n) * g_.C, g_.H, g_.W, g_.PH, g_.PW, pad_.HP, pad_.WP, stream);
    return xp;
  }
  cudnnFilterDescriptor_t filter() const { return filter_; }
  // The descriptor, with the math type of the entry about to run (host-only: capture-safe).
  cudnnConvolutionDescriptor_t conv(cudnnMathType_t math) const {
    CP_CUDNN_CHECK(cudnnSetConvolutionMathType(conv_, math));
    return conv_;
  }
  size_t workspace_limit() const { return workspace_limit_; }

 private:
  cpu::ConvGeom g_;
  ExplicitPad pad_;
  int max_batch_;
  cudnnFilterDescriptor_t filter_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  size_t workspace_limit_ = 0;
  bool planned_ = false;  // every batch size 1..max_batch has its algorithms
  std::map<int, Batch> batches_;
};

void ConvPlanDeleter::operator()(ConvPlan* p) const { delete p; }

ConvPlanPtr make_conv_plan(const cpu::ConvGeom& g, int max_batch) {
  return ConvPlanPtr(new ConvPlan(g, max_batch));
}

size_t conv_workspace_bytes(const ConvPlan& plan) { return plan.workspace_bytes(); }

std::string conv_algorithms(ConvPlan& plan, int n) {
  // cuDNN has no names for its algorithm enums; these follow cudnn_cnn.h's order.
  static const char* fwd[] = {
      "implicit_gemm", "implicit_precomp_gemm", "gemm", "direct", "fft", "fft_tiling",
      "winograd",      "winograd_nonfused"};
  static const char* bwd_data[] = {"algo_0",     "algo_1",   "fft",
                                   "fft_tiling", "winograd", "winograd_nonfused"};
  static const char* bwd_filter[] = {
      "algo_0", "algo_1", "fft", "algo_3", "winograd", "winograd_nonfused", "fft_tiling"};
  auto name = [](const char* const* names, size_t count, int algo) {
    return algo >= 0 && size_t(algo) < count ? std::string(names[algo])
                                             : "algo " + std::to_string(algo);
  };
  const auto& b = plan.batch(n);
  return "cuDNN fwd " + name(fwd, std::size(fwd), b.fwd) + ", bwd-data " +
         name(bwd_data, std::size(bwd_data), b.bwd_data) + ", bwd-filter " +
         name(bwd_filter, std::size(bwd_filter), b.bwd_filter) +
         (cuda_tf32() ? ", tf32" : ", fp32") +
         (plan.pad().on ? ", explicit asymmetric padding" : "") + ", workspace " +
         std::to_string(plan.workspace_limit() >> 10) + " KiB";
}

void conv_forward(ConvPlan& plan, int n, const float* x, const float* w, const float* b, float* y,
                  void* workspace, void* stream) {
  const auto& B = plan.batch(n);
  cudnnHandle_t h = context().cudnn();
  CP_CUDNN_CHECK(cudnnSetStream(h, as_stream(stream)));
  const float one = 1.f, zero = 0.f;
  x = plan.cudnn_input(n, x, workspace, stream);
  CP_CUDNN_CHECK(cudnnConvolutionForward(h, &one, B.x->d, x, plan.filter(), w,
                                         plan.conv(B.fwd_math), B.fwd, workspace,
                                         plan.workspace_limit(), &zero, B.y->d, y));
  const auto& g = plan.geom();
  if (b) bias_add(y, b, n, g.OC, g.OH * g.OW, stream);
}

void conv_backward_filter(ConvPlan& plan, int n, const float* x, const float* dy, float* dw,
                          float* db, void* workspace, void* stream) {
  const auto& B = plan.batch(n);
  cudnnHandle_t h = context().cudnn();
  CP_CUDNN_CHECK(cudnnSetStream(h, as_stream(stream)));
  const float one = 1.f, zero = 0.f;
  x = plan.cudnn_input(n, x, workspace, stream);  // padded again: forward's copy may be reused
  CP_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
      h, &one, B.x->d, x, B.y->d, dy, plan.conv(B.bwd_filter_math), B.bwd_filter, workspace,
      plan.workspace_limit(), &zero, plan.filter(), dw));
  const auto& g = plan.geom();
  if (db) bias_grad(dy, db, n, g.OC, g.OH * g.OW, stream);
}

void conv_backward_data(ConvPlan& plan, int n, const float* w, const float* dy, float* dx,
                        void* workspace, void* stream) {
  const auto& B = plan.batch(n);
  cudnnHandle_t h = context().cudnn();
  CP_CUDNN_CHECK(cudnnSetStream(h, as_stream(stream)));
  const float one = 1.f, zero = 0.f;
  // With explicit padding cuDNN writes the padded input's gradient, which is then cropped.
  const auto& pad = plan.pad();
  float* dx_cudnn = pad.on ? plan.padded_copy(workspace) : dx;
  CP_CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, plan.filter(), w, B.y->d, dy,
                                              plan.conv(B.bwd_data_math), B.bwd_data, workspace,
                                              plan.workspace_limit(), &zero, B.x->d, dx_cudnn));
  const auto& g = plan.geom();
  if (pad.on)
    crop_planes(dx_cudnn, dx, size_t(n) * g.C, g.H, g.W, g.PH, g.PW, pad.HP, pad.WP, stream);
}

}  // namespace convpool::cuda
