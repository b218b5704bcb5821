// CPU softmax cross-entropy over integer labels, fused with its gradient.
#pragma once
#include <cstdint>

namespace convpool::cpu {

struct LossSums {
  double loss = 0;  // summed over the batch
  int correct = 0;  // argmax == label
};

// dlogits = (softmax(logits) - onehot(label)) * grad_scale; pass null dlogits for eval.
LossSums softmax_xent(int n, int classes, const float* logits, const uint8_t* labels,
                      float* dlogits, float grad_scale);

}  // namespace convpool::cpu
