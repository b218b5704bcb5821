// CUDA launchers of the bias add and its gradient (kernels/bias.cu).
// Launchers take device pointers and a stream (void*, so this header needs no CUDA headers),
// launch, and check the launch; only built when CONVPOOL_HAVE_CUDA.
#pragma once

namespace convpool::cuda {

// kernels/bias.cu: y[n][c][p] += b[c]; db[c] = sum over n, p of dy[n][c][p] (overwritten).
void bias_add(float* y, const float* b, int n, int c, int plane, void* stream);
void bias_grad(const float* dy, float* db, int n, int c, int plane, void* stream);

}  // namespace convpool::cuda
