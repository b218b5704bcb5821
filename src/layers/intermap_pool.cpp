// `intermap_pool groups=G [mode=max|mean]`: pooling across feature maps. Each sample's maps
// are taken in groups of G adjacent ones and pooled at every position, max (maxout's form) or
// mean, so C maps become C / G.
#include "cpu/intermap_pool.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/intermap_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class InterMapPoolLayer : public Layer {
 public:
  explicit InterMapPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    if (!a.has("groups")) a.fail("needs groups=G (how many adjacent maps each output pools)");
    groups_ = a.get_int("groups", 2, 1, 4096);
    mode_ = a.get_choice("mode", "max", {"max", "mean"}) == "max" ? InterMapMode::max
                                                                   : InterMapMode::mean;
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    if (in.c % groups_ != 0)
      fail("groups=" + std::to_string(groups_) + " does not divide its input's " +
           std::to_string(in.c) + " maps");
    c_ = in.c;
    hw_ = size_t(in.h) * in.w;
    return {1, in.c / groups_, in.h, in.w};
  }
  bool backward_reads_output() const override { return false; }

  std::string describe() const override {
    return std::string(mode_ == InterMapMode::max ? "max" : "mean") + " over groups of " +
           std::to_string(groups_) + " maps";
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::intermap_pool_forward(mode_, groups_, x.data, y.data, x.shape.n, c_, hw_,
                                         ctx.stream);
#endif
    (void)ctx;
    cpu::intermap_pool_forward(mode_, groups_, x.data, y.data, x.shape.n, c_, hw_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                const Tensor& dx) override {
    if (!dx.data) return;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::intermap_pool_backward(mode_, groups_, x.data, dy.data, dx.data, x.shape.n, c_,
                                          hw_, ctx.stream);
#endif
    (void)ctx;
    cpu::intermap_pool_backward(mode_, groups_, x.data, dy.data, dx.data, x.shape.n, c_, hw_);
  }

 private:
  int groups_ = 2, c_ = 0;
  size_t hw_ = 0;
  InterMapMode mode_ = InterMapMode::max;
};

}  // namespace

OpInfo intermap_pool_op() {
  return {"intermap_pool",
          factory<InterMapPoolLayer>(),
          {{"intermap_pool groups=2", {{1, 4, 3, 3}}},
           {"intermap_pool groups=3 mode=mean", {{1, 6, 2, 5}}},
           {"intermap_pool groups=4", {{1, 8, 1, 1}}},
           {"intermap_pool groups=1", {{1, 3, 2, 2}}}}};
}

}  // namespace convpool
