// The kernel parity suite: every hand-written kernel of kernels/*.cu, through its host
// launcher (kernels/*.cuh), against the CPU backend on the same inputs. Written once for two
// targets: compiled into convpool_tests it runs on a real GPU (and skips without one); compiled
// into convpool_emu_tests (tests/cuda-emu) it runs on the emulated target in every CI run,
// under several thread schedules. Outputs are poisoned (NaN) before the kernels run, so an
// element a kernel fails to write fails the comparison. cuDNN and cuBLAS are not here: they
// are test_cuda_parity.cpp's, on a GPU only. docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include "kernel_parity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convpool/data.h"
#include "convpool/optim.h"
#include "cpu/loss.h"
#include "kernels/bias.cuh"
#include "kernels/input.cuh"
#include "kernels/loss.cuh"
#include "kernels/optim.cuh"
#include "kernels/optim_math.cuh"
#include "kernels/pad.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

// ---------------------------------------------------------------- bias, padding

// The explicit padding of "same" convolutions with an odd total pad (cuDNN pads only
// symmetrically): pad, then crop back, against plain loops; the extra row and column go to
// the bottom and right, as TensorFlow's rule and the CPU backend put them.
TEST(KernelParity, PadAndCropPlanesMatchLoops) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(13);
  const size_t planes = 6;
  const int H = 13, W = 11, top = 1, left = 0, HP = H + 3, WP = W + 1;
  const std::vector<float> x = make_input(planes * H * W, Fill::special, rng);
  std::vector<float> want(planes * HP * WP, 0.f);
  for (size_t p = 0; p < planes; ++p)
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) want[(p * HP + i + top) * WP + j + left] = x[(p * H + i) * W + j];
  Dev<float> dx_in(x), dxp(want.size()), dback(x.size());
  {
    GRID_CAP(3);
    cuda::pad_planes(dx_in.get(), dxp.get(), planes, H, W, top, left, HP, WP, nullptr);
    cuda::crop_planes(dxp.get(), dback.get(), planes, H, W, top, left, HP, WP, nullptr);
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  const auto got = dxp.download(), back = dback.download();
  for (size_t e = 0; e < want.size(); ++e)
    ASSERT_EQ(std::memcmp(&got[e], &want[e], 4), 0) << "xp[" << e << "]";
  for (size_t e = 0; e < x.size(); ++e)
    ASSERT_EQ(std::memcmp(&back[e], &x[e], 4), 0) << "cropped[" << e << "]";
}

TEST(KernelParity, BiasAddAndGradMatchCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(12);
  const int n = 3, c = 5, plane = 301;  // bias_grad: each thread sums several elements
  const size_t total = size_t(n) * c * plane;
  const std::vector<float> y0 = make_input(total, Fill::uniform, rng),
                           b = make_input(c, Fill::uniform, rng),
                           dy = make_input(total, Fill::uniform, rng);
  std::vector<float> y = y0, db(c, 0.f);
  std::vector<double> sums(c, 0.0);
  for (size_t i = 0; i < total; ++i) {
    y[i] += b[(i / plane) % c];
    sums[(i / plane) % c] += dy[i];
  }
  for (int ch = 0; ch < c; ++ch) db[ch] = float(sums[ch]);
  Dev<float> dy_dev(y0), db_in(b), ddy(dy), ddb(c);
  {
    GRID_CAP(2);
    cuda::bias_add(dy_dev.get(), db_in.get(), n, c, plane, nullptr);
  }
  cuda::bias_grad(ddy.get(), ddb.get(), n, c, plane, nullptr);
  CHECK_CUDA(cudaDeviceSynchronize());
  expect_match(dy_dev.download(), y, 0, "y");  // one float addition: exact
  expect_match(ddb.download(), db, 1e-5, "db");
}

// ---------------------------------------------------------------- loss

