// Compact bilinear pooling, a global encoder (Gao, Beijbom, Zhang and Darrell, "Compact
// Bilinear Pooling", CVPR 2016), Tensor Sketch form. Each position's feature vector x_l
// (C channels) is count-sketched twice, with hashes h1, h2: [0, C) -> [0, d) and signs s1, s2;
// the circular convolution of the two sketches (by FFT in the paper) is summed over the
// positions. That sum is the count sketch of the bilinear (Gram) matrix G = sum_l x_l x_l^T
// under the pair hash (h1(i) + h2(j)) mod d and the pair sign s1(i) s2(j):
//   z_k = sum over (i, j) with h1(i) + h2(j) = k (mod d) of s1(i) s2(j) G_ij
// which is what this op computes: the Gram matrix (C^2 HW products an image) and one term a
// pair (C^2), where the FFT form costs two sketches and two FFTs of d points at every position
// and one inverse FFT (at d = 8192 and C = 64, about 60 times as many operations). The result
// is the paper's; only the rounding differs. Then, as in the paper, the signed square root and
// L2 normalisation:
//   y_k = sign(z_k) (sqrt(|z_k| + eps) - sqrt(eps)) = z_k / (sqrt(|z_k| + eps) + sqrt(eps))
//   u = y / max(||y||, 1e-12)
// (eps > 0 keeps the root's slope, 1 / (2 sqrt(|z| + eps)), finite at 0). Backward:
//   dy = (du - u (u . du)) / ||y||   (du / 1e-12 below it),   dz_k = dy_k / (2 sqrt(|z_k| + eps))
//   dG_ij = s1(i) s2(j) dz_(h1(i) + h2(j)),   dx_l = (dG + dG^T) x_l
// d is a power of two, at least C: each hash is then a permutation of [0, d) taken at the
// channels, computed here rather than stored, and invertible, so that a CUDA thread per bin
// finds the channel j that each i pairs with. The per-image math, shared by the CPU backend
// and the CUDA kernels; every sum runs in a fixed order (the channels or positions in turn,
// or eight lanes for the d-long sums), so the emulated target has the CPU's bits.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "hd.cuh"

