#include "conv_engine.h"

#include <atomic>

#include "convpool/error.h"
#include "convpool/precision.h"

namespace convpool {

namespace {
std::atomic<CpuConvEngine> g_engine{CpuConvEngine::automatic};
}

void set_cpu_conv_engine(CpuConvEngine engine) { g_engine = engine; }
CpuConvEngine cpu_conv_engine() { return g_engine; }

CpuConvEngine parse_cpu_conv_engine(const std::string& name) {
  for (CpuConvEngine e : {CpuConvEngine::automatic, CpuConvEngine::im2col,
                          CpuConvEngine::onednn_direct, CpuConvEngine::onednn_auto})
    if (name == cpu_conv_engine_name(e)) return e;
  CP_USER_ERROR("unknown conv engine '" << name
                                        << "' (choose auto, im2col, onednn-direct, onednn-auto)");
}

const char* cpu_conv_engine_name(CpuConvEngine engine) {
  switch (engine) {
    case CpuConvEngine::automatic: return "auto";
    case CpuConvEngine::im2col: return "im2col";
    case CpuConvEngine::onednn_direct: return "onednn-direct";
    case CpuConvEngine::onednn_auto: return "onednn-auto";
  }
  return "?";
}

bool have_onednn() {
#ifdef CONVPOOL_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

namespace cpu {

// The rule `automatic` follows, from `convpool bench conv --engines` on ResNet-20, vgg_bn and
// the seed CNN at batch 32 and 128, 1 and 2 threads (docs/benchmarks.md):
// - 1x1 convolutions (ResNet-20's projections): im2col is a plain gather and one sgemm, as fast
//   as oneDNN's 1x1 kernels or faster, and keeps its numerics;
// - few input channels (the first layer, C=3): oneDNN's direct kernels; its Winograd is slower
//   there;
// - everything else: oneDNN's own choice, Winograd for most 3x3 stride-1 shapes, 2-5x im2col.
// In bf16 (--precision) every convolution that oneDNN has bf16 kernels for takes them,
// whatever the policy; a shape without them stays on the fp32 rule below (the layer's backend
// description says which).
std::unique_ptr<OnednnConv> choose_conv_engine(const ConvGeom& g, int max_batch, bool bias,
                                               bool relu) {
  if (precision() == Precision::bf16)
    if (auto conv = OnednnConv::create(g, max_batch, bias, relu, OnednnAlgo::direct, true))
      return conv;
  const CpuConvEngine policy = cpu_conv_engine();
  if (policy == CpuConvEngine::im2col) return nullptr;
  OnednnAlgo algo = policy == CpuConvEngine::onednn_direct ? OnednnAlgo::direct
                                                           : OnednnAlgo::automatic;
  if (policy == CpuConvEngine::automatic) {
    if (g.KH == 1 && g.KW == 1) return nullptr;
    if (g.C < 16) algo = OnednnAlgo::direct;
  }
  auto conv = OnednnConv::create(g, max_batch, bias, relu, algo);
  if (!conv && algo == OnednnAlgo::automatic)
    conv = OnednnConv::create(g, max_batch, bias, relu, OnednnAlgo::direct);
  return conv;
}

}  // namespace cpu
}  // namespace convpool
