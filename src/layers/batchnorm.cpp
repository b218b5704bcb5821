// batchnorm: per-channel normalisation. `batchnorm [momentum=0.1] [eps=1e-5]`, PyTorch's
// BatchNorm2d (BatchNorm1d after a dense layer, whose output is c x 1 x 1). Training
// normalises with the batch's statistics and updates the running ones (buffers, saved in
// checkpoints); evaluation uses the running statistics.
#include <sstream>

#include "cpu/batchnorm.h"
#include "convpool/layer.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/batchnorm.cuh"
#endif

namespace convpool {

namespace {

class BatchNormLayer : public Layer {
 public:
  explicit BatchNormLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    momentum_ = float(a.get_double("momentum", 0.1, 0.0, 1.0));
    eps_ = float(a.get_double("eps", 1e-5, 1e-12, 1.0));
    if (!spec_.positional.empty()) a.fail("unexpected word '" + spec_.positional[0] + "'");
    a.finish();
  }
  Shape infer_shape(const Shape& in) override {
    c_ = in.c;
    plane_ = in.h * in.w;
    return in;
  }
  std::vector<ParamDecl> param_decls() const override {
    std::vector<ParamDecl> d = {{"weight", {c_, 1, 1, 1}, Init::ones, 0, 0, 0.f, 1},
                                {"bias", {c_, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1},
                                {"running_mean", {c_, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1},
                                {"running_var", {c_, 1, 1, 1}, Init::ones, 0, 0, 0.f, 1}};
    d[0].wd_mult = d[1].wd_mult = 0.f;  // normalisation parameters are not decayed
    d[2].kind = d[3].kind = ParamKind::buffer;
    return d;
  }
  // The batch mean and 1/sqrt(var + eps) of each channel, from forward to backward.
  size_t state_floats(int) const override { return 2 * size_t(c_); }
  bool backward_reads_output() const override { return relu_out_; }
  // The CPU kernels take a ReLU on their output; the CUDA ones do not (yet), so CUDA keeps
  // the ReLU apart.
  bool absorb_following_relu(Device device) override {
    relu_out_ = device == Device::cpu;
    return relu_out_;
  }
  bool accumulates_input_grad() const override { return true; }
  std::string describe() const override {
    std::ostringstream os;
    os << c_ << " channels, momentum " << momentum_ << ", eps " << eps_;
    if (relu_out_) os << ", relu fused in";
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    const int n = x.shape.n;
    const float *gamma = params_[0].data, *beta = params_[1].data;
    float *mean = params_[2].data, *var = params_[3].data;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) {
      if (ctx.sync_stats) fail("synchronised statistics (--sync-bn) run on the CPU backend only");
      if (ctx.training)
        return cuda::batchnorm_forward_train(n, c_, plane_, x.data, gamma, beta, eps_, momentum_,
                                             y.data, state_, state_ + c_, mean, var, ctx.stream);
      return cuda::batchnorm_forward_eval(n, c_, plane_, x.data, gamma, beta, mean, var, eps_,
                                          y.data, ctx.stream);
    }
#endif
    if (ctx.training)
      return cpu::batchnorm_forward_train(n, c_, plane_, x.data, gamma, beta, eps_, momentum_,
                                          y.data, state_, state_ + c_, mean, var, relu_out_,
                                          ctx.sync_stats);
    cpu::batchnorm_forward_eval(n, c_, plane_, x.data, gamma, beta, mean, var, eps_, y.data,
                                relu_out_);
  }

  void backward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor& y,
                       const Tensor& dy, std::span<const Tensor> din,
                       const std::vector<bool>& accumulate) override {
    const Tensor& x = in[0];
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::batchnorm_backward(x.shape.n, c_, plane_, x.data, dy.data, params_[0].data,
                                      state_, state_ + c_, din[0].data, accumulate[0],
                                      grads_[0].data, grads_[1].data, ctx.stream);
#endif
    (void)ctx;
    cpu::batchnorm_backward(x.shape.n, c_, plane_, x.data, dy.data, params_[0].data, state_,
                            state_ + c_, din[0].data, accumulate[0], grads_[0].data,
                            grads_[1].data, relu_out_ ? y.data : nullptr, ctx.sync_stats);
  }

 private:
  float momentum_ = 0.1f, eps_ = 1e-5f;
  bool relu_out_ = false;  // a following ReLU applied here (absorb_following_relu)
  int c_ = 0, plane_ = 0;
};

}  // namespace

OpInfo batchnorm_op() {
  return {"batchnorm",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<BatchNormLayer>(spec);
          },
          {{"batchnorm", {{1, 3, 4, 5}}},
           {"batchnorm momentum=0.6 eps=1e-3", {{1, 2, 3, 3}}},
           {"batchnorm", {{1, 6, 1, 1}}}}};
}

}  // namespace convpool
