#include "cli_measure.h"

#include <chrono>
#include <cstdio>
#include <numeric>

#include "convpool/device.h"

namespace convpool::cli {

namespace {
// Images [first, first + count) of `data` as a data set of their own (copied: they are few).
Dataset slice(const Dataset& data, size_t first, size_t count) {
  std::vector<size_t> indices(count);
  std::iota(indices.begin(), indices.end(), first);
  return select_images(data, indices);
}
}  // namespace

Dataset synthetic_for(const Graph& graph, size_t images) {
  const Shape in = graph.input_shape(1);
  if (in.c != kCifarChannels || in.h != in.w)
    CP_USER_ERROR("the model takes " << in.c << "x" << in.h << "x" << in.w
                                     << " inputs; profiles and benchmarks feed 3 x side x side "
                                        "images");
  const size_t classes = graph.output_shape(1).numel();
  if (classes < 1 || classes > 256)
    CP_USER_ERROR("the model gives " << classes << " outputs; labels are 8-bit (at most 256)");
  return synthetic_cifar(images, 1, in.h, int(classes));
}

StepTiming time_training_steps(Graph& graph, const TrainConfig& cfg, const Dataset& data,
                               int warmup, int steps, RegionTotals* timer, bool profiler_range) {
  const size_t B = size_t(cfg.batch);
  CP_CHECK(data.size() >= (size_t(warmup) + size_t(steps)) * B, "not enough images to time");
  const Dataset warm = slice(data, 0, size_t(warmup) * B);
  const Dataset measured = slice(data, size_t(warmup) * B, size_t(steps) * B);
  profiler_range = profiler_range && graph.device() == Device::cuda;
  TrainConfig c = cfg;
  c.out_dir.clear();  // nothing is written
  c.classes = data.classes;  // what the data (and so the model) has
  c.input.side = data.side;
  c.non_finite_advice =
      "the model overflows at the default learning rate on these images (profile and bench time "
      "it as given; train it with a lower --lr)";
  Trainer trainer(graph, c);
  if (warmup > 0) trainer.train_epoch(warm);  // algorithm choice, graph capture, caches
  if (timer) {
    timer->reset();
    install_region_timer(timer);
  }
  if (profiler_range) cuda_profiler_start();
  const auto t0 = std::chrono::steady_clock::now();
  EpochMetrics m;
  try {
    m = trainer.train_epoch(measured);  // ends with a device sync on CUDA
  } catch (...) {
    install_region_timer(nullptr);
    if (profiler_range) cuda_profiler_stop();
    throw;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (profiler_range) cuda_profiler_stop();
  install_region_timer(nullptr);
  StepTiming t;
  t.steps = steps;
  t.batch = cfg.batch;
  t.seconds = seconds;
  t.data_wait_seconds = m.data_wait_seconds;
  return t;
}

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1 << 30)
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1 << 30));
  else if (bytes >= 1 << 20)
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1 << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024);
  return buf;
}

}  // namespace convpool::cli
