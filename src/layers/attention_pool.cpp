// `attention_pool [heads=1]`: attention pooling, a global encoder: each head scores every
// position by a learned 1x1 convolution of the maps, takes the softmax of its scores over the
// positions and sums the maps with those weights (kernels/attention_pool_math.cuh):
// C x H x W becomes (heads x C) x 1 x 1, head by head. The weights start at 0, average
// pooling, and are not decayed (decay would pull them back towards it). A score bias would
// cancel in the softmax, so there is none.
#include "cpu/attention_pool.h"

#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/attention_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class AttentionPoolLayer : public Layer {
 public:
  explicit AttentionPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    heads_ = a.get_int("heads", 1, 1, 64);
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    c_ = in.c;
    hw_ = in.h * in.w;
    return {1, heads_ * in.c, 1, 1};
  }
  bool backward_reads_output() const override { return false; }

  std::vector<ParamDecl> param_decls() const override {
    ParamDecl d{"weight", {heads_, c_, 1, 1}, Init::zeros, 0, 0, 0.f, 4};
    d.wd_mult = 0.f;
    return {d};
  }
  // The attention weights, kept from forward for backward; the score gradients and the
  // transposed maps are scratch.
  size_t state_floats(int batch) const override { return size_t(batch) * heads_ * hw_; }
  size_t workspace_floats(int batch) const override {
    return attention_pool_scratch_floats(batch, heads_, c_, hw_);
  }

  std::string describe() const override {
    return std::to_string(heads_) + (heads_ == 1 ? " head" : " heads") +
           " of softmax attention over positions";
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::attention_pool_forward(params_[0].data, heads_, x.data, y.data, state_,
                                          x.shape.n, c_, hw_, ctx.stream);
#endif
    (void)ctx;
    cpu::attention_pool_forward(params_[0].data, heads_, x.data, y.data, state_, x.shape.n, c_,
                                hw_, workspace_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    (void)y;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::attention_pool_backward(params_[0].data, heads_, x.data, state_, dy.data,
                                           dx.data, grads_[0].data, x.shape.n, c_, hw_, workspace_,
                                           ctx.stream);
#endif
    (void)ctx;
    cpu::attention_pool_backward(params_[0].data, heads_, x.data, state_, dy.data, dx.data,
                                 grads_[0].data, x.shape.n, c_, hw_, workspace_);
  }

 private:
  int heads_ = 1, c_ = 0, hw_ = 0;
};

}  // namespace

OpInfo attention_pool_op() {
  return {"attention_pool",
          factory<AttentionPoolLayer>(),
          {{"attention_pool", {{1, 3, 4, 5}}},
           {"attention_pool heads=2", {{1, 4, 3, 3}}},
           {"attention_pool heads=3", {{1, 2, 1, 7}}}}};
}

}  // namespace convpool
