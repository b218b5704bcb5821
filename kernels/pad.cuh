// CUDA launchers of zero padding and its adjoint crop (kernels/pad.cu).
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once
#include <cstddef>

namespace convpool::cuda {

// kernels/pad.cu: xp (planes x HP x WP) = x (planes x H x W) placed at (top, left) in zeros;
// crop_planes is its adjoint, dx = the (top, left) H x W window of dxp (overwritten).
void pad_planes(const float* x, float* xp, size_t planes, int H, int W, int top, int left, int HP,
                int WP, void* stream);
void crop_planes(const float* dxp, float* dx, size_t planes, int H, int W, int top, int left,
                 int HP, int WP, void* stream);

}  // namespace convpool::cuda
