// CUDA launchers: compact bilinear pooling by FFT (kernels/compact_bilinear_fft.cu), through
// cuFFT. Same arguments and meaning as the CPU twin in src/cpu/compact_bilinear_fft.h, plus
// the plans and a stream; pointers are device memory. Tested against the CPU in
// tests/kernel_parity_compact_bilinear.cpp (emulated in CI, cuFFT's stand-in running FFTW).
#pragma once
#include <memory>

#include "compact_bilinear_fft_math.cuh"

namespace convpool::cuda {

// One layer's cuFFT plans: batched real transforms of d points over `chunk` images' positions
// and images, and over one image's (a short last chunk). Made with their work areas where the
// layer is prepared, never inside a step: stream capture forbids the allocation.
class CompactBilinearFftPlans {
 public:
  CompactBilinearFftPlans(int d, int hw, int chunk);
  ~CompactBilinearFftPlans();
  CompactBilinearFftPlans(const CompactBilinearFftPlans&) = delete;
  CompactBilinearFftPlans& operator=(const CompactBilinearFftPlans&) = delete;
  int chunk() const { return chunk_; }
  struct Handles;
  const Handles& handles(bool whole_chunk) const { return *handles_[whole_chunk ? 0 : 1]; }

 private:
  int chunk_;
  std::unique_ptr<Handles> handles_[2];
};

// z: n x d, norm: n floats, written here and read by backward. scratch:
// compact_bilinear_fft_device_scratch_floats(n, hw, d, plans.chunk()) floats.
void compact_bilinear_fft_forward(const CompactBilinearFftPlans& plans,
                                  const CompactBilinearSketch& s, const float* x, float* u,
                                  float* z, float* norm, int n, int c, int hw, float* scratch,
                                  void* stream);
// dx is overwritten. scratch as forward's.
void compact_bilinear_fft_backward(const CompactBilinearFftPlans& plans,
                                   const CompactBilinearSketch& s, const float* x, const float* u,
                                   const float* z, const float* norm, const float* du, float* dx,
                                   int n, int c, int hw, float* scratch, void* stream);

}  // namespace convpool::cuda
