// CPU softmax cross-entropy over integer labels, fused with its gradient.
#pragma once
#include <cstdint>

namespace convpool::cpu {

struct LossSums {
  double loss = 0;  // summed over the batch
  int correct = 0;  // argmax == label
};

// dlogits = (softmax(logits) - target) * grad_scale; pass null dlogits for eval. The target
// is onehot(label), smoothed by `label_smoothing` (kernels/loss_math.cuh).
LossSums softmax_xent(int n, int classes, const float* logits, const uint8_t* labels,
                      float* dlogits, float grad_scale, float label_smoothing = 0.f);

}  // namespace convpool::cpu
