// relu and flatten: layers with no parameters and no arguments.
#include "../../kernels/elementwise_math.cuh"
#include "convpool/layer.h"

namespace convpool {

namespace {

void no_arguments(const LayerSpec& spec) {
  LayerArgs a(spec);
  if (!spec.positional.empty()) a.fail("unexpected word '" + spec.positional[0] + "'");
  a.finish();
}

class ReluLayer : public Layer {
 public:
  explicit ReluLayer(const LayerSpec& spec) : Layer(spec) { no_arguments(spec_); }
  Shape infer_shape(const Shape& in) override { return in; }
  std::string describe() const override { return "max(x, 0)"; }
  void forward(const StepContext&, const Tensor& x, const Tensor& y) override {
    const size_t n = x.numel();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; ++i) y.data[i] = relu_forward(x.data[i]);
  }
  void backward(const StepContext&, const Tensor&, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (!dx.data) return;
    const size_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; ++i) dx.data[i] = relu_backward(y.data[i], dy.data[i]);
  }
};

// Flatten keeps NCHW memory order (c, then h, then w), as torch.flatten does, so its
// output is its input's memory.
class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(const LayerSpec& spec) : Layer(spec) { no_arguments(spec_); }
  Shape infer_shape(const Shape& in) override {
    if (in.per_sample() >= (size_t(1) << 31)) fail("input " + in.str() + " is too large to flatten");
    return {1, int(in.per_sample()), 1, 1};
  }
  std::string describe() const override { return "NCHW order, no copy"; }
  bool aliases_input() const override { return true; }
  void forward(const StepContext&, const Tensor&, const Tensor&) override {}
  void backward(const StepContext&, const Tensor&, const Tensor&, const Tensor&,
                const Tensor&) override {}
};

}  // namespace

std::unique_ptr<Layer> make_relu_layer(const LayerSpec& spec) {
  return std::make_unique<ReluLayer>(spec);
}
std::unique_ptr<Layer> make_flatten_layer(const LayerSpec& spec) {
  return std::make_unique<FlattenLayer>(spec);
}

}  // namespace convpool
