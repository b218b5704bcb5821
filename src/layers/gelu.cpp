// Element-wise ops with one input: gelu, leaky_relu, scale and dropout. Each adds its input
// gradient to what is there when the graph asks (a tensor read by several nodes).
#include <sstream>

#include "cpu/batchnorm.h"
#include "convpool/layer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/batchnorm.cuh"
#endif

namespace convpool {

namespace {

void no_positional(const LayerSpec& spec, LayerArgs& a) {
  if (!spec.positional.empty()) a.fail("unexpected word '" + spec.positional[0] + "'");
}

// A one-input op whose backward takes the accumulate flag.
class PointwiseLayer : public Layer {
 public:
  using Layer::Layer;
  Shape infer_shape(const Shape& in) override { return in; }
  bool accumulates_input_grad() const override { return true; }
  bool backward_reads_output() const override { return false; }
  void backward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor&,
                       const Tensor& dy, std::span<const Tensor> din,
                       const std::vector<bool>& accumulate) override {
    if (din[0].data) input_grad(ctx, in[0], dy, din[0].data, accumulate[0]);
  }
  virtual void input_grad(const StepContext& ctx, const Tensor& x, const Tensor& dy, float* dx,
                          bool accumulate) = 0;
};

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

// scale factor=F: y = F * x (airbench's head multiplies its logits by a constant).
class ScaleLayer : public PointwiseLayer {
 public:
  explicit ScaleLayer(const LayerSpec& spec) : PointwiseLayer(spec) {
    LayerArgs a(spec_);
    if (!a.has("factor")) a.fail("needs factor=F");
    factor_ = float(a.get_double("factor", 1.0, -1e6, 1e6));
    no_positional(spec_, a);
    a.finish();
  }
  bool backward_reads_input() const override { return false; }
  std::string describe() const override {
    std::ostringstream os;
    os << "times " << factor_;
    return os.str();
  }
  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    copy(ctx, x.data, y.data, x.numel(), false);
  }
  void input_grad(const StepContext& ctx, const Tensor&, const Tensor& dy, float* dx,
                  bool accumulate) override {
    copy(ctx, dy.data, dx, dy.numel(), accumulate);
  }

 private:
  void copy(const StepContext& ctx, const float* src, float* dst, size_t n, bool accumulate) {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::scaled_copy(src, dst, n, factor_, accumulate, ctx.stream);
#endif
    (void)ctx;
    cpu::scaled_copy(src, dst, n, factor_, accumulate);
  }
  float factor_ = 1.f;
};

// dropout p=0.5: in training, zero each element with probability p and scale the rest by
// 1/(1-p); in evaluation, the identity. The draws are keyed by (seed, layer, step, element),
// like the pooling draws, so backward recomputes the mask and both backends agree.
class DropoutLayer : public PointwiseLayer {
 public:
  explicit DropoutLayer(const LayerSpec& spec) : PointwiseLayer(spec) {
    LayerArgs a(spec_);
    p_ = float(a.get_double("p", 0.5, 0.0, 0.99));
    no_positional(spec_, a);
    a.finish();
  }
  bool backward_reads_input() const override { return false; }
  std::string describe() const override {
    std::ostringstream os;
    os << "p " << p_;
    return os.str();
  }
  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) {
      if (!ctx.training) return cuda::scaled_copy(x.data, y.data, x.numel(), 1.f, false, ctx.stream);
      return cuda::dropout_forward(x.data, y.data, x.numel(), p_, ctx.seed, index_,
                                   ctx.device_step, ctx.stream, first_element(ctx, x));
    }
#endif
    if (!ctx.training) return cpu::scaled_copy(x.data, y.data, x.numel(), 1.f, false);
    cpu::dropout_forward(x.data, y.data, x.numel(), p_, ctx.seed, index_, ctx.step,
                         first_element(ctx, x));
  }
  void input_grad(const StepContext& ctx, const Tensor&, const Tensor& dy, float* dx,
                  bool accumulate) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::dropout_backward(dy.data, dx, dy.numel(), p_, ctx.seed, index_,
                                    ctx.device_step, accumulate, ctx.stream,
                                    first_element(ctx, dy));
#endif
    cpu::dropout_backward(dy.data, dx, dy.numel(), p_, ctx.seed, index_, ctx.step, accumulate,
                          first_element(ctx, dy));
  }

 private:
  // The global index of this rank's first element: the draws do not depend on the world size.
  static uint64_t first_element(const StepContext& ctx, const Tensor& t) {
    return ctx.sample_offset * t.shape.per_sample();
  }
  float p_ = 0.5f;
};

template <class L>
LayerFactory factory() {
  return [](const LayerSpec& spec) -> std::unique_ptr<Layer> { return std::make_unique<L>(spec); };
}

}  // namespace

OpInfo gelu_op() { return {"gelu", factory<GeluLayer>(), {{"gelu", {{1, 3, 4, 4}}}}}; }
OpInfo leaky_relu_op() {
  return {"leaky_relu",
          factory<LeakyReluLayer>(),
          {{"leaky_relu", {{1, 3, 4, 4}}}, {"leaky_relu slope=0.2", {{1, 5, 1, 1}}}}};
}
OpInfo scale_op() {
  return {"scale",
          factory<ScaleLayer>(),
          {{"scale factor=0.125", {{1, 10, 1, 1}}}, {"scale factor=-3", {{1, 2, 3, 3}}}}};
}
OpInfo dropout_op() {
  return {"dropout",
          factory<DropoutLayer>(),
          {{"dropout p=0.3", {{1, 3, 4, 4}}}, {"dropout p=0", {{1, 4, 1, 1}}}}};
}

}  // namespace convpool
