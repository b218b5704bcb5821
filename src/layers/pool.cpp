// pool: every pooling method. `pool METHOD [global] [size=2] [stride=size] [pad=0]` and the
// method's own parameters, as the table in kernels/pool_methods.cuh gives them.
#include "cpu/pool.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "convpool/error.h"
#include "convpool/layer.h"
#include "convpool/pooling.h"
#include "cpu/pool_fast.h"
#include "kernels/philox.cuh"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/pool.cuh"
#endif

namespace convpool {

namespace {

std::vector<std::string> method_names() {
  std::vector<std::string> v;
  for (auto& m : pool_methods()) v.push_back(m.name);
  for (auto& a : pool_method_aliases()) v.push_back(a.name);
  return v;
}

std::vector<std::string> override_names() {
  std::vector<std::string> v = method_names();
  for (auto& op : window_pooling_ops()) v.push_back(op.name);
  return v;
}

std::string unknown_method(const std::string& name) {
  const std::string near = nearest_word(name, method_names());
  return "unknown pooling method '" + name + "'" +
         (near.empty() ? std::string(" (see `convpool pool-methods`)")
                       : " (did you mean '" + near + "'?)");
}

class PoolLayer : public Layer {
 public:
  explicit PoolLayer(const LayerSpec& spec) : Layer(spec) {
    resolve_alias();
    LayerArgs a(spec_);
    std::string method_name = a.get_string("method", "");
    for (auto& word : spec_.positional) {
      if (word == "global") {
        global_ = true;
      } else if (method_name.empty()) {
        method_name = word;
      } else {
        a.fail("unexpected word '" + word + "'");
      }
    }
    if (method_name.empty()) a.fail("needs a method, e.g. 'pool max size=2'");
    method_ = find_pool_method(method_name);
    if (!method_) a.fail(unknown_method(method_name));
    wp_.method = method_->id;
    if (!global_) {
      kh_ = kw_ = a.get_int("size", 2, 1, 1024);
      sh_ = sw_ = a.get_int("stride", kh_, 1, 1024);
      ph_ = pw_ = a.get_int("pad", 0, 0, 512);
      if (ph_ > kh_ / 2) a.fail("pad must be at most half the window size");
    }
    // Method parameters: only the method's own keys are read, so others are rejected. Slots
    // the method does not have keep the values its window params start with.
    parsed_ = {double(wp_.k), double(wp_.p), double(wp_.threshold), double(include_pad_),
               double(learned_), double(wp_.rank_a)};
    for (const PoolParamSpec& p : method_->params) {
      const double v = p.kind == PoolParamKind::real
                           ? a.get_double(p.key, p.def, p.lo, p.hi)
                           : double(a.get_int(p.key, int(p.def), int(p.lo), int(p.hi)));
      parsed_[size_t(p.slot)] = v;
      switch (p.slot) {
        case PoolParamSlot::k: wp_.k = int(v); break;
        case PoolParamSlot::p: wp_.p = float(v); break;
        case PoolParamSlot::t: wp_.threshold = float(v); break;
        case PoolParamSlot::include_pad: include_pad_ = v == 1; break;
        case PoolParamSlot::learned: learned_ = v == 1; break;
        case PoolParamSlot::a: wp_.rank_a = float(v); break;
      }
    }
    a.finish();
  }

  Shape infer_shape(const Shape& in) override {
    if (global_) kh_ = in.h, kw_ = in.w, sh_ = in.h, sw_ = in.w;
    if (kh_ > in.h + 2 * ph_ || kw_ > in.w + 2 * pw_) {
      fail("window " + std::to_string(kh_) + "x" + std::to_string(kw_) +
           " is larger than its input " + in.str());
    }
    const int window = kh_ * kw_;
    if (method_->has(PoolParamSlot::k) && wp_.k > window)
      fail("k=" + std::to_string(wp_.k) + " is larger than the window (" + std::to_string(window) +
           " elements)");
    if (method_->has(PoolParamSlot::a) && window > kPoolMaxRanked)
      fail(method_->name + " weighs every rank of its window: at most " +
           std::to_string(kPoolMaxRanked) + " elements, not " + std::to_string(kh_) + "x" +
           std::to_string(kw_) + " = " + std::to_string(window));
    g_ = make_pool_geom(in.c, in.h, in.w, kh_, kw_, sh_, sw_, ph_, pw_, include_pad_, relu_in_);
    return {1, in.c, g_.OH, g_.OW};
  }

