// NetVLAD over a spatial pyramid: small direct kernels, one thread per assignment position,
// per residual sum, per cell (its norms; its backward), per output, per input gradient and
// per parameter (summing the images in order). Each runs the CPU's per-element function of
// spp_pool_vlad_math.cuh, so the emulated target gives the CPU's bits, and nothing needs
// atomics.
#include "elementwise.cuh"
#include "spp_pool_vlad.cuh"

namespace convpool::cuda {

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

struct VladShape {
  SppLevels s;
  int k, c, h, w, p, cells;
  size_t per_state, per_out;
};

VladShape vlad_shape(const SppLevels& s, int k, int c, int h, int w) {
  const int cells = spp_features_per_channel(s);
  return {
      s, k, c, h, w, h * w, cells, vlad_image_state_floats(s, k, c, h * w), size_t(cells) * k * c};
}

__global__ void vlad_assign_kernel(VladShape g, const float* __restrict__ wt,
                                   const float* __restrict__ bias, const float* __restrict__ x,
                                   float* __restrict__ state, size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.p;
    vlad_assign(wt, bias, x + img * g.c * g.p, g.k, g.c, g.p, int(t % g.p),
                state + img * g.per_state);
  }
}

__global__ void vlad_residual_kernel(VladShape g, const float* __restrict__ x,
                                     const float* __restrict__ mu, float* __restrict__ state,
                                     size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.per_out;
    const int e = int(t % g.per_out), cell = e / (g.k * g.c), j = e / g.c % g.k, ch = e % g.c;
    int r0, r1, c0, c1;
    vlad_cell_bounds(g.s, cell, g.h, g.w, &r0, &r1, &c0, &c1);
    float* a = state + img * g.per_state;
    a[size_t(g.k) * g.p + size_t(cell) * vlad_cell_floats(g.k, g.c) + size_t(j) * g.c + ch] =
        vlad_residual_sum(a, x + img * g.c * g.p, mu, g.c, g.p, g.w, r0, r1, c0, c1, j, ch);
  }
}

__global__ void vlad_norms_kernel(VladShape g, float* __restrict__ state, size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.cells;
    const int cell = int(t % g.cells);
    int r0, r1, c0, c1;
    vlad_cell_bounds(g.s, cell, g.h, g.w, &r0, &r1, &c0, &c1);
    float* a = state + img * g.per_state;
    vlad_cell_norms(a + size_t(g.k) * g.p + size_t(cell) * vlad_cell_floats(g.k, g.c), a, g.k, g.c,
                    g.p, g.w, r0, r1, c0, c1);
  }
}

__global__ void vlad_output_kernel(VladShape g, const float* __restrict__ state,
                                   float* __restrict__ y, size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.per_out;
    const int e = int(t % g.per_out), cell = e / (g.k * g.c), f = e % (g.k * g.c);
    y[t] = vlad_output(
        state + img * g.per_state + size_t(g.k) * g.p + size_t(cell) * vlad_cell_floats(g.k, g.c),
        g.k, g.c, f / g.c, f % g.c);
  }
}

__global__ void vlad_cell_backward_kernel(VladShape g, const float* __restrict__ state,
                                          const float* __restrict__ dy, float* __restrict__ dv,
                                          size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.cells;
    const int cell = int(t % g.cells);
    const size_t out = img * g.per_out + size_t(cell) * g.k * g.c;
    vlad_cell_backward(
        state + img * g.per_state + size_t(g.k) * g.p + size_t(cell) * vlad_cell_floats(g.k, g.c),
        dy + out, g.k, g.c, dv + out);
  }
}

__global__ void vlad_assign_grad_kernel(VladShape g, const float* __restrict__ dv,
                                        const float* __restrict__ state,
                                        const float* __restrict__ x, const float* __restrict__ mu,
                                        float* __restrict__ dl, size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / g.p;
    vlad_assign_grad(g.s, dv + img * g.per_out, state + img * g.per_state, x + img * g.c * g.p, mu,
                     g.k, g.c, g.h, g.w, int(t % g.p), dl + img * g.k * g.p);
  }
}

__global__ void vlad_input_grad_kernel(VladShape g, const float* __restrict__ dv,
                                       const float* __restrict__ state,
                                       const float* __restrict__ dl, const float* __restrict__ wt,
                                       float* __restrict__ dx, size_t count) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(g.c) * g.p);
    const int ch = int(t / g.p % g.c), i = int(t % g.p);
    dx[t] = vlad_input_grad(g.s, dv + img * g.per_out, state + img * g.per_state,
                            dl + img * g.k * g.p, wt, g.k, g.c, g.h, g.w, ch, i);
  }
}

