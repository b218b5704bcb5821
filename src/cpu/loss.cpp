#include "loss.h"

#include <cmath>

namespace convpool::cpu {

LossSums softmax_xent(int n, int classes, const float* logits, const uint8_t* labels,
                      float* dlogits, float grad_scale) {
  LossSums s;
  for (int i = 0; i < n; ++i) {
    const float* z = logits + i * classes;
    int arg = 0;
    float m = z[0];
    for (int k = 1; k < classes; ++k)
      if (z[k] > m) m = z[k], arg = k;
    double den = 0;
    for (int k = 0; k < classes; ++k) den += std::exp(double(z[k]) - m);
    const double log_den = std::log(den);
    // Stable: -log softmax_label = log(sum exp(z - m)) - (z_label - m).
    s.loss += log_den - (double(z[labels[i]]) - m);
    s.correct += (arg == labels[i]);
    if (dlogits)
      for (int k = 0; k < classes; ++k) {
        const double p = std::exp(double(z[k]) - m - log_den);
        dlogits[i * classes + k] = float((p - (k == labels[i] ? 1.0 : 0.0)) * grad_scale);
      }
  }
  return s;
}

}  // namespace convpool::cpu