  // Every method reads its window through pool_input, so the ReLU folds into the gather.
  bool absorb_preceding_relu() override {
    relu_in_ = true;
    return true;
  }

  const PoolLayerConfig& config() const {
    config_ = {method_, global_, kh_, kw_, sh_, sw_, ph_, pw_, parsed_};
    return config_;
  }

  std::vector<ParamDecl> param_decls() const override {
    if (!learned_) return {};
    // lambda = sigmoid(0) = 0.5 at the start; a mixing weight, not a weight to decay.
    std::vector<ParamDecl> d = {{"alpha", {1, 1, 1, 1}, Init::zeros, 0, 0, 0.f, 1}};
    d[0].wd_mult = 0.f;
    return d;
  }

  std::string describe() const override {
    std::ostringstream os;
    os << method_->name;
    for (const PoolParamSpec& p : method_->params) {
      if (p.slot == PoolParamSlot::k) os << " k=" << wp_.k;
      if (p.slot == PoolParamSlot::t) os << " t=" << wp_.threshold;
      if (p.slot == PoolParamSlot::p) os << " p=" << wp_.p;
      if (p.slot == PoolParamSlot::a) os << " a=" << wp_.rank_a;
    }
    if (learned_) os << " learned";
    if (global_) {
      os << " global";
    } else {
      os << " " << kh_ << "x" << kw_ << " stride " << sh_;
      if (ph_) os << " pad " << ph_;
    }
    if (relu_in_) os << ", relu fused in";
    return os.str();
  }

  // Which CPU path runs this layer's training step (cpu::pool_path), so that benchmarks and
  // --verbose say what they measured; on CUDA the kernel choice is the launcher's.
  std::string backend_detail(int) const override {
    if (device_ != Device::cpu) return "";
    return std::string("cpu: ") +
           cpu::pool_path(g_, training_params(), state_floats(1) > 0, learned_);
  }

  // CPU max pooling (and min, and stochastic pooling in training, over the windows its fast
  // paths cover) records its selection (one int32 per output) for a scatter-only backward; the
  // CUDA large-window kernels keep each output's selection.
  size_t state_floats(int batch) const override {
#ifdef CONVPOOL_HAVE_CUDA
    if (device_ == Device::cuda) return cuda::pool_state_ints(g_, wp_, batch);
#endif
    const bool record = device_ == Device::cpu &&
                        (wp_.method == PoolMethod::max ||
                         cpu::pool_fast_records_selection(g_, training_params()));
    return record ? size_t(batch) * g_.C * g_.OH * g_.OW : 0;
  }

  // The generic CPU path's per-thread window scratch (the specialised paths need none), so
  // that a step allocates nothing.
  size_t workspace_floats(int batch) const override {
    if (device_ != Device::cpu || wp_.method == PoolMethod::max) return 0;
    if (cpu::pool_fast_covers(g_, wp_, learned_)) return 0;
    scratch_threads_ = omp_get_max_threads();
    return cpu::pool_scratch_floats(g_, batch, scratch_threads_);
  }

  void forward(const StepContext& ctx, const Tensor& x, const Tensor& y) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::pool_forward(g_, device_params(ctx), ctx.seed, index_, ctx.device_step, alpha(),
                                x.shape.n, x.data, y.data, state_ints(), ctx.stream,
                                first_output(ctx));
#endif
    cpu::pool_forward(g_, window_params(ctx), rng(ctx), x.shape.n, x.data, y.data, state_ints(),
                      scratch(), scratch_threads_);
  }

  void backward(const StepContext& ctx, const Tensor& x, const Tensor& y, const Tensor& dy,
                const Tensor& dx) override {
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda)
      return cuda::pool_backward(g_, device_params(ctx), ctx.seed, index_, ctx.device_step, alpha(),
                                 x.shape.n, x.data, y.data, dy.data, dx.data,
                                 learned_ ? grads_[0].data : nullptr, state_ints(), ctx.stream,
                                 first_output(ctx));
#endif
    float dlambda = 0;
    const PoolWindowParams wp = window_params(ctx);
    cpu::pool_backward(g_, wp, rng(ctx), x.shape.n, x.data, y.data, dy.data, dx.data,
                       learned_ ? &dlambda : nullptr, state_ints(), scratch(), scratch_threads_);
    if (learned_) grads_[0].data[0] = dlambda * wp.lambda * (1.f - wp.lambda);
  }

