// `relu`: max(x, 0), fused into the layer before it where that layer can apply it.
#include "cpu/relu.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/relu.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class ReluLayer : public Layer {
 public:
  explicit ReluLayer(const LayerSpec& spec) : Layer(spec) { no_arguments(spec_); }
  Shape infer_shape(const Shape& in) override { return in; }
  std::string describe() const override {
    return fused_into_.empty() ? "max(x, 0)" : "max(x, 0), fused into " + fused_into_;
  }
  void fuse_relu(const std::string& into) override {
    fused_ = true;
    fused_into_ = into;
  }
  bool aliases_input() const override { return fused_; }
  bool backward_reads_input() const override { return false; }  // y > 0 exactly where x > 0
  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    if (fused_) return;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::relu_forward(x.data, y.data, x.numel(), ctx.stream);
#endif
    (void)ctx;
    cpu::relu_forward(x.data, y.data, x.numel());
  }
  void backward(const StepContext& ctx, const Tensor&, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (fused_ || !dx.data) return;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::relu_backward(y.data, dy.data, dx.data, y.numel(), ctx.stream);
#endif
    (void)ctx;
    cpu::relu_backward(y.data, dy.data, dx.data, y.numel());
  }

 private:
  bool fused_ = false;
  std::string fused_into_;  // the layer that applies this ReLU
};

}  // namespace

OpInfo relu_op() {
  return {"relu",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<ReluLayer>(spec);
          },
          {{"relu", {{1, 3, 4, 4}}}}};
}

}  // namespace convpool
