// CPU kernel: compact bilinear pooling by FFT (kernels/compact_bilinear_fft_math.cuh), through
// FFTW. Same arguments and results as src/cpu/compact_bilinear.h's Gram form, up to rounding;
// the CUDA twin is kernels/compact_bilinear_fft.cuh, tested against this one.
#pragma once
#include <cstddef>

#include "kernels/compact_bilinear_fft_math.cuh"

namespace convpool::cpu {

// z: n x d, norm: n floats, written here and read by backward. scratch:
// compact_bilinear_fft_scratch_floats(n, d) floats, 16-byte aligned.
void compact_bilinear_fft_forward(const CompactBilinearSketch& s, const float* x, float* u,
                                  float* z, float* norm, int n, int c, int hw, float* scratch);
// dx is overwritten. scratch as forward's.
void compact_bilinear_fft_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                                   const float* z, const float* norm, const float* du, float* dx,
                                   int n, int c, int hw, float* scratch);

}  // namespace convpool::cpu
