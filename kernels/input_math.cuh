// The input pipeline's per-pixel formula, shared by the CPU backend and the CUDA conversion
// kernel: optional random crop (of the zero- or reflect-padded image), horizontal flip and
// cutout, then per-channel normalisation. The draws come from Philox keyed by the seed and
// counted by (step, image in batch), so both backends augment the same image the same way.
#pragma once
#include <cstdint>

#include "convpool/data.h"
#include "hd.cuh"
#include "philox.cuh"

namespace convpool {

// One image's draw and how to apply it: its crop offset (in [-pad, pad]), whether the crop
// reads a zero- or a reflect-padded image, whether it is mirrored, and its cutout square
// (rows cut_y0.., columns cut_x0.., `cut_size` wide; 0: none), in output coordinates.
struct AugmentDraw {
  int dy = 0, dx = 0;
  bool flip = false;
  bool reflect = false;
  int cut_y0 = 0, cut_x0 = 0, cut_size = 0;
};

// The draws of image `image` of step `step`: one Philox call, its four words split between the
// crop offsets (v0, v1), the flip (v2) and the cutout centre (v3, uniform over a side x side
// image), so that turning one augmentation on leaves the others' draws unchanged.
CP_HD AugmentDraw augment_draw(uint64_t seed, uint64_t step, uint32_t image, int crop_pad,
                               bool flip, bool reflect, int cutout, int side) {
  AugmentDraw d;
  d.reflect = reflect;
  if (crop_pad <= 0 && !flip && cutout <= 0) return d;
  const Philox4 r =
      philox4x32_10(Philox4{{kRngAugment, uint32_t(step), uint32_t(step >> 32), image}}, seed);
  if (crop_pad > 0) {
    const uint32_t span = 2u * uint32_t(crop_pad) + 1u;
    d.dy = int(r.v[0] % span) - crop_pad;
    d.dx = int(r.v[1] % span) - crop_pad;
  }
  d.flip = flip && (r.v[2] & 1u);
  if (cutout > 0) {
    // DeVries & Taylor (2017): the centre is uniform over the image, the square is clipped at
    // its borders (so a cutout near an edge removes less).
    const int cy = int((r.v[3] & 0xFFFFu) % uint32_t(side));
    const int cx = int((r.v[3] >> 16) % uint32_t(side));
    d.cut_y0 = cy - cutout / 2;
    d.cut_x0 = cx - cutout / 2;
    d.cut_size = cutout;
  }
  return d;
}

// The fixed draw of a test-time view (TtaView): a shift with reflect padding (airbench's
// translate) and an optional mirror, the same for every image.
CP_HD AugmentDraw view_draw(int dy, int dx, bool flip) {
  AugmentDraw d;
  d.dy = dy;
  d.dx = dx;
  d.flip = flip;
  d.reflect = true;
  return d;
}

// Source row/column `i` of a crop that reaches `i` outside a side-pixel image: 0 means zero
// padding (returns -1), reflect mirrors about the edge pixel without repeating it (-1 -> 1,
// 32 -> 30 at side 32, as torch's "reflect" pad). |i| stays below 2 * side since
// crop_pad <= side / 2.
CP_HD int padded_source(int i, bool reflect, int side) {
  if (i >= 0 && i < side) return i;
  if (!reflect) return -1;
  return i < 0 ? -i : 2 * (side - 1) - i;
}

// Output pixel (c, y, x) of one 3 x side x side image. `inv_std` is 1/std computed once on the
// host, so both backends multiply by the same float. The product is rounded before the
// subtraction on the GPU too (no fused multiply-add), so CPU and CUDA agree bit for bit.
CP_HD float input_pixel(const uint8_t* image, int side, int c, int y, int x, AugmentDraw d,
                        float mean, float inv_std) {
  // Cutout zeroes the normalised value (the mean colour), as masks applied to the normalised
  // tensor do in the reference implementations.
  if (d.cut_size > 0 && y >= d.cut_y0 && y < d.cut_y0 + d.cut_size && x >= d.cut_x0 &&
      x < d.cut_x0 + d.cut_size)
    return 0.f;
  const int sx0 = d.flip ? side - 1 - x : x;
  const int sy = padded_source(y + d.dy, d.reflect, side),
            sx = padded_source(sx0 + d.dx, d.reflect, side);
  float v = 0.f;  // the zero padding is black, before normalisation (as torchvision pads)
  if (sy >= 0 && sx >= 0) {
#if defined(__CUDA_ARCH__)
    v = __fmul_rn(float(image[(size_t(c) * side + sy) * side + sx]), 1.f / 255.f);
#else
    v = float(image[(size_t(c) * side + sy) * side + sx]) * (1.f / 255.f);
#endif
  }
#if defined(__CUDA_ARCH__)
  return __fmul_rn(__fsub_rn(v, mean), inv_std);
#else
  return (v - mean) * inv_std;
#endif
}

}  // namespace convpool
