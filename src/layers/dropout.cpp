// `dropout p=P`.
#include "cpu/dropout.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/dropout.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

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

}  // namespace

OpInfo dropout_op() {
  return {"dropout",
          factory<DropoutLayer>(),
          {{"dropout p=0.3", {{1, 3, 4, 4}}}, {"dropout p=0", {{1, 4, 1, 1}}}}};
}

}  // namespace convpool
