// CPU kernel: compact bilinear pooling (kernels/compact_bilinear_math.cuh). x is N x C x H x W
// (hw = H x W), u is N x d. The CUDA twin is kernels/compact_bilinear.cuh, tested against
// this one.
#pragma once
#include <cstddef>

#include "kernels/compact_bilinear_math.cuh"

namespace convpool::cpu {

// z: n x d, norm: n floats, written here and read by backward. scratch:
// compact_bilinear_scratch_floats(n, c, hw, d) floats.
void compact_bilinear_forward(const CompactBilinearSketch& s, const float* x, float* u, float* z,
                              float* norm, int n, int c, int hw, float* scratch);
// dx is overwritten. scratch: compact_bilinear_scratch_floats(n, c, hw, d) floats.
void compact_bilinear_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                               const float* z, const float* norm, const float* du, float* dx, int n,
                               int c, int hw, float* scratch);

// One image's u from its z (d floats), returning the divisor; and its dz from du (the two
// forms' shared ends).
float compact_bilinear_normalise(const float* z, int d, float eps, float* u);
void compact_bilinear_sketch_grad(const float* u, const float* du, const float* z, float norm,
                                  int d, float eps, float* dz);

}  // namespace convpool::cpu
