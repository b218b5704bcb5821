// CUDA launchers: compact bilinear pooling (kernels/compact_bilinear.cu). Same arguments and
// meaning as the CPU twin in src/cpu/compact_bilinear.h, plus a stream; pointers are device
// memory. Tested against the CPU in tests/kernel_parity_compact_bilinear.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "compact_bilinear_math.cuh"

namespace convpool::cuda {

// z: n x d, norm: n floats, written here and read by backward. scratch:
// compact_bilinear_scratch_floats(n, c, hw, d) floats.
void compact_bilinear_forward(const CompactBilinearSketch& s, const float* x, float* u, float* z,
                              float* norm, int n, int c, int hw, float* scratch, void* stream);
// dx is overwritten. scratch: compact_bilinear_scratch_floats(n, c, hw, d) floats.
void compact_bilinear_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                               const float* z, const float* norm, const float* du, float* dx, int n,
                               int c, int hw, float* scratch, void* stream);

// The two forms' shared ends. u and norm from z (n x d); and each image's dz (at img * stride)
// with u . du after it (at img * stride + d).
void compact_bilinear_normalise(const float* z, float* norm, float* u, int n, int d, float eps,
                                void* stream);
void compact_bilinear_sketch_grad(const float* u, const float* du, const float* z,
                                  const float* norm, float* dz, size_t stride, int n, int d,
                                  float eps, void* stream);

}  // namespace convpool::cuda
