// dense: fully connected layer, with a bias unless bias=0. `dense units=64 [bias=1]`
#include "cpu/dense.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/dense_cublas.h"
#endif
#include "convpool/device.h"
#include "convpool/layer.h"

namespace convpool {

namespace {

class DenseLayer : public Layer {
 public:
  explicit DenseLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    out_ = a.get_int("units", 0, 1, 1 << 20);
    if (out_ == 0) a.fail("needs units=N");
    bias_ = a.get_int("bias", 1, 0, 1) == 1;
    if (!spec_.positional.empty()) a.fail("unexpected word '" + spec_.positional[0] + "'");
    a.finish();
  }
  Shape infer_shape(const Shape& in) override {
    if (in.h != 1 || in.w != 1)
      fail("input " + in.str() + " is not flat: put a 'flatten' layer before it");
    in_ = in.c;
    return {1, out_, 1, 1};
  }
  std::vector<ParamDecl> param_decls() const override {
    std::vector<ParamDecl> d = {{"weight", {out_, in_, 1, 1}, Init::glorot_uniform, in_, out_, 0.f, 2}};
    if (bias_) {
      d.push_back({"bias", {out_, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1});
      d[1].wd_mult = 0.f;
    }
    return d;
  }
  bool backward_reads_output() const override { return false; }
  std::string describe() const override {
    return std::to_string(in_) + " -> " + std::to_string(out_) + (bias_ ? "" : ", no bias");
  }
  double forward_flops() const override { return 2.0 * in_ * out_; }
  std::string backend_detail(int) const override {
    if (device_ == Device::cuda)
      return std::string("cuBLAS sgemm, ") + (cuda_tf32() ? "tf32" : "fp32");
    return "OpenBLAS sgemm";
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::dense_forward(x.shape.n, in_, out_, x.data, params_[0].data, bias(), y.data,
                                 ctx.stream);
#endif
    (void)ctx;
    cpu::dense_forward(x.shape.n, in_, out_, x.data, params_[0].data, bias(), y.data);
  }
  void backward(const StepContext& ctx, const Tensor& x, const Tensor&, const Tensor& dy,
                const Tensor& dx) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::dense_backward(x.shape.n, in_, out_, x.data, params_[0].data, dy.data,
                                  grads_[0].data, bias_grad(), dx.data, ctx.stream);
#endif
    (void)ctx;
    cpu::dense_backward(x.shape.n, in_, out_, x.data, params_[0].data, dy.data, grads_[0].data,
                        bias_grad(), dx.data);
  }

 private:
  const float* bias() const { return bias_ ? params_[1].data : nullptr; }
  float* bias_grad() const { return bias_ ? grads_[1].data : nullptr; }
  int in_ = 0, out_ = 0;
  bool bias_ = true;
};

}  // namespace

OpInfo dense_op() {
  return {"dense",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<DenseLayer>(spec);
          },
          {{"dense units=3", {{1, 5, 1, 1}}},
           {"dense units=1", {{1, 7, 1, 1}}},
           {"dense units=4 bias=0", {{1, 6, 1, 1}}}}};
}

}  // namespace convpool
