// Compact bilinear pooling by FFT: the paper's own form of the Tensor Sketch (Gao et al.,
// CVPR 2016, algorithm 2), the same z as compact_bilinear_math.cuh's Gram form up to rounding,
// and the cheaper one for wide heads. With F the unnormalised real DFT of d points and
// a_l = CS1(x_l), b_l = CS2(x_l) each position's two count sketches:
//   z = (1/d) F^-1( sum_l F(a_l) . F(b_l) )                 (. : per frequency)
// and, from dz, each position's sketch gradients (circular correlations with dz):
//   da_l = F^-1( F(dz) . conj F(b_l) ),  db_l = F^-1( F(dz) . conj F(a_l) )
//   dx_l[i] = (s1(i) da_l[h1(i)] + s2(i) db_l[h2(i)]) / d
// Backward recomputes the sketches' spectra rather than keeping N HW (d + 2) floats of them.
// The per-element formulas and the scratch layout, shared by the CPU backend (FFTW) and the
// CUDA kernels (cuFFT); each spectrum sum takes the positions in order, so on the emulated
// target, whose cuFFT runs FFTW's plans, the kernels have the CPU's bits.
#pragma once
#include <cstddef>

#include "compact_bilinear_math.cuh"

namespace convpool {

// Bin b of one position's count sketch under hash h: the one channel h sends there, signed,
// or 0 (a permutation sends at most one). x is one image's maps, C x hw; l the position.
CP_HD float compact_bilinear_sketch_at(const SketchHash& h, const float* x, int c, int hw, int l,
                                       uint32_t b) {
  const uint32_t i = sketch_channel(h, b);
  return i < uint32_t(c) ? sketch_sign(h, i) * x[size_t(i) * hw + l] : 0.f;
}

// p + a b and a conj(b), complex numbers as (re, im) float pairs; each product rounded before
// its sum, as the CPU (no contraction) computes them.
CP_HD void complex_multiply_add(const float* a, const float* b, float* p) {
  const float re = a[0] * b[0] - a[1] * b[1], im = a[0] * b[1] + a[1] * b[0];
  p[0] = p[0] + re;
  p[1] = p[1] + im;
}
CP_HD void complex_times_conj(const float* a, const float* b, float* out) {
  const float re = a[0] * b[0] + a[1] * b[1], im = a[1] * b[0] - a[0] * b[1];
  out[0] = re;
  out[1] = im;
}

// Frequency k's sum over one image's hw positions, whose spectra are `stride` complex numbers
// apart: sum_l A_l[k] B_l[k], the positions in order.
CP_HD void compact_bilinear_spectrum_sum(const float* a, const float* b, int hw, int stride, int k,
                                         float* p) {
  p[0] = 0.f;
  p[1] = 0.f;
  for (int l = 0; l < hw; ++l)
    complex_multiply_add(a + 2 * (size_t(l) * stride + k), b + 2 * (size_t(l) * stride + k), p);
}

// dx of channel ch at one position from that position's sketch gradients (before the 1/d).
CP_HD float compact_bilinear_fft_input_grad(const CompactBilinearSketch& s, const float* da,
                                            const float* db, uint32_t ch, float inv_d) {
  return (sketch_sign(s.h1, ch) * da[sketch_bin(s.h1, ch)] +
          sketch_sign(s.h2, ch) * db[sketch_bin(s.h2, ch)]) *
         inv_d;
}

// Complex numbers in one spectrum of d real points (d / 2 + 1), and floats a region takes,
// rounded up to 16 so that every region starts 64-byte aligned (FFTW's plans, and the
// emulated cuFFT's, then take one code path for all of them).
CP_HD int compact_bilinear_half(int d) { return d / 2 + 1; }
inline size_t fft_region_floats(size_t floats) { return (floats + 15) / 16 * 16; }

// CPU scratch, per image: six regions of a spectrum's size (sketches, spectra, the running
// sum, dz and its spectrum).
inline size_t compact_bilinear_fft_scratch_floats(int n, int d) {
  return size_t(n) * 6 * fft_region_floats(2 * size_t(compact_bilinear_half(d)));
}

// The CUDA path's batched layouts, each array 16-byte aligned: real arrays (sketches) d
// floats apart (at least 4), spectra an even number of complex numbers apart, each image's dz
// a region apart (u . du after it).
inline int compact_bilinear_real_stride(int d) { return (d + 3) / 4 * 4; }
inline int compact_bilinear_spectrum_stride(int d) {
  return (compact_bilinear_half(d) + 1) / 2 * 2;
}
inline int compact_bilinear_dz_stride(int d) { return int(fft_region_floats(size_t(d) + 1)); }

// The CUDA path takes `chunk` images at a time through batched FFTs. Its scratch: every
// image's dz, then, for a chunk, both sketches of every position, their spectra, and one
// spectrum an image (the running sum forward, dz's spectrum backward).
inline size_t compact_bilinear_fft_device_scratch_floats(int n, int hw, int d, int chunk) {
  const size_t spectrum = 2 * size_t(compact_bilinear_spectrum_stride(d)),
               positions = size_t(chunk) * hw;
  return fft_region_floats(size_t(n) * compact_bilinear_dz_stride(d)) +
         2 * fft_region_floats(positions * compact_bilinear_real_stride(d)) +
         2 * fft_region_floats(positions * spectrum) + fft_region_floats(size_t(chunk) * spectrum);
}

// Images a chunk takes: as many as keep its buffers under 2^26 floats (256 MiB), at least one.
inline int compact_bilinear_fft_chunk(int max_batch, int hw, int d) {
  const size_t per_image = size_t(hw) * (4 * size_t(d) + 4) + size_t(d) + 2;
  const size_t fit = (size_t(1) << 26) / per_image;
  return int(fit < 1 ? 1 : (fit < size_t(max_batch) ? fit : size_t(max_batch)));
}

// algo=auto's choice, from a cost model fitted to CPU timings at 2 threads (docs/benchmarks.md,
// "Compact bilinear: the Gram matrix or the FFT"), in units of one Gram multiply-add: per image
// the Gram form costs C^2 (hw + 21) (its products, and adding and reading back the C^2 pairs'
// bins, about 21 products' time each), the FFT form 6 d log2(d) a position (six real
// transforms, fwd + bwd, and the products of their spectra). Taken where the FFT costs less.
inline bool compact_bilinear_fft_pays(int c, int hw, int d) {
  int bits = 0;
  while ((1 << bits) < d) ++bits;
  return 6.0 * hw * double(d) * bits < double(c) * c * (hw + 21.0);
}

}  // namespace convpool
