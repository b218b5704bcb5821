#include "interval_recorder.h"

#include <deque>
#include <map>

#include "check.h"
#include "pinned.h"

namespace convpool::cuda {

struct IntervalRecorder::Impl {
  std::deque<Event> pool;  // deque: events never move once made
  size_t used = 0;
  std::map<int, cudaEvent_t> open;  // key -> start event
  std::vector<std::pair<int, std::pair<cudaEvent_t, cudaEvent_t>>> done;

  cudaEvent_t next() {
    if (used == pool.size()) pool.emplace_back(true);
    return pool[used++].get();
  }
};

IntervalRecorder::IntervalRecorder() : impl_(std::make_unique<Impl>()) {}
IntervalRecorder::~IntervalRecorder() = default;

void IntervalRecorder::begin(int key, void* stream) {
  cudaEvent_t e = impl_->next();
  CP_CUDA_CHECK(cudaEventRecord(e, static_cast<cudaStream_t>(stream)));
  impl_->open[key] = e;
}

void IntervalRecorder::end(int key, void* stream) {
  auto it = impl_->open.find(key);
  CP_CHECK(it != impl_->open.end(), "interval " << key << " ended without beginning");
  cudaEvent_t e = impl_->next();
  CP_CUDA_CHECK(cudaEventRecord(e, static_cast<cudaStream_t>(stream)));
  impl_->done.push_back({key, {it->second, e}});
  impl_->open.erase(it);
}

std::vector<std::pair<int, double>> IntervalRecorder::collect() {
  std::vector<std::pair<int, double>> out;
  for (auto& [key, ev] : impl_->done) {
    CP_CUDA_CHECK(cudaEventSynchronize(ev.second));
    float ms = 0;
    CP_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.first, ev.second));
    out.push_back({key, double(ms)});
  }
  impl_->done.clear();
  impl_->used = 0;  // the pool is reused from the start
  return out;
}

}  // namespace convpool::cuda
