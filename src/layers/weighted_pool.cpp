// `weighted_pool [size=2] [stride=size] [pad=0] [shared=0|1]`: learned weights over the
// window positions, softmax-normalised over each window's valid positions
// (kernels/weighted_pool_math.cuh): a convex combination of the window, average pooling at the start (logits 0). One set of
// KH x KW logits per channel, or one set for all channels with shared=1.
#include "cpu/weighted_pool.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/weighted_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class WeightedPoolLayer : public Layer {
 public:
  explicit WeightedPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    k_ = a.get_int("size", 2, 1, 8);
    s_ = a.get_int("stride", k_, 1, 1024);
    p_ = a.get_int("pad", 0, 0, 4);
    if (p_ > k_ / 2) a.fail("pad must be at most half the window size");
    shared_ = a.get_int("shared", 0, 0, 1) == 1;
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
    // Logits, 0 at the start (average pooling); not decayed: weight decay would pull the
    // window back towards average pooling.
    std::vector<ParamDecl> d = {
        {"weight", {shared_ ? 1 : g_.C, 1, k_, k_}, Init::zeros, 0, 0, 0.f, 4}};
    d[0].wd_mult = 0.f;
    return d;
  }
  size_t workspace_floats(int) const override {
    return weighted_pool_scratch_floats(g_, shared_);
  }

  std::string describe() const override {
    std::ostringstream os;
    os << k_ << "x" << k_ << " stride " << s_;
    if (p_) os << " pad " << p_;
    os << (shared_ ? ", one set of weights" : ", weights per channel");
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::weighted_pool_forward(g_, params_[0].data, shared_, x.data, y.data, x.shape.n,
                                         ctx.stream);
#endif
    (void)ctx;
    cpu::weighted_pool_forward(g_, params_[0].data, shared_, x.data, y.data, x.shape.n);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::weighted_pool_backward(g_, params_[0].data, shared_, x.data, y.data, dy.data,
                                          dx.data, grads_[0].data, x.shape.n, workspace_,
                                          ctx.stream);
#endif
    (void)ctx;
    cpu::weighted_pool_backward(g_, params_[0].data, shared_, x.data, y.data, dy.data, dx.data,
                                grads_[0].data, x.shape.n, workspace_);
  }

 private:
  int k_ = 2, s_ = 2, p_ = 0;
  bool shared_ = false;
  PoolGeom g_{};
};

}  // namespace

OpInfo weighted_pool_op() {
  return {"weighted_pool",
          factory<WeightedPoolLayer>(),
          {{"weighted_pool", {{1, 2, 4, 4}}},
           {"weighted_pool size=3 stride=2 pad=1", {{1, 3, 5, 6}}},
           {"weighted_pool size=2 stride=1 shared=1", {{1, 3, 3, 4}}},
           {"weighted_pool size=3 stride=3", {{1, 2, 7, 6}}}}};
}

}  // namespace convpool
