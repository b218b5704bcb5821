// The gradient store of the CPU's element-wise ops (gelu, leaky_relu, dropout).
#pragma once
#include <cstddef>

namespace convpool::cpu {

// With `accumulate` a backward adds to dx instead of overwriting it: the graph asks for that
// when a tensor feeds several nodes and another node's gradient is already there.
inline void store(float* dx, size_t i, float v, bool accumulate) {
  dx[i] = accumulate ? dx[i] + v : v;
}

}  // namespace convpool::cpu
