// `gem_pool [p=3] [shared=1] [eps=1e-6]`: generalised-mean pooling, a global encoder: each
// plane becomes (mean of max(x, eps)^p)^(1/p) (kernels/gem_pool_math.cuh), C x H x W becomes
// C x 1 x 1. The exponent is learned, starting at p: one for the layer, or one per channel
// with shared=0. Its parameter is `log_p_minus_1`, ln(p - 1), so that every value is an
// exponent above 1; it is not decayed (decay would pull p towards 2).
#include "cpu/gem_pool.h"

#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/gem_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class GemPoolLayer : public Layer {
 public:
  explicit GemPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    p0_ = float(a.get_double("p", 3.0, 1.0, 64.0));
    if (p0_ <= 1.f) a.fail("p=1 is average pooling: GeM's p starts above 1 (e.g. p=3)");
    shared_ = a.get_int("shared", 1, 0, 1) == 1;
    eps_ = float(a.get_double("eps", 1e-6, 1e-30, 1.0));
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    c_ = in.c;
    hw_ = in.h * in.w;
    return {1, in.c, 1, 1};
  }

  std::vector<ParamDecl> param_decls() const override {
    ParamDecl d{
        "log_p_minus_1", {shared_ ? 1 : c_, 1, 1, 1}, Init::constant, 0, 0, gem_parameter(p0_), 1};
    d.wd_mult = 0.f;
    return {d};
  }
  size_t workspace_floats(int batch) const override { return gem_pool_scratch_floats(batch, c_); }

  std::string describe() const override {
    std::ostringstream os;
    os << "generalised mean, p from " << p0_ << (shared_ ? ", one p" : ", p per channel");
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::gem_pool_forward(params_[0].data, shared_, eps_, x.data, y.data, x.shape.n, c_,
                                    hw_, ctx.stream);
#endif
    (void)ctx;
    cpu::gem_pool_forward(params_[0].data, shared_, eps_, x.data, y.data, x.shape.n, c_, hw_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::gem_pool_backward(params_[0].data, shared_, eps_, x.data, y.data, dy.data,
                                     dx.data, grads_[0].data, x.shape.n, c_, hw_, workspace_,
                                     ctx.stream);
#endif
    (void)ctx;
    cpu::gem_pool_backward(params_[0].data, shared_, eps_, x.data, y.data, dy.data, dx.data,
                           grads_[0].data, x.shape.n, c_, hw_, workspace_);
  }

 private:
  float p0_ = 3.f, eps_ = 1e-6f;
  bool shared_ = true;
  int c_ = 0, hw_ = 0;
};

}  // namespace

OpInfo gem_pool_op() {
  // Inputs in [0.1, 2]: the gradient check's steps stay on one side of the clamp at eps.
  return {"gem_pool",
          factory<GemPoolLayer>(),
          {{"gem_pool", {{1, 3, 4, 5}}, 0.1f, 2.f},
           {"gem_pool p=2 shared=0", {{1, 4, 3, 3}}, 0.1f, 2.f},
           {"gem_pool p=4.5 eps=0.01", {{1, 2, 1, 6}}, 0.1f, 2.f}}};
}

}  // namespace convpool
