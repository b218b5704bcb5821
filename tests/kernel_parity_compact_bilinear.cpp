// Kernel parity of compact_bilinear: kernels/compact_bilinear.cu against its CPU twin
// (src/cpu/compact_bilinear.cpp) on the same inputs: the output, the sketch, each image's
// divisor and the input gradient bit for bit on the emulated target (within rounding on a GPU,
// whose compiler contracts products into FMAs), for d from 4 (below the CPU's eight lanes) to
// 8192, C from 1 to d, one position to 300, enough images for the CPU's threads, on uniform
// values, exact ties, all-zero maps and an image with +inf and one with NaN beside finite
// ones; outputs poisoned (NaN) before the kernels run, and the same bits under every schedule
// of the emulated target. The FFT form the same way (kernels/compact_bilinear_fft.cu against
// src/cpu/compact_bilinear_fft.cpp): on the emulated target cuFFT's stand-in runs FFTW's
// plans, so the kernels around the transforms must give the CPU's bits; chunks of images
// whole and short (within rounding on a GPU, whose cuFFT rounds otherwise).
// Written once for the real GPU (convpool_tests, skipped without a device) and the emulated
// target (convpool_emu_tests); docs/emulation.md.
#if defined(CONVPOOL_HAVE_CUDA) || defined(CONVPOOL_EMULATED_CUDA)
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/compact_bilinear.h"
#include "cpu/compact_bilinear_fft.h"
#include "kernel_parity_elementwise.h"
#include "kernels/compact_bilinear.cuh"
#include "kernels/compact_bilinear_fft.cuh"

using namespace convpool;
using namespace convpool::kernel_test;

namespace {

struct BilinearCase {
  int n, c, hw, d;
  std::string str() const {
    return "compact_bilinear d=" + std::to_string(d) + " on " + std::to_string(c) + "x" +
           std::to_string(hw) + " x" + std::to_string(n);
  }
};

struct BilinearRun {
  std::vector<float> u, z, norm, dx;
};

// The FFT form through cuFFT, `chunk` images a batch.
BilinearRun run_device_fft(const CompactBilinearSketch& s, const BilinearCase& k, int chunk,
                           const std::vector<float>& x, const std::vector<float>& du) {
  const size_t outs = size_t(k.n) * k.d;
  const cuda::CompactBilinearFftPlans plans(k.d, k.hw, chunk);
  Dev<float> dxin(x), ddu(du), du_out(outs), dz(outs), dnorm(size_t(k.n)), ddx(x.size()),
      scratch(compact_bilinear_fft_device_scratch_floats(k.n, k.hw, k.d, chunk));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::compact_bilinear_fft_forward(plans, s, dxin.get(), du_out.get(), dz.get(), dnorm.get(),
                                       k.n, k.c, k.hw, scratch.get(), nullptr);
    cuda::compact_bilinear_fft_backward(plans, s, dxin.get(), du_out.get(), dz.get(), dnorm.get(),
                                        ddu.get(), ddx.get(), k.n, k.c, k.hw, scratch.get(),
                                        nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "compact_bilinear_fft kernels";
  return {du_out.download(), dz.download(), dnorm.download(), ddx.download()};
}

BilinearRun run_cpu_fft(const CompactBilinearSketch& s, const BilinearCase& k,
                        const std::vector<float>& x, const std::vector<float>& du) {
  const size_t outs = size_t(k.n) * k.d;
  BilinearRun r{std::vector<float>(outs, std::nanf("")), std::vector<float>(outs, std::nanf("")),
                std::vector<float>(size_t(k.n), std::nanf("")),
                std::vector<float>(x.size(), std::nanf(""))};
  std::vector<float> scratch(compact_bilinear_fft_scratch_floats(k.n, k.d), std::nanf(""));
  cpu::compact_bilinear_fft_forward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), k.n, k.c,
                                    k.hw, scratch.data());
  cpu::compact_bilinear_fft_backward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), du.data(),
                                     r.dx.data(), k.n, k.c, k.hw, scratch.data());
  return r;
}

