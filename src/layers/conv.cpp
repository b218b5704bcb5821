// conv: 2-D convolution. `conv filters=32 size=3 [stride=1] [padding=valid|same|N] [bias=1]
// [init=glorot]`
#include "cpu/conv.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <sstream>
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/conv_cudnn.h"
#endif
#include "cpu/conv_engine.h"
#include "cpu/whiten.h"
#include "convpool/buffer.h"
#include "convpool/layer.h"
#include "convpool/profile.h"

namespace convpool {

namespace {

class ConvLayer : public Layer {
 public:
  explicit ConvLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    g_.OC = a.get_int("filters", 0, 1, 65536);
    if (g_.OC == 0) a.fail("needs filters=N");
    g_.KH = g_.KW = a.get_int("size", 3, 1, 64);
    g_.KH = a.get_int("size_h", g_.KH, 1, 64);
    g_.KW = a.get_int("size_w", g_.KW, 1, 64);
    g_.SH = g_.SW = a.get_int("stride", 1, 1, 64);
    padding_ = a.get_string("padding", "valid");
    if (padding_ != "valid" && padding_ != "same") {
      const int pad = std::atoi(padding_.c_str());
      if (padding_ != std::to_string(pad) || pad < 0 || pad > 64)
        a.fail("padding=" + padding_ + " is not valid, same or an integer 0..64");
    }
    bias_ = a.get_int("bias", 1, 0, 1) == 1;
    init_ = parse_init(a.get_string("init", "glorot"), a);
    if (!spec_.positional.empty()) a.fail("unexpected word '" + spec_.positional[0] + "'");
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    g_.C = in.c, g_.H = in.h, g_.W = in.w;
    if (padding_ == "valid" || padding_ == "0") {
      g_.PH = g_.PW = 0;
      if (g_.KH > in.h || g_.KW > in.w)
        fail("kernel " + std::to_string(g_.KH) + "x" + std::to_string(g_.KW) +
             " is larger than its input " + in.str() + " (use padding=same)");
      g_.OH = (in.h - g_.KH) / g_.SH + 1;
      g_.OW = (in.w - g_.KW) / g_.SW + 1;
    } else if (padding_ == "same") {  // TensorFlow's rule: out = ceil(in / stride)
      g_.OH = (in.h + g_.SH - 1) / g_.SH;
      g_.OW = (in.w + g_.SW - 1) / g_.SW;
      g_.PH = std::max(0, (g_.OH - 1) * g_.SH + g_.KH - in.h) / 2;
      g_.PW = std::max(0, (g_.OW - 1) * g_.SW + g_.KW - in.w) / 2;
    } else {
      g_.PH = g_.PW = std::stoi(padding_);
      if (in.h + 2 * g_.PH < g_.KH || in.w + 2 * g_.PW < g_.KW)
        fail("kernel is larger than its padded input " + in.str());
      g_.OH = (in.h + 2 * g_.PH - g_.KH) / g_.SH + 1;
      g_.OW = (in.w + 2 * g_.PW - g_.KW) / g_.SW + 1;
    }
    if (init_ == Init::dirac && (g_.KH % 2 == 0 || g_.KW % 2 == 0))
      fail("init=dirac needs an odd kernel size");
    if (init_ == Init::from_data && g_.OC != g_.K() && g_.OC != 2 * g_.K())
      fail("init=whiten needs filters=" + std::to_string(g_.K()) + " or " +
           std::to_string(2 * g_.K()) + " (the patch size C*KH*KW, or twice it)");
    return {1, g_.OC, g_.OH, g_.OW};
  }

