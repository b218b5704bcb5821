// Compact bilinear pooling by FFT: a chunk of images at a time, one thread per (position,
// bin) for the sketches (a gather through the inverse hash: no atomics), cuFFT's batched real
// transforms over every position of the chunk, one thread per (image, frequency) for the sum
// over positions (in order, as the CPU adds them), per (position, frequency) for the
// products with dz's spectrum, per input element for dx. The math is
// compact_bilinear_fft_math.cuh; the two forms' shared ends are compact_bilinear.cu's.
#define CONVPOOL_CHECK_CUFFT
#include <cufft.h>

#include "compact_bilinear.cuh"
#include "compact_bilinear_fft.cuh"
#include "elementwise.cuh"

namespace convpool::cuda {

// Per batch shape: the chunk's positions and images (or one image's), each way.
struct CompactBilinearFftPlans::Handles {
  cufftHandle positions_r2c = 0, positions_c2r = 0, images_r2c = 0, images_c2r = 0;
  bool made[4] = {false, false, false, false};
  Handles(int d, int hw, int images) {
    const int real = compact_bilinear_real_stride(d),
              spectrum = compact_bilinear_spectrum_stride(d), dz = compact_bilinear_dz_stride(d);
    make(0, positions_r2c, d, CUFFT_R2C, images * hw, real, spectrum);
    make(1, positions_c2r, d, CUFFT_C2R, images * hw, spectrum, real);
    make(2, images_r2c, d, CUFFT_R2C, images, dz, spectrum);
    make(3, images_c2r, d, CUFFT_C2R, images, spectrum, d);  // into z, n x d
  }
  ~Handles() {
    const cufftHandle all[4] = {positions_r2c, positions_c2r, images_r2c, images_c2r};
    for (int i = 0; i < 4; ++i)
      if (made[i]) cufftDestroy(all[i]);
  }
  void make(int slot, cufftHandle& h, int d, cufftType type, int batch, int idist, int odist) {
    int n[1] = {d}, inembed[1] = {idist}, onembed[1] = {odist};
    CP_CUFFT_CHECK(cufftPlanMany(&h, 1, n, inembed, 1, idist, onembed, 1, odist, type, batch));
    made[slot] = true;
  }
};

CompactBilinearFftPlans::CompactBilinearFftPlans(int d, int hw, int chunk) : chunk_(chunk) {
  handles_[0] = std::make_unique<Handles>(d, hw, chunk);
  handles_[1] = std::make_unique<Handles>(d, hw, 1);
}
CompactBilinearFftPlans::~CompactBilinearFftPlans() = default;

namespace {
using elementwise::blocks_for;
using elementwise::kThreads;

void r2c(cufftHandle plan, float* in, float* out, void* stream) {
  CP_CUFFT_CHECK(cufftSetStream(plan, as_stream(stream)));
  CP_CUFFT_CHECK(cufftExecR2C(plan, in, reinterpret_cast<cufftComplex*>(out)));
}
void c2r(cufftHandle plan, float* in, float* out, void* stream) {
  CP_CUFFT_CHECK(cufftSetStream(plan, as_stream(stream)));
  CP_CUFFT_CHECK(cufftExecC2R(plan, reinterpret_cast<cufftComplex*>(in), out));
}

// Both sketches of every position of `images` images from image x on (real arrays `stride`
// floats apart; bins d..stride are not read).
__global__ void compact_bilinear_fft_sketch_kernel(CompactBilinearSketch s,
                                                   const float* __restrict__ x,
                                                   float* __restrict__ a, float* __restrict__ b,
                                                   size_t count, int c, int hw, int stride) {
  CP_GRID_STRIDE(t, count) {
    const int d = s.d;
    const size_t p = t / d;  // image * hw + position
    const uint32_t bin = uint32_t(t % d);
    const float* xi = x + p / hw * c * hw;
    const int l = int(p % hw);
    a[p * stride + bin] = compact_bilinear_sketch_at(s.h1, xi, c, hw, l, bin);
    b[p * stride + bin] = compact_bilinear_sketch_at(s.h2, xi, c, hw, l, bin);
  }
}

// Each image's spectrum sum over its positions, per (image, frequency).
__global__ void compact_bilinear_fft_sum_kernel(const float* __restrict__ fa,
                                                const float* __restrict__ fb, float* __restrict__ p,
                                                size_t count, int hw, int half, int stride) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / half;
    const int k = int(t % half);
    const size_t first = img * hw * stride * 2;
    compact_bilinear_spectrum_sum(fa + first, fb + first, hw, stride, k,
                                  p + 2 * (img * stride + k));
  }
}