BilinearRun run_device(const CompactBilinearSketch& s, const BilinearCase& k,
                       const std::vector<float>& x, const std::vector<float>& du) {
  const size_t outs = size_t(k.n) * k.d;
  Dev<float> dxin(x), ddu(du), du_out(outs), dz(outs), dnorm(size_t(k.n)), ddx(x.size()),
      scratch(compact_bilinear_scratch_floats(k.n, k.c, k.hw, k.d));
  {
    GRID_CAP(2);  // grid-stride second passes
    cuda::compact_bilinear_forward(s, dxin.get(), du_out.get(), dz.get(), dnorm.get(), k.n, k.c,
                                   k.hw, scratch.get(), nullptr);
    cuda::compact_bilinear_backward(s, dxin.get(), du_out.get(), dz.get(), dnorm.get(), ddu.get(),
                                    ddx.get(), k.n, k.c, k.hw, scratch.get(), nullptr);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) ADD_FAILURE() << "compact_bilinear kernels";
  return {du_out.download(), dz.download(), dnorm.download(), ddx.download()};
}

BilinearRun run_cpu(const CompactBilinearSketch& s, const BilinearCase& k,
                    const std::vector<float>& x, const std::vector<float>& du) {
  const size_t outs = size_t(k.n) * k.d;
  BilinearRun r{std::vector<float>(outs, std::nanf("")), std::vector<float>(outs, std::nanf("")),
                std::vector<float>(size_t(k.n), std::nanf("")),
                std::vector<float>(x.size(), std::nanf(""))};
  std::vector<float> scratch(compact_bilinear_scratch_floats(k.n, k.c, k.hw, k.d), std::nanf(""));
  cpu::compact_bilinear_forward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), k.n, k.c, k.hw,
                                scratch.data());
  cpu::compact_bilinear_backward(s, x.data(), r.u.data(), r.z.data(), r.norm.data(), du.data(),
                                 r.dx.data(), k.n, k.c, k.hw, scratch.data());
  return r;
}

const BilinearCase kCases[] = {
    {3, 4, 5, 4},      {2, 3, 1, 16},  {2, 16, 9, 16},   // C = d
    {3, 7, 13, 64},    {1, 1, 300, 8}, {9, 70, 4, 128},  // 630 pairs an image: grid-stride passes
    {4, 64, 16, 8192},                                   // the CPU's threads, ResNet-20's d
};

TEST(KernelParityNn, CompactBilinearMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(53);
  for (const BilinearCase& k : kCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::non_negative, Fill::special}) {
      const std::string what = k.str() + " fill " + std::to_string(int(fill));
      const CompactBilinearSketch s = compact_bilinear_sketch(rng() % 1000, k.d, 1e-6f);
      // Special values only in the first two images (+inf, then NaN), so that the other
      // images stay finite: a NaN or infinity spreads over its whole image.
      std::vector<float> x =
          make_input(size_t(k.n) * k.c * k.hw, fill == Fill::special ? Fill::ties : fill, rng);
      if (fill == Fill::special) {
        x[0] = std::numeric_limits<float>::infinity();
        if (k.n > 1) x[size_t(k.c) * k.hw] = std::nanf("");
      }
      if (fill == Fill::non_negative)  // and one image of zeros: the divisor's floor
        std::fill(x.begin(), x.begin() + size_t(k.c) * k.hw, 0.f);
      const std::vector<float> du = make_input(size_t(k.n) * k.d, Fill::uniform, rng);
      const BilinearRun got = run_device(s, k, x, du), want = run_cpu(s, k, x, du);
      expect_same_outputs(got.z, want.z, what + " z");
      expect_same_outputs(got.norm, want.norm, what + " norm");
      expect_same_outputs(got.u, want.u, what + " u");
      expect_same_outputs(got.dx, want.dx, what + " dx");
    }
}

