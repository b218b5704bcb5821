// The input pipeline: pixel / 255, per-channel normalisation, and the training crop and flip
// drawn from Philox (the CUDA conversion kernel is checked against this in test_cuda_parity).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "kernels/input_math.cuh"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
Dataset random_images(int n, uint64_t seed, int side = kCifarSide) {
  std::mt19937_64 rng(seed);
  Dataset ds;
  ds.side = side;
  ds.pixels.resize(size_t(n) * ds.image_bytes());
  for (auto& p : ds.pixels) p = uint8_t(rng());
  ds.labels.assign(size_t(n), 0);
  return ds;
}

float pixel(const Dataset& ds, uint32_t image, int c, int y, int x) {
  return float(ds.image(image)[(c * ds.side + y) * ds.side + x]) / 255.f;
}
}  // namespace

TEST(Input, DefaultsArePixelOver255AndNormalisationIsPerChannel) {
  const uint64_t seed = fresh_seed();
  const Dataset ds = random_images(3, seed);
  const std::vector<uint32_t> order = {2, 0};
  std::vector<float> out(2 * kCifarImageBytes, std::nanf(""));
  images_to_float(ds, order.data(), 2, out.data());
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < kCifarImageBytes; ++k)
      ASSERT_FLOAT_EQ(out[size_t(i) * kCifarImageBytes + k], float(ds.image(order[i])[k]) / 255.f);
  InputTransform t;
  t.mean[0] = 0.4f, t.mean[1] = 0.5f, t.mean[2] = 0.6f;
  t.std[0] = 0.2f, t.std[1] = 0.25f, t.std[2] = 0.5f;
  std::fill(out.begin(), out.end(), std::nanf(""));
  images_to_float(ds, order.data(), 2, out.data(), t, /*training=*/true, seed, 7);  // no aug
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 32; y += 5)
      for (int x = 0; x < 32; x += 3)
        ASSERT_NEAR(out[kCifarImageBytes + (c * 32 + y) * 32 + x],
                    (pixel(ds, 0, c, y, x) - t.mean[c]) / t.std[c], 1e-5);
}

TEST(Input, FlipMirrorsAndCropShiftsWithZeroPadding) {
  const uint64_t seed = fresh_seed();
  const Dataset ds = random_images(1, seed);
  for (int trial = 0; trial < 40; ++trial) {
    const uint64_t step = 1 + trial;
    const AugmentDraw d = augment_draw(seed, step, 0, 3, true, false, 0, 32);
    ASSERT_GE(d.dy, -3);
    ASSERT_LE(d.dy, 3);
    ASSERT_GE(d.dx, -3);
    ASSERT_LE(d.dx, 3);
    InputTransform t;
    t.crop_pad = 3;
    t.flip = true;
    std::vector<float> out(kCifarImageBytes, std::nanf(""));
    const uint32_t idx = 0;
    images_to_float(ds, &idx, 1, out.data(), t, true, seed, step);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const int sx = (d.flip ? 31 - x : x) + d.dx, sy = y + d.dy;
          const bool inside = sx >= 0 && sx < 32 && sy >= 0 && sy < 32;
          ASSERT_FLOAT_EQ(out[(c * 32 + y) * 32 + x], inside ? pixel(ds, 0, c, sy, sx) : 0.f)
              << "step " << step << " c" << c << " y" << y << " x" << x;
        }
  }
}

