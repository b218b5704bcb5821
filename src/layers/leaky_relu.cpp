// `leaky_relu slope=S`.
#include "cpu/leaky_relu.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/leaky_relu.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

// leaky_relu slope=0.01: x for x >= 0, slope * x below.
class LeakyReluLayer : public PointwiseLayer {
 public:
  explicit LeakyReluLayer(const LayerSpec& spec) : PointwiseLayer(spec) {
    LayerArgs a(spec_);
    slope_ = float(a.get_double("slope", 0.01, 0.0, 1.0));
    no_positional(spec_, a);
    a.finish();
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "slope " << slope_ << " below 0";
    return os.str();
  }
  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::leaky_relu_forward(x.data, y.data, x.numel(), slope_, ctx.stream);
#endif
    (void)ctx;
    cpu::leaky_relu_forward(x.data, y.data, x.numel(), slope_);
  }
  void input_grad(const StepContext& ctx, const Tensor& x, const Tensor& dy, float* dx,
                  bool accumulate) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::leaky_relu_backward(x.data, dy.data, dx, x.numel(), slope_, accumulate,
                                       ctx.stream);
#endif
    (void)ctx;
    cpu::leaky_relu_backward(x.data, dy.data, dx, x.numel(), slope_, accumulate);
  }

 private:
  float slope_ = 0.01f;
};

}  // namespace

OpInfo leaky_relu_op() {
  return {"leaky_relu",
          factory<LeakyReluLayer>(),
          {{"leaky_relu", {{1, 3, 4, 4}}}, {"leaky_relu slope=0.2", {{1, 5, 1, 1}}}}};
}

}  // namespace convpool
