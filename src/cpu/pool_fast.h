// Specialised CPU pooling paths, organised by window geometry rather than by method: every window
// up to 5x5 (any stride, any padding smaller than the window, square or not) runs on a K x K
// template (K = 2..5, the larger side) with the window size known at compile time, four windows
// per vector, the method's math written branch-free, but where the window lists take it: max,
// min, avg, mixed and Lp on planes up to 64 x 64 run from lists of each window's elements, at
// any window size (pool_fast_lists.cpp); global windows have their own (pool_fast_global.cpp). Windows inside the plane load
// without masks; windows that cross its edge, or are smaller than their template, carry a mask of
// which positions are elements. Avg-TopK and T-Max-Avg select with a pruned odd-even merge
// sorting network (forward) and the k-th value found by it (backward); Lp calls pow only when p
// is not 1, 2 or 3.
//
// Results: max, avg, min, mixed, avgtopk, tmaxavg and lp with p = 1 are bit-identical to the
// generic path (same operations in the same order, gradients added in the same order, also
// where windows overlap); lp with p = 2 uses sqrt for pow(s, 1/2) and p = 3 a Newton cube
// root; softpool uses a vectorisable exp (Cephes polynomial, about 1 ulp) and, on four planes
// per vector, each element's exp once (pool_fast_planes.h): within float rounding of the
// generic path.
#pragma once
#include "pool.h"

namespace convpool::cpu {

// Whether the fast paths cover this call (geometry and method). Global stochastic pooling and
// the learned-mixed gradient of lambda stay on the generic path.
bool pool_fast_covers(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda);
// The name of the fast path that takes this call ("window 3x3, masked edges"), or null.
const char* pool_fast_path(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda);

void pool_forward_fast(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                       const float* x, float* y);
// Max and min pooling over the same windows, recording the plane offset of each
// window's selected element (pool_argmax's, pool_argmin's choice) for the scatter in backward;
// and training-time stochastic pooling, recording the element each window drew, on the
// window lists.
bool pool_fast_records_selection(const PoolGeom& g, const PoolWindowParams& p);
void pool_fast_select_recording(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng,
                                int n, const float* x, float* y, int32_t* argmax);
// dx is overwritten.
void pool_backward_fast(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                        const float* x, const float* y, const float* dy, float* dx);

// pool_fast_lists.cpp: max, min, avg, mixed and Lp (pool_lists_method), and stochastic
// pooling in training, over windows of any size on planes up to 64 x 64 (called by the ones
// above; pool_lists_forward records the selection, or the draw, when argmax is not null).
constexpr bool pool_lists_method(PoolMethod m) {
  return m == PoolMethod::max || m == PoolMethod::min || m == PoolMethod::avg ||
         m == PoolMethod::mixed || m == PoolMethod::lp;
}
bool pool_lists_cover(const PoolGeom& g, const PoolWindowParams& p);
void pool_lists_forward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                        const float* x, float* y, int32_t* argmax);
void pool_lists_backward(const PoolGeom& g, const PoolWindowParams& p, const PoolRng& rng, int n,
                         const float* x, const float* y, const float* dy, float* dx);

// pool_fast_global.cpp: global windows over any plane (every method but stochastic;
// called by the two above).
bool pool_global_covers(const PoolGeom& g, const PoolWindowParams& p);
// The forward's path, for pool_fast_path.
const char* pool_global_path(const PoolGeom& g, const PoolWindowParams& p);
void pool_global_forward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                         float* y);
void pool_global_backward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                          const float* y, const float* dy, float* dx);
// Max or min over each plane, recording the selected element's offset (as
// pool_fast_select_recording does for windows).
void pool_global_select_recording(const PoolGeom& g, const PoolWindowParams& p, int n,
                                  const float* x, float* y, int32_t* argmax);

}  // namespace convpool::cpu
