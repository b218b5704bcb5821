// CPU kernel: NetVLAD over spp_pool's pyramid (kernels/spp_pool_vlad_math.cuh). x is
// N x C x H x W, y is N x (K C cells); wt is K x C, bias K, mu K x C; state holds
// vlad_image_state_floats per image. The CUDA twin is kernels/spp_pool_vlad.cuh, tested
// against this one.
#pragma once
#include <cstddef>
#include <vector>

#include "kernels/spp_pool_vlad_math.cuh"

namespace convpool::cpu {

void spp_pool_vlad_forward(const SppLevels& s, const float* wt, const float* bias, const float* mu,
                           int k, const float* x, float* y, float* state, int n, int c, int h,
                           int w);
// Scratch floats of the backward: every image's dV and logit gradients.
size_t spp_pool_vlad_scratch_floats(const SppLevels& s, int n, int k, int c, int p);
// dx (may be null) and the parameter gradients are overwritten; each sums the images in
// order, whatever the thread count.
void spp_pool_vlad_backward(const SppLevels& s, const float* wt, const float* mu, int k,
                            const float* x, const float* state, const float* dy, float* dx,
                            float* dwt, float* dbias, float* dmu, int n, int c, int h, int w,
                            float* scratch);

// NetVLAD's initialisation from data: k centres by Lloyd's k-means (10 rounds, from samples
// spread evenly over the descriptors) on the C-channel descriptors of every position of the
// n images, then w_k = 2 alpha mu_k and b_k = -alpha ||mu_k||^2, with alpha such that the
// nearest centre takes about 100 times the next one's weight. Writes wt, bias and mu.
void spp_pool_vlad_init(const float* x, int n, int c, int p, int k, float* wt, float* bias,
                        float* mu);

}  // namespace convpool::cpu
