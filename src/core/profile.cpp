#include "convpool/profile.h"

#include <atomic>
#include <chrono>
#include <map>

#include "convpool/error.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/interval_recorder.h"
#endif

#ifdef CONVPOOL_HAVE_NVTX
#include <nvtx3/nvToolsExt.h>
#endif

namespace convpool {

namespace regions {
const std::string input = "input", loss = "loss", optimizer = "optimizer", data_wait = "data/wait",
                  epoch = "epoch", eval = "eval";
}

namespace {
std::atomic<RegionTimer*> g_timer{nullptr};

#ifdef CONVPOOL_HAVE_NVTX
nvtxDomainHandle_t domain() {
  static nvtxDomainHandle_t d = nvtxDomainCreateA("convpool");
  return d;
}
#endif
}  // namespace

struct RegionTotals::Impl {
  std::vector<Entry> entries;
  std::map<std::string, int> index;
  std::map<int, std::chrono::steady_clock::time_point> host_open;
  std::string first_error;
#ifdef CONVPOOL_HAVE_CUDA
  cuda::IntervalRecorder device;
#endif
  int key(const std::string& name) {
    auto [it, fresh] = index.emplace(name, int(entries.size()));
    if (fresh) entries.push_back(Entry{name, 0, 0});
    return it->second;
  }
};

RegionTotals::RegionTotals() : impl_(std::make_unique<Impl>()) {}
RegionTotals::~RegionTotals() = default;

void RegionTotals::begin(const std::string& name, Device device, void* stream) {
  const int k = impl_->key(name);
  if (device == Device::cpu) {
    impl_->host_open[k] = std::chrono::steady_clock::now();
    return;
  }
#ifdef CONVPOOL_HAVE_CUDA
  impl_->device.begin(k, stream);
#else
  (void)stream;
#endif
}

void RegionTotals::end(const std::string& name, Device device, void* stream) noexcept {
  try {
    const int k = impl_->key(name);
    if (device == Device::cpu) {
      auto it = impl_->host_open.find(k);
      if (it == impl_->host_open.end()) return;
      impl_->entries[k].ms +=
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - it->second)
              .count();
      impl_->entries[k].count += 1;
      impl_->host_open.erase(it);
      return;
    }
#ifdef CONVPOOL_HAVE_CUDA
    impl_->device.end(k, stream);
#else
    (void)stream;
#endif
  } catch (const std::exception& e) {
    if (impl_->first_error.empty()) impl_->first_error = e.what();
  }
}

std::vector<RegionTotals::Entry> RegionTotals::totals() {
  if (!impl_->first_error.empty()) CP_FAIL("profiling a region failed: " << impl_->first_error);
#ifdef CONVPOOL_HAVE_CUDA
  for (auto& [k, ms] : impl_->device.collect()) {
    impl_->entries[k].ms += ms;
    impl_->entries[k].count += 1;
  }
#endif
  return impl_->entries;
}

void RegionTotals::reset() {
  totals();  // drains pending device intervals
  for (auto& e : impl_->entries) e.ms = 0, e.count = 0;
}

void install_region_timer(RegionTimer* timer) { g_timer.store(timer); }
RegionTimer* region_timer() { return g_timer.load(); }

bool nvtx_built() {
#ifdef CONVPOOL_HAVE_NVTX
  return true;
#else
  return false;
#endif
}

Region::Region(const std::string& name, Device device, void* stream)
    : name_(name), device_(device), stream_(stream), timer_(g_timer.load()) {
#ifdef CONVPOOL_HAVE_NVTX
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.messageType = NVTX_MESSAGE_TYPE_ASCII;
  a.message.ascii = name.c_str();
  nvtxDomainRangePushEx(domain(), &a);
#endif
  if (timer_) timer_->begin(name_, device_, stream_);
}

Region::~Region() {
  if (timer_) timer_->end(name_, device_, stream_);
#ifdef CONVPOOL_HAVE_NVTX
  nvtxDomainRangePop(domain());
#endif
}

}  // namespace convpool
