// `flatten`: a view of its input, no kernel on either backend.
#include "layer_kinds.h"

namespace convpool {

namespace {
using namespace layers;

// Flatten keeps NCHW memory order (c, then h, then w), as torch.flatten does, so its
// output is its input's memory.
class FlattenLayer : public Layer {
 public:
  explicit FlattenLayer(const LayerSpec& spec) : Layer(spec) { no_arguments(spec_); }
  Shape infer_shape(const Shape& in) override {
    if (in.per_sample() >= (size_t(1) << 31))
      fail("input " + in.str() + " is too large to flatten");
    return {1, int(in.per_sample()), 1, 1};
  }
  std::string describe() const override { return "NCHW order, no copy"; }
  bool aliases_input() const override { return true; }
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  void forward(const StepContext&, const Tensor&, const Tensor&) override {}
  void backward(const StepContext&, const Tensor&, const Tensor&, const Tensor&,
                const Tensor&) override {}
};

}  // namespace

OpInfo flatten_op() {
  return {"flatten",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<FlattenLayer>(spec);
          },
          {{"flatten", {{1, 3, 2, 4}}}}};
}

}  // namespace convpool
