// `pyramid_pool sizes=S1,S2,...`: per-pixel pyramid pooling (4P). Max pooling of the input at
// each odd window size, stride 1 and padding size/2, so every pooled map keeps the input's
// height and width; the pooled maps are concatenated along channels, size by size (C maps
// become C * sizes). The backends' paths (src/cpu/pyramid_pool.cpp, src/cuda/pyramid_pool.cpp)
// run the pooling layer's own max code for each size and the concat op's copies.
#include <cstdint>
#include <span>
#include <sstream>

#include "cpu/pyramid_pool.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/pyramid_pool.h"
#endif

namespace convpool {

namespace {
using namespace layers;

// The largest window: 7x7 = 49 elements stays on the CUDA small-window kernels, which take
// overlapping windows (the warp kernels do not; they take a size-1 window on a 1x1 plane,
// which is global pooling there, and keep its selection in the layer state).
constexpr int kPyramidMaxSize = 7;

class PyramidPoolLayer : public Layer {
 public:
  explicit PyramidPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    if (!a.has("sizes")) a.fail("needs sizes=S1,S2,... (odd window sizes, e.g. sizes=1,3,5)");
    sizes_ = number_list(a, "sizes", a.get_string("sizes", ""), 1, kPyramidMaxSize,
                         "an odd window size", "size", [](int s) { return s % 2 == 1; });
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    geoms_.clear();
    for (int s : sizes_)
      geoms_.push_back(make_pool_geom(in.c, in.h, in.w, s, s, 1, 1, s / 2, s / 2, true, false));
    return {1, in.c * int(sizes_.size()), in.h, in.w};
  }
  // Each size's block of the layer state, laid out for the built batch (a smaller last batch
  // uses the start of each block); SIZE_MAX where a size keeps none.
  void prepare(Device device, int max_batch) override {
    Layer::prepare(device, max_batch);
    offsets_.clear();
    size_t at = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      const size_t ints = selection_ints(i, max_batch);
      offsets_.push_back(ints ? at : SIZE_MAX);
      at += ints;
    }
    selections_.assign(sizes_.size(), nullptr);
  }
  // The CUDA kernels' backward reads each size's pooled output: its slice of y.
  bool backward_reads_output() const override { return device_ == Device::cuda; }

  std::string describe() const override {
    std::ostringstream os;
    os << "max at stride 1, windows";
    for (size_t i = 0; i < sizes_.size(); ++i) os << (i ? "," : " ") << sizes_[i];
    os << ", concatenated";
    return os.str();
  }

  // Each size's selection: on the CPU one int32 per pooled element (a scatter-only backward),
  // on CUDA what its kernels keep, one block per size.
  size_t state_floats(int batch) const override {
    size_t total = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) total += selection_ints(i, batch);
    return total;
  }
  // One pooled map set and one input gradient to add; on CUDA also the size's slice of y.
  size_t workspace_floats(int batch) const override {
    return (device_ == Device::cuda ? 3 : 2) * pooled(batch);
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    const std::span<int32_t* const> sel = selections();
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::pyramid_pool_forward(geoms_, ctx.training, ctx.device_step, x.shape.n, x.data,
                                        y.data, workspace_, sel, ctx.stream);
#endif
    (void)ctx;
    cpu::pyramid_pool_forward(geoms_, x.shape.n, x.data, y.data, workspace_, sel);
  }

  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (!dx.data) return;
    const std::span<int32_t* const> sel = selections();
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::pyramid_pool_backward(geoms_, ctx.training, ctx.device_step, x.shape.n, x.data,
                                         y.data, dy.data, dx.data, workspace_, sel, ctx.stream);
#endif
    (void)ctx, (void)y;
    cpu::pyramid_pool_backward(geoms_, x.shape.n, x.data, dy.data, dx.data, workspace_, sel);
  }

 private:
  size_t pooled(int batch) const {
    return geoms_.empty() ? 0 : size_t(batch) * geoms_[0].C * geoms_[0].H * geoms_[0].W;
  }
  size_t selection_ints(size_t i, int batch) const {
#ifdef CONVPOOL_HAVE_CUDA
    if (device_ == Device::cuda) return cuda::pyramid_pool_state_ints(geoms_[i], batch);
#endif
    (void)i;
    return pooled(batch);
  }
  // The sizes' selections in the bound state (null where a size keeps none), written into a
  // vector sized once in prepare(): a step allocates nothing here.
  std::span<int32_t* const> selections() {
    for (size_t i = 0; i < offsets_.size(); ++i)
      selections_[i] =
          offsets_[i] == SIZE_MAX ? nullptr : reinterpret_cast<int32_t*>(state_) + offsets_[i];
    return selections_;
  }

  std::vector<int> sizes_;
  std::vector<PoolGeom> geoms_;
  std::vector<size_t> offsets_;
  std::vector<int32_t*> selections_;
};

}  // namespace

OpInfo pyramid_pool_op() {
  return {"pyramid_pool",
          factory<PyramidPoolLayer>(),
          {{"pyramid_pool sizes=1,3", {{1, 2, 4, 5}}},
           {"pyramid_pool sizes=3,5,7", {{1, 2, 6, 6}}},
           {"pyramid_pool sizes=5", {{1, 3, 2, 3}}}}};
}

}  // namespace convpool