__global__ void vlad_param_grad_kernel(VladShape g, int n, const float* __restrict__ dl,
                                       const float* __restrict__ x, const float* __restrict__ dv,
                                       const float* __restrict__ state, float* __restrict__ dwt,
                                       float* __restrict__ dbias, float* __restrict__ dmu,
                                       size_t count) {
  const int params = g.k * g.c;
  CP_GRID_STRIDE(t, count) {
    const int e = int(t);
    const bool bias = e >= params;
    const int j = bias ? e - params : e / g.c, ch = bias ? -1 : e % g.c;
    float acc = 0.f, gm = 0.f;
    for (int img = 0; img < n; ++img) {
      acc +=
          vlad_weight_grad(dl + size_t(img) * g.k * g.p, x + size_t(img) * g.c * g.p, g.p, j, ch);
      if (!bias)
        gm += vlad_centre_grad(g.cells, dv + img * g.per_out,
                               state + img * g.per_state + size_t(g.k) * g.p, g.k, g.c, j, ch);
    }
    if (bias) {
      dbias[j] = acc;
    } else {
      dwt[e] = acc;
      dmu[e] = gm;
    }
  }
}
}  // namespace

void spp_pool_vlad_forward(const SppLevels& s, const float* wt, const float* bias, const float* mu,
                           int k, const float* x, float* y, float* state, int n, int c, int h,
                           int w, void* stream) {
  if (n == 0) return;
  const VladShape g = vlad_shape(s, k, c, h, w);
  cudaStream_t st = as_stream(stream);
  const size_t positions = size_t(n) * g.p, outputs = size_t(n) * g.per_out,
               cells = size_t(n) * g.cells;
  vlad_assign_kernel<<<blocks_for(positions), kThreads, 0, st>>>(g, wt, bias, x, state, positions);
  CP_CUDA_CHECK_LAUNCH("vlad_assign_kernel");
  vlad_residual_kernel<<<blocks_for(outputs), kThreads, 0, st>>>(g, x, mu, state, outputs);
  CP_CUDA_CHECK_LAUNCH("vlad_residual_kernel");
  vlad_norms_kernel<<<blocks_for(cells), kThreads, 0, st>>>(g, state, cells);
  CP_CUDA_CHECK_LAUNCH("vlad_norms_kernel");
  vlad_output_kernel<<<blocks_for(outputs), kThreads, 0, st>>>(g, state, y, outputs);
  CP_CUDA_CHECK_LAUNCH("vlad_output_kernel");
}

void spp_pool_vlad_backward(const SppLevels& s, const float* wt, const float* mu, int k,
                            const float* x, const float* state, const float* dy, float* dx,
                            float* dwt, float* dbias, float* dmu, int n, int c, int h, int w,
                            float* scratch, void* stream) {
  if (n == 0) return;
  const VladShape g = vlad_shape(s, k, c, h, w);
  cudaStream_t st = as_stream(stream);
  float* dv = scratch;
  float* dl = scratch + size_t(n) * g.per_out;
  const size_t cells = size_t(n) * g.cells, positions = size_t(n) * g.p,
               inputs = size_t(n) * c * g.p, params = size_t(k) * c + k;
  vlad_cell_backward_kernel<<<blocks_for(cells), kThreads, 0, st>>>(g, state, dy, dv, cells);
  CP_CUDA_CHECK_LAUNCH("vlad_cell_backward_kernel");
  vlad_assign_grad_kernel<<<blocks_for(positions), kThreads, 0, st>>>(g, dv, state, x, mu, dl,
                                                                      positions);
  CP_CUDA_CHECK_LAUNCH("vlad_assign_grad_kernel");
  if (dx) {
    vlad_input_grad_kernel<<<blocks_for(inputs), kThreads, 0, st>>>(g, dv, state, dl, wt, dx,
                                                                    inputs);
    CP_CUDA_CHECK_LAUNCH("vlad_input_grad_kernel");
  }
  vlad_param_grad_kernel<<<blocks_for(params), kThreads, 0, st>>>(g, n, dl, x, dv, state, dwt,
                                                                  dbias, dmu, params);
  CP_CUDA_CHECK_LAUNCH("vlad_param_grad_kernel");
}

}  // namespace convpool::cuda
