// The CUB half of the pooling baselines (src/cuda/pool_baselines.h); cuDNN's half is in
// pool_cudnn_baseline.cpp, with the other cuDNN calls in translation units of their own.
#include "pool_baselines.h"

#include <cub/device/device_segmented_sort.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "check.h"
#include "context.h"
#include "kernels/pool_avgtopk_baseline.cuh"
#include "pinned.h"

namespace convpool::cuda {

namespace {
// Segment i starts at i * window: offsets computed, not stored.
struct SegmentStart {
  long long window;
  __host__ __device__ long long operator()(long long i) const { return i * window; }
};

template <class Offsets>
cudaError_t sort_segments(void* temp, size_t& temp_bytes, const float* in, float* out,
                          long long outputs, long long window, Offsets begin, cudaStream_t s) {
  return cub::DeviceSegmentedSort::SortKeysDescending(temp, temp_bytes, in, out,
                                                      outputs * window, outputs, begin,
                                                      begin + 1, s);
}
}  // namespace

AvgTopkCubBaseline::AvgTopkCubBaseline(const PoolGeom& g, int n, int k)
    : g_(g), n_(n), k_(k), outputs_((long long)n * g.C * g.OH * g.OW) {
  CP_CHECK(g.PH == 0 && g.PW == 0, "the CUB Avg-TopK baseline takes unpadded windows only");
  const long long window = g.KH * g.KW;
  CP_CHECK(k >= 1 && k <= window, "the CUB Avg-TopK baseline needs 1 <= k <= window");
  const size_t floats = size_t(outputs_ * window);
  segments_ = Buffer(Device::cuda, std::max<size_t>(floats, 1) * sizeof(float));
  sorted_ = Buffer(Device::cuda, std::max<size_t>(floats, 1) * sizeof(float));
  const auto begin = thrust::make_transform_iterator(thrust::make_counting_iterator(0LL),
                                                     SegmentStart{window});
  CP_CUDA_CHECK(sort_segments(nullptr, temp_bytes_, segments_.as<float>(), sorted_.as<float>(),
                              outputs_, window, begin, nullptr));
  temp_ = Buffer(Device::cuda, std::max<size_t>(temp_bytes_, 1));
}

void AvgTopkCubBaseline::forward(const float* x, float* y, void* stream) {
  const long long window = g_.KH * g_.KW;
  const auto begin = thrust::make_transform_iterator(thrust::make_counting_iterator(0LL),
                                                     SegmentStart{window});
  gather_windows(g_, n_, x, segments_.as<float>(), stream);
  size_t bytes = temp_bytes_;
  CP_CUDA_CHECK(sort_segments(temp_.get(), bytes, segments_.as<float>(), sorted_.as<float>(),
                              outputs_, window, begin, as_stream(stream)));
  mean_of_leading(outputs_, int(window), k_, sorted_.as<float>(), y, stream);
}

namespace {
// Milliseconds per run of `run` (reps runs between two events on the context's stream).
double time_ms(const std::function<void()>& run, int reps) {
  cudaStream_t s = context().stream();
  run();  // warm-up: first-call setup outside the timing
  Event start(true), stop(true);
  CP_CUDA_CHECK(cudaEventRecord(start.get(), s));
  for (int r = 0; r < reps; ++r) run();
  CP_CUDA_CHECK(cudaEventRecord(stop.get(), s));
  CP_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0;
  CP_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return double(ms) / reps;
}

double max_abs_difference(const float* a, const float* b, size_t n) {
  std::vector<float> ha(n), hb(n);
  copy_bytes(ha.data(), Device::cpu, a, Device::cuda, n * sizeof(float));
  copy_bytes(hb.data(), Device::cpu, b, Device::cuda, n * sizeof(float));
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(double(ha[i]) - hb[i]));
  return worst;
}
}  // namespace

std::optional<PoolBaselineTiming> time_pool_baseline(const PoolGeom& g, const PoolWindowParams& p,
                                                     int n, const float* x, const float* dy,
                                                     const float* y_ours, int reps) {
  const bool cudnn_method = p.method == PoolMethod::max || p.method == PoolMethod::avg;
  if (g.PH != 0 || g.PW != 0 || g.relu_in || (!cudnn_method && p.method != PoolMethod::avgtopk))
    return std::nullopt;
  const size_t in = size_t(n) * g.C * g.H * g.W, out = size_t(n) * g.C * g.OH * g.OW;
  Buffer y(Device::cuda, out * sizeof(float));
  PoolBaselineTiming t;
  if (cudnn_method) {
    Buffer dx(Device::cuda, in * sizeof(float));
    CudnnPoolingBaseline pool(g, n, p.method == PoolMethod::max);
    t.name = p.method == PoolMethod::max ? "cuDNN max" : "cuDNN avg";
    t.forward_ms = time_ms([&] { pool.forward(x, y.as<float>()); }, reps);
    t.backward_ms = time_ms([&] { pool.backward(x, y.as<float>(), dy, dx.as<float>()); }, reps);
  } else {
    AvgTopkCubBaseline topk(g, n, p.k);
    t.name = "CUB segmented sort";
    t.forward_ms = time_ms([&] { topk.forward(x, y.as<float>(), context().stream()); }, reps);
  }
  t.max_abs_difference = max_abs_difference(y.as<float>(), y_ours, out);
  return t;
}

}  // namespace convpool::cuda
