// CPU convolution through oneDNN (the engine PyTorch's CPU backend uses): direct or Winograd
// kernels that dispatch on the CPU's own ISA (AVX-512 here, whatever OPENBLAS_CORETYPE says).
// Activations stay NCHW in the graph; each call reorders into oneDNN's blocked layouts and
// back, inside buffers of the layer workspace, so a steady-state step allocates nothing of ours.
// Which engine runs which shape: conv_engine.h.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "conv.h"

namespace convpool::cpu {

// direct: oneDNN's direct kernels; automatic: oneDNN's choice per direction, which takes
// Winograd (F(4x4, 3x3)) for 3x3 stride-1 convolutions where its heuristics judge it faster.
enum class OnednnAlgo { direct, automatic };

// One convolution of geometry g, for batches up to max_batch. Primitives are made for each
// batch size on its first call (the training batch, the last partial batch, the test batch)
// and kept; the arguments of every primitive are bound once.
class OnednnConv {
 public:
  // Null when oneDNN has no JIT-compiled implementation for g on this CPU (only its slow
  // reference kernels), or when this build has no oneDNN. bf16: the primitives compute in
  // bf16 (include/convpool/precision.h); the caller's tensors stay fp32.
  static std::unique_ptr<OnednnConv> create(const ConvGeom& g, int max_batch, bool bias, bool relu,
                                            OnednnAlgo algo, bool bf16 = false);
  ~OnednnConv();
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  // Scratch floats for a batch of up to max_batch: blocked copies of the tensors of every
  // direction, the masked gradient when a ReLU is fused, and oneDNN's own scratchpad.
  size_t workspace_floats() const;
  // y = conv(x, w) + b, with a ReLU applied when made with relu.
  void forward(int n, const float* x, const float* w, const float* b, float* y, float* ws);
  // dw (and db when made with bias) from x and dy; relu_y: the forward's output when a ReLU is
  // fused (dy counts only where it is above 0). Leaves dy in ws for backward_data, which must
  // follow on the same n and ws.
  void backward_filter(int n, const float* x, const float* dy, float* dw, float* db, float* ws,
                       const float* relu_y);
  void backward_data(int n, const float* w, float* dx, float* ws);
  // oneDNN's names of the kernels it chose for each direction, e.g. "jit_wino_4x3:avx512_core".
  std::string implementation(int n);

 private:
  struct Impl;
  explicit OnednnConv(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace convpool::cpu
