// Compact bilinear pooling on the CPU: images in parallel, each sum taken in
// compact_bilinear_math.cuh's order, so the CUDA kernels' result bit for bit where the
// arithmetic is the host's (the emulated target). The Gram matrix's lower triangle row by row
// along a vector of channels (the positions in turn, from the maps transposed), mirrored (the
// products commute, so G_ji has G_ij's bits); the sketch as one scatter a pair, i then j in
// order, which adds each bin's pairs in the order the kernels' gather does; the d-long sums
// in eight lanes; the input gradient along a vector of positions (the channels in turn). AVX2
// clones where the processor has them: the same operations lane by lane, no FMA.
#include "compact_bilinear.h"

#include <vector>

#include "avx2_clones.h"

namespace convpool::cpu {

namespace {

// Each channel's bin and sign under one hash.
struct ChannelHashes {
  std::vector<uint32_t> bin;
  std::vector<float> sign;
  void fill(const SketchHash& h, int c) {
    bin.resize(size_t(c));
    sign.resize(size_t(c));
    for (int i = 0; i < c; ++i) {
      bin[size_t(i)] = sketch_bin(h, uint32_t(i));
      sign[size_t(i)] = sketch_sign(h, uint32_t(i));
    }
  }
};

// The two hashes' tables, filled each call into buffers the calling thread keeps: a training
// step allocates nothing once warm.
std::pair<const ChannelHashes&, const ChannelHashes&> channel_hashes(const CompactBilinearSketch& s,
                                                                     int c) {
  thread_local ChannelHashes first, second;
  first.fill(s.h1, c);
  second.fill(s.h2, c);
  return {first, second};
}

// g = x x^T for one image (x: C x hw, xt: hw x C).
CONVPOOL_AVX2_CLONES void gram(const float* __restrict x, const float* __restrict xt, int c, int hw,
                               float* __restrict g) {
  for (int i = 0; i < c; ++i) {
    float* row = g + size_t(i) * c;
    const float* xi = x + size_t(i) * hw;
    for (int j = 0; j <= i; ++j) row[j] = 0.f;
    for (int l = 0; l < hw; ++l) {
      const float f = xi[l];
      const float* t = xt + size_t(l) * c;
#pragma omp simd
      for (int j = 0; j <= i; ++j) row[j] += f * t[j];
    }
  }
  for (int i = 0; i < c; ++i)
    for (int j = i + 1; j < c; ++j) g[size_t(i) * c + j] = g[size_t(j) * c + i];
}

}  // namespace

// One image's u from its z, and the divisor (compact_bilinear_norm, in vectors of eight).
CONVPOOL_AVX2_CLONES float compact_bilinear_normalise(const float* __restrict z, int d, float eps,
                                                      float* __restrict u) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int k = 0;
  for (; k + 8 <= d; k += 8)
#pragma omp simd
    for (int t = 0; t < 8; ++t) {
      const float y = compact_bilinear_root(z[k + t], eps);
      u[k + t] = y;
      lane[t] += y * y;
    }
  for (; k < d; ++k) {
    u[k] = compact_bilinear_root(z[k], eps);
    lane[k & 7] += u[k] * u[k];
  }
  const float s = __builtin_sqrtf(lane_sum_finish(lane)), norm = s < 1e-12f ? 1e-12f : s;
#pragma omp simd
  for (int i = 0; i < d; ++i) u[i] = u[i] / norm;
  return norm;
}

