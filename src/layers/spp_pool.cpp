// `spp_pool [levels=1,2,4] [mode=max|avg|vlad] [clusters=8]`: spatial pyramid pooling, a
// global encoder: each level L pools every plane's L x L cells by max or mean
// (kernels/spp_pool_math.cuh), and the levels are concatenated: C x H x W becomes
// (C sum L^2) x 1 x 1, whatever H and W. mode=vlad encodes each cell by NetVLAD instead
// (kernels/spp_pool_vlad_math.cuh): K C features a cell, with learned assignment weights,
// biases and centres, initialised from the first batch's descriptors by k-means.
#include "cpu/spp_pool.h"

#include <sstream>
#include <vector>

#include "convpool/buffer.h"
#include "cpu/spp_pool_vlad.h"
#include "layer_kinds.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/spp_pool.cuh"
#include "kernels/spp_pool_vlad.cuh"
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
    const std::string mode = a.get_choice("mode", "max", {"max", "avg", "vlad"});
    levels_.max = mode == "max";
    vlad_ = mode == "vlad";
    if (vlad_)
      clusters_ = a.get_int("clusters", 8, 1, kVladMaxClusters);
    else if (a.has("clusters"))
      a.fail("clusters= applies to mode=vlad only");
    no_positional(spec_, a);
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    c_ = in.c;
    h_ = in.h;
    w_ = in.w;
    return {1, in.c * spp_features_per_channel(levels_) * (vlad_ ? clusters_ : 1), 1, 1};
  }
  bool backward_reads_input() const override { return vlad_; }
  bool backward_reads_output() const override { return false; }
  // Each output's kept element (its max's index; the mean keeps none, but one layout serves
  // both); NetVLAD: the assignments and each cell's residual sums and norms.
  size_t state_floats(int batch) const override {
    if (vlad_) return size_t(batch) * vlad_image_state_floats(levels_, clusters_, c_, h_ * w_);
    return size_t(batch) * c_ * spp_features_per_channel(levels_);
  }
  size_t workspace_floats(int batch) const override {
    return vlad_ ? cpu::spp_pool_vlad_scratch_floats(levels_, batch, clusters_, c_, h_ * w_) : 0;
  }
  // NetVLAD's assignment weights, biases and centres, none decayed (decay would pull the
  // centres to the origin and soften the assignment).
  std::vector<ParamDecl> param_decls() const override {
    if (!vlad_) return {};
    ParamDecl wt{"weight", {clusters_, c_, 1, 1}, Init::from_data, c_, clusters_, 0.f, 2};
    ParamDecl bias{"bias", {clusters_, 1, 1, 1}, Init::from_data, 0, 0, 0.f, 1};
    ParamDecl mu{"centres", {clusters_, c_, 1, 1}, Init::from_data, 0, 0, 0.f, 2};
    for (ParamDecl* d : {&wt, &bias, &mu}) d->wd_mult = 0.f;
    return {wt, bias, mu};
  }
  void init_from_data(std::span<const Tensor> in) override {
    const Tensor& x = in[0];
    std::vector<float> host(x.numel());
    copy_bytes(host.data(), Device::cpu, x.data, x.device, host.size() * sizeof(float));
    std::vector<float> wt(size_t(clusters_) * c_), bias(static_cast<size_t>(clusters_)),
        mu(wt.size());
    cpu::spp_pool_vlad_init(host.data(), x.shape.n, c_, h_ * w_, clusters_, wt.data(), bias.data(),
                            mu.data());
    const std::vector<float>* values[] = {&wt, &bias, &mu};
    for (int t = 0; t < 3; ++t)
      copy_bytes(params_[size_t(t)].data, params_[size_t(t)].device, values[t]->data(), Device::cpu,
                 values[t]->size() * sizeof(float));
  }

  std::string describe() const override {
    std::ostringstream os;
    os << "spatial pyramid of "
       << (vlad_         ? "NetVLAD (" + std::to_string(clusters_) + " centres)"
           : levels_.max ? "max"
                         : "mean")
       << " cells, levels";
    for (int t = 0; t < levels_.count; ++t)
      os << (t ? "," : " ") << levels_.cells[t] << "x" << levels_.cells[t];
    return os.str();
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
    if (vlad_) return vlad_forward(ctx, x, y);
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
    if (vlad_) return vlad_backward(ctx, x, dy, dx);
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
  void vlad_forward(const StepContext& ctx, const Tensor& x, const Tensor& y) {
    const float *wt = params_[0].data, *bias = params_[1].data, *mu = params_[2].data;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spp_pool_vlad_forward(levels_, wt, bias, mu, clusters_, x.data, y.data, state_,
                                         x.shape.n, c_, h_, w_, ctx.stream);
#endif
    (void)ctx;
    cpu::spp_pool_vlad_forward(levels_, wt, bias, mu, clusters_, x.data, y.data, state_, x.shape.n,
                               c_, h_, w_);
  }
  void vlad_backward(const StepContext& ctx, const Tensor& x, const Tensor& dy, const Tensor& dx) {
    const float *wt = params_[0].data, *mu = params_[2].data;
    float *dwt = grads_[0].data, *dbias = grads_[1].data, *dmu = grads_[2].data;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::spp_pool_vlad_backward(levels_, wt, mu, clusters_, x.data, state_, dy.data,
                                          dx.data, dwt, dbias, dmu, x.shape.n, c_, h_, w_,
                                          workspace_, ctx.stream);
#endif
    (void)ctx;
    cpu::spp_pool_vlad_backward(levels_, wt, mu, clusters_, x.data, state_, dy.data, dx.data, dwt,
                                dbias, dmu, x.shape.n, c_, h_, w_, workspace_);
  }

  SppLevels levels_;
  bool vlad_ = false;
  int clusters_ = 0;
  int c_ = 0, h_ = 0, w_ = 0;
};

}  // namespace

OpInfo spp_pool_op() {
  return {"spp_pool",
          factory<SppPoolLayer>(),
          {{"spp_pool", {{1, 3, 4, 5}}},
           {"spp_pool levels=1,3 mode=avg", {{1, 2, 7, 5}}},
           {"spp_pool levels=2,4", {{1, 2, 3, 2}}},  // a level finer than the plane
           {"spp_pool mode=vlad clusters=3 levels=1,2", {{2, 3, 4, 5}}},
           {"spp_pool mode=vlad clusters=2 levels=1,3", {{1, 2, 5, 4}}}}};  // overlapping cells
}

}  // namespace convpool
