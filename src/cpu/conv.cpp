#include "conv.h"

#include <algorithm>
#include <cstring>

#include "kernels/activation_math.cuh"
#include "gemm.h"

namespace convpool::cpu {

size_t conv_col_floats(const ConvGeom& g, int n) { return size_t(g.K()) * n * g.P(); }
size_t conv_tmp_floats(const ConvGeom& g, int n) {
  // forward: the OC x nP output before transposition; backward: dy as OC x nP, then the
  // K x nP column gradient after it.
  return size_t(g.OC + g.K()) * n * g.P();
}

namespace {

// First output column whose input column ow*S - P + kw is >= 0, given lo = P - kw.
inline int valid_begin(int lo, int S) { return lo <= 0 ? 0 : (lo + S - 1) / S; }
// One past the last output column whose input column is < W, given hi = W + P - kw.
inline int valid_end(int hi, int S, int OW) { return hi <= 0 ? 0 : std::min(OW, (hi - 1) / S + 1); }

// col[k][i*P + p] = x_i[c][oh*SH - PH + kh][ow*SW - PW + kw], zero outside the image.
void im2col(const ConvGeom& g, int n, const float* x, float* col) {
  const size_t NP = size_t(n) * g.P();
#pragma omp parallel for collapse(2) schedule(static)
  for (int k = 0; k < g.K(); ++k)
    for (int i = 0; i < n; ++i) {
      const int c = k / (g.KH * g.KW), kh = (k / g.KW) % g.KH, kw = k % g.KW;
      const float* xc = x + (size_t(i) * g.C + c) * g.H * g.W;
      float* out = col + k * NP + size_t(i) * g.P();
      for (int oh = 0; oh < g.OH; ++oh) {
        const int h = oh * g.SH - g.PH + kh;
        float* row = out + oh * g.OW;
        if (h < 0 || h >= g.H) {
          std::memset(row, 0, sizeof(float) * g.OW);
          continue;
        }
        // Outputs [ow0, ow1) read inside the image; the rest read padding.
        const int ow0 = valid_begin(g.PW - kw, g.SW), ow1 = valid_end(g.W + g.PW - kw, g.SW, g.OW);
        for (int ow = 0; ow < ow0; ++ow) row[ow] = 0.f;
        const float* src = xc + h * g.W + ow0 * g.SW - g.PW + kw;
        if (g.SW == 1) {
          std::memcpy(row + ow0, src, sizeof(float) * std::max(ow1 - ow0, 0));
        } else {
          for (int ow = ow0; ow < ow1; ++ow) row[ow] = src[(ow - ow0) * g.SW];
        }
        for (int ow = std::max(ow1, ow0); ow < g.OW; ++ow) row[ow] = 0.f;
      }
    }
}

// dx_i[c][h][w] += sum of dcol over the (k, p) that read it. Parallel over (i, c): each
// output plane is written by one thread, so the sum is deterministic.
void col2im(const ConvGeom& g, int n, const float* dcol, float* dx) {
  const size_t NP = size_t(n) * g.P();
#pragma omp parallel for collapse(2) schedule(static)
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < g.C; ++c) {
      float* dxc = dx + (size_t(i) * g.C + c) * g.H * g.W;
      std::memset(dxc, 0, sizeof(float) * g.H * g.W);
      for (int kh = 0; kh < g.KH; ++kh)
        for (int kw = 0; kw < g.KW; ++kw) {
          const int k = (c * g.KH + kh) * g.KW + kw;
          const float* in = dcol + k * NP + size_t(i) * g.P();
          for (int oh = 0; oh < g.OH; ++oh) {
            const int h = oh * g.SH - g.PH + kh;
            if (h < 0 || h >= g.H) continue;
            const int ow0 = valid_begin(g.PW - kw, g.SW),
                      ow1 = valid_end(g.W + g.PW - kw, g.SW, g.OW);
            float* dst = dxc + h * g.W + ow0 * g.SW - g.PW + kw;
            const float* row = in + oh * g.OW;
            for (int ow = ow0; ow < ow1; ++ow) dst[(ow - ow0) * g.SW] += row[ow];
          }
        }
    }
}

}  // namespace

void conv_forward(const ConvGeom& g, int n, const float* x, const float* w, const float* b,
                  float* y, float* col, float* tmp, bool relu) {
  const int NP = n * g.P();
  im2col(g, n, x, col);
  // tmp[OC x NP] = W[OC x K] * col[K x NP]
  sgemm_split_n(false, g.OC, NP, g.K(), w, g.K(), col, NP, tmp, NP);
#pragma omp parallel for collapse(2) schedule(static)
  for (int i = 0; i < n; ++i)
    for (int oc = 0; oc < g.OC; ++oc) {
      const float* src = tmp + size_t(oc) * NP + size_t(i) * g.P();
      float* dst = y + (size_t(i) * g.OC + oc) * g.P();
      const float bias = b ? b[oc] : 0.f;  // no bias: + 0 leaves every value as it is
      if (relu) {
        for (int p = 0; p < g.P(); ++p) dst[p] = relu_forward(src[p] + bias);
      } else {
        for (int p = 0; p < g.P(); ++p) dst[p] = src[p] + bias;
      }
    }
}

void conv_backward_filter(const ConvGeom& g, int n, const float* dy, const float* col, float* dw,
                          float* db, float* tmp, const float* relu_y) {
  const int NP = n * g.P();
  // Reuse the front of tmp for dy as [OC x NP]; the column gradient goes after it.
  float* dyt = tmp;
#pragma omp parallel for collapse(2) schedule(static)
  for (int oc = 0; oc < g.OC; ++oc)
    for (int i = 0; i < n; ++i) {
      const size_t from = (size_t(i) * g.OC + oc) * g.P();
      float* to = dyt + size_t(oc) * NP + size_t(i) * g.P();
      if (relu_y) {
        for (int p = 0; p < g.P(); ++p) to[p] = relu_backward(relu_y[from + p], dy[from + p]);
      } else {
        std::memcpy(to, dy + from, sizeof(float) * g.P());
      }
    }
  for (int oc = 0; db && oc < g.OC; ++oc) {
    double s = 0;
    const float* row = dyt + size_t(oc) * NP;
    for (int j = 0; j < NP; ++j) s += row[j];
    db[oc] = float(s);
  }
  // dW[OC x K] = dyt[OC x NP] * col^T[NP x K]
  sgemm_split_k(g.OC, g.K(), NP, dyt, NP, col, NP, dw, g.K());
}

void conv_backward_data(const ConvGeom& g, int n, const float* w, float* dx, float* tmp) {
  const int NP = n * g.P();
  const float* dyt = tmp;  // left by conv_backward_filter
  // dcol[K x NP] = W^T[K x OC] * dyt[OC x NP]; it lives after dyt in the scratch.
  float* dcol = tmp + size_t(g.OC) * NP;
  sgemm_split_n(true, g.K(), NP, g.OC, w, g.K(), dyt, NP, dcol, NP);
  col2im(g, n, dcol, dx);
}

}  // namespace convpool::cpu
