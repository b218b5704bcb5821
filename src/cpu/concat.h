// CPU kernel: One input of a channel concatenation.
// The CUDA twin is kernels/concat.cuh, tested against this one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace convpool::cpu {

// One input of a channel concatenation: x (n x c x plane) is channels [c_offset, c_offset + c)
// of y (n x c_total x plane); backward takes that slice of dy.
void concat_forward(int n, int c, int c_total, int c_offset, int plane, const float* x, float* y);
void concat_backward(int n, int c, int c_total, int c_offset, int plane, const float* dy,
                     float* dx, bool accumulate);

}  // namespace convpool::cpu
