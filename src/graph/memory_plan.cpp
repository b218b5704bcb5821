#include "memory_plan.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <queue>
#include <set>
#include <utility>

namespace convpool {

namespace {
constexpr size_t kAlign = 64;  // floats: 256 bytes, cuDNN's and the vector loads' alignment
size_t aligned(size_t floats) { return (floats + kAlign - 1) / kAlign * kAlign; }

void place_greedy_by_size(const std::vector<PlannedTensor>& tensors, MemoryPlan& plan) {
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
}

// Free blocks of the arena below its top, by offset and by size, coalesced.
class FreeBlocks {
 public:
  // The offset of a block of `size` floats: the smallest free block that holds it, else the
  // top of the arena (taking a free block that ends there).
  size_t take(size_t size, size_t& top) {
    auto fit = by_size_.lower_bound({size, 0});
    if (fit != by_size_.end()) {
      const auto [block, offset] = *fit;
      erase(offset, block);
      if (block > size) insert(offset + size, block - size);
      return offset;
    }
    if (!by_offset_.empty()) {
      const auto last = std::prev(by_offset_.end());
      if (last->first + last->second == top) {
        const size_t offset = last->first;
        erase(offset, last->second);
        top = offset + size;
        return offset;
      }
    }
    const size_t offset = top;
    top += size;
    return offset;
  }
  void give(size_t offset, size_t size) {
    auto next = by_offset_.lower_bound(offset);
    if (next != by_offset_.end() && offset + size == next->first) {
      size += next->second;
      erase(next->first, next->second);
    }
    auto prev = by_offset_.lower_bound(offset);
    if (prev != by_offset_.begin()) {
      --prev;
      if (prev->first + prev->second == offset) {
        offset = prev->first;
        size += prev->second;
        erase(prev->first, prev->second);
      }
    }
    insert(offset, size);
  }

 private:
  void insert(size_t offset, size_t size) {
    by_offset_.emplace(offset, size);
    by_size_.emplace(size, offset);
  }
  void erase(size_t offset, size_t size) {
    by_offset_.erase(offset);
    by_size_.erase({size, offset});
  }
  std::map<size_t, size_t> by_offset_;          // offset -> size
  std::set<std::pair<size_t, size_t>> by_size_;  // (size, offset)
};

void place_in_time_order(const std::vector<PlannedTensor>& tensors, MemoryPlan& plan) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return tensors[a].first < tensors[b].first; });
  // The placed tensors still alive, the one that dies first on top.
  using Alive = std::pair<int, size_t>;  // (last step, tensor)
  std::priority_queue<Alive, std::vector<Alive>, std::greater<Alive>> alive;
  FreeBlocks free;
  size_t top = 0;
  for (size_t t : order) {
    while (!alive.empty() && alive.top().first < tensors[t].first) {
      const size_t dead = alive.top().second;
      alive.pop();
      free.give(plan.offsets[dead], aligned(tensors[dead].floats));
    }
    plan.offsets[t] = free.take(aligned(tensors[t].floats), top);
    alive.push({tensors[t].last, t});
  }
  plan.extent = top;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedTensor>& tensors, size_t greedy_limit) {
  MemoryPlan plan;
  plan.offsets.assign(tensors.size(), 0);
  int steps = 0;
  for (auto& t : tensors) {
    plan.naive += aligned(t.floats);
    steps = std::max(steps, t.last + 1);
  }
  // Floats alive at each step, from the changes at each tensor's first and after its last step.
  std::vector<long long> change(size_t(std::max(steps, 0)) + 1, 0);
  for (auto& t : tensors) {
    if (t.last < std::max(t.first, 0)) continue;
    change[size_t(std::max(t.first, 0))] += (long long)aligned(t.floats);
    change[size_t(t.last) + 1] -= (long long)aligned(t.floats);
  }
  long long live = 0;
  for (long long c : change) plan.peak = std::max(plan.peak, size_t(live += c));

  if (tensors.size() <= greedy_limit)
    place_greedy_by_size(tensors, plan);
  else
    place_in_time_order(tensors, plan);
  return plan;
}

}  // namespace convpool
