// convpool_torch._C: the PyTorch binding of convpool's pooling. CPU tensors run
// src/cpu/pool.cpp (+ pool_fast.cpp) and the shared window math of kernels/pool_math.cuh;
// CUDA tensors, when built with CONVPOOL_TORCH_CUDA, run kernels/pool_small.cu and
// pool_warp.cu through the launchers of kernels/pool.cuh (cuda_glue.cpp). The sources are the
// engine's own, compiled in place (python/setup.py), never copied.
#include <omp.h>
#include <torch/extension.h>

#include <cmath>
#include <string>

#include "kernels/philox.cuh"
#include "cpu/intermap_pool.h"
#include "cpu/pool.h"
#include "cpu/pool_fast.h"
#include "cpu/lip_pool.h"
#include "cpu/weighted_pool.h"
#include "convpool/pool_methods.h"

namespace cp = convpool;

#ifdef CONVPOOL_TORCH_CUDA
// cuda_glue.cpp
std::vector<at::Tensor> cuda_pool_forward(const cp::PoolGeom& g, const cp::PoolWindowParams& p,
                                          uint64_t seed, uint32_t layer, uint64_t step,
                                          const at::Tensor& alpha, const at::Tensor& x);
std::vector<at::Tensor> cuda_pool_backward(const cp::PoolGeom& g, const cp::PoolWindowParams& p,
                                           uint64_t seed, uint32_t layer, uint64_t step,
                                           const at::Tensor& alpha, const at::Tensor& x,
                                           const at::Tensor& y, const at::Tensor& dy,
                                           const at::Tensor& ranked);
at::Tensor cuda_intermap_forward(cp::InterMapMode mode, int groups, const at::Tensor& x);
at::Tensor cuda_intermap_backward(cp::InterMapMode mode, int groups, const at::Tensor& x,
                                  const at::Tensor& dy);
at::Tensor cuda_weighted_forward(const cp::PoolGeom& g, bool shared, const at::Tensor& x,
                                 const at::Tensor& w);
std::vector<at::Tensor> cuda_weighted_backward(const cp::PoolGeom& g, bool shared,
                                               const at::Tensor& x, const at::Tensor& w,
                                               const at::Tensor& y, const at::Tensor& dy);
at::Tensor cuda_lip_forward(const cp::PoolGeom& g, const at::Tensor& x, const at::Tensor& gamma);
std::vector<at::Tensor> cuda_lip_backward(const cp::PoolGeom& g, const at::Tensor& x,
                                          const at::Tensor& gamma, const at::Tensor& y,
                                          const at::Tensor& dy);
#endif

