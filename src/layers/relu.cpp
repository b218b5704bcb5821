// relu and flatten: layers with no parameters and no arguments.
#include "kernels/optim_math.cuh"
#include "convpool/layer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/pool.cuh"
#endif

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
    const long n = long(x.numel());
    const float* __restrict in = x.data;
    float* __restrict out = y.data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = relu_forward(in[i]);
  }
  void backward(const StepContext& ctx, const Tensor&, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (fused_ || !dx.data) return;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::relu_backward(y.data, dy.data, dx.data, y.numel(), ctx.stream);
#endif
    (void)ctx;
    const long n = long(y.numel());
    const float* __restrict yv = y.data;
    const float* __restrict g = dy.data;
    float* __restrict out = dx.data;
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; ++i) out[i] = relu_backward(yv[i], g[i]);
  }

 private:
  bool fused_ = false;
  std::string fused_into_;  // the layer that applies this ReLU
};

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

OpInfo relu_op() {
  return {"relu",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<ReluLayer>(spec);
          },
          {{"relu", {{1, 3, 4, 4}}}}};
}
OpInfo flatten_op() {
  return {"flatten",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<FlattenLayer>(spec);
          },
          {{"flatten", {{1, 3, 2, 4}}}}};
}

}  // namespace convpool
