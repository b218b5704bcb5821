#include "convpool/graph.h"

#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "../../kernels/philox.cuh"
#include "convpool/error.h"
#include "convpool/profile.h"

namespace convpool {

std::unique_ptr<Graph> Graph::build(const ModelSpec& spec, const GraphOptions& opts) {
  if (opts.batch < 1) CP_USER_ERROR("batch size must be at least 1 (got " << opts.batch << ")");
  auto g = std::unique_ptr<Graph>(new Graph());
  g->opts_ = opts;
  g->shapes_.push_back(spec.input.with_batch(1));

  std::map<std::string, int> type_count;
  std::set<std::string> names;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    LayerSpec ls = spec.layers[i];
    const int ordinal = ++type_count[ls.type];
    if (ls.name.empty()) ls.name = ls.type + std::to_string(ordinal);
    if (!names.insert(ls.name).second)
      CP_USER_ERROR(ls.where << ": layer name '" << ls.name << "' is used twice");
    auto layer = make_layer(ls);
    layer->set_index(uint32_t(i));
    if (opts.fuse_relu && !g->layers_.empty() && g->layers_.back()->type() == "relu" &&
        layer->absorb_preceding_relu())
      g->layers_.back()->fuse_into_next();
    const Shape in = g->shapes_.back();
    const Shape out = layer->infer_shape(in);
    layer->prepare(opts.device, opts.batch);
    if (out.c < 1 || out.h < 1 || out.w < 1)
      CP_USER_ERROR(ls.where << ": " << ls.type << " '" << ls.name << "': input " << in.str()
                             << " gives an empty output " << out.str());
    // Every buffer must stay indexable by int (BLAS and kernel arguments).
    constexpr size_t kMaxFloats = size_t(1) << 31;
    if (out.numel() * opts.batch >= kMaxFloats || layer->state_floats(opts.batch) >= kMaxFloats ||
        layer->workspace_floats(opts.batch) >= kMaxFloats)
      CP_USER_ERROR(ls.where << ": " << ls.type << " '" << ls.name << "': output " << out.str()
                             << " at batch " << opts.batch << " is too large");
    g->shapes_.push_back(out);
    g->region_names_.push_back({layer->name() + "/fwd", layer->name() + "/bwd"});
    g->layers_.push_back(std::move(layer));
  }

  // Parameters: one flat buffer in layer order; gradients and optimizer state mirror it.
  for (size_t i = 0; i < g->layers_.size(); ++i)
    for (auto& d : g->layers_[i]->param_decls()) {
      g->param_infos_.push_back(
          {g->layers_[i]->name() + "." + d.suffix, d.shape, g->num_params_, int(i), d.rank});
      g->param_decls_.push_back(d);
      // Keep each tensor 8-float aligned so vector loads never straddle two tensors.
      g->num_params_ += (d.shape.numel() + 7) / 8 * 8;
    }

  Arena& a = g->arena_;
  g->params_region_ = a.reserve(g->num_params_, "parameters");
  g->grads_region_ = a.reserve(g->num_params_, "gradients");
  for (int s = 0; s < opts.optimizer_state_slots; ++s)
    g->state_regions_.push_back(a.reserve(g->num_params_, "optimizer state"));
  const int B = opts.batch;
  g->act_regions_.push_back(a.reserve(g->shapes_[0].numel() * B, "input"));
  // Training never needs the gradient of the input images.
  g->grad_regions_.push_back(
      opts.input_gradient ? a.reserve(g->shapes_[0].numel() * B, "input grad") : -1);
  std::vector<int> layer_state;
  size_t workspace = 0;
  for (size_t i = 0; i < g->layers_.size(); ++i) {
    const Layer& L = *g->layers_[i];
    if (L.aliases_input()) {
      g->act_regions_.push_back(g->act_regions_.back());
      g->grad_regions_.push_back(g->grad_regions_.back());
    } else {
      g->act_regions_.push_back(a.reserve(g->shapes_[i + 1].numel() * B, L.name() + " output"));
      g->grad_regions_.push_back(a.reserve(g->shapes_[i + 1].numel() * B, L.name() + " grad"));
    }
    layer_state.push_back(a.reserve(L.state_floats(B), L.name() + " state"));
    workspace = std::max(workspace, L.workspace_floats(B));
  }
  const int workspace_region = a.reserve(workspace, "workspace");
  if (a.bytes() > opts.max_arena_bytes)
    CP_USER_ERROR("the model needs " << a.bytes() / 1048576 << " MiB at batch " << opts.batch
                                     << ", more than the " << opts.max_arena_bytes / 1048576
                                     << " MiB limit");
  a.allocate(opts.device);

