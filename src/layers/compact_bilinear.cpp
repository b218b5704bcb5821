// `compact_bilinear [d=8192] [seed=1] [eps=1e-6]`: compact bilinear pooling (Tensor Sketch), a
// global encoder: the count sketch, in d bins, of the maps' bilinear (Gram) matrix summed over
// the positions, then the signed square root and L2 normalisation
// (kernels/compact_bilinear_math.cuh): C x H x W becomes d x 1 x 1. d is a power of two, at
// least C; the two hashes and signs are fixed by `seed` (nothing is learned, and the model
// text, which checkpoints keep, holds the seed). `algo=gram|fft` picks the form
// (kernels/compact_bilinear_fft_math.cuh); auto, the default, the cheaper one for the shape.
#include "cpu/compact_bilinear.h"

#include <memory>

#include "cpu/compact_bilinear_fft.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/compact_bilinear.cuh"
#include "kernels/compact_bilinear_fft.cuh"
#endif

namespace convpool {

namespace {
using namespace layers;

class CompactBilinearLayer : public Layer {
 public:
  explicit CompactBilinearLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    d_ = a.get_int("d", 8192, 2, 1 << 20);
    if (d_ & (d_ - 1)) a.fail("d=" + std::to_string(d_) + " is not a power of two (e.g. d=8192)");
    seed_ = a.get_int("seed", 1, 0, 2147483647);
    eps_ = float(a.get_double("eps", 1e-6, 1e-30, 1.0));
    algo_ = a.get_choice("algo", "auto", {"auto", "gram", "fft"});
    no_positional(spec_, a);
    a.finish();
    sketch_ = compact_bilinear_sketch(uint64_t(seed_), d_, eps_);
  }

  Shape infer_shape(const Shape& in) override {
    if (in.c > d_)
      fail("d=" + std::to_string(d_) + " is below its input's " + std::to_string(in.c) +
           " channels: d must be at least C");
    c_ = in.c;
    hw_ = in.h * in.w;
    fft_ = algo_ == "fft" || (algo_ == "auto" && compact_bilinear_fft_pays(c_, hw_, d_));
    return {1, d_, 1, 1};
  }
  void prepare(Device device, int max_batch) override {
    Layer::prepare(device, max_batch);
#ifdef CONVPOOL_HAVE_CUDA
    if (device == Device::cuda && fft_)
      plans_ = std::make_unique<cuda::CompactBilinearFftPlans>(
          d_, hw_, compact_bilinear_fft_chunk(max_batch, hw_, d_));
#endif
  }
  bool backward_reads_output() const override { return true; }

  // Each image's sketch z and its divisor, kept from forward for backward.
  size_t state_floats(int batch) const override { return size_t(batch) * (d_ + 1); }
  size_t workspace_floats(int batch) const override {
    if (!fft_) return compact_bilinear_scratch_floats(batch, c_, hw_, d_);
#ifdef CONVPOOL_HAVE_CUDA
    if (plans_) return compact_bilinear_fft_device_scratch_floats(batch, hw_, d_, plans_->chunk());
#endif
    return compact_bilinear_fft_scratch_floats(batch, d_);
  }
  double forward_flops() const override {
    if (!fft_) return 2.0 * c_ * c_ * hw_ + 2.0 * c_ * c_ + 6.0 * d_;
    int bits = 0;
    while ((1 << bits) < d_) ++bits;
    return hw_ * (2 * 2.5 * d_ * bits + 4.0 * d_) + 2.5 * d_ * bits + 6.0 * d_;
  }

  std::string describe() const override {
    return "compact bilinear (Tensor Sketch), " + std::to_string(d_) + " dimensions, seed " +
           std::to_string(seed_) + (fft_ ? ", by FFT" : ", by the Gram matrix");
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    const int n = x.shape.n;
    float *z = state_, *norm = state_ + size_t(n) * d_;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda && fft_)
      return cuda::compact_bilinear_fft_forward(*plans_, sketch_, x.data, y.data, z, norm, n, c_,
                                                hw_, workspace_, ctx.stream);
    if (ctx.device == Device::cuda)
      return cuda::compact_bilinear_forward(sketch_, x.data, y.data, z, norm, n, c_, hw_,
                                            workspace_, ctx.stream);
#endif
    (void)ctx;
    if (fft_)
      return cpu::compact_bilinear_fft_forward(sketch_, x.data, y.data, z, norm, n, c_, hw_,
                                               workspace_);
    cpu::compact_bilinear_forward(sketch_, x.data, y.data, z, norm, n, c_, hw_, workspace_);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    if (!dx.data) return;  // nothing learned here
    const int n = x.shape.n;
    const float *z = state_, *norm = state_ + size_t(n) * d_;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda && fft_)
      return cuda::compact_bilinear_fft_backward(*plans_, sketch_, x.data, y.data, z, norm, dy.data,
                                                 dx.data, n, c_, hw_, workspace_, ctx.stream);
    if (ctx.device == Device::cuda)
      return cuda::compact_bilinear_backward(sketch_, x.data, y.data, z, norm, dy.data, dx.data, n,
                                             c_, hw_, workspace_, ctx.stream);
#endif
    (void)ctx;
    if (fft_)
      return cpu::compact_bilinear_fft_backward(sketch_, x.data, y.data, z, norm, dy.data, dx.data,
                                                n, c_, hw_, workspace_);
    cpu::compact_bilinear_backward(sketch_, x.data, y.data, z, norm, dy.data, dx.data, n, c_, hw_,
                                   workspace_);
  }

 private:
  int d_ = 8192, seed_ = 1, c_ = 0, hw_ = 0;
  float eps_ = 1e-6f;
  std::string algo_;
  bool fft_ = false;
  CompactBilinearSketch sketch_;
#ifdef CONVPOOL_HAVE_CUDA
  std::unique_ptr<cuda::CompactBilinearFftPlans> plans_;
#endif
};

}  // namespace

OpInfo compact_bilinear_op() {
  // eps=0.01 in the gradient checks: a finite difference across a sum near 0 would otherwise
  // see the root's curvature there.
  return {"compact_bilinear",
          factory<CompactBilinearLayer>(),
          {{"compact_bilinear d=16 eps=0.01", {{1, 3, 4, 5}}},
           {"compact_bilinear d=32 seed=7 eps=0.01", {{1, 5, 3, 3}}},
           {"compact_bilinear d=4 eps=0.01", {{1, 4, 1, 6}}},
           {"compact_bilinear d=16 eps=0.01 algo=fft", {{1, 5, 2, 3}}},
           {"compact_bilinear d=8 seed=3 eps=0.01 algo=fft", {{1, 8, 1, 4}}}}};
}

}  // namespace convpool
