// `gelu`: x * Phi(x), the exact (erf) form of torch.nn.GELU().
#include "cpu/gelu.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/gelu.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

// gelu: x * Phi(x), the exact (erf) form of torch.nn.GELU().
class GeluLayer : public PointwiseLayer {
 public:
  explicit GeluLayer(const LayerSpec& spec) : PointwiseLayer(spec) {
    LayerArgs a(spec_);
    no_positional(spec_, a);
    a.finish();
  }
  std::string describe() const override { return "x * Phi(x), erf form"; }
  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) return cuda::gelu_forward(x.data, y.data, x.numel(), ctx.stream);
#endif
    (void)ctx;
    cpu::gelu_forward(x.data, y.data, x.numel());
  }
  void input_grad(const StepContext& ctx, const Tensor& x, const Tensor& dy, float* dx,
                  bool accumulate) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::gelu_backward(x.data, dy.data, dx, x.numel(), accumulate, ctx.stream);
#endif
    (void)ctx;
    cpu::gelu_backward(x.data, dy.data, dx, x.numel(), accumulate);
  }
};

}  // namespace

OpInfo gelu_op() { return {"gelu", factory<GeluLayer>(), {{"gelu", {{1, 3, 4, 4}}}}}; }

}  // namespace convpool
