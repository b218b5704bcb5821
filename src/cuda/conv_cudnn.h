// Convolution on the GPU through cuDNN. All cuDNN code lives in conv_cudnn.cpp behind this
// small interface, so the legacy API used there can be swapped for the graph API.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "cpu/conv.h"

namespace convpool::cuda {

// Descriptors and algorithm choices for one convolution shape, cached per batch size.
class ConvPlan;
struct ConvPlanDeleter {
  void operator()(ConvPlan* p) const;
};
using ConvPlanPtr = std::unique_ptr<ConvPlan, ConvPlanDeleter>;

// Chooses algorithms (cuDNN heuristics, fp32 FMA math, deterministic backward) for max_batch.
ConvPlanPtr make_conv_plan(const cpu::ConvGeom& g, int max_batch);
size_t conv_workspace_bytes(const ConvPlan& plan);  // for any batch up to max_batch
// "cuDNN fwd implicit_precomp_gemm, bwd-data algo_1, bwd-filter algo_1, fp32, ..." for batch n.
std::string conv_algorithms(ConvPlan& plan, int n);
// y = conv(x, w) + b.
void conv_forward(ConvPlan& plan, int n, const float* x, const float* w, const float* b, float* y,
                  void* workspace, void* stream);
// Backward, one direction each: overwrites dw and db; overwrites dx.
void conv_backward_filter(ConvPlan& plan, int n, const float* x, const float* dy, float* dw,
                          float* db, void* workspace, void* stream);
void conv_backward_data(ConvPlan& plan, int n, const float* w, const float* dy, float* dx,
                        void* workspace, void* stream);

}  // namespace convpool::cuda
