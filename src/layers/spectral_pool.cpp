// `spectral_pool [factor=2] [height=H width=W]`: spectral pooling, each plane's spectrum
// cropped to its lowest frequencies (kernels/spectral_pool_math.cuh): C x H x W becomes
// C x ceil(H / factor) x ceil(W / factor), or C x height x width when given. The factor need
// not be a whole number (factor=1.5: 32 -> 22), which is the method's point against windows.
#include "cpu/spectral_pool.h"

#include <cmath>

#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/spectral_pool.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class SpectralPoolLayer : public Layer {
 public:
  explicit SpectralPoolLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    if (a.has("factor") && (a.has("height") || a.has("width")))
      a.fail("takes factor= or height= and width=, not both");
    if (a.has("height") != a.has("width")) a.fail("takes height= and width= together");
    factor_ = a.get_double("factor", 2.0, 1.0, 1024.0);
    if (a.has("height")) {
      h_out_ = a.get_int("height", 1, 1, 4096);
      w_out_ = a.get_int("width", 1, 1, 4096);
    }
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    c_planes_ = in.c;
    h_in_ = in.h;
    w_in_ = in.w;
    if (!h_out_) {
      h_ = std::max(1, int(std::ceil(in.h / factor_ - 1e-9)));
      w_ = std::max(1, int(std::ceil(in.w / factor_ - 1e-9)));
    } else {
      h_ = h_out_;
      w_ = w_out_;
      if (h_ > in.h || w_ > in.w)
        fail("height=" + std::to_string(h_) + " width=" + std::to_string(w_) +
             " is larger than its input's " + std::to_string(in.h) + "x" + std::to_string(in.w) +
             ": spectral pooling only crops the spectrum");
    }
    return {1, in.c, h_, w_};
  }
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  size_t workspace_floats(int batch) const override {
    return spectral_pool_scratch_floats(size_t(batch) * c_planes_, h_in_, w_in_, h_, w_);
  }
  double forward_flops() const override {
    return 2.0 * c_planes_ * (double(h_in_) * w_in_ * w_ + double(h_) * h_in_ * w_);
  }

  std::string describe() const override {
    return "spectral " + std::to_string(h_in_) + "x" + std::to_string(w_in_) + " -> " +
           std::to_string(h_) + "x" + std::to_string(w_);
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    const size_t planes = size_t(x.shape.n) * x.shape.c;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spectral_pool_forward(x.data, y.data, planes, h_in_, w_in_, h_, w_, workspace_,
                                         ctx.stream);
#endif
    (void)ctx;
    cpu::spectral_pool_forward(x.data, y.data, planes, h_in_, w_in_, h_, w_, workspace_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    (void)y;
    if (!dx.data) return;
    const size_t planes = size_t(x.shape.n) * x.shape.c;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spectral_pool_backward(dy.data, dx.data, planes, h_in_, w_in_, h_, w_,
                                          workspace_, ctx.stream);
#endif
    (void)ctx;
    cpu::spectral_pool_backward(dy.data, dx.data, planes, h_in_, w_in_, h_, w_, workspace_);
  }

 private:
  double factor_ = 2.0;
  int h_out_ = 0, w_out_ = 0, h_in_ = 0, w_in_ = 0, h_ = 0, w_ = 0, c_planes_ = 0;
};

}  // namespace

OpInfo spectral_pool_op() {
  return {"spectral_pool",
          factory<SpectralPoolLayer>(),
          {{"spectral_pool", {{1, 3, 6, 6}}},
           {"spectral_pool factor=1.5", {{1, 2, 7, 5}}},
           {"spectral_pool height=1 width=1", {{1, 2, 4, 3}}},
           {"spectral_pool height=3 width=4", {{1, 2, 5, 4}}}}};
}

}  // namespace convpool