 private:
  // A method's other name (`pool rap t=3`) becomes the method (`pool avgtopk k=3`), which
  // describe() and every report then name.
  void resolve_alias() {
    std::string* name = nullptr;
    for (auto& kv : spec_.args)
      if (kv.first == "method") name = &kv.second;
    for (std::string& word : spec_.positional)
      if (word != "global" && !name) name = &word;
    const PoolMethodAlias* alias = name ? find_pool_method_alias(*name) : nullptr;
    if (!alias) return;
    *name = pool_method(alias->method).name;
    for (auto& kv : spec_.args) {
      if (kv.first == alias->method_key)
        LayerArgs(spec_).fail(alias->name + " takes " + alias->key + ", not " + alias->method_key);
      if (kv.first == alias->key) kv.first = alias->method_key;
    }
    // Errors about the parameter then say what it was called.
    spec_.where += " (" + alias->name + ": " + alias->key + " is " + *name + "'s " +
                   alias->method_key + ")";
  }

  // On CUDA the kernels draw lambda and the samples themselves, from the device step.
  PoolWindowParams device_params(const StepContext& ctx) const {
    PoolWindowParams p = wp_;
    p.training = ctx.training;
    return p;
  }
  const float* alpha() const { return learned_ ? params_[0].data : nullptr; }
  PoolWindowParams training_params() const {
    PoolWindowParams p = wp_;
    p.training = true;
    return p;
  }
  // The layer state as int32: CPU max's argmax, or the CUDA large-window selections.
  int32_t* state_ints() const { return reinterpret_cast<int32_t*>(state_); }
  PoolRng rng(const StepContext& ctx) const {
    return {ctx.seed, index_, ctx.step, first_output(ctx)};
  }
  // The global index of this rank's first output: the draws do not depend on the world size.
  uint64_t first_output(const StepContext& ctx) const {
    return ctx.sample_offset * uint64_t(g_.C) * g_.OH * g_.OW;
  }
  // The workspace when workspace_floats asked for one; null lets the CPU code use its own.
  float* scratch() const { return scratch_threads_ > 0 ? workspace_ : nullptr; }

  PoolWindowParams window_params(const StepContext& ctx) const {
    PoolWindowParams p = wp_;
    p.training = ctx.training;
    if (p.method == PoolMethod::mixed) {
      if (learned_) {
        p.lambda = 1.f / (1.f + std::exp(-params_[0].data[0]));
      } else if (ctx.training) {  // one draw per layer per step
        p.lambda =
            philox_uniform(ctx.seed, kRngPoolMix, index_, uint32_t(ctx.step), 0) < 0.5f ? 1.f : 0.f;
      } else {
        p.lambda = 0.5f;
      }
    }
    return p;
  }

  const PoolMethodSpec* method_ = nullptr;
  PoolWindowParams wp_;
  bool global_ = false, include_pad_ = true, learned_ = false;
  bool relu_in_ = false;  // the preceding ReLU is fused in (absorb_preceding_relu)
  int kh_ = 2, kw_ = 2, sh_ = 2, sw_ = 2, ph_ = 0, pw_ = 0;
  PoolGeom g_{};
  mutable int scratch_threads_ = 0;  // threads the workspace was sized for (0: none)
  std::array<double, kPoolParamSlots> parsed_{};  // each slot's value as parsed (ONNX reads it)
  mutable PoolLayerConfig config_{};
};

}  // namespace

const PoolLayerConfig* pool_layer_config(const Layer& layer) {
  const auto* pool = dynamic_cast<const PoolLayer*>(&layer);
  return pool ? &pool->config() : nullptr;
}