namespace {

// Everything one call needs, checked: the geometry follows make_pool_geom and the pool
// layer's rules (src/layers/pool.cpp), so bad input is an exception, never a crash.
struct Call {
  cp::PoolGeom g;
  cp::PoolWindowParams p;
  cp::PoolRng rng;
  int n;
};

Call make_call(const at::Tensor& x, int64_t method, int64_t kh, int64_t kw, int64_t sh,
               int64_t sw, int64_t ph, int64_t pw, bool include_pad, int64_t k, double pnorm,
               double t, double rank_a, bool training, int64_t seed, int64_t layer,
               int64_t step) {
  TORCH_CHECK(x.dim() == 4, "convpool_torch: expected a 4-D input (N, C, H, W), got ", x.dim(),
              "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat, "convpool_torch: the kernels take float32");
  TORCH_CHECK(x.is_contiguous(), "convpool_torch: the input must be contiguous");
  TORCH_CHECK(method >= 0 && method < cp::kPoolMethodCount,
              "convpool_torch: unknown method id ", method);
  TORCH_CHECK(kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1 && ph >= 0 && pw >= 0,
              "convpool_torch: window and stride must be >= 1 and padding >= 0");
  TORCH_CHECK(ph <= kh / 2 && pw <= kw / 2,
              "convpool_torch: padding must be at most half the window size");
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(N * C * H * W < (int64_t(1) << 31), "convpool_torch: input too large");
  TORCH_CHECK(kh <= H + 2 * ph && kw <= W + 2 * pw, "convpool_torch: window ", kh, "x", kw,
              " is larger than the padded input ", H + 2 * ph, "x", W + 2 * pw);
  Call c;
  c.p.method = cp::PoolMethod(method);
  if (cp::pool_method(c.p.method).has(cp::PoolParamSlot::k)) {
    TORCH_CHECK(k >= 1 && k <= cp::kPoolMaxTopK, "convpool_torch: k must be in 1..",
                cp::kPoolMaxTopK, ", got ", k);
    TORCH_CHECK(k <= kh * kw, "convpool_torch: k=", k, " is larger than the window (", kh * kw,
                " elements)");
  }
  for (const cp::PoolParamSpec& spec : cp::pool_method(c.p.method).params)
    if (spec.slot == cp::PoolParamSlot::a)
      TORCH_CHECK(rank_a >= spec.lo && rank_a <= spec.hi, "convpool_torch: a must be in [",
                  spec.lo, ", ", spec.hi, "], got ", rank_a);
  if (cp::pool_method(c.p.method).has(cp::PoolParamSlot::a)) {
    TORCH_CHECK(kh * kw <= cp::kPoolMaxRanked, "convpool_torch: ",
                cp::pool_method(c.p.method).name, " weighs every rank of its window: at most ",
                cp::kPoolMaxRanked, " elements, not ", kh * kw);
  }
  TORCH_CHECK(pnorm > 0 && std::isfinite(pnorm), "convpool_torch: p must be > 0 and finite");
  c.p.k = int(k);
  c.p.p = float(pnorm);
  c.p.threshold = float(t);
  c.p.rank_a = float(rank_a);
  c.p.training = training;
  c.g = cp::make_pool_geom(int(C), int(H), int(W), int(kh), int(kw), int(sh), int(sw), int(ph),
                           int(pw), include_pad, false);
  c.rng = {uint64_t(seed), uint32_t(layer), uint64_t(step)};
  c.n = int(N);
  return c;
}

// lambda of mixed pooling as the pool layer sets it: sigmoid(alpha) when learned, else one
// draw in {0, 1} per layer per step in training and 0.5 in evaluation.
float mix_lambda(const Call& c, const at::Tensor& alpha) {
  if (alpha.defined() && alpha.numel() > 0) {
    const float a = alpha.to(at::kCPU).to(at::kFloat).item<float>();
    return 1.f / (1.f + std::exp(-a));
  }
  if (!c.p.training) return 0.5f;
  return cp::philox_uniform(c.rng.seed, cp::kRngPoolMix, c.rng.layer, uint32_t(c.rng.step), 0) <
                 0.5f
             ? 1.f
             : 0.f;
}

at::Tensor scratch_for(const Call& c, bool wants_dlambda) {
  if (cp::cpu::pool_fast_covers(c.g, c.p, wants_dlambda)) return at::Tensor();
  return at::empty({int64_t(cp::cpu::pool_scratch_floats(c.g, c.n, omp_get_max_threads()))},
                   at::kFloat);
}

// Returns (y, ranked): ranked is the CUDA large-window kernels' saved selection (empty on CPU).
std::vector<at::Tensor> forward(const at::Tensor& x, int64_t method, int64_t kh, int64_t kw,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool include_pad,
                                int64_t k, double pnorm, double t, double rank_a, bool training,
                                int64_t seed, int64_t layer, int64_t step,
                                const at::Tensor& alpha) {
  Call c = make_call(x, method, kh, kw, sh, sw, ph, pw, include_pad, k, pnorm, t, rank_a,
                     training, seed, layer, step);
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_pool_forward(c.g, c.p, c.rng.seed, c.rng.layer, c.rng.step, alpha, x);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  TORCH_CHECK(x.device().is_cpu(), "convpool_torch: unsupported device ", x.device());
  if (c.p.method == cp::PoolMethod::mixed) c.p.lambda = mix_lambda(c, alpha);
  at::Tensor y = at::empty({c.n, c.g.C, c.g.OH, c.g.OW}, x.options());
  at::Tensor s = scratch_for(c, false);
  cp::cpu::pool_forward(c.g, c.p, c.rng, c.n, x.data_ptr<float>(), y.data_ptr<float>(), nullptr,
                        s.defined() ? s.data_ptr<float>() : nullptr, omp_get_max_threads());
  return {y, at::Tensor()};
}

// Returns (dx, dalpha): dalpha (learned mixed: d loss / d alpha, 1 element) is empty otherwise.
std::vector<at::Tensor> backward(const at::Tensor& x, const at::Tensor& y, const at::Tensor& dy,
                                 int64_t method, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                 int64_t ph, int64_t pw, bool include_pad, int64_t k,
                                 double pnorm, double t, double rank_a, bool training,
                                 int64_t seed, int64_t layer, int64_t step,
                                 const at::Tensor& alpha, const at::Tensor& ranked) {
  Call c = make_call(x, method, kh, kw, sh, sw, ph, pw, include_pad, k, pnorm, t, rank_a,
                     training, seed, layer, step);
  TORCH_CHECK(y.is_contiguous() && dy.is_contiguous() && y.scalar_type() == at::kFloat &&
                  dy.scalar_type() == at::kFloat,
              "convpool_torch: y and dy must be contiguous float32");
  TORCH_CHECK(y.sizes() == dy.sizes() && y.size(0) == c.n && y.size(1) == c.g.C &&
                  y.size(2) == c.g.OH && y.size(3) == c.g.OW,
              "convpool_torch: y/dy shape does not match the pooling of x");
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_pool_backward(c.g, c.p, c.rng.seed, c.rng.layer, c.rng.step, alpha, x, y, dy,
                              ranked);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  (void)ranked;
  const bool learned = alpha.defined() && alpha.numel() > 0;
  if (c.p.method == cp::PoolMethod::mixed) c.p.lambda = mix_lambda(c, alpha);
  at::Tensor dx = at::empty_like(x);
  at::Tensor s = scratch_for(c, learned);
  float dlambda = 0.f;
  cp::cpu::pool_backward(c.g, c.p, c.rng, c.n, x.data_ptr<float>(), y.data_ptr<float>(),
                         dy.data_ptr<float>(), dx.data_ptr<float>(), learned ? &dlambda : nullptr,
                         nullptr, s.defined() ? s.data_ptr<float>() : nullptr,
                         omp_get_max_threads());
  at::Tensor dalpha;
  if (learned)
    dalpha = at::full({1}, dlambda * c.p.lambda * (1.f - c.p.lambda), at::kFloat);
  return {dx, dalpha};
}

// Inter-map pooling (src/cpu/intermap_pool.cpp, kernels/intermap_pool.cu): x is N x C x H x W
// float32, contiguous; groups divides C; mode 0 max, 1 mean.
cp::InterMapMode intermap_check(const at::Tensor& x, int64_t groups, int64_t mode) {
  TORCH_CHECK(x.dim() == 4, "convpool_torch: expected a 4-D input (N, C, H, W), got ", x.dim(),
              "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous(),
              "convpool_torch: the kernels take contiguous float32");
  TORCH_CHECK(groups >= 1 && x.size(1) % groups == 0, "convpool_torch: groups=", groups,
              " does not divide the input's ", x.size(1), " maps");
  TORCH_CHECK(mode == 0 || mode == 1, "convpool_torch: mode must be max or mean");
  TORCH_CHECK(x.numel() < (int64_t(1) << 31), "convpool_torch: input too large");
  return mode == 0 ? cp::InterMapMode::max : cp::InterMapMode::mean;
}

at::Tensor intermap_forward(const at::Tensor& x, int64_t groups, int64_t mode) {
  const cp::InterMapMode m = intermap_check(x, groups, mode);
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_intermap_forward(m, int(groups), x);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor y = at::empty({x.size(0), x.size(1) / groups, x.size(2), x.size(3)}, x.options());
  cp::cpu::intermap_pool_forward(m, int(groups), x.data_ptr<float>(), y.data_ptr<float>(),
                                 int(x.size(0)), int(x.size(1)), size_t(x.size(2) * x.size(3)));
  return y;
}

at::Tensor intermap_backward(const at::Tensor& x, const at::Tensor& dy, int64_t groups,
                             int64_t mode) {
  const cp::InterMapMode m = intermap_check(x, groups, mode);
  TORCH_CHECK(dy.is_contiguous() && dy.scalar_type() == at::kFloat && dy.dim() == 4 &&
                  dy.size(0) == x.size(0) && dy.size(1) == x.size(1) / groups &&
                  dy.size(2) == x.size(2) && dy.size(3) == x.size(3),
              "convpool_torch: dy does not match the inter-map pooling of x");
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_intermap_backward(m, int(groups), x, dy);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor dx = at::empty_like(x);
  cp::cpu::intermap_pool_backward(m, int(groups), x.data_ptr<float>(), dy.data_ptr<float>(),
                                  dx.data_ptr<float>(), int(x.size(0)), int(x.size(1)),
                                  size_t(x.size(2) * x.size(3)));
  return dx;
}

// Weighted pooling (src/cpu/weighted_pool.cpp, kernels/weighted_pool.cu): x is N x C x H x W,
// the logits w are (C or 1) x 1 x size x size, both float32, contiguous, on one device.
cp::PoolGeom weighted_check(const at::Tensor& x, const at::Tensor& w, int64_t size,
                            int64_t stride, int64_t pad) {
  TORCH_CHECK(x.dim() == 4, "convpool_torch: expected a 4-D input (N, C, H, W), got ", x.dim(),
              "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() &&
                  w.scalar_type() == at::kFloat && w.is_contiguous(),
              "convpool_torch: the kernels take contiguous float32");
  TORCH_CHECK(w.device() == x.device(), "convpool_torch: the weights must be on x's device");
  TORCH_CHECK(size >= 1 && size * size <= cp::kWeightedPoolMaxWindow && stride >= 1 &&
                  pad >= 0 && pad <= size / 2,
              "convpool_torch: weighted pooling takes size 1..8, stride >= 1 and padding at "
              "most half the size");
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(w.dim() == 4 && (w.size(0) == C || w.size(0) == 1) && w.size(1) == 1 &&
                  w.size(2) == size && w.size(3) == size,
              "convpool_torch: the weights must be (C or 1) x 1 x ", size, " x ", size);
  TORCH_CHECK(size <= H + 2 * pad && size <= W + 2 * pad,
              "convpool_torch: the window is larger than the padded input");
  TORCH_CHECK(x.numel() < (int64_t(1) << 31), "convpool_torch: input too large");
  return cp::make_pool_geom(int(C), int(H), int(W), int(size), int(size), int(stride),
                            int(stride), int(pad), int(pad), false, false);
}

at::Tensor weighted_forward(const at::Tensor& x, const at::Tensor& w, int64_t size,
                            int64_t stride, int64_t pad) {
  const cp::PoolGeom g = weighted_check(x, w, size, stride, pad);
  const bool shared = w.size(0) == 1;
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_weighted_forward(g, shared, x, w);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor y = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options());
  cp::cpu::weighted_pool_forward(g, w.data_ptr<float>(), shared, x.data_ptr<float>(),
                                 y.data_ptr<float>(), int(x.size(0)));
  return y;
}

// (dx, dw).
std::vector<at::Tensor> weighted_backward(const at::Tensor& x, const at::Tensor& w,
                                          const at::Tensor& y, const at::Tensor& dy,
                                          int64_t size, int64_t stride, int64_t pad) {
  const cp::PoolGeom g = weighted_check(x, w, size, stride, pad);
  const bool shared = w.size(0) == 1;
  for (const at::Tensor* t : {&y, &dy})
    TORCH_CHECK(t->is_contiguous() && t->scalar_type() == at::kFloat && t->dim() == 4 &&
                    t->device() == x.device() && t->size(0) == x.size(0) &&
                    t->size(1) == x.size(1) && t->size(2) == g.OH && t->size(3) == g.OW,
                "convpool_torch: y and dy must match the weighted pooling of x");
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_weighted_backward(g, shared, x, w, y, dy);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor dx = at::empty_like(x), dw = at::empty_like(w);
  std::vector<float> scratch(cp::weighted_pool_scratch_floats(g, shared));
  cp::cpu::weighted_pool_backward(g, w.data_ptr<float>(), shared, x.data_ptr<float>(),
                                  y.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(),
                                  dw.data_ptr<float>(), int(x.size(0)), scratch.data());
  return {dx, dw};
}

// Local importance pooling (src/cpu/lip_pool.cpp, kernels/lip_pool.cu): x is N x C x H x W,
// gamma holds C logit scales, both float32, contiguous, on one device.
cp::PoolGeom lip_check(const at::Tensor& x, const at::Tensor& gamma, int64_t size,
                       int64_t stride, int64_t pad) {
  TORCH_CHECK(x.dim() == 4, "convpool_torch: expected a 4-D input (N, C, H, W), got ", x.dim(),
              "-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.is_contiguous() &&
                  gamma.scalar_type() == at::kFloat && gamma.is_contiguous(),
              "convpool_torch: the kernels take contiguous float32");
  TORCH_CHECK(gamma.device() == x.device(), "convpool_torch: gamma must be on x's device");
  TORCH_CHECK(size >= 1 && size * size <= cp::kLipPoolMaxWindow && stride >= 1 && pad >= 0 &&
                  pad <= size / 2,
              "convpool_torch: local importance pooling takes size 1..8, stride >= 1 and "
              "padding at most half the size");
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(gamma.numel() == C, "convpool_torch: gamma must hold one scale per channel (", C,
              "), not ", gamma.numel());
  TORCH_CHECK(size <= H + 2 * pad && size <= W + 2 * pad,
              "convpool_torch: the window is larger than the padded input");
  TORCH_CHECK(x.numel() < (int64_t(1) << 31), "convpool_torch: input too large");
  return cp::make_pool_geom(int(C), int(H), int(W), int(size), int(size), int(stride),
                            int(stride), int(pad), int(pad), false, false);
}

at::Tensor lip_forward(const at::Tensor& x, const at::Tensor& gamma, int64_t size, int64_t stride,
                       int64_t pad) {
  const cp::PoolGeom g = lip_check(x, gamma, size, stride, pad);
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_lip_forward(g, x, gamma);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor y = at::empty({x.size(0), x.size(1), g.OH, g.OW}, x.options());
  cp::cpu::lip_pool_forward(g, gamma.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(),
                            int(x.size(0)));
  return y;
}

// (dx, dgamma).
std::vector<at::Tensor> lip_backward(const at::Tensor& x, const at::Tensor& gamma,
                                     const at::Tensor& y, const at::Tensor& dy, int64_t size,
                                     int64_t stride, int64_t pad) {
  const cp::PoolGeom g = lip_check(x, gamma, size, stride, pad);
  for (const at::Tensor* t : {&y, &dy})
    TORCH_CHECK(t->is_contiguous() && t->scalar_type() == at::kFloat && t->dim() == 4 &&
                    t->device() == x.device() && t->size(0) == x.size(0) &&
                    t->size(1) == x.size(1) && t->size(2) == g.OH && t->size(3) == g.OW,
                "convpool_torch: y and dy must match the local importance pooling of x");
  if (x.is_cuda()) {
#ifdef CONVPOOL_TORCH_CUDA
    return cuda_lip_backward(g, x, gamma, y, dy);
#else
    TORCH_CHECK(false, "convpool_torch was built without CUDA (see scripts/build-torch-ext)");
#endif
  }
  at::Tensor dx = at::empty_like(x), dgamma = at::empty_like(gamma);
  cp::cpu::lip_pool_backward(g, gamma.data_ptr<float>(), x.data_ptr<float>(), y.data_ptr<float>(),
                             dy.data_ptr<float>(), dx.data_ptr<float>(), dgamma.data_ptr<float>(),
                             int(x.size(0)));
  return {dx, dgamma};
}

bool built_with_cuda() {
#ifdef CONVPOOL_TORCH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "convpool pooling kernels (src/cpu/pool.cpp, kernels/pool_*.cu)";
  m.def("forward", &forward, "pooling forward: (y, ranked)");
  m.def("backward", &backward, "pooling backward: (dx, dalpha)");
  m.def("intermap_forward", &intermap_forward, "inter-map pooling forward");
  m.def("intermap_backward", &intermap_backward, "inter-map pooling backward: dx");
  m.def("weighted_forward", &weighted_forward, "weighted pooling forward");
  m.def("weighted_backward", &weighted_backward, "weighted pooling backward: (dx, dweight)");
  m.def("lip_forward", &lip_forward, "local importance pooling forward");
  m.def("lip_backward", &lip_backward, "local importance pooling backward: (dx, dgamma)");
  m.def("built_with_cuda", &built_with_cuda);
  m.def("max_topk", [] { return cp::kPoolMaxTopK; });
  // The method table (kernels/pool_methods.cuh) as JSON: the Python side builds its method
  // list and its modules from it.
  m.def("methods_json", [] { return cp::pool_methods_json().dump(); });
}
