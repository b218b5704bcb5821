// Running a built graph: node-by-node forward and backward, parameter initialisation and the
// summary table. Building it (ordering, shapes, memory plan) is graph_build.cpp.
#include "convpool/graph.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "kernels/philox.cuh"
#include "cpu/scale.h"
#include "convpool/buffer.h"
#include "convpool/error.h"
#include "convpool/profile.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "kernels/scale.cuh"
#endif

namespace convpool {

Tensor Graph::storage_tensor(int storage, const Shape& per_sample, int n) const {
  float* base = arena_.region(activations_region_);
  return {storage < 0 ? nullptr : base + storage_offset_[size_t(storage)], per_sample.with_batch(n),
          opts_.device};
}

Tensor Graph::activation(size_t value, int n) const {
  return storage_tensor(act_storage_.at(value), shapes_.at(value), n);
}

Tensor Graph::gradient(size_t value, int n) const {
  return storage_tensor(grad_storage_.at(value), shapes_.at(value), n);
}

void Graph::forward_layer(size_t i, const StepContext& ctx, int n) {
  Region region(region_names_[i][0], ctx.device, ctx.stream);
  node_in_.clear();
  for (int v : inputs_[i]) node_in_.push_back(activation(size_t(v), n));
  layers_[i]->forward_inputs(ctx, node_in_, activation(i + 1, n));
}

void Graph::backward_layer(size_t i, const StepContext& ctx, int n) {
  Region region(region_names_[i][1], ctx.device, ctx.stream);
  run_backward(i, ctx, n);
}

void Graph::run_backward(size_t i, const StepContext& ctx, int n) {
  std::vector<Tensor>& in = node_in_;
  std::vector<Tensor>& din = node_din_;
  in.clear();
  din.clear();
  for (size_t j = 0; j < inputs_[i].size(); ++j) {
    const size_t v = size_t(inputs_[i][j]);
    in.push_back(activation(v, n));
    Tensor d = gradient(v, n);
    if (d.data && scratch_offset_[i][j] >= 0)
      d.data = arena_.region(scratch_region_) + scratch_offset_[i][j];
    din.push_back(d);
  }
  layers_[i]->backward_inputs(ctx, in, activation(i + 1, n), gradient(i + 1, n), din,
                              accumulate_[i]);
  for (size_t j = 0; j < inputs_[i].size(); ++j) {
    if (scratch_offset_[i][j] < 0) continue;
    const Tensor real = gradient(size_t(inputs_[i][j]), n);
    if (!real.data) continue;
#ifdef CONVPOOL_HAVE_CUDA
    if (ctx.device == Device::cuda) {
      cuda::scaled_copy(din[j].data, real.data, real.numel(), 1.f, true, ctx.stream);
      continue;
    }
#endif
    cpu::scaled_copy(din[j].data, real.data, real.numel(), 1.f, true);
  }
}

void Graph::forward(const StepContext& ctx, int n) {
  CP_CHECK(n >= 1 && n <= opts_.batch, "batch " << n << " outside 1.." << opts_.batch);
  for (size_t i = 0; i < layers_.size(); ++i) forward_layer(i, ctx, n);
}

void Graph::backward(const StepContext& ctx, int n) {
  CP_CHECK(n >= 1 && n <= opts_.batch, "batch " << n << " outside 1.." << opts_.batch);
  for (size_t i = layers_.size(); i-- > 0;) backward_layer(i, ctx, n);
}

namespace {
bool all_finite(const Tensor& t) {
  if (!t.data) return true;
  for (size_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.data[i])) return false;
  return true;
}
}  // namespace

std::optional<size_t> Graph::forward_until_non_finite(const StepContext& ctx, int n) {
  CP_CHECK(opts_.device == Device::cpu, "the non-finite search runs on the CPU");
  for (size_t i = 0; i < layers_.size(); ++i) {
    forward_layer(i, ctx, n);
    if (!all_finite(activation(i + 1, n))) return i;
  }
  return std::nullopt;
}

std::optional<size_t> Graph::backward_until_non_finite(const StepContext& ctx, int n) {
  CP_CHECK(opts_.device == Device::cpu, "the non-finite search runs on the CPU");
  for (size_t i = layers_.size(); i-- > 0;) {
    backward_layer(i, ctx, n);
    for (int v : inputs_[i])
      if (!all_finite(gradient(size_t(v), n))) return i;
  }
  return std::nullopt;
}

const char* init_name(Init init) {
  switch (init) {
    case Init::glorot_uniform: return "glorot";
    case Init::he_normal: return "he_normal";
    case Init::he_uniform: return "he_uniform";
    case Init::zeros: return "zeros";
    case Init::ones: return "ones";
    case Init::constant: return "constant";
    case Init::dirac: return "dirac";
    case Init::from_data: return "from_data";
  }
  return "?";
}