struct LossRun {
  std::vector<float> dz;
  double loss;
  unsigned long long correct, first_bad;
};
LossRun device_softmax_xent(int n, int classes, const std::vector<float>& z,
                            const std::vector<uint8_t>& labels, uint64_t step) {
  Dev<float> dz(z), dgrad(z.size());
  Dev<uint8_t> dlabels(labels);
  Dev<double> loss(std::vector<double>{0.0}), sample_loss(static_cast<size_t>(n));
  Dev<unsigned long long> correct(std::vector<unsigned long long>{0}),
      first_bad(std::vector<unsigned long long>{~0ull});
  cuda::StepScalars at{};
  at.step = step;
  Dev<cuda::StepScalars> scalars(std::vector<cuda::StepScalars>{at});
  cuda::softmax_xent(n, classes, dz.get(), dlabels.get(), dgrad.get(), 1.f / n, 0.f, loss.get(),
                     sample_loss.get(), correct.get(), nullptr, scalars.get(), first_bad.get());
  return {dgrad.download(), loss.download()[0], correct.download()[0], first_bad.download()[0]};
}

TEST(KernelParity, SoftmaxXentMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(13);
  const int n = 37, classes = 10;  // a partial last block; 10 classes: lanes 10..31 hold none
  std::vector<float> z(n * classes);
  for (auto& v : z) v = std::uniform_real_distribution<float>(-6.f, 6.f)(rng);
  // Exact ties of the maximum: the argmax is the first index, as on the CPU.
  for (int k = 0; k < classes; ++k) z[k] = float(k % 3);
  std::vector<uint8_t> labels(n);
  for (auto& l : labels) l = uint8_t(rng() % classes);
  labels[0] = 2;
  std::vector<float> dz(z.size());
  const auto s = cpu::softmax_xent(n, classes, z.data(), labels.data(), dz.data(), 1.f / n);
  const LossRun r = device_softmax_xent(n, classes, z, labels, 9);
  EXPECT_NEAR(r.loss, s.loss, 1e-9 * s.loss);
  EXPECT_EQ(r.correct, (unsigned long long)s.correct);
  EXPECT_EQ(r.first_bad, ~0ull) << "a finite loss flagged a step";
  expect_match(r.dz, dz, 1e-6, "dlogits");
}

TEST(KernelParity, SoftmaxXentFlagsANonFiniteLoss) {
  REQUIRE_DEVICE();
  const int n = 9, classes = 10;
  std::vector<float> z(n * classes, 0.5f);
  z[4 * classes + 3] = std::numeric_limits<float>::infinity();
  const std::vector<uint8_t> labels(n, 1);
  const LossRun r = device_softmax_xent(n, classes, z, labels, 42);
  EXPECT_EQ(r.first_bad, 42u);
}

// The batch's loss is summed in a fixed order, so every run gives
// the same bits. On the emulator each run takes another thread and block order (forward,
// reverse, random): the double atomicAdd it replaces summed in block order. On a GPU the runs
// repeat under the hardware's own scheduling.
TEST(KernelParity, SoftmaxXentLossSumIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(21);
  const int n = 700, classes = 10;  // 88 blocks of the loss kernel; 3 passes of the sum
  std::vector<float> z(size_t(n) * classes);
  for (int i = 0; i < n; ++i) {  // losses over several orders of magnitude: rounding shows
    const float scale = std::pow(10.f, std::uniform_real_distribution<float>(-3.f, 2.f)(rng));
    for (int k = 0; k < classes; ++k)
      z[size_t(i) * classes + k] = scale * std::uniform_real_distribution<float>(-1.f, 1.f)(rng);
  }
  std::vector<uint8_t> labels(n);
  for (auto& l : labels) l = uint8_t(rng() % classes);
  std::vector<double> sums;
  run_under_four_schedules(
      100, [&](int) { sums.push_back(device_softmax_xent(n, classes, z, labels, 1).loss); });
  for (size_t r = 1; r < sums.size(); ++r)
    EXPECT_EQ(std::memcmp(&sums[r], &sums[0], sizeof(double)), 0)
        << "run " << r << ": " << std::hexfloat << sums[r] << " vs " << sums[0];
}

// ---------------------------------------------------------------- input conversion

