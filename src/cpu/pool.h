// CPU pooling: every method, by gathering each window and applying kernels/pool_math.cuh.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/pool_math.cuh"

namespace convpool::cpu {

using convpool::PoolGeom;
using convpool::PoolRng;

// Scratch of the generic (any-window) path, for `threads` OpenMP threads and a batch of n:
// per thread the window's values, gradients and offsets, plus one double per plane for the
// learned-mixed gradient. The pool layer keeps it in its workspace, so a step allocates
// nothing; a call with a null scratch allocates its own (tests, tools).
size_t pool_scratch_floats(const PoolGeom& g, int n, int threads);

// `argmax` (one int per output, or null) lets max pooling remember its choice so backward
// is a scatter; other methods recompute their windows in backward.
// `scratch` holds pool_scratch_floats(g, n, scratch_threads) floats; calls run on at most
// scratch_threads threads.
void pool_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                  const float* x, float* y, int32_t* argmax, float* scratch = nullptr,
                  int scratch_threads = 0);
// dx (null: not wanted) is overwritten. If dlambda is non-null (learned mixed), it receives
// sum dy*(max-avg).
void pool_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                   const float* x, const float* y, const float* dy, float* dx, float* dlambda,
                   const int32_t* argmax, float* scratch = nullptr, int scratch_threads = 0);

// The generic path alone, for any method and geometry: each window gathered and passed to
// pool_math.cuh's per-window math. What pool_forward/pool_backward fall back to; the tests'
// oracle for the fast paths, which must agree with it bit for bit (pool_fast.h says where
// they may differ by rounding).
void pool_forward_generic(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                          int n, const float* x, float* y);
void pool_backward_generic(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                           int n, const float* x, const float* y, const float* dy, float* dx);

// Which path a call takes ("window 3x3, masked edges", "generic", "max 2x2, recording"...),
// so that a benchmark can say what it measured.
const char* pool_path(const PoolGeom& g, const PoolWindowParams& p, bool recording,
                      bool wants_dlambda);

}  // namespace convpool::cpu
