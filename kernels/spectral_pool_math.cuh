// Spectral pooling (Rippel, Snoek and Adams, "Spectral Representations for Convolutional
// Neural Networks", NeurIPS 2015): each plane's discrete Fourier transform cropped to the
// output's h x w lowest frequencies, then transformed back. Cropping is linear and the 2-D DFT
// separable, so the whole is one real matrix per axis:
//   Y = A_h X A_w^T,   A_o,i[m][n] = (1/i) sum_{k=-K..K} c_k cos(2 pi k (m/o - n/i))
// K = floor(o/2); c_k = 1, except c_{+-o/2} = 1/2 when o is even (the Nyquist frequency of the
// output, to which the input's +o/2 and -o/2 both fold: half each keeps the spectrum
// conjugate-symmetric and the output real). A constant plane stays the same constant, a 1 x 1
// output is the plane's mean, and o = i is the identity. Backward: dX = A_h^T dY A_w.
// A plane costs H W w + h H w multiply-adds forward, less than the FFT pair at CNN sizes
// (H, W <= 64) and with no FFT library.
// The matrices come from spectral_pool_weight, in float arithmetic from integers (the angle
// reduced exactly by quarter turns, Cephes' cosf and sinf polynomials), so the CPU and the
// CUDA kernels build the same bits; every sum runs in index order.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hd.cuh"

namespace convpool {

// cos(2 pi j / p) for 0 <= j < p, within about 1e-7.
CP_HD float spectral_cos_turns(int64_t j, int64_t p) {
  const int64_t q = (8 * j + p) / (2 * p);  // the nearest quarter turn, round(4 j / p)
  const float a = 6.28318530717958648f * (float(4 * j - q * p) / float(4 * p));  // |a| <= pi/4
  const float z = a * a;
  const float c =
      ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
      0.5f * z + 1.f;
  const float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * a + a;
  switch (q & 3) {
    case 0:
      return c;
    case 1:
      return -s;
    case 2:
      return -c;
    default:
      return s;
  }
}

// A_o,i[m][n]: the frequencies 1..K in order after the constant term.
CP_HD float spectral_pool_weight(int out, int in, int m, int n) {
  const int64_t p = int64_t(out) * in;
  const int64_t base = ((int64_t(m) * in - int64_t(n) * out) % p + p) % p;
  const int k_max = out / 2;
  float s = 1.f;
  for (int k = 1; k <= k_max; ++k) {
    const float c = spectral_cos_turns(int64_t(k) * base % p, p);
    s += (out % 2 == 0 && k == k_max) ? c : 2.f * c;
  }
  return s / float(in);
}

// t[r][q] = sum_n x[r][n] A_w[q][n] (one plane's rows, W -> w).
CP_HD float spectral_pool_row(const float* x_row, const float* aw_row, int w_in) {
  float t = 0.f;
  for (int n = 0; n < w_in; ++n) t += x_row[n] * aw_row[n];
  return t;
}

// y[m][q] = sum_r A_h[m][r] t[r][q] (one plane's columns, H -> h; t is H x w).
CP_HD float spectral_pool_column(const float* ah_row, const float* t, int h_in, int w_out, int q) {
  float y = 0.f;
  for (int r = 0; r < h_in; ++r) y += ah_row[r] * t[size_t(r) * w_out + q];
  return y;
}

// dt[r][q] = sum_m A_h[m][r] dy[m][q] (dy is h x w, A_h is h x H).
CP_HD float spectral_pool_column_grad(const float* ah, const float* dy, int h_out, int h_in,
                                      int w_out, int r, int q) {
  float g = 0.f;
  for (int m = 0; m < h_out; ++m) g += ah[size_t(m) * h_in + r] * dy[size_t(m) * w_out + q];
  return g;
}

// dx[r][n] = sum_q dt[r][q] A_w[q][n] (A_w is w x W).
CP_HD float spectral_pool_row_grad(const float* dt_row, const float* aw, int w_out, int w_in,
                                   int n) {
  float g = 0.f;
  for (int q = 0; q < w_out; ++q) g += dt_row[q] * aw[size_t(q) * w_in + n];
  return g;
}

// Scratch: A_h (h x H), A_w (w x W), its transpose (W x w, the CPU's), and t or dt for every
// plane (H x w each).
inline size_t spectral_pool_scratch_floats(size_t planes, int h_in, int w_in, int h_out,
                                           int w_out) {
  return size_t(h_out) * h_in + 2 * size_t(w_out) * w_in + planes * h_in * w_out;
}

}  // namespace convpool