void apply_pool_override(ModelSpec& spec, const std::string& override_text) {
  std::string text = override_text;
  if (const PoolMethodAlias* alias = find_pool_method_alias(text.substr(0, text.find(':')))) {
    // `rap:t=3` is `avgtopk:k=3`.
    std::ostringstream out;
    out << pool_method(alias->method).name;
    const size_t colon = text.find(':');
    if (colon != std::string::npos) {
      std::istringstream is(text.substr(colon + 1));
      char sep = ':';
      std::vector<std::string> seen;
      for (std::string kv; std::getline(is, kv, ','); sep = ',') {
        const std::string key = kv.substr(0, kv.find('='));
        if (std::find(seen.begin(), seen.end(), key) != seen.end())
          CP_USER_ERROR("--pool " << override_text << ": '" << key << "' is given twice");
        seen.push_back(key);
        if (key == alias->method_key)
          CP_USER_ERROR("--pool " << override_text << ": " << alias->name << " takes "
                                  << alias->key << ", not " << alias->method_key);
        out << sep << (key == alias->key ? alias->method_key + kv.substr(key.size()) : kv);
      }
    }
    text = out.str();
  }
  const auto colon = text.find(':');
  const std::string method = text.substr(0, colon);
  const bool op = find_window_pooling_op(method) != nullptr;
  if (!op && !find_pool_method(method)) {
    const std::string near = nearest_word(method, override_names());
    CP_USER_ERROR("--pool: unknown pooling method '"
                  << method << "'"
                  << (near.empty() ? std::string(" (see `convpool pool-methods`)")
                                   : " (did you mean '" + near + "'?)"));
  }
  std::vector<std::pair<std::string, std::string>> params;
  if (colon != std::string::npos) {
    std::istringstream is(text.substr(colon + 1));
    for (std::string kv; std::getline(is, kv, ',');) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
        CP_USER_ERROR("--pool: malformed parameter '" << kv << "' (expected key=value)");
      const std::string key = kv.substr(0, eq);
      for (auto& p : params)
        if (p.first == key) CP_USER_ERROR("--pool " << override_text << ": '" << key << "' is given twice");
      params.emplace_back(key, kv.substr(eq + 1));
    }
  }
  bool any = false;
  for (auto& layer : spec.layers) {
    if (layer.type != "pool") continue;
    any = true;
    std::vector<std::string> positional = {method};
    for (auto& w : layer.positional)
      if (w == "global") {
        if (op)
          CP_USER_ERROR("--pool " << override_text << ": " << layer.where << ": pool layer '"
                                  << layer.name << "' is global, and " << method
                                  << " has no global form");
        positional.push_back(w);
      }
    if (op) {  // the op stands in for the layer: no method word
      layer.type = method;
      positional.clear();
    }
    layer.positional = positional;
    std::vector<std::pair<std::string, std::string>> kept;
    auto overridden = [&](const std::string& key) {
      for (auto& p : params)
        if (p.first == key) return true;
      return false;
    };
    // Keep the geometry the override does not set; drop the old method's parameters.
    for (auto& kv : layer.args)
      if ((kv.first == "size" || kv.first == "stride" || kv.first == "pad") &&
          !overridden(kv.first))
        kept.push_back(kv);
    for (auto& kv : params) kept.push_back(kv);
    layer.args = kept;
    layer.where += " (with --pool " + override_text + ")";
  }
  if (!any) CP_USER_ERROR("--pool " << override_text << ": the model has no pool layers to override");
}

OpInfo pool_op() {
  // Every method of the table at a 2x2 window, each parameter away from its default; then a
  // non-square input, lp's specialised p, a threshold inside the inputs' range, a padded
  // overlapping window, overlapping windows, a 3x3 top-k, global pooling and the rank-weighted
  // methods away from max. Max, min, the top-k and rank methods have kinks at ties, which the
  // gradient checker skips.
  std::vector<OpExample> examples;
  for (const PoolMethodSpec& m : pool_methods()) {
    std::ostringstream line;
    line << "pool " << m.name << " size=2";
    for (const PoolParamSpec& p : m.params)
      line << " " << p.key << "="
           << (p.kind == PoolParamKind::flag ? 1 - p.def
               : p.kind == PoolParamKind::integer ? p.def + 1
                                                   : p.def + 0.5);
    OpExample e{line.str(), {{1, 2, 4, 4}}};
    if (m.inputs == PoolInputs::nonneg) e.lo = 0.1f;
    examples.push_back(e);
  }
  for (const OpExample& e : std::vector<OpExample>{
           {"pool max size=2", {{1, 2, 4, 5}}},  // a partial last window, dropped
           {"pool lp p=3 size=2", {{1, 2, 4, 4}}},
           {"pool tmaxavg k=2 t=0.5 size=2", {{1, 2, 4, 4}}},
           {"pool avg size=3 stride=2 pad=1 include_pad=0", {{1, 2, 5, 5}}},
           {"pool min size=2 stride=1", {{1, 2, 3, 3}}},
           {"pool avgtopk k=3 size=3 stride=3", {{1, 2, 6, 6}}},
           {"pool avgtopk global k=4", {{1, 3, 5, 5}}},
           {"pool rwp a=0.3 size=3 stride=2 pad=1", {{1, 2, 5, 5}}},
           {"pool rsp a=0.6 size=2", {{1, 2, 4, 4}}},
           {"pool rwp global a=0.2", {{1, 2, 4, 4}}}})
    examples.push_back(e);
  return {"pool",
          [](const LayerSpec& spec) -> std::unique_ptr<Layer> {
            return std::make_unique<PoolLayer>(spec);
          },
          examples};
}

}  // namespace convpool