  for (size_t i = 0; i < g->layers_.size(); ++i) {
    std::vector<Tensor> params, grads;
    for (auto& p : g->param_infos_) {
      if (p.layer != int(i)) continue;
      params.push_back({g->params() + p.offset, p.shape, opts.device});
      grads.push_back({g->grads() + p.offset, p.shape, opts.device});
    }
    g->layers_[i]->bind(params, grads, a.region(layer_state[i]), a.region(workspace_region));
  }
  g->init_params(0);
  return g;
}

Tensor Graph::activation(size_t i, int n) const {
  return {arena_.region(act_regions_.at(i)), shapes_.at(i).with_batch(n), opts_.device};
}

Tensor Graph::gradient(size_t i, int n) const {
  const int r = grad_regions_.at(i);
  return {r < 0 ? nullptr : arena_.region(r), shapes_.at(i).with_batch(n), opts_.device};
}

void Graph::forward_layer(size_t i, const StepContext& ctx, int n) {
  Region region(region_names_[i][0], ctx.device, ctx.stream);
  layers_[i]->forward(ctx, activation(i, n), activation(i + 1, n));
}

void Graph::backward_layer(size_t i, const StepContext& ctx, int n) {
  Region region(region_names_[i][1], ctx.device, ctx.stream);
  layers_[i]->backward(ctx, activation(i, n), activation(i + 1, n), gradient(i + 1, n),
                       gradient(i, n));
}

void Graph::forward(const StepContext& ctx, int n) {
  CP_CHECK(n >= 1 && n <= opts_.batch, "batch " << n << " outside 1.." << opts_.batch);
  for (size_t i = 0; i < layers_.size(); ++i) forward_layer(i, ctx, n);
}

void Graph::backward(const StepContext& ctx, int n) {
  CP_CHECK(n >= 1 && n <= opts_.batch, "batch " << n << " outside 1.." << opts_.batch);
  for (size_t i = layers_.size(); i-- > 0;) backward_layer(i, ctx, n);
}

void Graph::init_params(uint64_t seed) {
  std::vector<float> host(num_params_, 0.f);
  for (size_t t = 0; t < param_infos_.size(); ++t) {
    const ParamDecl& d = param_decls_[t];
    float* dst = host.data() + param_infos_[t].offset;
    const size_t count = d.shape.numel();
    if (d.init == Init::glorot_uniform) {
      const float limit = std::sqrt(6.f / float(d.fan_in + d.fan_out));
      for (size_t e = 0; e < count; ++e)
        dst[e] = (2.f * philox_uniform(seed, kRngInit, uint32_t(t), 0, e) - 1.f) * limit;
    } else if (d.init == Init::constant) {
      for (size_t e = 0; e < count; ++e) dst[e] = d.value;
    }
  }
  copy_bytes(params(), opts_.device, host.data(), Device::cpu, num_params_ * sizeof(float));
  // Optimizer state starts at zero with the weights.
  std::vector<float> zeros(num_params_, 0.f);
  for (size_t s = 0; s < state_regions_.size(); ++s)
    copy_bytes(optimizer_state(int(s)), opts_.device, zeros.data(), Device::cpu,
               num_params_ * sizeof(float));
  copy_bytes(grads(), opts_.device, zeros.data(), Device::cpu, num_params_ * sizeof(float));
}

std::string Graph::summary() const {
  std::ostringstream os;
  os << std::left << std::setw(10) << "layer" << std::setw(9) << "type" << std::setw(14) << "output"
     << std::right << std::setw(10) << "params"
     << "  details\n";
  os << std::left << std::setw(10) << "input" << std::setw(9) << "" << std::setw(14)
     << shapes_[0].str().substr(2) << std::right << std::setw(10) << 0 << "\n";
  size_t total = 0;
  for (size_t i = 0; i < layers_.size(); ++i) {
    size_t count = 0;
    for (auto& d : layers_[i]->param_decls()) count += d.shape.numel();
    total += count;
    os << std::left << std::setw(10) << layers_[i]->name() << std::setw(9) << layers_[i]->type()
       << std::setw(14) << shapes_[i + 1].str().substr(2) << std::right << std::setw(10) << count
       << "  " << layers_[i]->describe() << "\n";
  }
  os << "total parameters: " << total << "; arena " << std::fixed << std::setprecision(1)
     << arena_.bytes() / 1048576.0 << " MiB on " << device_name(opts_.device) << " for batch "
     << opts_.batch;
  return os.str();
}

}  // namespace convpool