// Reflect padding and cutout against a reference written from their definitions, at CIFAR's
// side and others (odd, and larger): the crop reads the image mirrored about its edge pixels
// (torch's "reflect": -1 -> 1, side -> side - 2), and cutout zeroes the normalised values of a
// square clipped at the image's borders.
TEST(Input, ReflectPaddingMirrorsAndCutoutZeroesASquareAtAnySide) {
  const uint64_t seed = fresh_seed();
  for (const int side : {32, 7, 48}) {
    SCOPED_TRACE("side " + std::to_string(side));
    const Dataset ds = random_images(1, seed, side);
    const auto mirror = [side](int i) { return i < 0 ? -i : i > side - 1 ? 2 * side - 2 - i : i; };
    int cut_pixels = 0, edge_cuts = 0;
    for (int trial = 0; trial < 60; ++trial) {
      const uint64_t step = 1 + trial;
      InputTransform t;
      t.side = side;
      // Up to side / 2, where the mirror reaches the far edge's pixel.
      t.crop_pad = std::min(side / 2, 1 + trial % 17);
      t.reflect = true;
      t.flip = true;
      t.cutout = 1 + trial % std::min(side, 20);
      t.mean[2] = 0.25f;
      const AugmentDraw d = augment_draw(seed, step, 0, t.crop_pad, true, true, t.cutout, t.side);
      // The cutout's draws do not move the crop's or the flip's.
      const AugmentDraw plain = augment_draw(seed, step, 0, t.crop_pad, true, false, 0, t.side);
      ASSERT_EQ(d.dy, plain.dy);
      ASSERT_EQ(d.dx, plain.dx);
      ASSERT_EQ(d.flip, plain.flip);
      std::vector<float> out(ds.image_bytes(), std::nanf(""));
      const uint32_t idx = 0;
      images_to_float(ds, &idx, 1, out.data(), t, true, seed, step);
      const int half = t.cutout / 2;
      const int cy = d.cut_y0 + half, cx = d.cut_x0 + half;  // the drawn centre
      ASSERT_TRUE(cy >= 0 && cy < side && cx >= 0 && cx < side) << cy << " " << cx;
      edge_cuts += (d.cut_y0 < 0 || d.cut_x0 < 0 || d.cut_y0 + t.cutout > side ||
                    d.cut_x0 + t.cutout > side);
      for (int c = 0; c < 3; ++c)
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x) {
            const bool cut = y >= cy - half && y < cy - half + t.cutout && x >= cx - half &&
                             x < cx - half + t.cutout;
            const int sy = mirror(y + d.dy), sx = mirror((d.flip ? side - 1 - x : x) + d.dx);
            const float want = cut ? 0.f : (pixel(ds, 0, c, sy, sx) - t.mean[c]) / t.std[c];
            ASSERT_NEAR(out[(c * side + y) * side + x], want, 1e-6)
                << "step " << step << " c" << c << " y" << y << " x" << x;
            cut_pixels += cut;
          }
    }
    EXPECT_GT(cut_pixels, 0);
    EXPECT_GT(edge_cuts, 0);  // clipped squares were exercised
  }
  // A transform set for another side than the images' is refused, not read out of bounds.
  const Dataset small = random_images(1, seed, 7);
  std::vector<float> out(small.image_bytes() * 16);
  const uint32_t idx = 0;
  EXPECT_NE(error_of([&] {
              images_to_float(small, &idx, 1, out.data(), InputTransform{});
            }).find("are 7x7 but the input pipeline is set for 32x32"),
            std::string::npos);
}

TEST(Input, DrawsCoverEveryOffsetAndFlipHalfTheTime) {
  const uint64_t seed = fresh_seed();
  std::set<int> dys, dxs;
  int flips = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = augment_draw(seed, 1 + i / 32, uint32_t(i % 32), 4, true, false, 0, 32);
    dys.insert(d.dy);
    dxs.insert(d.dx);
    flips += d.flip;
  }
  EXPECT_EQ(dys.size(), 9u);
  EXPECT_EQ(dxs.size(), 9u);
  EXPECT_NEAR(double(flips) / n, 0.5, 0.04);  // 5 standard errors
  // Evaluation never augments; the same (seed, step, image) always draws the same.
  const AugmentDraw a = augment_draw(seed, 5, 3, 4, true, false, 0, 32),
                    b = augment_draw(seed, 5, 3, 4, true, false, 0, 32);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.dy, b.dy);
  EXPECT_EQ(a.flip, b.flip);
  const AugmentDraw none = augment_draw(seed, 5, 3, 0, false, false, 0, 32);
  EXPECT_EQ(none.dx | none.dy | int(none.flip), 0);
}

TEST(Input, BadTransformsAreRejected) {
  InputTransform t;
  t.crop_pad = 17;
  EXPECT_NE(error_of([&] { validate(t); }).find("--crop-pad"), std::string::npos);
  t = {};
  t.std[1] = 0.f;
  EXPECT_NE(error_of([&] { validate(t); }).find("--std"), std::string::npos);
  t = {};
  EXPECT_EQ(error_of([&] { validate(t); }), "");
  EXPECT_EQ(describe(t), "none");
  t.flip = true;
  EXPECT_EQ(describe(t), "flip");
  t.crop_pad = 2;
  t.reflect = true;
  t.cutout = 8;
  EXPECT_EQ(describe(t), "crop_pad=2 reflect flip cutout=8");
  t.cutout = 33;
  EXPECT_NE(error_of([&] { validate(t); }).find("--cutout"), std::string::npos);
  t.cutout = -1;
  EXPECT_NE(error_of([&] { validate(t); }).find("--cutout"), std::string::npos);
  // The bounds follow the image side.
  t = {};
  t.side = 64;
  t.crop_pad = 32;
  t.cutout = 64;
  EXPECT_EQ(error_of([&] { validate(t); }), "");
  t.crop_pad = 33;
  EXPECT_NE(error_of([&] { validate(t); }).find("between 0 and 32 for 64x64"), std::string::npos);
  t = {};
  t.side = 0;
  EXPECT_NE(error_of([&] { validate(t); }).find("image side"), std::string::npos);
}
