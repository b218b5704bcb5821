// LayerHarness: one layer, built from a model-file line, with its own host buffers filled
// with fresh random values; used by the per-layer tests and the gradient checker.
#pragma once
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "convpool/error.h"
#include "convpool/layer.h"
#include "convpool/model.h"

namespace convpool::test {

// A seed that differs on every run, printed by the test so a failure can be replayed.
uint64_t fresh_seed();

inline void fill_uniform(std::vector<float>& v, std::mt19937_64& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& x : v) x = d(rng);
}

inline void poison(std::vector<float>& v) {
  for (auto& x : v) x = std::nanf("");
}

struct LayerHarness {
  std::unique_ptr<Layer> layer;
  Shape in, out;  // per-sample
  int n;
  std::vector<float> x, y, dy, dx, params, grads, state, workspace;
  std::vector<ParamDecl> decls;
  std::vector<size_t> offsets;

  // `line` is one model-file line, e.g. "conv filters=4 size=3".
  LayerHarness(const std::string& line, Shape in_per_sample, int batch, uint64_t seed,
               float lo = -1.f, float hi = 1.f);
  Tensor x_t() { return {x.data(), in.with_batch(n), Device::cpu}; }
  Tensor y_t() { return {y.data(), out.with_batch(n), Device::cpu}; }
  Tensor dy_t() { return {dy.data(), out.with_batch(n), Device::cpu}; }
  Tensor dx_t() { return {dx.data(), in.with_batch(n), Device::cpu}; }
  void forward(const StepContext& ctx);
  void backward(const StepContext& ctx);
  float* param(size_t i) { return params.data() + offsets[i]; }
  float* grad(size_t i) { return grads.data() + offsets[i]; }
};

// Finite-difference check of dx and every parameter gradient against backward, for the
// loss L = sum(dy * y). Central differences; an element whose one-sided differences
// disagree sits on a kink (ReLU at 0, a max tie) and is skipped. Returns the number of
// elements compared and fails the current test on a mismatch.
struct GradCheckOptions {
  float step = 1e-2f;
  double rel_tol = 2e-2, abs_tol = 2e-3;
  bool check_input = true;
};
size_t check_gradients(LayerHarness& h, const StepContext& ctx, const GradCheckOptions& opt = {});

}  // namespace convpool::test
