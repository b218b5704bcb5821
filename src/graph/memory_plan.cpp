#include "memory_plan.h"

#include <algorithm>
#include <numeric>

namespace convpool {

namespace {
constexpr size_t kAlign = 64;  // floats: 256 bytes, cuDNN's and the vector loads' alignment
size_t aligned(size_t floats) { return (floats + kAlign - 1) / kAlign * kAlign; }
}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors) {
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  int steps = 0;
  for (auto& t : tensors) {
    plan.naive += aligned(t.floats);
    steps = std::max(steps, t.last + 1);
  }
  std::vector<size_t> live(size_t(std::max(steps, 0)), 0);
  for (auto& t : tensors)
    for (int s = std::max(t.first, 0); s <= t.last; ++s) live[size_t(s)] += aligned(t.floats);
  for (size_t l : live) plan.peak = std::max(plan.peak, l);

  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return aligned(tensors[a].floats) > aligned(tensors[b].floats);
  });
  std::vector<size_t> placed;
  for (size_t t : order) {
    const size_t size = aligned(tensors[t].floats);
    // The placed tensors that live at the same time, by offset: t goes in the first gap.
    std::vector<size_t> clash;
    for (size_t p : placed)
      if (tensors[p].first <= tensors[t].last && tensors[t].first <= tensors[p].last)
        clash.push_back(p);
    std::sort(clash.begin(), clash.end(),
              [&](size_t a, size_t b) { return plan.offsets[a] < plan.offsets[b]; });
    size_t offset = 0;
    for (size_t p : clash) {
      if (plan.offsets[p] >= offset + size) break;
      offset = std::max(offset, plan.offsets[p] + aligned(tensors[p].floats));
    }
    plan.offsets[t] = offset;
    plan.extent = std::max(plan.extent, offset + size);
    placed.push_back(t);
  }
  return plan;
}

}  // namespace convpool
