// Which engine runs the CPU backend's convolutions. `automatic` picks per shape by the rule in
// src/cpu/conv_engine.cpp, drawn from `convpool bench conv --engines` (figures in
// docs/benchmarks.md); the others force one engine for every convolution that has it.
// A process-wide setting, read when a graph is built: set it before Graph::build.
#pragma once
#include <string>

namespace convpool {

enum class CpuConvEngine { automatic, im2col, onednn_direct, onednn_auto };

void set_cpu_conv_engine(CpuConvEngine engine);
CpuConvEngine cpu_conv_engine();
// "auto", "im2col", "onednn-direct", "onednn-auto"; anything else is a one-line user error.
CpuConvEngine parse_cpu_conv_engine(const std::string& name);
const char* cpu_conv_engine_name(CpuConvEngine engine);
// Whether this build has oneDNN (without it every policy runs im2col).
bool have_onednn();

}  // namespace convpool
