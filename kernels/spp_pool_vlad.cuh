// CUDA launchers: NetVLAD over spp_pool's pyramid (kernels/spp_pool_vlad.cu). Same arguments
// and meaning as the CPU twin in src/cpu/spp_pool_vlad.h, plus a stream; pointers are device
// memory; scratch holds spp_pool_vlad_scratch_floats. Tested against the CPU in
// tests/kernel_parity_spp_pool.cpp (emulated in CI).
#pragma once
#include <cstddef>

#include "spp_pool_vlad_math.cuh"

namespace convpool::cuda {

void spp_pool_vlad_forward(const SppLevels& s, const float* wt, const float* bias, const float* mu,
                           int k, const float* x, float* y, float* state, int n, int c, int h,
                           int w, void* stream);
void spp_pool_vlad_backward(const SppLevels& s, const float* wt, const float* mu, int k,
                            const float* x, const float* state, const float* dy, float* dx,
                            float* dwt, float* dbias, float* dmu, int n, int c, int h, int w,
                            float* scratch, void* stream);

}  // namespace convpool::cuda
