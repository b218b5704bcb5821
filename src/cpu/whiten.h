// Patch whitening (airbench's first layer, Keller Jordan 2024): convolution filters made from
// a batch of real inputs, so that the convolution's outputs over those patches are
// decorrelated with unit variance. Filter i is v_i / sqrt(lambda_i + eps) for the
// eigenvectors v_i of the patches' covariance (largest eigenvalue first); with twice as many
// filters as patch elements, the second half is the first negated (so a following ReLU keeps
// both signs).
#pragma once
#include <vector>

#include "conv.h"

namespace convpool::cpu {

// x: n samples of g's input (host memory). Returns filters x (C*KH*KW) weights, [OC, C, KH, KW]
// order. `filters` must be C*KH*KW or twice that.
std::vector<float> whitening_filters(const ConvGeom& g, int n, const float* x, int filters,
                                     double eps);

// The eigenvalues (descending) and unit eigenvectors (rows, in the same order) of the
// symmetric k x k matrix a (row-major), by cyclic Jacobi rotations.
void symmetric_eigen(std::vector<double> a, int k, std::vector<double>& values,
                     std::vector<double>& vectors);

}  // namespace convpool::cpu