  std::vector<ParamDecl> param_decls() const override {
    const int fan_in = g_.C * g_.KH * g_.KW, fan_out = g_.OC * g_.KH * g_.KW;
    std::vector<ParamDecl> d = {{"weight", {g_.OC, g_.C, g_.KH, g_.KW}, init_, fan_in, fan_out}};
    if (bias_) {
      d.push_back({"bias", {g_.OC, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1});
      d.back().wd_mult = 0.f;
    }
    return d;
  }
  bool backward_reads_output() const override { return relu_out_; }
  // init=whiten: patch-whitening filters from a batch of real inputs (src/cpu/whiten.h).
  void init_from_data(std::span<const Tensor> in) override {
    const Tensor& x = in[0];
    std::vector<float> host(x.numel());
    copy_bytes(host.data(), Device::cpu, x.data, x.device, host.size() * sizeof(float));
    const auto w = cpu::whitening_filters(g_, x.shape.n, host.data(), g_.OC, 5e-4);
    copy_bytes(params_[0].data, params_[0].device, w.data(), Device::cpu, w.size() * sizeof(float));
  }
  // The CPU applies a following ReLU in the bias epilogue and masks dy with it; cuDNN's
  // forward here has no activation epilogue, so CUDA keeps the ReLU apart.
  bool absorb_following_relu(Device device) override {
    relu_out_ = device == Device::cpu;
    return relu_out_;
  }
  void prepare(Device device, int max_batch) override {
    Layer::prepare(device, max_batch);
    region_names_ = {name() + "/bwd-filter", name() + "/bwd-data"};
#ifdef CONVPOOL_HAVE_CUDA
    if (device == Device::cuda) plan_ = cuda::make_conv_plan(g_, max_batch);
#endif
    // CPU: oneDNN or im2col + OpenBLAS, by shape (src/cpu/conv_engine.cpp).
    if (device == Device::cpu) onednn_ = cpu::choose_conv_engine(g_, max_batch, bias_, relu_out_);
  }
  // CPU im2col: the column matrix is kept from forward for backward; oneDNN and cuDNN read x.
  size_t state_floats(int batch) const override {
    return device_ == Device::cpu && !onednn_ ? cpu::conv_col_floats(g_, batch) : 0;
  }
  size_t workspace_floats(int batch) const override {
#ifdef CONVPOOL_HAVE_CUDA
    if (device_ == Device::cuda) return (cuda::conv_workspace_bytes(*plan_) + 3) / 4;
#endif
    return onednn_ ? onednn_->workspace_floats() : cpu::conv_tmp_floats(g_, batch);
  }
  std::string describe() const override {
    std::ostringstream os;
    os << g_.OC << " filters " << g_.KH << "x" << g_.KW << " stride " << g_.SH << " padding "
       << padding_;
    if (!bias_) os << ", no bias";
    if (init_ != Init::glorot_uniform)
      os << ", init " << (init_ == Init::from_data ? "whiten" : init_name(init_));
    if (relu_out_) os << ", relu fused in";
    return os.str();
  }
  double forward_flops() const override { return 2.0 * g_.OC * g_.K() * g_.P(); }
  std::string backend_detail(int batch) const override {
#ifdef CONVPOOL_HAVE_CUDA
    if (device_ == Device::cuda) return cuda::conv_algorithms(*plan_, batch);
#endif
    if (onednn_) return "oneDNN " + onednn_->implementation(batch);
    return "im2col + OpenBLAS sgemm";
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::conv_forward(*plan_, x.shape.n, x.data, params_[0].data, bias(), y.data,
                                workspace_, ctx.stream);
#endif
    (void)ctx;
    if (onednn_)
      return onednn_->forward(x.shape.n, x.data, params_[0].data, bias(), y.data, workspace_);
    cpu::conv_forward(g_, x.shape.n, x.data, params_[0].data, bias(), y.data, state_,
                      workspace_, relu_out_);
  }
  // Each direction is its own profile Region ("conv1/bwd-filter", "conv1/bwd-data").
  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
    const int n = dy.shape.n;
    {
      Region region(region_names_[0], ctx.device, ctx.stream);
#ifdef CONVPOOL_HAVE_CUDA
      if (ctx.device == Device::cuda)
        cuda::conv_backward_filter(*plan_, n, x.data, dy.data, grads_[0].data, bias_grad(),
                                   workspace_, ctx.stream);
      else
#endif
      if (onednn_)
        onednn_->backward_filter(n, x.data, dy.data, grads_[0].data, bias_grad(), workspace_,
                                 relu_out_ ? y.data : nullptr);
      else
        cpu::conv_backward_filter(g_, n, dy.data, state_, grads_[0].data, bias_grad(),
                                  workspace_, relu_out_ ? y.data : nullptr);
    }
    if (!dx.data) return;  // the first layer: nothing wants the images' gradient
    Region region(region_names_[1], ctx.device, ctx.stream);
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::conv_backward_data(*plan_, n, params_[0].data, dy.data, dx.data, workspace_,
                                      ctx.stream);
#endif
    (void)x;
    if (onednn_) return onednn_->backward_data(n, params_[0].data, dx.data, workspace_);
    cpu::conv_backward_data(g_, n, params_[0].data, dx.data, workspace_);
  }

 private:
  const float* bias() const { return bias_ ? params_[1].data : nullptr; }
  float* bias_grad() const { return bias_ ? grads_[1].data : nullptr; }

  cpu::ConvGeom g_{};
  std::string padding_;
  bool bias_ = true;
  bool relu_out_ = false;  // a following ReLU applied here (absorb_following_relu)
  Init init_ = Init::glorot_uniform;
  std::array<std::string, 2> region_names_;  // "<name>/bwd-filter", "<name>/bwd-data"
#ifdef CONVPOOL_HAVE_CUDA
  cuda::ConvPlanPtr plan_;
#endif
  std::unique_ptr<cpu::OnednnConv> onednn_;  // null: im2col + OpenBLAS
};

}  // namespace

OpInfo conv_op() {
  return {"conv",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<ConvLayer>(spec);
          },
          {{"conv filters=3 size=3", {{1, 2, 6, 5}}},
           {"conv filters=4 size=3 stride=2 padding=same bias=0 init=he_normal", {{1, 3, 7, 7}}},
           {"conv filters=2 size=1 padding=1", {{1, 3, 4, 4}}},
           {"conv filters=3 size=3 padding=same init=dirac", {{1, 3, 5, 5}}}}};
}

}  // namespace convpool
