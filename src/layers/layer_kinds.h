// What several layers share: argument checks, the one-input element-wise base (its backward
// takes the accumulate flag), the several-input merge base, and a factory for a layer class.
#pragma once
#include <exception>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "convpool/layer.h"
#include "cpu/scale.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/scale.cuh"
#endif

namespace convpool::layers {

inline void no_arguments(const LayerSpec& spec) {
  LayerArgs a(spec);
  if (!spec.positional.empty()) a.fail("unexpected word '" + spec.positional[0] + "'");
  a.finish();
}

inline void no_positional(const LayerSpec& spec, LayerArgs& a) {
  if (!spec.positional.empty()) a.fail("unexpected word '" + spec.positional[0] + "'");
}

// The numbers of a list argument, key=text ("1,3,5"): each in lo..hi, accepted by `valid`
// (when given) and listed once. `noun` names one in refusals ("an odd window size"), `item`
// the kind ("size").
inline std::vector<int> number_list(LayerArgs& a, const std::string& key, const std::string& text,
                                    int lo, int hi, const std::string& noun,
                                    const std::string& item, bool (*valid)(int) = nullptr) {
  std::vector<int> out;
  std::istringstream is(text);
  for (std::string word; std::getline(is, word, ',');) {
    int v = lo - 1;
    try {
      size_t used = 0;
      v = std::stoi(word, &used);
      if (used != word.size()) v = lo - 1;
    } catch (const std::exception&) {
      v = lo - 1;
    }
    if (v < lo || v > hi || (valid && !valid(v)))
      a.fail(key + "=" + text + ": '" + word + "' is not " + noun + " in " + std::to_string(lo) +
             ".." + std::to_string(hi));
    for (int seen : out)
      if (seen == v) a.fail(key + "=" + text + ": " + word + " is given twice");
    out.push_back(v);
  }
  if (out.empty() || text.back() == ',') a.fail(key + "=" + text + " lists no " + item);
  return out;
}

// A one-input op whose backward takes the accumulate flag.
class PointwiseLayer : public Layer {
 public:
  using Layer::Layer;
  Shape infer_shape(const Shape& in) override { return in; }
  bool accumulates_input_grad() const override { return true; }
  bool backward_reads_output() const override { return false; }
  void backward_inputs(const StepContext& ctx, std::span<const Tensor> in, const Tensor&,
                       const Tensor& dy, std::span<const Tensor> din,
                       const std::vector<bool>& accumulate) override {
    if (din[0].data) input_grad(ctx, in[0], dy, din[0].data, accumulate[0]);
  }
  virtual void input_grad(const StepContext& ctx, const Tensor& x, const Tensor& dy, float* dx,
                          bool accumulate) = 0;
};

constexpr int kMaxMergeInputs = 16;

class MergeLayer : public Layer {
 public:
  explicit MergeLayer(const LayerSpec& spec) : Layer(spec) {
    LayerArgs a(spec_);
    if (!spec_.positional.empty()) a.fail("unexpected word '" + spec_.positional[0] + "'");
    a.finish();
  }
  bool backward_reads_input() const override { return false; }
  bool backward_reads_output() const override { return false; }
  bool accumulates_input_grad() const override { return true; }

 protected:
  // "input 2 ('bn2', 16x32x32)"
  std::string describe_input(size_t i, const Shape& s) const {
    std::ostringstream os;
    os << "input " << i + 1;
    if (i < spec_.inputs.size()) os << " ('" << spec_.inputs[i] << "'";
    os << (i < spec_.inputs.size() ? ", " : " (") << s.c << "x" << s.h << "x" << s.w << ")";
    return os.str();
  }
  void check_count(std::span<const Shape> in) const {
    if (in.size() < 2 || in.size() > size_t(kMaxMergeInputs))
      fail("takes 2 to " + std::to_string(kMaxMergeInputs) + " inputs (in=a,b), not " +
           std::to_string(in.size()));
  }
  static void copy(const StepContext& ctx, const float* src, float* dst, size_t n, bool accumulate) {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) return cuda::scaled_copy(src, dst, n, 1.f, accumulate, ctx.stream);
#endif
    (void)ctx;
    cpu::scaled_copy(src, dst, n, 1.f, accumulate);
  }
};

template <class L>
LayerFactory factory() {
  return [](const LayerSpec& spec) -> std::unique_ptr<Layer> { return std::make_unique<L>(spec); };
}

}  // namespace convpool::layers
