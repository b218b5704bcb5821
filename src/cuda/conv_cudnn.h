// Convolution on the GPU through cuDNN. All cuDNN code lives in conv_cudnn.cpp behind this
// small interface, so the legacy API used there can be swapped for the graph API.
#pragma once
#include <cstddef>
#include <memory>

#include "../cpu/conv.h"

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
// y = conv(x, w) + b.
void conv_forward(ConvPlan& plan, int n, const float* x, const float* w, const float* b, float* y,
                  void* workspace, void* stream);
// Overwrites dw, db and (if non-null) dx.
void conv_backward(ConvPlan& plan, int n, const float* x, const float* w, const float* dy,
                   float* dw, float* db, float* dx, void* workspace, void* stream);

}  // namespace convpool::cuda