// kernels/input.cu (input_to_float_kernel) against the CPU's images_to_float, at CIFAR's side
// and at others (odd, larger).
TEST(KernelParity, InputConversionMatchesCpuBitForBit) {
  REQUIRE_DEVICE();
  for (const int side : {32, 7, 48}) {
    const Dataset ds = synthetic_cifar(12, 14, side);
    const size_t bytes = ds.image_bytes();
    const int n = 7;
    std::vector<uint32_t> order(n);
    for (int i = 0; i < n; ++i) order[i] = uint32_t((i * 5 + 3) % ds.size());
    std::vector<uint8_t> px(size_t(n) * bytes);
    for (int i = 0; i < n; ++i)
      std::memcpy(px.data() + size_t(i) * bytes, ds.image(order[i]), bytes);
    Dev<uint8_t> src(px);
    const uint64_t step = 123, seed = 99;
    Dev<uint64_t> dstep(std::vector<uint64_t>{step});
    InputTransform plain;
    plain.side = side;
    InputTransform aug = plain;
    aug.crop_pad = std::min(4, side / 2);
    aug.flip = true;
    aug.mean[0] = 0.49f, aug.mean[1] = 0.48f, aug.mean[2] = 0.45f;
    aug.std[0] = 0.25f, aug.std[1] = 0.24f, aug.std[2] = 0.26f;
    InputTransform reflect_cutout = aug;
    reflect_cutout.reflect = true;
    reflect_cutout.cutout = std::min(12, side);
    for (const InputTransform& t : {plain, aug, reflect_cutout})
      for (bool training : {false, true})
        for (uint32_t first : {0u, 5u}) {  // 5: a data-parallel rank's slice from position 5
          Dev<float> dst(px.size());
          cuda::input_to_float(src.get(), dst.get(), n, t, training, seed, dstep.get(), nullptr,
                               first);
          std::vector<float> want(px.size());
          images_to_float(ds, order.data(), n, want.data(), t, training, seed, step, first);
          const auto got = dst.download();
          for (size_t i = 0; i < px.size(); ++i)
            ASSERT_EQ(got[i], want[i])
                << i << " side " << side << " training " << training << " " << describe(t);
        }
  }
}

