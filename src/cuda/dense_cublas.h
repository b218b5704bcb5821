// Dense layer on the GPU (cuBLAS), the same contract as cpu/dense.h.
#pragma once

namespace convpool::cuda {

void dense_forward(int n, int in, int out, const float* x, const float* w, const float* b, float* y,
                   void* stream);
void dense_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                    float* dw, float* db, float* dx, void* stream);

}  // namespace convpool::cuda
