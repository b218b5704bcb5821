// Compact bilinear pooling by FFT on the CPU: images in parallel, each position's two count
// sketches through FFTW's real transforms of d points, one at a time (a position's four
// arrays stay in the L2 cache). The plans are FFTW_ESTIMATE's, made once per d: no timing in
// the planner, so the same plan (and bits) every run, and the one the emulated cuFFT makes;
// every other operation is compact_bilinear_fft_math.cuh's, in the CUDA kernels' order.
// FFTW (GPL-2+) rather than KISS FFT: its SIMD codelets are several times faster at these
// sizes, and this path exists only for speed.
#include "compact_bilinear_fft.h"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "compact_bilinear.h"

namespace convpool::cpu {

namespace {

struct FftPlans {
  fftwf_plan r2c = nullptr, c2r = nullptr;
};

// Every size's plans, kept for the process and destroyed at its exit.
struct PlanCache {
  std::mutex mu;
  std::map<int, FftPlans> plans;
  ~PlanCache() {
    for (auto& entry : plans) {
      fftwf_destroy_plan(entry.second.r2c);
      fftwf_destroy_plan(entry.second.c2r);
    }
  }
};

// The plans of d points, made on FFTW's own (aligned) arrays and executed on others of the
// same alignment (fft_region_floats keeps ours 64-byte aligned). Planning is serialised;
// executing a plan is thread-safe.
const FftPlans& plans_for(int d) {
  static PlanCache cache;
  std::lock_guard lock(cache.mu);
  static const bool safe = (fftwf_make_planner_thread_safe(), true);
  (void)safe;
  if (const auto it = cache.plans.find(d); it != cache.plans.end()) return it->second;
  float* r = fftwf_alloc_real(size_t(d));
  fftwf_complex* c = fftwf_alloc_complex(size_t(compact_bilinear_half(d)));
  FftPlans p;
  if (r && c) {
    p.r2c = fftwf_plan_dft_r2c_1d(d, r, c, FFTW_ESTIMATE);
    p.c2r = fftwf_plan_dft_c2r_1d(d, c, r, FFTW_ESTIMATE);
  }
  fftwf_free(r);
  fftwf_free(c);
  if (!p.r2c || !p.c2r) {
    if (p.r2c) fftwf_destroy_plan(p.r2c);
    if (p.c2r) fftwf_destroy_plan(p.c2r);
    throw std::runtime_error("compact_bilinear: FFTW could not plan a transform of " +
                             std::to_string(d) + " points");
  }
  return cache.plans.emplace(d, p).first->second;
}

void r2c(const FftPlans& p, float* in, float* out) {
  fftwf_execute_dft_r2c(p.r2c, in, reinterpret_cast<fftwf_complex*>(out));
}
void c2r(const FftPlans& p, float* in, float* out) {
  fftwf_execute_dft_c2r(p.c2r, reinterpret_cast<fftwf_complex*>(in), out);
}

// Each channel's bin and sign under both hashes, in buffers the calling thread keeps.
struct Hashes {
  std::vector<uint32_t> bin1, bin2;
  std::vector<float> sign1, sign2;
};
const Hashes& hashes_for(const CompactBilinearSketch& s, int c) {
  thread_local Hashes h;
  h.bin1.resize(size_t(c));
  h.bin2.resize(size_t(c));
  h.sign1.resize(size_t(c));
  h.sign2.resize(size_t(c));
  for (int i = 0; i < c; ++i) {
    h.bin1[size_t(i)] = sketch_bin(s.h1, uint32_t(i));
    h.bin2[size_t(i)] = sketch_bin(s.h2, uint32_t(i));
    h.sign1[size_t(i)] = sketch_sign(s.h1, uint32_t(i));
    h.sign2[size_t(i)] = sketch_sign(s.h2, uint32_t(i));
  }
  return h;
}

// Position l's two sketches of one image's maps (x: C x hw) into a and b (d floats each).
void sketch(const Hashes& h, const float* x, int c, int hw, int l, int d, float* a, float* b) {
  for (int k = 0; k < d; ++k) a[k] = b[k] = 0.f;
  for (int i = 0; i < c; ++i) {
    const float v = x[size_t(i) * hw + l];
    a[h.bin1[size_t(i)]] = h.sign1[size_t(i)] * v;
    b[h.bin2[size_t(i)]] = h.sign2[size_t(i)] * v;
  }
}

bool parallel(int n, int hw, int d) { return long(n) * hw * d > 65536; }

}  // namespace

void compact_bilinear_fft_forward(const CompactBilinearSketch& s, const float* x, float* u,
                                  float* z, float* norm, int n, int c, int hw, float* scratch) {
  const int d = s.d, half = compact_bilinear_half(d);
  const FftPlans& plans = plans_for(d);
  const Hashes& h = hashes_for(s, c);
  const size_t region = fft_region_floats(2 * size_t(half)), per = 6 * region;
  const float inv_d = 1.f / float(d);
#pragma omp parallel for schedule(static) if (parallel(n, hw, d))
  for (int img = 0; img < n; ++img) {
    float* a = scratch + size_t(img) * per;
    float *b = a + region, *fa = b + region, *fb = fa + region, *p = fb + region;
    const float* xi = x + size_t(img) * c * hw;
    for (int k = 0; k < 2 * half; ++k) p[k] = 0.f;
    for (int l = 0; l < hw; ++l) {
      sketch(h, xi, c, hw, l, d, a, b);
      r2c(plans, a, fa);
      r2c(plans, b, fb);
      for (int k = 0; k < half; ++k) complex_multiply_add(fa + 2 * k, fb + 2 * k, p + 2 * k);
    }
    float* zi = z + size_t(img) * d;
    c2r(plans, p, zi);
    for (int k = 0; k < d; ++k) zi[k] = zi[k] * inv_d;
    norm[img] = compact_bilinear_normalise(zi, d, s.eps, u + size_t(img) * d);
  }
}

void compact_bilinear_fft_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                                   const float* z, const float* norm, const float* du, float* dx,
                                   int n, int c, int hw, float* scratch) {
  const int d = s.d, half = compact_bilinear_half(d);
  const FftPlans& plans = plans_for(d);
  const Hashes& h = hashes_for(s, c);
  const size_t region = fft_region_floats(2 * size_t(half)), per = 6 * region;
  const float inv_d = 1.f / float(d);
#pragma omp parallel for schedule(static) if (parallel(n, hw, d))
  for (int img = 0; img < n; ++img) {
    float* dz = scratch + size_t(img) * per;
    float *fdz = dz + region, *a = fdz + region, *b = a + region, *fa = b + region,
          *fb = fa + region;
    const size_t at = size_t(img) * d;
    compact_bilinear_sketch_grad(u + at, du + at, z + at, norm[img], d, s.eps, dz);
    r2c(plans, dz, fdz);
    const float* xi = x + size_t(img) * c * hw;
    float* dxi = dx + size_t(img) * c * hw;
    for (int l = 0; l < hw; ++l) {
      sketch(h, xi, c, hw, l, d, a, b);
      r2c(plans, a, fa);
      r2c(plans, b, fb);
      for (int k = 0; k < half; ++k) {
        float ta[2], tb[2];
        complex_times_conj(fdz + 2 * k, fb + 2 * k, ta);
        complex_times_conj(fdz + 2 * k, fa + 2 * k, tb);
        fa[2 * k] = ta[0];
        fa[2 * k + 1] = ta[1];
        fb[2 * k] = tb[0];
        fb[2 * k + 1] = tb[1];
      }
      c2r(plans, fa, a);  // da
      c2r(plans, fb, b);  // db
      for (int i = 0; i < c; ++i)
        dxi[size_t(i) * hw + l] = (h.sign1[size_t(i)] * a[h.bin1[size_t(i)]] +
                                   h.sign2[size_t(i)] * b[h.bin2[size_t(i)]]) *
                                  inv_d;
    }
  }
}

}  // namespace convpool::cpu
