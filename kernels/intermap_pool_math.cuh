// Inter-map pooling: a sample's feature maps taken in groups of G adjacent ones and pooled
// across the group at each position (maxout's max over feature maps, or their mean), so the
// output has C / G maps. The per-position math, shared by the CPU backend and the CUDA kernels.
// `first` points at the group's first map at the position; the group's maps are `stride`
// floats apart.
#pragma once
#include <cstddef>

#include "hd.cuh"

namespace convpool {

enum class InterMapMode : int { max, mean };

// The member max takes: the first NaN (NaN propagates, as in max pooling), else the first
// largest (ties go to the lowest map, as in max pooling).
CP_HD int intermap_argmax(const float* first, int groups, size_t stride) {
  int best = 0;
  float bv = first[0];
  for (int g = 1; g < groups && bv == bv; ++g) {
    const float v = first[g * stride];
    if (v != v || v > bv) best = g, bv = v;
  }
  return best;
}

CP_HD float intermap_forward(InterMapMode mode, const float* first, int groups, size_t stride) {
  if (mode == InterMapMode::max) return first[intermap_argmax(first, groups, stride) * stride];
  float s = 0.f;
  for (int g = 0; g < groups; ++g) s += first[g * stride];
  return s / float(groups);
}

// The gradient reaching member g of the group from the output's gradient dy.
CP_HD float intermap_grad(InterMapMode mode, const float* first, int groups, size_t stride, int g,
                          float dy) {
  if (mode == InterMapMode::max) return intermap_argmax(first, groups, stride) == g ? dy : 0.f;
  return dy / float(groups);
}

}  // namespace convpool
