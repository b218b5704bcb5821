// Softmax cross-entropy with label smoothing, per sample and per class: shared by the CPU
// loss (src/cpu/loss.cpp) and the CUDA kernel (kernels/loss.cu). Label smoothing (Szegedy et
// al. 2016; PyTorch's CrossEntropyLoss(label_smoothing=eps)) trains towards the target
// (1 - eps) onehot(label) + eps / classes. With eps = 0 both formulas reduce, bit for bit, to
// plain cross-entropy.
#pragma once
#include "hd.cuh"

namespace convpool {

// The target probability of class k.
CP_HD double smoothed_target(int k, int label, int classes, float smoothing) {
  return (k == label ? 1.0 - double(smoothing) : 0.0) + double(smoothing) / classes;
}

// One sample's loss, -sum_k target_k log softmax_k = log_den - sum_k target_k (z_k - m), from
// log_den = log sum_k exp(z_k - m), label_shifted = z_label - m and sum_shifted = the sum over
// classes of z_k - m (read only when smoothing > 0).
CP_HD double smoothed_xent(double log_den, double label_shifted, double sum_shifted, int classes,
                           float smoothing) {
  const double hard = log_den - (1.0 - double(smoothing)) * label_shifted;
  return smoothing > 0.f ? hard - double(smoothing) / classes * sum_shifted : hard;
}

}  // namespace convpool
