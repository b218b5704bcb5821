// CPU convolution: im2col over the whole batch, then one OpenBLAS sgemm per direction.
#pragma once
#include <cstddef>

namespace convpool::cpu {

struct ConvGeom {
  int C, H, W;  // input
  int OC, KH, KW, SH, SW, PH, PW;
  int OH, OW;
  int K() const { return C * KH * KW; }
  int P() const { return OH * OW; }
};

// Floats of scratch needed for a batch of n: the column matrix and a transposed output.
size_t conv_col_floats(const ConvGeom& g, int n);
size_t conv_tmp_floats(const ConvGeom& g, int n);

// y = conv(x, w) + b (b null: no bias). col (K x n*P) is left filled for backward; tmp is scratch.
void conv_forward(const ConvGeom& g, int n, const float* x, const float* w, const float* b,
                  float* y, float* col, float* tmp, bool relu = false);
// Backward in its two directions. The filter direction uses col as left by conv_forward on
// the same x, overwrites dw and db (unless null), and leaves dy transposed at the front of tmp; the data
// direction, which must follow it, reads that and overwrites dx.
// `relu_y`: the output of a forward with relu set; dy then counts only where it is above 0
// (for both directions: the data direction reads the masked copy).
void conv_backward_filter(const ConvGeom& g, int n, const float* dy, const float* col, float* dw,
                          float* db, float* tmp, const float* relu_y = nullptr);
void conv_backward_data(const ConvGeom& g, int n, const float* w, float* dx, float* tmp);

}  // namespace convpool::cpu
