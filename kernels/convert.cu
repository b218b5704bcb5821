// uint8 batch -> normalised (and, in training, augmented) float on the GPU: the host ships
// bytes, a quarter of the floats. The per-pixel formula is the CPU's (kernels/input_math.cuh).
#include "../src/cuda/check.h"
#include "../src/cuda/ops.h"
#include "input_math.cuh"

namespace convpool::cuda {

namespace {
struct InputParams {
  int crop_pad;
  bool flip;
  float mean[kCifarChannels], inv_std[kCifarChannels];
};

// One block per image: its draw is made once, then the block writes the 3072 outputs in order
// (coalesced stores; the crop/flip gather reads stay within the image's 3 KB).
__global__ void input_to_float_kernel(const uint8_t* __restrict__ src, float* __restrict__ dst,
                                      InputParams p, bool augment, uint64_t seed,
                                      const uint64_t* __restrict__ step, uint32_t first) {
  const int image = blockIdx.x;
  __shared__ int shared_draw[3];  // dy, dx, flip: plain ints (no constructor in shared memory)
  if (threadIdx.x == 0) {
    const AugmentDraw d =
        augment ? augment_draw(seed, *step, first + uint32_t(image), p.crop_pad, p.flip) : AugmentDraw{};
    shared_draw[0] = d.dy;
    shared_draw[1] = d.dx;
    shared_draw[2] = d.flip;
  }
  __syncthreads();
  AugmentDraw draw;
  draw.dy = shared_draw[0];
  draw.dx = shared_draw[1];
  draw.flip = shared_draw[2] != 0;
  const uint8_t* img = src + size_t(image) * kCifarImageBytes;
  float* out = dst + size_t(image) * kCifarImageBytes;
  for (int i = threadIdx.x; i < kCifarImageBytes; i += blockDim.x) {
    const int c = i / (kCifarSide * kCifarSide), y = (i / kCifarSide) % kCifarSide,
              x = i % kCifarSide;
    out[i] = input_pixel(img, c, y, x, draw, p.mean[c], p.inv_std[c]);
  }
}
}  // namespace

void input_to_float(const uint8_t* src, float* dst, int n, const InputTransform& t, bool training,
                    uint64_t seed, const uint64_t* step, void* stream, uint32_t first_index) {
  if (n <= 0) return;
  InputParams p{t.crop_pad, t.flip, {}, {}};
  for (int c = 0; c < kCifarChannels; ++c) {
    p.mean[c] = t.mean[c];
    p.inv_std[c] = 1.f / t.std[c];  // the same float the CPU path multiplies by
  }
  input_to_float_kernel<<<unsigned(n), 256, 0, as_stream(stream)>>>(
      src, dst, p, training && t.augments(), seed, step, first_index);
  CP_CUDA_CHECK_LAUNCH("input_to_float_kernel");
}

}  // namespace convpool::cuda
