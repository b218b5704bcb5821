// `concat in=a,b,...`: channels of inputs of one height and width; backward hands each input
// its channel slice of dy.
#include "cpu/concat.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/concat.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class ConcatLayer : public MergeLayer {
 public:
  using MergeLayer::MergeLayer;
  Shape infer(std::span<const Shape> in) override {
    check_count(in);
    channels_.clear();
    int total = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      if (in[i].h != in[0].h || in[i].w != in[0].w)
        fail(describe_input(i, in[i]) + " differs in height or width from " +
             describe_input(0, in[0]));
      channels_.push_back(in[i].c);
      total += in[i].c;
    }
    return {1, total, in[0].h, in[0].w};
  }
  std::string describe() const override {
    std::string s = "channels";
    for (size_t i = 0; i < channels_.size(); ++i) s += (i ? " + " : " ") + std::to_string(channels_[i]);
    return s;
  }
  void forward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y) override {
    const int n = y.shape.n, plane = y.shape.h * y.shape.w;
    for (size_t i = 0, offset = 0; i < in.size(); offset += size_t(channels_[i]), ++i) {
#ifdef CONVPOOL_HAVE_CUDA
      if (ctx.device == Device::cuda) {
        cuda::concat_forward(n, channels_[i], y.shape.c, int(offset), plane, in[i].data, y.data,
                             ctx.stream);
        continue;
      }
#endif
      (void)ctx;
      cpu::concat_forward(n, channels_[i], y.shape.c, int(offset), plane, in[i].data, y.data);
    }
  }
  void backward_inputs(const StepContext& ctx, std::span<const Tensor>, const Tensor&,
                       const Tensor& dy, std::span<const Tensor> din,
                       const std::vector<bool>& accumulate) override {
    const int n = dy.shape.n, plane = dy.shape.h * dy.shape.w;
    for (size_t i = 0, offset = 0; i < din.size(); offset += size_t(channels_[i]), ++i) {
      if (!din[i].data) continue;
#ifdef CONVPOOL_HAVE_CUDA
      if (ctx.device == Device::cuda) {
        cuda::concat_backward(n, channels_[i], dy.shape.c, int(offset), plane, dy.data,
                              din[i].data, accumulate[i], ctx.stream);
        continue;
      }
#endif
      (void)ctx;
      cpu::concat_backward(n, channels_[i], dy.shape.c, int(offset), plane, dy.data, din[i].data,
                           accumulate[i]);
    }
  }

 private:
  std::vector<int> channels_;
};

}  // namespace

OpInfo concat_op() {
  return {"concat",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<ConcatLayer>(spec);
          },
          {{"concat", {{1, 2, 3, 3}, {1, 3, 3, 3}}},
           {"concat", {{1, 1, 2, 4}, {1, 2, 2, 4}, {1, 1, 2, 4}}}}};
}

}  // namespace convpool
