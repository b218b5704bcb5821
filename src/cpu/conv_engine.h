// The engine that runs one CPU convolution, chosen per shape (include/convpool/conv_engine.h).
#pragma once
#include <memory>
#include <string>

#include "conv.h"
#include "conv_onednn.h"
#include "convpool/conv_engine.h"

namespace convpool::cpu {

// The oneDNN convolution for g under the process's policy, or null for im2col + OpenBLAS:
// when the policy or the per-shape rule says im2col, or oneDNN has no fast kernel for g.
std::unique_ptr<OnednnConv> choose_conv_engine(const ConvGeom& g, int max_batch, bool bias,
                                               bool relu);

}  // namespace convpool::cpu
