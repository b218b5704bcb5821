// CUDA launchers around CUB's segmented sort for the library baseline of Avg-TopK.
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include "pool_math.cuh"

namespace convpool::cuda {

// kernels/pool_avgtopk_baseline.cu: the parts of the library baseline of Avg-TopK around CUB's
// segmented sort (src/cuda/pool_baselines.h). gather_windows copies each unpadded window of
// the n images into its own segment of KH*KW floats; mean_of_leading writes the mean of each
// sorted segment's first k values.
void gather_windows(const PoolGeom& g, int n, const float* x, float* segments, void* stream);
void mean_of_leading(long long outputs, int window, int k, const float* sorted, float* y,
                     void* stream);

}  // namespace convpool::cuda