namespace convpool {

// splitmix64's output function: the signs, and the hash constants from the seed.
CP_HD uint64_t sketch_mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One count sketch's hash: a permutation of [0, d) (an odd multiply and add, an xor-shift, an
// odd multiply, an xor-shift, all modulo d = 2^bits; the shifts are at least half the bits, so
// each xor-shift is its own inverse), and a sign per channel.
struct SketchHash {
  uint32_t mask = 0, shift = 0, mul1 = 1, add1 = 0, mul2 = 1, inv_mul1 = 1, inv_mul2 = 1;
  uint64_t sign_key = 0;
};

CP_HD uint32_t sketch_bin(const SketchHash& h, uint32_t i) {
  uint32_t v = (i * h.mul1 + h.add1) & h.mask;
  v ^= v >> h.shift;
  v = (v * h.mul2) & h.mask;
  return v ^ (v >> h.shift);
}
// The channel that sketch_bin sends to bin b (a value >= C where no channel does).
CP_HD uint32_t sketch_channel(const SketchHash& h, uint32_t b) {
  uint32_t v = b ^ (b >> h.shift);
  v = (v * h.inv_mul2) & h.mask;
  v ^= v >> h.shift;
  return ((v - h.add1) * h.inv_mul1) & h.mask;
}
CP_HD float sketch_sign(const SketchHash& h, uint32_t i) {
  return (sketch_mix(h.sign_key ^ i) >> 63) ? -1.f : 1.f;
}

// Both sketches of a layer, with d and the root's eps.
struct CompactBilinearSketch {
  SketchHash h1, h2;
  int d = 0;
  float eps = 0.f;
};

// The inverse of an odd number modulo 2^32 (Newton's iteration: each step doubles the bits).
inline uint32_t odd_inverse(uint32_t a) {
  uint32_t x = a;
  for (int i = 0; i < 5; ++i) x *= 2u - a * x;
  return x;
}

// The sketches of `seed` for output dimension d (a power of two).
inline CompactBilinearSketch compact_bilinear_sketch(uint64_t seed, int d, float eps) {
  CompactBilinearSketch s;
  s.d = d;
  s.eps = eps;
  int bits = 0;
  while ((1 << bits) < d) ++bits;
  uint64_t state = sketch_mix(seed);
  SketchHash* const hashes[2] = {&s.h1, &s.h2};
  for (SketchHash* h : hashes) {
    h->mask = uint32_t(d - 1);
    h->shift = uint32_t(bits + 1) / 2;
    h->mul1 = uint32_t(state = sketch_mix(state)) | 1u;
    h->add1 = uint32_t(state = sketch_mix(state));
    h->mul2 = uint32_t(state = sketch_mix(state)) | 1u;
    h->sign_key = state = sketch_mix(state);
    h->inv_mul1 = odd_inverse(h->mul1);
    h->inv_mul2 = odd_inverse(h->mul2);
  }
  return s;
}

// The bin and sign of channel pair (i, j).
CP_HD uint32_t compact_bilinear_bin(const CompactBilinearSketch& s, uint32_t i, uint32_t j) {
  return (sketch_bin(s.h1, i) + sketch_bin(s.h2, j)) & s.h1.mask;
}
CP_HD float compact_bilinear_sign(const CompactBilinearSketch& s, uint32_t i, uint32_t j) {
  return sketch_sign(s.h1, i) * sketch_sign(s.h2, j);
}

// G_ij of one image's maps (C x hw): the positions in order.
CP_HD float compact_bilinear_gram(const float* x, int hw, int i, int j) {
  const float *a = x + size_t(i) * hw, *b = x + size_t(j) * hw;
  float g = 0.f;
  for (int l = 0; l < hw; ++l) g += a[l] * b[l];
  return g;
}

// z_k from one image's Gram matrix (C x C): the pairs (i, j) of bin k, i in order (each i has
// at most one j: h2 is a permutation).
CP_HD float compact_bilinear_bin_sum(const CompactBilinearSketch& s, const float* gram, int c,
                                     uint32_t k) {
  float z = 0.f;
  for (int i = 0; i < c; ++i) {
    const uint32_t j = sketch_channel(s.h2, (k - sketch_bin(s.h1, uint32_t(i))) & s.h1.mask);
    if (j < uint32_t(c)) z += compact_bilinear_sign(s, uint32_t(i), j) * gram[size_t(i) * c + j];
  }
  return z;
}

// The signed square root y(z) and its slope.
CP_HD float compact_bilinear_root(float z, float eps) {
  return z / (sqrtf(fabsf(z) + eps) + sqrtf(eps));
}
CP_HD float compact_bilinear_root_slope(float z, float eps) { return 0.5f / sqrtf(fabsf(z) + eps); }

// Eight running sums, lane t taking the elements k = t (mod 8) in order, then added pairwise:
// the same operations as one 8-float vector on the CPU.
CP_HD float lane_sum_finish(const float* lane) {
  return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

// The divisor of u = y / max(||y||, 1e-12), from one image's z (NaN if z holds one).
CP_HD float compact_bilinear_norm(const float* z, int d, float eps) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int k = 0; k < d; ++k) {
    const float y = compact_bilinear_root(z[k], eps);
    lane[k & 7] += y * y;
  }
  const float n = sqrtf(lane_sum_finish(lane));
  return n < 1e-12f ? 1e-12f : n;  // NaN stays NaN
}

// u . du for one image.
CP_HD float compact_bilinear_dot(const float* u, const float* du, int d) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int k = 0; k < d; ++k) lane[k & 7] += u[k] * du[k];
  return lane_sum_finish(lane);
}

// dz_k from du_k, u_k, the image's u . du and divisor (norm > 1e-12: the normalisation's
// gradient; else the constant divisor's).
CP_HD float compact_bilinear_dz(float du, float u, float dot, float norm, float z, float eps) {
  const float dy = norm > 1e-12f ? (du - u * dot) / norm : du / norm;
  return dy * compact_bilinear_root_slope(z, eps);
}

// (dG + dG^T)_ij from one image's dz.
CP_HD float compact_bilinear_gram_grad(const CompactBilinearSketch& s, const float* dz, uint32_t i,
                                       uint32_t j) {
  return compact_bilinear_sign(s, i, j) * dz[compact_bilinear_bin(s, i, j)] +
         compact_bilinear_sign(s, j, i) * dz[compact_bilinear_bin(s, j, i)];
}

// dx[ch][l] = sum_j M[ch][j] x[j][l] (M = dG + dG^T, C x C): the channels j in order.
CP_HD float compact_bilinear_input_grad(const float* m, const float* x, int c, int hw, int ch,
                                        int l) {
  const float* row = m + size_t(ch) * c;
  float g = 0.f;
  for (int j = 0; j < c; ++j) g += row[j] * x[size_t(j) * hw + l];
  return g;
}

// Scratch, per image: the Gram matrix (forward) or M (backward), C x C; then the maps
// transposed (the CPU's forward, C hw), or dz and u . du (backward, d + 1).
inline size_t compact_bilinear_scratch_floats(int n, int c, int hw, int d) {
  const size_t rest = size_t(c) * hw > size_t(d) + 1 ? size_t(c) * hw : size_t(d) + 1;
  return size_t(n) * (size_t(c) * c + rest);
}

}  // namespace convpool