// One image's dz (compact_bilinear_dot and compact_bilinear_dz, in vectors of eight).
CONVPOOL_AVX2_CLONES void compact_bilinear_sketch_grad(const float* __restrict u,
                                                       const float* __restrict du,
                                                       const float* __restrict z, float norm, int d,
                                                       float eps, float* __restrict dz) {
  float lane[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int k = 0;
  for (; k + 8 <= d; k += 8)
#pragma omp simd
    for (int t = 0; t < 8; ++t) lane[t] += u[k + t] * du[k + t];
  for (; k < d; ++k) lane[k & 7] += u[k] * du[k];
  const float dot = lane_sum_finish(lane);
#pragma omp simd
  for (int i = 0; i < d; ++i) dz[i] = compact_bilinear_dz(du[i], u[i], dot, norm, z[i], eps);
}

namespace {

// dx[ch][l] = sum_j m[ch][j] x[j][l] for one image (compact_bilinear_input_grad for each l).
CONVPOOL_AVX2_CLONES void input_grads(const float* __restrict m, const float* __restrict x, int c,
                                      int hw, float* __restrict dx) {
  for (int ch = 0; ch < c; ++ch) {
    float* o = dx + size_t(ch) * hw;
    const float* row = m + size_t(ch) * c;
    for (int l = 0; l < hw; ++l) o[l] = 0.f;
    for (int j = 0; j < c; ++j) {
      const float f = row[j];
      const float* xj = x + size_t(j) * hw;
#pragma omp simd
      for (int l = 0; l < hw; ++l) o[l] += f * xj[l];
    }
  }
}

bool parallel(int n, int c, int hw, int d) { return long(n) * (long(c) * c * hw + d) > 65536; }

}  // namespace

void compact_bilinear_forward(const CompactBilinearSketch& s, const float* x, float* u, float* z,
                              float* norm, int n, int c, int hw, float* scratch) {
  const int d = s.d;
  // Named references, not a structured binding: clang cannot capture one in OpenMP regions.
  const auto hashes = channel_hashes(s, c);
  const ChannelHashes &a = hashes.first, &b = hashes.second;
  const size_t per = compact_bilinear_scratch_floats(1, c, hw, d);
  const uint32_t mask = s.h1.mask;
#pragma omp parallel for schedule(static) if (parallel(n, c, hw, d))
  for (int img = 0; img < n; ++img) {
    const float* xi = x + size_t(img) * c * hw;
    float* g = scratch + size_t(img) * per;
    float* xt = g + size_t(c) * c;
    for (int ch = 0; ch < c; ++ch)
      for (int l = 0; l < hw; ++l) xt[size_t(l) * c + ch] = xi[size_t(ch) * hw + l];
    gram(xi, xt, c, hw, g);
    float* zi = z + size_t(img) * d;
    for (int k = 0; k < d; ++k) zi[k] = 0.f;
    for (int i = 0; i < c; ++i) {
      const float* row = g + size_t(i) * c;
      const uint32_t bi = a.bin[size_t(i)];
      const float si = a.sign[size_t(i)];
      for (int j = 0; j < c; ++j)
        zi[(bi + b.bin[size_t(j)]) & mask] += si * b.sign[size_t(j)] * row[j];
    }
    norm[img] = compact_bilinear_normalise(zi, d, s.eps, u + size_t(img) * d);
  }
}

void compact_bilinear_backward(const CompactBilinearSketch& s, const float* x, const float* u,
                               const float* z, const float* norm, const float* du, float* dx, int n,
                               int c, int hw, float* scratch) {
  const int d = s.d;
  // Named references, not a structured binding: clang cannot capture one in OpenMP regions.
  const auto hashes = channel_hashes(s, c);
  const ChannelHashes &a = hashes.first, &b = hashes.second;
  const size_t per = compact_bilinear_scratch_floats(1, c, hw, d);
  const uint32_t mask = s.h1.mask;
#pragma omp parallel for schedule(static) if (parallel(n, c, hw, d))
  for (int img = 0; img < n; ++img) {
    float* m = scratch + size_t(img) * per;
    float* dz = m + size_t(c) * c;
    const size_t at = size_t(img) * d;
    compact_bilinear_sketch_grad(u + at, du + at, z + at, norm[img], d, s.eps, dz);
    for (int i = 0; i < c; ++i)
      for (int j = 0; j < c; ++j)
        m[size_t(i) * c + j] = a.sign[size_t(i)] * b.sign[size_t(j)] *
                                   dz[(a.bin[size_t(i)] + b.bin[size_t(j)]) & mask] +
                               a.sign[size_t(j)] * b.sign[size_t(i)] *
                                   dz[(a.bin[size_t(j)] + b.bin[size_t(i)]) & mask];
    input_grads(m, x + size_t(img) * c * hw, c, hw, dx + size_t(img) * c * hw);
  }
}

}  // namespace convpool::cpu
