// CPU dense layer: y[N x OUT] = x[N x IN] * W^T + b, W stored [OUT x IN] as in PyTorch.
#pragma once

namespace convpool::cpu {

// `b` (and `db` in backward) may be null: a dense layer without bias.
void dense_forward(int n, int in, int out, const float* x, const float* w, const float* b,
                   float* y);
// Overwrites dw, db and (if non-null) dx.
void dense_backward(int n, int in, int out, const float* x, const float* w, const float* dy,
                    float* dw, float* db, float* dx);

}  // namespace convpool::cpu