namespace convpool {

void apply_global_pool_override(ModelSpec& spec, const std::string& override_text) {
  const size_t colon = override_text.find(':');
  const std::string op = override_text.substr(0, colon);
  if (!find_global_encoder_op(op)) {
    std::string names;
    for (auto& e : global_encoder_ops()) names += (names.empty() ? "" : ", ") + e.name;
    CP_USER_ERROR("--global-pool: unknown global encoder '" << op << "' (one of " << names
                                                            << "; see `convpool pool-methods`)");
  }
  std::string line = op;
  if (colon != std::string::npos) {
    // A number after a comma continues the list before it ("levels=1,2,4").
    std::vector<std::string> items;
    std::istringstream is(override_text.substr(colon + 1));
    for (std::string item; std::getline(is, item, ',');) {
      const bool number = !item.empty() && std::isdigit(static_cast<unsigned char>(item[0]));
      if (number && !items.empty() && items.back().find('=') != std::string::npos)
        items.back() += "," + item;
      else
        items.push_back(item);
    }
    std::vector<std::string> keys;
    for (const std::string& kv : items) {
      const size_t eq = kv.find('=');
      const bool plain = std::all_of(
          kv.begin(), kv.end(), [](unsigned char ch) { return std::isgraph(ch) && ch != '#'; });
      if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size() || !plain)
        CP_USER_ERROR("--global-pool: malformed parameter '" << kv << "' (expected key=value)");
      const std::string key = kv.substr(0, eq);
      if (key == "name" || key == "in")
        CP_USER_ERROR("--global-pool " << override_text << ": " << key
                                       << "= is the replaced layer's");
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        CP_USER_ERROR("--global-pool " << override_text << ": '" << key << "' is given twice");
      keys.push_back(key);
      line += " " + kv;
    }
    if (keys.empty() || override_text.back() == ',')
      CP_USER_ERROR("--global-pool " << override_text << ": nothing after ':'");
  }
  int last = -1;
  for (size_t i = 0; i < spec.layers.size(); ++i)
    if (spec.layers[i].type == "pool") last = int(i);
  if (last < 0)
    CP_USER_ERROR("--global-pool " << override_text << ": the model has no pool layer to replace");
  const LayerSpec& pool = spec.layers[size_t(last)];
  // "origin:line", with " (copy K of the repeat block)" after it in a repeat block.
  const bool repeated = pool.where.find(" (copy ") != std::string::npos;
  const size_t at = pool.where.rfind(':');
  int line_no = 0;
  if (at != std::string::npos && !repeated) try {
      size_t used = 0;
      line_no = std::stoi(pool.where.substr(at + 1), &used);
      if (at + 1 + used != pool.where.size()) line_no = 0;
    } catch (const std::exception&) {
      line_no = 0;
    }
  std::vector<std::string> lines;
  {
    std::istringstream is(spec.text);
    for (std::string l; std::getline(is, l);) lines.push_back(l);
  }
  const bool in_text = line_no >= 1 && size_t(line_no) <= lines.size();
  if (repeated)
    CP_USER_ERROR("--global-pool " << override_text << ": " << pool.where
                                   << ": the last pool layer is inside a repeat block; "
                                      "--global-pool replaces a layer that has a line of its own");
  if (!in_text)
    CP_USER_ERROR("--global-pool " << override_text << ": " << pool.where
                                   << ": the model text has no such line to rewrite");
  line += " name=" + pool.name;
  // The pool line's own multipliers and freezing, kept: they now apply to the encoder's
  // parameters. Nine digits give back the same float.
  std::ostringstream multipliers;
  multipliers << std::setprecision(9);
  if (pool.lr_mult != 1.f) multipliers << " lr_mult=" << pool.lr_mult;
  if (pool.wd_mult != 1.f) multipliers << " wd_mult=" << pool.wd_mult;
  if (pool.frozen) multipliers << " frozen=1";
  line += multipliers.str();
  if (!pool.inputs.empty()) {
    line += " in=";
    for (size_t i = 0; i < pool.inputs.size(); ++i) line += (i ? "," : "") + pool.inputs[i];
  }
  const std::string old = lines[size_t(line_no) - 1];
  lines[size_t(line_no) - 1] = line;
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  text += "# --global-pool " + override_text + " replaced line " + std::to_string(line_no) + ": " +
          old + "\n";
  spec = parse_model_text(text, pool.where.substr(0, at));
}

}  // namespace convpool
