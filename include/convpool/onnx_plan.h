// The ONNX export plan: a built graph described for libexec/onnx-export (docs/onnx.md).
// Each node's type, input values, per-sample shapes and resolved attributes (pads worked
// out, defaults filled in), with the checkpoint names of its tensors, plus the input
// normalisation to fold in. Whatever the exporter cannot express is refused here with a
// one-line error naming the layer.
#pragma once
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convpool/checkpoint.h"
#include "convpool/graph.h"

namespace convpool {

constexpr int kOnnxOpset = 17;  // Debian's python3-onnx is 1.12
// Patch extraction for overlapping windows takes one Slice per window offset; windows of
// more offsets than this are refused (the ONNX graph would grow with the window area).
constexpr int kOnnxMaxWindowOffsets = 64;

// Layer type -> the options (model-file keys) the exporter understands. An option that is
// not listed (one added to convpool later, say) is refused rather than silently dropped.
using OnnxOpTable = std::map<std::string, std::vector<std::string>>;
const OnnxOpTable& onnx_op_table();

// Throws a one-line Error ("cannot export to ONNX: WHERE: TYPE 'NAME': reason") for a layer
// the exporter cannot express.
// `ema`: the nodes read the checkpoint's EMA weights (ema.<param>); the plan says which.
nlohmann::json onnx_export_plan(const Graph& graph, const Checkpoint& ckpt,
                                const OnnxOpTable& table = onnx_op_table(), bool ema = false);

}  // namespace convpool
