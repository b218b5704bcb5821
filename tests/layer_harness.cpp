#include "layer_harness.h"

#include <gtest/gtest.h>

#include <chrono>

#include "finite_difference.h"

namespace convpool::test {

uint64_t fresh_seed() {
  static std::random_device rd;
  return (uint64_t(rd()) << 32) ^ rd() ^
         uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
}

LayerHarness::LayerHarness(const std::string& line, Shape in_per_sample, int batch, uint64_t seed,
                           float lo, float hi)
    : in(in_per_sample.with_batch(1)), n(batch) {
  ModelSpec spec = parse_model_text(line + "\n", "test");
  LayerSpec ls = spec.layers.at(0);
  if (ls.name.empty()) ls.name = ls.type + "1";
  layer = make_layer(ls);
  out = layer->infer_shape(in);
  decls = layer->param_decls();
  size_t total = 0;
  for (auto& d : decls) offsets.push_back(total), total += d.shape.numel();
  std::mt19937_64 rng(seed);
  params.resize(total);
  fill_uniform(params, rng, -0.5f, 0.5f);
  grads.assign(total, 0.f);
  poison(grads);
  x.resize(in.numel() * n);
  fill_uniform(x, rng, lo, hi);
  y.resize(out.numel() * n);
  poison(y);
  dy.resize(out.numel() * n);
  fill_uniform(dy, rng, -1.f, 1.f);
  dx.resize(in.numel() * n);
  poison(dx);
  layer->prepare(Device::cpu, n);  // as Graph::build does: picks the CPU engine (conv)
  state.resize(layer->state_floats(n));
  workspace.resize(layer->workspace_floats(n));
  std::vector<Tensor> p, g;
  for (size_t i = 0; i < decls.size(); ++i) {
    p.push_back({params.data() + offsets[i], decls[i].shape, Device::cpu});
    g.push_back({grads.data() + offsets[i], decls[i].shape, Device::cpu});
  }
  layer->bind(p, g, state.data(), workspace.data());
}

void LayerHarness::forward(const StepContext& ctx) { layer->forward(ctx, x_t(), y_t()); }
void LayerHarness::backward(const StepContext& ctx) {
  layer->backward(ctx, x_t(), y_t(), dy_t(), dx_t());
}

namespace {
double loss_of(LayerHarness& h, const StepContext& ctx) {
  h.forward(ctx);
  double s = 0;
  for (size_t i = 0; i < h.y.size(); ++i) s += double(h.dy[i]) * h.y[i];
  return s;
}

// Compares d(loss)/d(v[i]) by finite differences against analytic[i], where they can be
// trusted (finite_difference.h).
size_t compare(LayerHarness& h, const StepContext& ctx, std::vector<float>& v,
               const float* analytic, size_t count, size_t base, const std::string& what,
               const GradCheckOptions& opt) {
  size_t compared = 0;
  for (size_t i = 0; i < count; ++i) {
    const auto central = trusted_central_difference([&] { return loss_of(h, ctx); }, v[base + i],
                                                    opt.step, {opt.abs_tol, opt.rel_tol});
    if (!central) continue;
    ++compared;
    const DifferenceTolerance tol{opt.abs_tol, opt.rel_tol};
    EXPECT_NEAR(analytic[i], *central, tol.at(*central)) << what << "[" << i << "]";
  }
  return compared;
}
}  // namespace

size_t check_gradients(LayerHarness& h, const StepContext& ctx, const GradCheckOptions& opt) {
  h.forward(ctx);
  h.backward(ctx);
  const std::vector<float> dx = h.dx, grads = h.grads;
  size_t compared = 0;
  if (opt.check_input) compared += compare(h, ctx, h.x, dx.data(), dx.size(), 0, "dx", opt);
  for (size_t p = 0; p < h.decls.size(); ++p)
    compared += compare(h, ctx, h.params, grads.data() + h.offsets[p], h.decls[p].shape.numel(),
                        h.offsets[p], h.layer->name() + "." + h.decls[p].suffix, opt);
  h.forward(ctx);  // leave y consistent with the unperturbed inputs
  return compared;
}

}  // namespace convpool::test