void Graph::init_params(uint64_t seed) {
  std::vector<float> host(num_params_, 0.f);
  for (size_t t = 0; t < param_infos_.size(); ++t) {
    const ParamDecl& d = param_decls_[t];
    float* dst = host.data() + param_infos_[t].offset;
    const size_t count = d.shape.numel();
    auto uniform = [&](size_t e) { return philox_uniform(seed, kRngInit, uint32_t(t), 0, e); };
    switch (d.init) {
      case Init::glorot_uniform: {
        const float limit = std::sqrt(6.f / float(d.fan_in + d.fan_out));
        for (size_t e = 0; e < count; ++e) dst[e] = (2.f * uniform(e) - 1.f) * limit;
        break;
      }
      case Init::he_uniform: {  // PyTorch's kaiming_uniform_(a=0): bound sqrt(6 / fan_in)
        const float limit = std::sqrt(6.f / float(d.fan_in));
        for (size_t e = 0; e < count; ++e) dst[e] = (2.f * uniform(e) - 1.f) * limit;
        break;
      }
      case Init::he_normal: {  // std sqrt(2 / fan_in); Box-Muller on two draws per element
        const double std_dev = std::sqrt(2.0 / double(d.fan_in));
        for (size_t e = 0; e < count; ++e) {
          const double u1 = 1.0 - double(philox_uniform(seed, kRngInit, uint32_t(t), 1, e));
          const double u2 = double(philox_uniform(seed, kRngInit, uint32_t(t), 2, e));
          dst[e] = float(std_dev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
        }
        break;
      }
      case Init::ones:
        std::fill(dst, dst + count, 1.f);
        break;
      case Init::constant:
        std::fill(dst, dst + count, d.value);
        break;
      case Init::dirac: {  // [OC, C, KH, KW]: 1 at the centre of (o, o mod C)
        const Shape& s = d.shape;
        for (int o = 0; o < s.n; ++o)
          dst[((size_t(o) * s.c + size_t(o % s.c)) * s.h + s.h / 2) * s.w + s.w / 2] = 1.f;
        break;
      }
      case Init::zeros:
      case Init::from_data:  // zero until init_from_data
        break;
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

bool Graph::needs_data_init() const {
  for (const ParamDecl& d : param_decls_)
    if (d.init == Init::from_data) return true;
  return false;
}

void Graph::init_from_data(int n) {
  CP_CHECK(n >= 1 && n <= opts_.batch, "batch " << n << " outside 1.." << opts_.batch);
  StepContext ctx;
  ctx.device = opts_.device;
  ctx.training = false;
  // CUDA kernels with per-step randomness read the step from device memory: step 0 here.
  Buffer step(opts_.device, sizeof(uint64_t));
  const uint64_t zero = 0;
  copy_bytes(step.get(), opts_.device, &zero, Device::cpu, sizeof zero);
  ctx.device_step = step.as<uint64_t>();
  size_t last = 0;  // the last layer that initialises from data; the rest need not run
  for (size_t t = 0; t < param_infos_.size(); ++t)
    if (param_decls_[t].init == Init::from_data) last = std::max(last, size_t(param_infos_[t].layer));
  for (size_t i = 0; i <= last && i < layers_.size(); ++i) {
    bool wants = false;
    for (size_t t = 0; t < param_infos_.size(); ++t)
      wants |= param_infos_[t].layer == int(i) && param_decls_[t].init == Init::from_data;
    if (wants) {
      std::vector<Tensor> in;
      for (int v : inputs_[i]) in.push_back(activation(size_t(v), n));
      layers_[i]->init_from_data(in);
    }
    forward_layer(i, ctx, n);
  }
}

std::string Graph::summary() const {
  std::ostringstream os;
  // The type column fits the longest type in the graph (intermap_pool: 13).
  int type_width = 11;
  for (auto& l : layers_) type_width = std::max(type_width, int(l->type().size()) + 1);
  os << std::left << std::setw(12) << "layer" << std::setw(type_width) << "type" << std::setw(14)
     << "output" << std::right << std::setw(10) << "params"
     << "  details\n";
  os << std::left << std::setw(12) << "input" << std::setw(type_width) << "" << std::setw(14)
     << shapes_[0].str().substr(2) << std::right << std::setw(10) << 0 << "\n";
  size_t trainable = 0, frozen = 0, buffers = 0;
  for (auto& p : param_infos_)
    (p.kind == ParamKind::trainable ? trainable : p.kind == ParamKind::frozen ? frozen : buffers) +=
        p.shape.numel();
  for (size_t i = 0; i < layers_.size(); ++i) {
    size_t count = 0;
    for (auto& p : param_infos_)
      if (p.layer == int(i) && p.kind != ParamKind::buffer) count += p.shape.numel();
    std::string from;
    if (inputs_[i].size() != 1 || inputs_[i][0] != int(i)) {
      for (int v : inputs_[i])
        from += (from.empty() ? "from " : ", ") + (v == 0 ? std::string("input") : layers_[size_t(v - 1)]->name());
      from += "; ";
    }
    os << std::left << std::setw(12) << layers_[i]->name() << std::setw(type_width)
       << layers_[i]->type()
       << std::setw(14) << shapes_[i + 1].str().substr(2) << std::right << std::setw(10) << count
       << "  " << from << layers_[i]->describe() << "\n";
  }
  auto mib = [](size_t bytes) {
    std::ostringstream m;
    m << std::fixed << std::setprecision(1) << bytes / 1048576.0 << " MiB";
    return m.str();
  };
  os << "total parameters: " << trainable + frozen;
  if (frozen) os << " (" << frozen << " frozen)";
  if (buffers) os << "; buffers: " << buffers;
  os << "\nactivations, gradients and kept state at batch " << opts_.batch << ": "
     << mib(memory_.planned) << " planned (peak alive " << mib(memory_.peak)
     << ", one buffer each " << mib(memory_.naive) << ", of which " << mib(memory_.kept)
     << " layer state kept for backward)";
  os << "\narena " << mib(arena_.bytes()) << " on " << device_name(opts_.device) << " for batch "
     << opts_.batch;
  return os.str();
}

}  // namespace convpool
