// `scale factor=F`: y = F * x.
#include "cpu/scale.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/scale.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

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

}  // namespace

OpInfo scale_op() {
  return {"scale",
          factory<ScaleLayer>(),
          {{"scale factor=0.125", {{1, 10, 1, 1}}}, {"scale factor=-3", {{1, 2, 3, 3}}}}};
}

}  // namespace convpool
