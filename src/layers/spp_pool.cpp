// `spp_pool [levels=1,2,4] [mode=max|avg]`: spatial pyramid pooling, a global encoder: each
// level L pools every plane's L x L cells by max or mean (kernels/spp_pool_math.cuh), and the
// levels are concatenated: C x H x W becomes (C sum L^2) x 1 x 1, whatever H and W.
#include "cpu/spp_pool.h"

#include <sstream>

#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/spp_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class SppPoolLayer : public Layer {
 public:
  explicit SppPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    const std::string text = a.get_string("levels", "1,2,4");
    const std::vector<int> cells =
        number_list(a, "levels", text, 1, kSppMaxCells, "a number of cells a side", "level");
    if (cells.size() > size_t(kSppMaxLevels))
      a.fail("levels=" + text + ": at most " + std::to_string(kSppMaxLevels) + " levels");
    for (int L : cells) levels_.cells[levels_.count++] = L;
    levels_.max = a.get_choice("mode", "max", {"max", "avg"}) == "max";
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    c_ = in.c;
    h_ = in.h;
    w_ = in.w;
    return {1, in.c * spp_features_per_channel(levels_), 1, 1};
  }
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  // Each output's kept element (its max's index; the mean keeps none, but one layout serves
  // both).
  size_t state_floats(int batch) const override {
    return size_t(batch) * c_ * spp_features_per_channel(levels_);
  }

  std::string describe() const override {
    std::ostringstream os;
    os << "spatial pyramid of " << (levels_.max ? "max" : "mean") << " cells, levels";
    for (int t = 0; t < levels_.count; ++t)
      os << (t ? "," : " ") << levels_.cells[t] << "x" << levels_.cells[t];
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spp_pool_forward(levels_, x.data, y.data, state_, x.shape.n, c_, h_, w_,
                                    ctx.stream);
#endif
    (void)ctx;
    cpu::spp_pool_forward(levels_, x.data, y.data, state_, x.shape.n, c_, h_, w_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    (void)y;
    if (!dx.data) return;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spp_pool_backward(levels_, state_, dy.data, dx.data, x.shape.n, c_, h_, w_,
                                     ctx.stream);
#endif
    (void)ctx;
    cpu::spp_pool_backward(levels_, state_, dy.data, dx.data, x.shape.n, c_, h_, w_);
  }

 private:
  SppLevels levels_;
  int c_ = 0, h_ = 0, w_ = 0;
};

}  // namespace

OpInfo spp_pool_op() {
  return {"spp_pool",
          factory<SppPoolLayer>(),
          {{"spp_pool", {{1, 3, 4, 5}}},
           {"spp_pool levels=1,3 mode=avg", {{1, 2, 7, 5}}},
           {"spp_pool levels=2,4", {{1, 2, 3, 2}}}}};  // a level finer than the plane
}

}  // namespace convpool
