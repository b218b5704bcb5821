#include "loss.h"

#include <cmath>

#include "kernels/loss_math.cuh"

namespace convpool::cpu {

LossSums softmax_xent(int n, int classes, const float* logits, const uint8_t* labels,
                      float* dlogits, float grad_scale, float label_smoothing) {
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
    // Stable: -log softmax_k = log(sum exp(z - m)) - (z_k - m).
    double sum_shifted = 0;
    if (label_smoothing > 0.f)
      for (int k = 0; k < classes; ++k) sum_shifted += double(z[k]) - m;
    s.loss += smoothed_xent(log_den, double(z[labels[i]]) - m, sum_shifted, classes,
                            label_smoothing);
    s.correct += (arg == labels[i]);
    if (dlogits)
      for (int k = 0; k < classes; ++k) {
        const double p = std::exp(double(z[k]) - m - log_den);
        dlogits[i * classes + k] =
            float((p - smoothed_target(k, labels[i], classes, label_smoothing)) * grad_scale);
      }
  }
  return s;
}

}  // namespace convpool::cpu
