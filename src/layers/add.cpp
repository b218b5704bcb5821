// `add in=a,b,...`: residual sums of inputs of one shape; backward hands dy to each input.
#include "cpu/add.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/add.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class AddLayer : public MergeLayer {
 public:
  using MergeLayer::MergeLayer;
  Shape infer(std::span<const Shape> in) override {
    check_count(in);
    for (size_t i = 1; i < in.size(); ++i)
      if (!(in[i] == in[0]))
        fail(describe_input(i, in[i]) + " does not match " + describe_input(0, in[0]));
    inputs_ = int(in.size());
    return in[0];
  }
  std::string describe() const override { return "sum of " + std::to_string(inputs_) + " inputs"; }
  void forward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      cuda::add_forward(in[0].data, in[1].data, y.data, y.numel(), ctx.stream);
    else
#endif
      cpu::add_forward(in[0].data, in[1].data, y.data, y.numel());
    for (size_t i = 2; i < in.size(); ++i) copy(ctx, in[i].data, y.data, y.numel(), true);
  }
  void backward_inputs(const StepContext& ctx, std::span<const Tensor>, const Tensor&,
                       const Tensor& dy, std::span<const Tensor> din,
                       const std::vector<bool>& accumulate) override {
    for (size_t i = 0; i < din.size(); ++i)
      if (din[i].data) copy(ctx, dy.data, din[i].data, dy.numel(), accumulate[i]);
  }

 private:
  int inputs_ = 2;
};

}  // namespace

OpInfo add_op() {
  return {"add",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<AddLayer>(spec);
          },
          {{"add", {{1, 3, 4, 4}, {1, 3, 4, 4}}},
           {"add", {{1, 5, 1, 1}, {1, 5, 1, 1}, {1, 5, 1, 1}}}}};
}

}  // namespace convpool
