// The arithmetic precision of training and evaluation (--precision). fp32 everywhere is the
// default. bf16, on the CPU: the convolutions compute in bf16 through oneDNN (AMX or
// AVX512-BF16 kernels) with fp32 accumulation, their fp32 inputs, weights and output
// gradients converted to bf16 at the call (rounding to nearest even) and their outputs and
// weight gradients returned in fp32; every other layer, the master weights, the optimizer
// state, BatchNorm's statistics and the loss stay fp32. Refused on a CPU without bf16
// arithmetic, on CUDA, and for fp16 (not built yet), each with one line. A process-wide
// setting, read when a graph is built: set it before Graph::build.
#pragma once
#include <string>

namespace convpool {

enum class Precision { fp32, bf16, fp16 };

void set_precision(Precision p);
Precision precision();
// "fp32", "bf16", "fp16"; anything else is a one-line user error.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);
// Whether this CPU has bf16 arithmetic that oneDNN uses (AVX512-BF16 or AMX-BF16); false in a
// build without oneDNN.
bool cpu_has_bf16();
// Throws a one-line user error when `p` cannot run on `device` ("cpu" or "cuda") here.
void require_precision_supported(Precision p, bool cuda);

}  // namespace convpool