TEST(KernelParityNn, CompactBilinearIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(54);
  const BilinearCase k{5, 12, 7, 32};
  const CompactBilinearSketch s = compact_bilinear_sketch(3, k.d, 1e-6f);
  const std::vector<float> x = make_input(size_t(k.n) * k.c * k.hw, Fill::uniform, rng),
                           du = make_input(size_t(k.n) * k.d, Fill::uniform, rng);
  std::vector<BilinearRun> runs;
  run_under_four_schedules(320, [&](int) { runs.push_back(run_device(s, k, x, du)); });
  for (size_t r = 1; r < runs.size(); ++r) {
    expect_same_bits(runs[r].u, runs[0].u, "u");
    expect_same_bits(runs[r].dx, runs[0].dx, "dx");
  }
}

// Chunks of images: whole ones, then a short last one taken an image at a time.
struct FftCase {
  BilinearCase k;
  int chunk;
};
const FftCase kFftCases[] = {
    {{3, 4, 5, 16}, 2},     {{2, 16, 9, 16}, 1},  {{5, 7, 13, 64}, 3},  // C = d; 3 + 2 images
    {{1, 1, 30, 8}, 1},     {{9, 70, 4, 128}, 4},                       // grid-stride passes
    {{4, 64, 16, 1024}, 4},
};

TEST(KernelParityNn, CompactBilinearFftMatchesCpu) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(55);
  for (const FftCase& f : kFftCases)
    for (const Fill fill : {Fill::uniform, Fill::ties, Fill::non_negative, Fill::special}) {
      const BilinearCase& k = f.k;
      const std::string what = k.str() + " by FFT, chunk " + std::to_string(f.chunk) + " fill " +
                               std::to_string(int(fill));
      const CompactBilinearSketch s = compact_bilinear_sketch(rng() % 1000, k.d, 1e-6f);
      std::vector<float> x =
          make_input(size_t(k.n) * k.c * k.hw, fill == Fill::special ? Fill::ties : fill, rng);
      if (fill == Fill::special) {
        x[0] = std::numeric_limits<float>::infinity();
        if (k.n > 1) x[size_t(k.c) * k.hw] = std::nanf("");
      }
      if (fill == Fill::non_negative) std::fill(x.begin(), x.begin() + size_t(k.c) * k.hw, 0.f);
      const std::vector<float> du = make_input(size_t(k.n) * k.d, Fill::uniform, rng);
      const BilinearRun got = run_device_fft(s, k, f.chunk, x, du), want = run_cpu_fft(s, k, x, du);
#ifdef CONVPOOL_EMULATED_CUDA
      expect_same_bits(got.z, want.z, what + " z");
      expect_same_bits(got.norm, want.norm, what + " norm");
      expect_same_bits(got.u, want.u, what + " u");
      expect_same_bits(got.dx, want.dx, what + " dx");
#else
      // cuFFT's rounding is not FFTW's; dx sums the root's slope, up to 1 / (2 sqrt(eps)),
      // over the bins.
      expect_match(got.z, want.z, 1e-5, what + " z");
      expect_match(got.norm, want.norm, 1e-5, what + " norm");
      expect_match(got.u, want.u, 1e-5, what + " u");
      expect_match(got.dx, want.dx, 1e-3, what + " dx");
#endif
    }
}

TEST(KernelParityNn, CompactBilinearFftIsTheSameBitsUnderEverySchedule) {
  REQUIRE_DEVICE();
  std::mt19937_64 rng(56);
  const BilinearCase k{5, 12, 7, 32};
  const CompactBilinearSketch s = compact_bilinear_sketch(4, k.d, 1e-6f);
  const std::vector<float> x = make_input(size_t(k.n) * k.c * k.hw, Fill::uniform, rng),
                           du = make_input(size_t(k.n) * k.d, Fill::uniform, rng);
  std::vector<BilinearRun> runs;
  run_under_four_schedules(320, [&](int) { runs.push_back(run_device_fft(s, k, 2, x, du)); });
  for (size_t r = 1; r < runs.size(); ++r) {
    expect_same_bits(runs[r].u, runs[0].u, "u");
    expect_same_bits(runs[r].dx, runs[0].dx, "dx");
  }
}

}  // namespace
#endif
