// The input pipeline's per-pixel formula, shared by the CPU backend and the CUDA conversion
// kernel: optional random crop (of the zero-padded image) and horizontal flip, then per-channel
// normalisation. The draws come from Philox keyed by the seed and counted by (step, image in
// batch), so both backends augment the same image the same way.
#pragma once
#include <cstdint>

#include "convpool/data.h"
#include "hd.cuh"
#include "philox.cuh"

namespace convpool {

// One image's draw: its crop offset (in [-pad, pad]) and whether it is mirrored.
struct AugmentDraw {
  int dy = 0, dx = 0;
  bool flip = false;
};

CP_HD AugmentDraw augment_draw(uint64_t seed, uint64_t step, uint32_t image, int crop_pad,
                               bool flip) {
  AugmentDraw d;
  if (crop_pad <= 0 && !flip) return d;
  const Philox4 r =
      philox4x32_10(Philox4{{kRngAugment, uint32_t(step), uint32_t(step >> 32), image}}, seed);
  if (crop_pad > 0) {
    const uint32_t span = 2u * uint32_t(crop_pad) + 1u;
    d.dy = int(r.v[0] % span) - crop_pad;
    d.dx = int(r.v[1] % span) - crop_pad;
  }
  d.flip = flip && (r.v[2] & 1u);
  return d;
}

// Output pixel (c, y, x) of one image. `inv_std` is 1/std computed once on the host, so both
// backends multiply by the same float. The product is rounded before the subtraction on the
// GPU too (no fused multiply-add), so CPU and CUDA agree bit for bit.
CP_HD float input_pixel(const uint8_t* image, int c, int y, int x, AugmentDraw d, float mean,
                        float inv_std) {
  const int sx0 = d.flip ? kCifarSide - 1 - x : x;
  const int sy = y + d.dy, sx = sx0 + d.dx;
  float v = 0.f;  // the zero padding is black, before normalisation (as torchvision pads)
  if (sy >= 0 && sy < kCifarSide && sx >= 0 && sx < kCifarSide) {
#if defined(__CUDA_ARCH__)
    v = __fmul_rn(float(image[(c * kCifarSide + sy) * kCifarSide + sx]), 1.f / 255.f);
#else
    v = float(image[(c * kCifarSide + sy) * kCifarSide + sx]) * (1.f / 255.f);
#endif
  }
#if defined(__CUDA_ARCH__)
  return __fmul_rn(__fsub_rn(v, mean), inv_std);
#else
  return (v - mean) * inv_std;
#endif
}

}  // namespace convpool
