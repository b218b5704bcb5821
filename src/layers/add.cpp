// Ops with several inputs: `add in=a,b` (residual sums, same shapes) and `concat in=a,b`
// (channels, same height and width). Their backward hands dy (or its channel slice) to each
// input, adding to what is there when the graph asks.
#include <sstream>

#include "cpu/batchnorm.h"
#include "convpool/layer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/batchnorm.cuh"
#endif

namespace convpool {

namespace {

constexpr int kMaxMergeInputs = 16;

class MergeLayer : public Layer {
 public:
  explicit MergeLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    if (!spec_.positional.empty()) a.fail("unexpected word '" + spec_.positional[0] + "'");
    a.finish();
  }
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  bool accumulates_input_grad() const override { return true; }

 protected:
  // "input 2 ('bn2', 16x32x32)"
  std::string describe_input(size_t i, const Shape& s) const {
    std::ostringstream os;
    os << "input " << i + 1;
    if (i < spec_.inputs.size()) os << " ('" << spec_.inputs[i] << "'";
    os << (i < spec_.inputs.size() ? ", " : " (") << s.c << "x" << s.h << "x" << s.w << ")";
    return os.str();
  }
  void check_count(std::span<const Shape> in) const {
    if (in.size() < 2 || in.size() > size_t(kMaxMergeInputs))
      fail("takes 2 to " + std::to_string(kMaxMergeInputs) + " inputs (in=a,b), not " +
           std::to_string(in.size()));
  }
  static void copy(const StepContext& ctx, const float* src, float* dst, size_t n, bool accumulate) {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) return cuda::scaled_copy(src, dst, n, 1.f, accumulate, ctx.stream);
#endif
    (void)ctx;
    cpu::scaled_copy(src, dst, n, 1.f, accumulate);
  }
};

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

OpInfo add_op() {
  return {"add",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<AddLayer>(spec);
          },
          {{"add", {{1, 3, 4, 4}, {1, 3, 4, 4}}},
           {"add", {{1, 5, 1, 1}, {1, 5, 1, 1}, {1, 5, 1, 1}}}}};
}
OpInfo concat_op() {
  return {"concat",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<ConcatLayer>(spec);
          },
          {{"concat", {{1, 2, 3, 3}, {1, 3, 3, 3}}},
           {"concat", {{1, 1, 2, 4}, {1, 2, 2, 4}, {1, 1, 2, 4}}}}};
}

}  // namespace convpool
