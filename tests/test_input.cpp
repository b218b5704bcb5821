// The input pipeline: pixel / 255, per-channel normalisation, and the training crop and flip
// drawn from Philox (the CUDA conversion kernel is checked against this in test_cuda_parity).
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "kernels/input_math.cuh"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "layer_harness.h"
#include "test_helpers.h"

using namespace convpool;
using namespace convpool::test;

namespace {
Dataset random_images(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Dataset ds;
  ds.pixels.resize(size_t(n) * kCifarImageBytes);
  for (auto& p : ds.pixels) p = uint8_t(rng());
  ds.labels.assign(size_t(n), 0);
  return ds;
}

float pixel(const Dataset& ds, uint32_t image, int c, int y, int x) {
  return float(ds.image(image)[(c * 32 + y) * 32 + x]) / 255.f;
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
    const AugmentDraw d = augment_draw(seed, step, 0, 3, true);
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

// Reflect padding and cutout against a reference written from their definitions: the crop
// reads the image mirrored about its edge pixels (torch's "reflect": -1 -> 1, 32 -> 30), and
// cutout zeroes the normalised values of a square clipped at the image's borders.
TEST(Input, ReflectPaddingMirrorsAndCutoutZeroesASquare) {
  const uint64_t seed = fresh_seed();
  const Dataset ds = random_images(1, seed);
  const auto mirror = [](int i) { return i < 0 ? -i : i > 31 ? 62 - i : i; };
  int cut_pixels = 0, edge_cuts = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const uint64_t step = 1 + trial;
    InputTransform t;
    t.crop_pad = 4 + trial % 13;  // up to 16, where the mirror reaches the far edge's pixel 15
    t.reflect = true;
    t.flip = true;
    t.cutout = 1 + trial % 20;
    t.mean[2] = 0.25f;
    const AugmentDraw d = augment_draw(seed, step, 0, t.crop_pad, true, true, t.cutout);
    // The cutout's draws do not move the crop's or the flip's.
    const AugmentDraw plain = augment_draw(seed, step, 0, t.crop_pad, true);
    ASSERT_EQ(d.dy, plain.dy);
    ASSERT_EQ(d.dx, plain.dx);
    ASSERT_EQ(d.flip, plain.flip);
    std::vector<float> out(kCifarImageBytes, std::nanf(""));
    const uint32_t idx = 0;
    images_to_float(ds, &idx, 1, out.data(), t, true, seed, step);
    const int half = t.cutout / 2;
    const int cy = d.cut_y0 + half, cx = d.cut_x0 + half;  // the drawn centre
    ASSERT_TRUE(cy >= 0 && cy < 32 && cx >= 0 && cx < 32) << cy << " " << cx;
    edge_cuts += (d.cut_y0 < 0 || d.cut_x0 < 0 || d.cut_y0 + t.cutout > 32 ||
                  d.cut_x0 + t.cutout > 32);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 32; ++y)
        for (int x = 0; x < 32; ++x) {
          const bool cut = y >= cy - half && y < cy - half + t.cutout && x >= cx - half &&
                           x < cx - half + t.cutout;
          const int sy = mirror(y + d.dy), sx = mirror((d.flip ? 31 - x : x) + d.dx);
          const float want = cut ? 0.f : (pixel(ds, 0, c, sy, sx) - t.mean[c]) / t.std[c];
          ASSERT_NEAR(out[(c * 32 + y) * 32 + x], want, 1e-6)
              << "step " << step << " c" << c << " y" << y << " x" << x;
          cut_pixels += cut;
        }
  }
  EXPECT_GT(cut_pixels, 0);
  EXPECT_GT(edge_cuts, 0);  // clipped squares were exercised
}

TEST(Input, DrawsCoverEveryOffsetAndFlipHalfTheTime) {
  const uint64_t seed = fresh_seed();
  std::set<int> dys, dxs;
  int flips = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = augment_draw(seed, 1 + i / 32, uint32_t(i % 32), 4, true);
    dys.insert(d.dy);
    dxs.insert(d.dx);
    flips += d.flip;
  }
  EXPECT_EQ(dys.size(), 9u);
  EXPECT_EQ(dxs.size(), 9u);
  EXPECT_NEAR(double(flips) / n, 0.5, 0.04);  // 5 standard errors
  // Evaluation never augments; the same (seed, step, image) always draws the same.
  const AugmentDraw a = augment_draw(seed, 5, 3, 4, true), b = augment_draw(seed, 5, 3, 4, true);
  EXPECT_EQ(a.dx, b.dx);
  EXPECT_EQ(a.dy, b.dy);
  EXPECT_EQ(a.flip, b.flip);
  const AugmentDraw none = augment_draw(seed, 5, 3, 0, false);
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
}
