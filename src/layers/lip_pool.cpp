// `lip_pool [size=2] [stride=size] [pad=0]`: local importance-based pooling (LIP) in its light
// form: each activation weighs exp(gamma_c x) in its window's mean, over the window's valid
// positions (kernels/lip_pool_math.cuh), with gamma_c learned per channel (the parameter
// `logit_scale`), 0 at the start: average pooling.
#include "cpu/lip_pool.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/lip_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class LipPoolLayer : public Layer {
 public:
  explicit LipPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    k_ = a.get_int("size", 2, 1, 8);
    s_ = a.get_int("stride", k_, 1, 1024);
    p_ = a.get_int("pad", 0, 0, 4);
    if (p_ > k_ / 2) a.fail("pad must be at most half the window size");
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    if (k_ > in.h + 2 * p_ || k_ > in.w + 2 * p_)
      fail("window " + std::to_string(k_) + "x" + std::to_string(k_) +
           " is larger than its input " + in.str());
    g_ = make_pool_geom(in.c, in.h, in.w, k_, k_, s_, s_, p_, p_, false, false);
    return {1, in.c, g_.OH, g_.OW};
  }

  std::vector<ParamDecl> param_decls() const override {
    // 0 at the start (average pooling); not decayed: weight decay would pull it back there.
    std::vector<ParamDecl> d = {{"logit_scale", {g_.C, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1}};
    d[0].wd_mult = 0.f;
    return d;
  }

  std::string describe() const override {
    std::ostringstream os;
    os << k_ << "x" << k_ << " stride " << s_;
    if (p_) os << " pad " << p_;
    os << ", weights exp(gamma x), gamma per channel";
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::lip_pool_forward(g_, params_[0].data, x.data, y.data, x.shape.n, ctx.stream);
#endif
    (void)ctx;
    cpu::lip_pool_forward(g_, params_[0].data, x.data, y.data, x.shape.n);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::lip_pool_backward(g_, params_[0].data, x.data, y.data, dy.data, dx.data,
                                     grads_[0].data, x.shape.n, ctx.stream);
#endif
    (void)ctx;
    cpu::lip_pool_backward(g_, params_[0].data, x.data, y.data, dy.data, dx.data,
                           grads_[0].data, x.shape.n);
  }

 private:
  int k_ = 2, s_ = 2, p_ = 0;
  PoolGeom g_{};
};

}  // namespace

OpInfo lip_pool_op() {
  return {"lip_pool",
          factory<LipPoolLayer>(),
          {{"lip_pool", {{1, 2, 4, 4}}},
           {"lip_pool size=3 stride=2 pad=1", {{1, 3, 5, 6}}},
           {"lip_pool size=2 stride=1", {{1, 3, 3, 4}}},
           {"lip_pool size=3 stride=3", {{1, 2, 7, 6}}}}};
}

}  // namespace convpool