// Test-time views (eval --tta) through the conversion kernel: shifted with reflect padding and
// mirrored, as view_to_float does on the CPU.
TEST(KernelParity, TestTimeViewsMatchCpuBitForBit) {
  REQUIRE_DEVICE();
  const Dataset ds = synthetic_cifar(5, 31);
  const int n = 5;
  std::vector<uint32_t> order = {4, 0, 3, 1, 2};
  std::vector<uint8_t> px(size_t(n) * kCifarImageBytes);
  for (int i = 0; i < n; ++i)
    std::memcpy(px.data() + size_t(i) * kCifarImageBytes, ds.image(order[size_t(i)]),
                kCifarImageBytes);
  Dev<uint8_t> src(px);
  Dev<uint64_t> dstep(std::vector<uint64_t>{1});
  InputTransform t;
  t.mean[2] = 0.4f;
  t.std[0] = 0.3f;
  t.crop_pad = 4;  // a training augmentation, which evaluation must not apply
  for (const TtaView& view : tta_views("flip,translate")) {
    Dev<float> dst(px.size());
    cuda::input_to_float(src.get(), dst.get(), n, t, false, 3, dstep.get(), nullptr, 0, view);
    std::vector<float> want(px.size());
    view_to_float(ds, order.data(), n, want.data(), t, view);
    const auto got = dst.download();
    for (size_t i = 0; i < px.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << "view " << view.dy << "," << view.dx << " flip " << view.flip;
  }
}

// The device-resident path: the data set uploaded once, each batch gathered through the epoch
// order at a device cursor that advance_cursor moves, against the CPU's images_to_float over
// the same order, image for image and label for label, over a whole epoch of a few hundred
// images (full batches, a rank's slice, the partial last batch).
TEST(KernelParity, ResidentGatherMatchesCpuOverAnEpoch) {
  REQUIRE_DEVICE();
  const Dataset ds = synthetic_cifar(300, 21);
  const uint64_t seed = 5, epoch = 2;
  const std::vector<uint32_t> order = epoch_order(ds.size(), seed, epoch);
  Dev<uint8_t> images(ds.pixels), labels(ds.labels);
  Dev<uint32_t> dorder(order);
  Dev<uint64_t> cursor(std::vector<uint64_t>{0});
  InputTransform t;
  t.crop_pad = 4;
  t.reflect = true;
  t.flip = true;
  t.cutout = 8;
  t.mean[1] = 0.5f;
  t.std[2] = 0.3f;
  const int global_batch = 64;
  // Rank 1 of 2: the second half of each global batch, as the data-parallel trainer slices.
  for (const bool second_half : {false, true}) {
    cursor.upload({0});
    uint64_t step = 40;
    for (size_t pos = 0; pos < ds.size(); pos += global_batch, ++step) {
      const int n_global = int(std::min<size_t>(global_batch, ds.size() - pos));
      const int first = second_half ? n_global / 2 : 0;
      const int n = n_global - first;
      Dev<uint64_t> dstep(std::vector<uint64_t>{step});
      Dev<float> dst(size_t(n) * kCifarImageBytes);
      Dev<uint8_t> got_labels(static_cast<size_t>(n));
      cuda::gather_input_to_float(images.get(), labels.get(), dorder.get(), cursor.get(), dst.get(),
                                  got_labels.get(), n, t, true, seed, dstep.get(), nullptr,
                                  uint32_t(first));
      cuda::advance_cursor(cursor.get(), uint32_t(n_global), nullptr);
      std::vector<float> want(size_t(n) * kCifarImageBytes);
      images_to_float(ds, order.data() + pos + size_t(first), n, want.data(), t, true, seed, step,
                      uint32_t(first));
      const auto got = dst.download();
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(got[i], want[i]) << "batch at " << pos << " image " << i / kCifarImageBytes;
      const auto lab = got_labels.download();
      for (int i = 0; i < n; ++i)
        ASSERT_EQ(lab[size_t(i)], ds.labels[order[pos + size_t(first + i)]]) << pos << " " << i;
    }
    EXPECT_EQ(cursor.download()[0], ds.size());  // moved by every global batch
  }
}

// ---------------------------------------------------------------- optimizer

TEST(KernelParity, OptimizersMatchCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(15);
  const size_t n = 100003;  // not a multiple of any block size
  // Three groups with their own multipliers (a frozen group is lr 0), and a tail in no group
  // (frozen parameters and buffers), which neither side may touch.
  ParamGroups groups;
  groups.count = 3;
  const size_t ends[3] = {40000, 40008, 90001};
  const float lr_mult[3] = {1.f, 2.5f, 0.f}, wd_mult[3] = {1.f, 0.f, 3.f};
  for (int k = 0; k < 3; ++k) {
    groups.begin[k] = k ? ends[k - 1] : 0;
    groups.end[k] = ends[k];
    groups.lr_mult[k] = lr_mult[k];
    groups.wd_mult[k] = wd_mult[k];
  }
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd}) {
    OptimizerConfig c;
    c.kind = kind;
    c.momentum = 0.9f;
    c.weight_decay = 1e-4f;
    // A warm-up: each step's lr differs (AdamW's decay reads the scheduled lr on the device).
    c.schedule.kind = LrScheduleKind::cosine;
    c.schedule.warmup = 0.5f;
    resolve_schedule(c.schedule, 1, 5);
    std::vector<float> p = make_input(n, Fill::uniform, rng), g = make_input(n, Fill::uniform, rng);
    std::vector<float> s0(n), s1(n);
    for (auto& v : s0) v = std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng);
    for (auto& v : s1) v = std::uniform_real_distribution<float>(0.f, 0.1f)(rng);
    Dev<float> dp(p), dg(g), d0(s0), d1(s1);
    Dev<cuda::StepScalars> scalars(1);
    for (uint64_t step = 1; step <= 3; ++step) {
      optimizer_step(Device::cpu, c, step, groups, p.data(), g.data(), s0.data(), s1.data());
      GRID_CAP(5);  // 5 blocks of 256 threads: about 78 passes each
      cuda::set_step(scalars.get(), step - 1, nullptr);
      cuda::begin_step(scalars.get(), c, nullptr);
      cuda::optimizer_update(c, groups, scalars.get(), dp.get(), dg.get(), d0.get(), d1.get(),
                             nullptr);
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    const std::string name = optimizer_name(kind);
    const auto got = dp.download();
    expect_match(got, p, 1e-6, name + " params");
    expect_match(d0.download(), s0, 1e-6, name + " state");
    if (uses_adam_moments(c.kind)) expect_match(d1.download(), s1, 1e-6, name + " second moment");
    for (size_t i = ends[2]; i < n; ++i)
      ASSERT_EQ(std::memcmp(&got[i], &p[i], 4), 0) << name << ": element " << i << " in no group";
  }
}

