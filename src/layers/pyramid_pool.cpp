// `pyramid_pool sizes=S1,S2,...`: per-pixel pyramid pooling (4P). Max pooling of the input at
// each odd window size, stride 1 and padding size/2, so every pooled map keeps the input's
// height and width; the pooled maps are concatenated along channels, size by size (C maps
// become C * sizes). Each size runs the pooling layer's own max paths (kernels/pool_math.cuh:
// CPU fast paths recording their selection, CUDA kernels/pool_small.cu) into a workspace,
// and the concat op's copies place it.
#include <sstream>

#include "cpu/concat.h"
#include "cpu/pool.h"
#include "cpu/scale.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/concat.cuh"
#include "kernels/pool.cuh"
#include "kernels/scale.cuh"
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
    const std::string text = a.get_string("sizes", "");
    std::istringstream is(text);
    for (std::string item; std::getline(is, item, ',');) {
      int s = 0;
      try {
        size_t used = 0;
        s = std::stoi(item, &used);
        if (used != item.size()) s = 0;
      } catch (const std::exception&) {
        s = 0;
      }
      if (s < 1 || s > kPyramidMaxSize || s % 2 == 0)
        a.fail("sizes=" + text + ": '" + item + "' is not an odd window size in 1.." +
               std::to_string(kPyramidMaxSize));
      for (int t : sizes_)
        if (t == s) a.fail("sizes=" + text + ": " + item + " is given twice");
      sizes_.push_back(s);
    }
    if (sizes_.empty() || text.back() == ',') a.fail("sizes=" + text + " lists no size");
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    geoms_.clear();
    for (int s : sizes_)
      geoms_.push_back(make_pool_geom(in.c, in.h, in.w, s, s, 1, 1, s / 2, s / 2, true, false));
    plane_ = in.h * in.w;
    return {1, in.c * int(sizes_.size()), in.h, in.w};
  }
  // The CUDA kernels' backward reads each size's pooled output: its slice of y.
  bool backward_reads_output() const override { return device_ == Device::cuda; }
  void prepare(Device device, int max_batch) override {
    Layer::prepare(device, max_batch);
    max_batch_ = max_batch;
  }

  std::string describe() const override {
    std::ostringstream os;
    os << "max at stride 1, windows";
    for (size_t i = 0; i < sizes_.size(); ++i) os << (i ? "," : " ") << sizes_[i];
    os << ", concatenated";
    return os.str();
  }

  // Each size's selection: on the CPU one int32 per pooled element (a scatter-only
  // backward), on CUDA what its kernels keep (cuda::pool_state_ints), one block per size.
  size_t state_floats(int batch) const override {
    size_t total = 0;
    for (size_t i = 0; i < sizes_.size(); ++i) total += selection_ints(i, batch);
    return total;
  }
  // One pooled map set (forward: a size's output; backward: its slice of dy), one input
  // gradient to add, and on CUDA the size's slice of y.
  size_t workspace_floats(int batch) const override {
    return (device_ == Device::cuda ? 3 : 2) * pooled(batch);
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    const int n = x.shape.n, c = geoms_[0].C, total = c * int(sizes_.size());
    for (size_t i = 0; i < sizes_.size(); ++i) {
#ifdef CONVPOOL_HAVE_CUDA
      if (ctx.device == Device::cuda) {
        cuda::pool_forward(geoms_[i], max_params(ctx), ctx.seed, index(), ctx.device_step, nullptr,
                           n, x.data, workspace_, selection(i), ctx.stream);
        cuda::concat_forward(n, c, total, c * int(i), plane_, workspace_, y.data, ctx.stream);
        continue;
      }
#endif
      cpu::pool_forward(geoms_[i], max_params(ctx), PoolRng{}, n, x.data, workspace_,
                        selection(i));
      cpu::concat_forward(n, c, total, c * int(i), plane_, workspace_, y.data);
    }
  }

  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (!dx.data) return;
    const int n = x.shape.n, c = geoms_[0].C, total = c * int(sizes_.size());
    float* dy_part = workspace_;
    float* dx_part = workspace_ + pooled(n);
    const size_t count = size_t(n) * c * plane_;
    for (size_t i = 0; i < sizes_.size(); ++i) {
      float* into = i == 0 ? dx.data : dx_part;  // the first size writes dx, the rest add to it
#ifdef CONVPOOL_HAVE_CUDA
      if (ctx.device == Device::cuda) {
        float* y_part = workspace_ + 2 * pooled(n);
        cuda::concat_backward(n, c, total, c * int(i), plane_, dy.data, dy_part, false, ctx.stream);
        cuda::concat_backward(n, c, total, c * int(i), plane_, y.data, y_part, false, ctx.stream);
        cuda::pool_backward(geoms_[i], max_params(ctx), ctx.seed, index(), ctx.device_step,
                            nullptr, n, x.data, y_part, dy_part, into, nullptr, selection(i),
                            ctx.stream);
        if (i) cuda::scaled_copy(dx_part, dx.data, count, 1.f, true, ctx.stream);
        continue;
      }
#endif
      cpu::concat_backward(n, c, total, c * int(i), plane_, dy.data, dy_part, false);
      cpu::pool_backward(geoms_[i], max_params(ctx), PoolRng{}, n, x.data, nullptr, dy_part, into,
                         nullptr, selection(i));
      if (i) cpu::scaled_copy(dx_part, dx.data, count, 1.f, true);
    }
  }

 private:
  size_t pooled(int batch) const {
    return size_t(batch) * (geoms_.empty() ? 0 : geoms_[0].C) * plane_;
  }
  static PoolWindowParams max_params(bool training = true) {
    PoolWindowParams p;
    p.method = PoolMethod::max;
    p.training = training;
    return p;
  }
  static PoolWindowParams max_params(const StepContext& ctx) { return max_params(ctx.training); }
  size_t selection_ints(size_t i, int batch) const {
#ifdef CONVPOOL_HAVE_CUDA
    if (device_ == Device::cuda) return cuda::pool_state_ints(geoms_[i], max_params(), batch);
#endif
    return pooled(batch);
  }
  // Size i's selection in the layer state, the blocks laid out for the built batch (a smaller
  // last batch uses the start of each block); null where it keeps none.
  int32_t* selection(size_t i) const {
    if (!selection_ints(i, max_batch_)) return nullptr;
    size_t at = 0;
    for (size_t j = 0; j < i; ++j) at += selection_ints(j, max_batch_);
    return reinterpret_cast<int32_t*>(state_) + at;
  }

  std::vector<int> sizes_;
  std::vector<PoolGeom> geoms_;
  int plane_ = 0, max_batch_ = 0;
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