__global__ void compact_bilinear_fft_scale_kernel(float* __restrict__ z, size_t count,
                                                  float inv_d) {
  CP_GRID_STRIDE(t, count) z[t] = z[t] * inv_d;
}

// Per (position, frequency): fa <- F(dz) conj(fb), fb <- F(dz) conj(fa).
__global__ void compact_bilinear_fft_correlate_kernel(const float* __restrict__ fdz,
                                                      float* __restrict__ fa,
                                                      float* __restrict__ fb, size_t count, int hw,
                                                      int half, int stride) {
  CP_GRID_STRIDE(t, count) {
    const size_t p = t / half;
    const int k = int(t % half);
    const float* g = fdz + 2 * (p / hw * stride + k);
    float* pa = fa + 2 * (p * stride + k);
    float* pb = fb + 2 * (p * stride + k);
    float ta[2], tb[2];
    complex_times_conj(g, pb, ta);
    complex_times_conj(g, pa, tb);
    pa[0] = ta[0];
    pa[1] = ta[1];
    pb[0] = tb[0];
    pb[1] = tb[1];
  }
}

// dx of `images` images from its image on, per element, from the positions' da and db.
__global__ void compact_bilinear_fft_input_grad_kernel(CompactBilinearSketch s,
                                                       const float* __restrict__ da,
                                                       const float* __restrict__ db,
                                                       float* __restrict__ dx, size_t count, int c,
                                                       int hw, int stride, float inv_d) {
  CP_GRID_STRIDE(t, count) {
    const size_t img = t / (size_t(c) * hw);
    const uint32_t ch = uint32_t(t / hw % c);
    const size_t p = img * hw + t % hw;
    dx[t] = compact_bilinear_fft_input_grad(s, da + p * stride, db + p * stride, ch, inv_d);
  }
}

// The scratch's regions (compact_bilinear_fft_device_scratch_floats).
struct Regions {
  float *dz, *a, *b, *fa, *fb, *per_image;
  Regions(float* scratch, int n, int hw, int d, int chunk) {
    const size_t positions = size_t(chunk) * hw;
    dz = scratch;
    a = dz + fft_region_floats(size_t(n) * compact_bilinear_dz_stride(d));
    b = a + fft_region_floats(positions * compact_bilinear_real_stride(d));
    fa = b + fft_region_floats(positions * compact_bilinear_real_stride(d));
    const size_t spectra = fft_region_floats(positions * 2 * compact_bilinear_spectrum_stride(d));
    fb = fa + spectra;
    per_image = fb + spectra;
  }
};

// Runs body(first image, images, plans) over the batch: whole chunks, then one image at a time.
template <typename Body>
void for_each_chunk(const CompactBilinearFftPlans& plans, int n, Body body) {
  int img = 0;
  for (; img + plans.chunk() <= n; img += plans.chunk())
    body(img, plans.chunk(), plans.handles(true));
  for (; img < n; ++img) body(img, 1, plans.handles(false));
}

