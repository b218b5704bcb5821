#include "whiten.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "convpool/error.h"

namespace convpool::cpu {

void symmetric_eigen(std::vector<double> a, int k, std::vector<double>& values,
                     std::vector<double>& vectors) {
  std::vector<double> v(size_t(k) * k, 0.0);
  for (int i = 0; i < k; ++i) v[size_t(i) * k + i] = 1.0;
  auto at = [&](int r, int c) -> double& { return a[size_t(r) * k + c]; };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, total = 0;
    for (int r = 0; r < k; ++r)
      for (int c = 0; c < k; ++c) (r == c ? total : off) += at(r, c) * at(r, c);
    if (off <= 1e-24 * std::max(total, 1e-300)) break;
    for (int p = 0; p < k; ++p)
      for (int q = p + 1; q < k; ++q) {
        if (std::abs(at(p, q)) < 1e-300) continue;
        // The rotation that zeroes a[p][q] (Golub and Van Loan, algorithm 8.4.1).
        const double theta = (at(q, q) - at(p, p)) / (2 * at(p, q));
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int j = 0; j < k; ++j) {  // rows p and q
          const double apj = at(p, j), aqj = at(q, j);
          at(p, j) = c * apj - s * aqj;
          at(q, j) = s * apj + c * aqj;
        }
        for (int j = 0; j < k; ++j) {  // columns p and q
          const double ajp = at(j, p), ajq = at(j, q);
          at(j, p) = c * ajp - s * ajq;
          at(j, q) = s * ajp + c * ajq;
        }
        for (int j = 0; j < k; ++j) {  // eigenvectors as columns of v
          const double vjp = v[size_t(j) * k + p], vjq = v[size_t(j) * k + q];
          v[size_t(j) * k + p] = c * vjp - s * vjq;
          v[size_t(j) * k + q] = s * vjp + c * vjq;
        }
      }
  }
  std::vector<int> order(static_cast<size_t>(k), 0);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int x, int y) { return at(x, x) > at(y, y); });
  values.assign(size_t(k), 0.0);
  vectors.assign(size_t(k) * k, 0.0);
  for (int i = 0; i < k; ++i) {
    values[size_t(i)] = at(order[size_t(i)], order[size_t(i)]);
    for (int j = 0; j < k; ++j) vectors[size_t(i) * k + j] = v[size_t(j) * k + order[size_t(i)]];
  }
}

std::vector<float> whitening_filters(const ConvGeom& g, int n, const float* x, int filters,
                                     double eps) {
  const int K = g.K();
  if (filters != K && filters != 2 * K)
    CP_USER_ERROR("init=whiten needs filters=" << K << " or " << 2 * K
                                               << " (the patch size C*KH*KW, or twice it)");
  // The patches that lie wholly inside the input (padding would bias the statistics).
  std::vector<double> mean(static_cast<size_t>(K), 0.0), cov(static_cast<size_t>(K) * K, 0.0),
      patch(static_cast<size_t>(K), 0.0);
  size_t count = 0;
  for (int i = 0; i < n; ++i)
    for (int oh = 0; oh < g.OH; ++oh)
      for (int ow = 0; ow < g.OW; ++ow) {
        const int h0 = oh * g.SH - g.PH, w0 = ow * g.SW - g.PW;
        if (h0 < 0 || w0 < 0 || h0 + g.KH > g.H || w0 + g.KW > g.W) continue;
        for (int c = 0, e = 0; c < g.C; ++c)
          for (int kh = 0; kh < g.KH; ++kh)
            for (int kw = 0; kw < g.KW; ++kw, ++e)
              patch[size_t(e)] = x[((size_t(i) * g.C + c) * g.H + h0 + kh) * g.W + w0 + kw];
        for (int r = 0; r < K; ++r) {
          mean[size_t(r)] += patch[size_t(r)];
          for (int c = 0; c < K; ++c) cov[size_t(r) * K + c] += patch[size_t(r)] * patch[size_t(c)];
        }
        ++count;
      }
  if (count < 2) CP_USER_ERROR("init=whiten: the data batch holds fewer than 2 whole patches");
  for (int r = 0; r < K; ++r)
    for (int c = 0; c < K; ++c)
      cov[size_t(r) * K + c] = (cov[size_t(r) * K + c] - mean[size_t(r)] * mean[size_t(c)] / double(count)) /
                               double(count - 1);
  std::vector<double> values, vectors;
  symmetric_eigen(cov, K, values, vectors);
  std::vector<float> w(size_t(filters) * K);
  for (int f = 0; f < K; ++f) {
    const double scale = 1.0 / std::sqrt(std::max(values[size_t(f)], 0.0) + eps);
    for (int e = 0; e < K; ++e) {
      w[size_t(f) * K + e] = float(vectors[size_t(f) * K + e] * scale);
      if (filters == 2 * K) w[size_t(f + K) * K + e] = -w[size_t(f) * K + e];
    }
  }
  return w;
}

}  // namespace convpool::cpu