// The CPU checks the gradients, not only the loss, before a step.
// On the device the optimizer kernels flag a non-finite gradient in the first-bad-step
// counter, keep that element's weight and state, and apply nothing once a step is flagged.
TEST(KernelParity, OptimizersFlagANonFiniteGradient) {
  REQUIRE_DEVICE();
  const size_t n = 3000, bad = 1234;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::adamw, OptimizerKind::sgd})
    for (float poison :
         {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
      OptimizerConfig c;
      c.kind = kind;
      c.momentum = 0.9f;
      std::vector<float> p(n, 0.5f), g(n, 0.25f), s(n, 0.f);
      g[bad] = poison;
      Dev<float> dp(p), dg(g), d0(s), d1(s);
      Dev<cuda::StepScalars> scalars(1);
      Dev<unsigned long long> first_bad(std::vector<unsigned long long>{~0ull});
      cuda::set_step(scalars.get(), 6, nullptr);
      cuda::begin_step(scalars.get(), c, nullptr);  // step 7
      cuda::optimizer_update(c, ParamGroups::whole(n), scalars.get(), dp.get(), dg.get(), d0.get(),
                             d1.get(), nullptr, first_bad.get());
      CHECK_CUDA(cudaDeviceSynchronize());
      EXPECT_EQ(first_bad.download()[0], 7u) << optimizer_name(kind) << " " << poison;
      const auto got_p = dp.download(), got_s = d0.download();
      EXPECT_EQ(got_p[bad], 0.5f) << optimizer_name(kind) << ": the bad element was updated";
      EXPECT_EQ(got_s[bad], 0.f) << optimizer_name(kind) << ": the bad element's state was updated";

      // A later step with finite gradients applies nothing: the run has already failed.
      Dev<float> fine(std::vector<float>(n, 0.25f));
      const auto before = dp.download();
      cuda::begin_step(scalars.get(), c, nullptr);
      cuda::optimizer_update(c, ParamGroups::whole(n), scalars.get(), dp.get(), fine.get(),
                             d0.get(), d1.get(), nullptr, first_bad.get());
      CHECK_CUDA(cudaDeviceSynchronize());
      EXPECT_EQ(dp.download(), before)
          << optimizer_name(kind) << ": a step after a flagged one was applied";
      EXPECT_EQ(first_bad.download()[0], 7u)
          << optimizer_name(kind) << ": the first bad step moved";
    }
}

TEST(KernelParity, OptimizersLeaveTheCounterAloneOnFiniteGradients) {
  REQUIRE_DEVICE();
  const size_t n = 777;
  for (OptimizerKind kind : {OptimizerKind::adam, OptimizerKind::sgd}) {
    OptimizerConfig c;
    c.kind = kind;
    std::vector<float> p(n, 0.5f), g(n, 0.25f), s(n, 0.f), want = p, w0 = s, w1 = s;
    Dev<float> dp(p), dg(g), d0(s), d1(s);
    Dev<cuda::StepScalars> scalars(1);
    Dev<unsigned long long> first_bad(std::vector<unsigned long long>{~0ull});
    cuda::set_step(scalars.get(), 0, nullptr);
    cuda::begin_step(scalars.get(), c, nullptr);
    cuda::optimizer_update(c, ParamGroups::whole(n), scalars.get(), dp.get(), dg.get(), d0.get(),
                           d1.get(), nullptr, first_bad.get());
    optimizer_step(Device::cpu, c, 1, ParamGroups::whole(n), want.data(), g.data(), w0.data(),
                   w1.data());
    CHECK_CUDA(cudaDeviceSynchronize());
    EXPECT_EQ(first_bad.download()[0], ~0ull) << optimizer_name(kind);
    expect_match(dp.download(), want, 1e-6, std::string(optimizer_name(kind)) + " params");
  }
}

}  // namespace
#endif