// The spectra of both sketches of every position of images [first, first + images).
void sketch_spectra(const CompactBilinearSketch& s, const Regions& r,
                    const CompactBilinearFftPlans::Handles& h, const float* x, int first,
                    int images, int c, int hw, void* stream) {
  const size_t count = size_t(images) * hw * s.d;
  compact_bilinear_fft_sketch_kernel<<<blocks_for(count), kThreads, 0, as_stream(stream)>>>(
      s, x + size_t(first) * c * hw, r.a, r.b, count, c, hw, compact_bilinear_real_stride(s.d));
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_fft_sketch_kernel");
  r2c(h.positions_r2c, r.a, r.fa, stream);
  r2c(h.positions_r2c, r.b, r.fb, stream);
}
}  // namespace

void compact_bilinear_fft_forward(const CompactBilinearFftPlans& plans,
                                  const CompactBilinearSketch& s, const float* x, float* u,
                                  float* z, float* norm, int n, int c, int hw, float* scratch,
                                  void* stream) {
  if (n <= 0) return;
  const int d = s.d, half = compact_bilinear_half(d), stride = compact_bilinear_spectrum_stride(d);
  const Regions r(scratch, n, hw, d, plans.chunk());
  for_each_chunk(plans, n, [&](int first, int images, const CompactBilinearFftPlans::Handles& h) {
    sketch_spectra(s, r, h, x, first, images, c, hw, stream);
    const size_t sums = size_t(images) * half;
    compact_bilinear_fft_sum_kernel<<<blocks_for(sums), kThreads, 0, as_stream(stream)>>>(
        r.fa, r.fb, r.per_image, sums, hw, half, stride);
    CP_CUDA_CHECK_LAUNCH("compact_bilinear_fft_sum_kernel");
    c2r(h.images_c2r, r.per_image, z + size_t(first) * d, stream);
  });
  const size_t bins = size_t(n) * d;
  compact_bilinear_fft_scale_kernel<<<blocks_for(bins), kThreads, 0, as_stream(stream)>>>(
      z, bins, 1.f / float(d));
  CP_CUDA_CHECK_LAUNCH("compact_bilinear_fft_scale_kernel");
  compact_bilinear_normalise(z, norm, u, n, d, s.eps, stream);
}

void compact_bilinear_fft_backward(const CompactBilinearFftPlans& plans,
                                   const CompactBilinearSketch& s, const float* x, const float* u,
                                   const float* z, const float* norm, const float* du, float* dx,
                                   int n, int c, int hw, float* scratch, void* stream) {
  if (n <= 0) return;
  const int d = s.d, half = compact_bilinear_half(d), stride = compact_bilinear_spectrum_stride(d);
  const int dz_stride = compact_bilinear_dz_stride(d);
  const Regions r(scratch, n, hw, d, plans.chunk());
  compact_bilinear_sketch_grad(u, du, z, norm, r.dz, size_t(dz_stride), n, d, s.eps, stream);
  for_each_chunk(plans, n, [&](int first, int images, const CompactBilinearFftPlans::Handles& h) {
    r2c(h.images_r2c, r.dz + size_t(first) * dz_stride, r.per_image, stream);
    sketch_spectra(s, r, h, x, first, images, c, hw, stream);
    const size_t products = size_t(images) * hw * half;
    compact_bilinear_fft_correlate_kernel<<<blocks_for(products), kThreads, 0, as_stream(stream)>>>(
        r.per_image, r.fa, r.fb, products, hw, half, stride);
    CP_CUDA_CHECK_LAUNCH("compact_bilinear_fft_correlate_kernel");
    c2r(h.positions_c2r, r.fa, r.a, stream);  // da
    c2r(h.positions_c2r, r.fb, r.b, stream);  // db
    const size_t inputs = size_t(images) * c * hw;
    if (inputs) {
      compact_bilinear_fft_input_grad_kernel<<<blocks_for(inputs), kThreads, 0,
                                               as_stream(stream)>>>(
          s, r.a, r.b, dx + size_t(first) * c * hw, inputs, c, hw, compact_bilinear_real_stride(d),
          1.f / float(d));
      CP_CUDA_CHECK_LAUNCH("compact_bilinear_fft_input_grad_kernel");
    }
  });
}

}  // namespace convpool::cuda
