// Activation memory planned from lifetimes: tensors whose lifetimes do not overlap share
// memory. Each tensor lives over an inclusive interval of steps of the training timeline
// (forward of node 0..N-1, the loss, backward of node N-1..0); the planner gives each an
// offset in one block so that no two tensors live at once in the same bytes.
#pragma once
#include <cstddef>
#include <vector>

namespace convpool {

struct PlannedTensor {
  size_t floats;
  int first, last;  // steps, inclusive
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // floats, per tensor, 64-float (256-byte) aligned
  size_t extent = 0;            // floats the block needs
  size_t peak = 0;              // most floats alive at one step: no plan can need less
  size_t naive = 0;             // one buffer per tensor
};

// Up to `greedy_limit` tensors: greedy by size (largest first), each at the lowest offset where
// it fits beside the tensors already placed whose lifetimes overlap its own: the heuristic of
// TFLite's and XLA's arena planners, within a few percent of the peak on chains and residual
// nets, but quadratic in the number of tensors. Above it: a scan in time order that frees each
// tensor after its last step and places the next in the best-fitting free block (O(n log n)),
// so a model of 100,000 layers plans in well under a second.
constexpr size_t kPlanGreedyLimit = 4096;
MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors,
                       size_t greedy_limit = kPlanGreedyLimit);

}  // namespace convpool
