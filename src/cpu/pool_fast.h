// Specialised CPU pooling paths: 2x2 and 3x3 windows that lie wholly inside the
// plane (no padding; any stride, so 2x2/2, 3x3/3 and the overlapping 3x3/2 are all covered),
// and global pooling (pool_fast_global.cpp). Each window is loaded into registers with its size known at compile time
// and the method's math is written branch-free, so the loop over an output row vectorises.
// Avg-TopK and T-Max-Avg select with a small sorting network (forward) and rank counting
// (backward); Lp calls pow only when p is neither 1 nor 2.
//
// Results: max, avg, min, mixed, avgtopk, tmaxavg and lp with p = 1 are bit-identical to the
// generic path (same operations in the same order, gradients added in the same order);
// lp with p = 2 uses sqrt for pow(s, 1/2); softpool uses a vectorisable exp (Cephes
// polynomial, about 1 ulp): both within float rounding of the generic path.
#pragma once
#include "pool.h"

namespace convpool::cpu {

// Whether the fast paths cover this call (geometry and method). Stochastic pooling and the
// learned-mixed gradient of lambda stay on the generic path.
bool pool_fast_covers(const PoolGeom& g, const PoolWindowParams& p, bool wants_dlambda);

void pool_forward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                       float* y);
// Max and min pooling over the same 2x2 and 3x3 windows, recording the plane offset of each
// window's selected element (pool_argmax's, pool_argmin's choice) for the scatter in backward.
bool pool_fast_records_selection(const PoolGeom& g, const PoolWindowParams& p);
void pool_fast_select_recording(const PoolGeom& g, const PoolWindowParams& p, int n,
                                const float* x, float* y, int32_t* argmax);
// dx is overwritten.
void pool_backward_fast(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                        const float* y, const float* dy, float* dx);

// pool_fast_global.cpp: global windows over planes larger than 3x3 (max, min, avg, mixed, lp,
// softpool); called by the two above.
bool pool_global_covers(const PoolGeom& g, const PoolWindowParams& p);
void pool_global_forward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                         float* y);
void pool_global_backward(const PoolGeom& g, const PoolWindowParams& p, int n, const float* x,
                          const float* y, const float* dy, float* dx);

}  // namespace convpool::cpu
