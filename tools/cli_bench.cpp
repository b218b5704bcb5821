// convpool bench: benchmarks of the production code paths, each printing a table (or --json)
//   bench train   whole training steps (CUDA Graph on the GPU): images/s, peak memory
//   bench pool    one pooling layer's forward and backward: time, GB/s, share of copy bandwidth,
//                 and on CUDA the vendor-library baseline (cuDNN, CUB) with the ratios
//   bench conv    each convolution of a model: the backend's algorithms, time per direction
//   bench checkpoint  save and load time against the number of tensors (cli_bench_checkpoint)
// Peers (PyTorch) run in bench/peer-compare, which calls these with --json.
#include <cctype>
#include <cerrno>
#include <omp.h>

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>

#include "cli_common.h"
#include "cli_measure.h"
#include "convpool/buffer.h"
#include "convpool/conv_engine.h"
#include "convpool/data.h"
#include "convpool/device.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#ifdef CONVPOOL_HAVE_CUDA
#include "cuda/pool_baselines.h"
#endif

namespace convpool::cli {

namespace {

struct BenchOptions {
  std::string model = default_model_path(), pool, global_pool, device = "auto", batches = "32,256";
  std::string method = "max", shape = "256,64,32,32", tensors = "1000,10000";
  int size = 2, stride = 0, pad = 0, warmup = 10, steps = 50, reps = 20, batch = 32, threads = 0,
      checkpoint_reps = 5;
  bool json = false, tf32 = false, engines = false;
};

std::vector<int> parse_ints(const std::string& text, const char* flag, size_t count) {
  std::vector<int> v;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    char* end = nullptr;
    errno = 0;
    const long x = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end || x < 1)
      CP_USER_ERROR(flag << " '" << text << "': '" << item << "' is not a positive integer");
    if (x > (1 << 20) || errno == ERANGE)
      CP_USER_ERROR(flag << " '" << text << "': " << item << " is over the limit of " << (1 << 20));
    v.push_back(int(x));
  }
  if (count && v.size() != count)
    CP_USER_ERROR(flag << " '" << text << "' needs " << count << " comma-separated values");
  if (v.empty()) CP_USER_ERROR(flag << " is empty");
  return v;
}

void fill_random(const Tensor& t, uint64_t seed, float lo, float hi) {
  if (!t.data) return;
  std::vector<float> host(t.numel());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (auto& v : host) v = u(rng);
  copy_bytes(t.data, t.device, host.data(), Device::cpu, host.size() * sizeof(float));
}

// A training-mode context at step 1; on CUDA the step also lives in device memory.
struct BenchContext {
  Buffer device_step;
  StepContext ctx;
  explicit BenchContext(Device d) {
    ctx.device = d;
    ctx.training = true;
    ctx.seed = 1;
    ctx.step = 1;
    if (d == Device::cuda) {
      device_step = Buffer(Device::cuda, sizeof(uint64_t));
      const uint64_t one = 1;
      copy_bytes(device_step.get(), Device::cuda, &one, Device::cpu, sizeof one);
      ctx.device_step = device_step.as<uint64_t>();
    }
  }
};

void print_json(const nlohmann::ordered_json& j) { std::printf("%s\n", j.dump(2).c_str()); }

std::string device_line(Device d) { return d == Device::cuda ? cuda_device_report() : "cpu"; }

int bench_train(const BenchOptions& o, Device device) {
  const std::vector<int> batches = parse_ints(o.batches, "--batch", 0);
  nlohmann::ordered_json out;
  out["device"] = device_line(device);
  out["model"] = o.model;
  out["pool"] = o.pool;
  out["global_pool"] = o.global_pool;
  if (!o.json)
    std::printf(
        "convpool bench train: %s on %s, %d warm-up + %d timed steps, synthetic data\n\n"
        "%7s %10s %12s %14s\n",
        o.model.c_str(), device_line(device).c_str(), o.warmup, o.steps, "batch", "step ms",
        "images/s", "peak memory");
  for (int batch : batches) {
    ModelSpec spec = load_model_file(o.model);
    if (!o.global_pool.empty()) apply_global_pool_override(spec, o.global_pool);
    if (!o.pool.empty()) apply_pool_override(spec, o.pool);
    reset_peak_memory(device);
    auto graph = Graph::build(spec, GraphOptions{device, batch, 2});
    graph->init_params(1);
    const Dataset data = synthetic_for(*graph, size_t(o.warmup + o.steps) * batch);
    TrainConfig cfg;
    cfg.batch = batch;
    cfg.device = device;
    const StepTiming t = time_training_steps(*graph, cfg, data, o.warmup, o.steps);
    const size_t peak = memory_stats(device).peak;
    out["runs"].push_back({{"batch", batch},
                           {"step_ms", t.step_ms()},
                           {"images_per_second", t.images_per_second()},
                           {"peak_memory_bytes", peak},
                           {"cuda_graph", device == Device::cuda}});
    if (!o.json)
      std::printf("%7d %10.3f %12.0f %14s\n", batch, t.step_ms(), t.images_per_second(),
                  human_bytes(double(peak)).c_str());
  }
  if (o.json) print_json(out);
  return 0;
}

// The vendor-library baseline of this pooling layer on CUDA (src/cuda/pool_baselines.h):
// cuDNN for max and avg, CUB's segmented sort for avgtopk; nothing on the CPU, for other
// methods, or for padded, global or ReLU-fused windows.
struct LibraryBaseline {
  std::string name;
  double forward_ms = 0, backward_ms = -1, max_abs_difference = 0;
};
std::optional<LibraryBaseline> time_library_baseline(const BenchOptions& o, Graph& graph, int C,
                                                     int H, int W, int N, Device device) {
#ifdef CONVPOOL_HAVE_CUDA
  const std::string method = o.method.substr(0, o.method.find(':'));
  if (device != Device::cuda || o.method.find("size=") != std::string::npos ||
      o.method.find("global") != std::string::npos)
    return std::nullopt;  // the geometry is the options' own
  const int stride = o.stride ? o.stride : o.size;
  PoolWindowParams p;
  if (method == "max") {
    p.method = PoolMethod::max;
  } else if (method == "avg") {
    p.method = PoolMethod::avg;
  } else if (method == "avgtopk") {
    p.method = PoolMethod::avgtopk;
    const std::string d = graph.layer(0).describe();  // "avgtopk k=3 2x2 stride 2"
    const size_t at = d.find(" k=");
    if (at == std::string::npos) return std::nullopt;
    p.k = std::stoi(d.substr(at + 3));
  } else {
    return std::nullopt;
  }
  const PoolGeom g =
      make_pool_geom(C, H, W, o.size, o.size, stride, stride, o.pad, o.pad, false, false);
  const auto t = cuda::time_pool_baseline(g, p, N, graph.input(N).data, graph.gradient(1, N).data,
                                          graph.output(N).data, o.reps);
  if (!t) return std::nullopt;
  return LibraryBaseline{t->name, t->forward_ms, t->backward_ms, t->max_abs_difference};
#else
  (void)o, (void)graph, (void)C, (void)H, (void)W, (void)N, (void)device;
  return std::nullopt;
#endif
}

int bench_pool(const BenchOptions& o, Device device) {
  const auto s = parse_ints(o.shape, "--shape", 4);
  const int N = s[0], C = s[1], H = s[2], W = s[3];
  // "avgtopk:k=2,size=3" -> "pool avgtopk k=2 size=3"; --size/--stride/--pad fill the rest.
  // A number after a comma continues the list before it ("sizes=1,3,5").
  std::string words = o.method.substr(0, o.method.find(':'));
  if (const size_t colon = o.method.find(':'); colon != std::string::npos) {
    std::istringstream items(o.method.substr(colon + 1));
    bool after_value = false;
    for (std::string item; std::getline(items, item, ',');) {
      const bool number = !item.empty() && std::isdigit(static_cast<unsigned char>(item[0]));
      words += (number && after_value ? "," : " ") + item;
      after_value = item.find('=') != std::string::npos || (number && after_value);
    }
  }
  const std::string first = words.substr(0, words.find(' '));
  // A window pooling op (weighted_pool) is its own layer type, not a pool method; the other
  // pooling ops (intermap_pool, pyramid_pool) take no window flags either.
  const bool window_op = find_window_pooling_op(first) != nullptr;
  const bool other_op = find_other_pooling_op(first) || find_global_encoder_op(first);
  std::ostringstream text;
  text << "input channels=" << C << " height=" << H << " width=" << W << "\n"
       << (window_op || other_op ? "" : "pool ") << words;
  if (!other_op && words.find("global") == std::string::npos &&
      words.find("size=") == std::string::npos)
    text << " size=" << o.size << " stride=" << (o.stride ? o.stride : o.size) << " pad=" << o.pad;
  GraphOptions gopts{device, N, 0};
  gopts.input_gradient = true;  // the layer's backward must write dx
  // The layer is made of --method, --shape and the window flags: a message names them all,
  // not the method alone, after the layer's own words.
  std::unique_ptr<Graph> graph;
  try {
    graph = Graph::build(parse_model_text(text.str() + "\n", "bench pool"), gopts);
  } catch (const Error& e) {
    std::string why = e.what();
    if (const size_t at = why.find("': "); at != std::string::npos) why = why.substr(at + 3);
    else if (const size_t colon = why.find(": "); colon != std::string::npos) why = why.substr(colon + 2);
    std::ostringstream window;
    if (!other_op)
      window << " (--size " << o.size << ", --stride " << (o.stride ? o.stride : o.size)
             << ", --pad " << o.pad << ")";
    CP_USER_ERROR("--method " << o.method << " on --shape " << o.shape << window.str() << ": "
                              << why);
  }
  const bool nonnegative = o.method.rfind("stochastic", 0) == 0;  // its inputs must be >= 0
  fill_random(graph->input(N), 11, nonnegative ? 0.f : -1.f, 1.f);
  fill_random(graph->gradient(1, N), 12, -1.f, 1.f);
  BenchContext bc(device);
  for (int r = 0; r < 3; ++r) {  // warm-up
    graph->forward_layer(0, bc.ctx, N);
    graph->backward_layer(0, bc.ctx, N);
  }
  RegionTotals timer;
  install_region_timer(&timer);
  for (int r = 0; r < o.reps; ++r) {
    graph->forward_layer(0, bc.ctx, N);
    graph->backward_layer(0, bc.ctx, N);
  }
  install_region_timer(nullptr);
  std::map<std::string, double> ms;
  for (auto& e : timer.totals()) ms[e.name] = e.ms / o.reps;
  const std::string& name = graph->layer(0).name();
  const double fwd = ms[name + "/fwd"], bwd = ms[name + "/bwd"];
  const double in_bytes = 4.0 * graph->input(N).numel(), out_bytes = 4.0 * graph->output(N).numel();
  // Forward reads x and writes y; the gather-form backward reads x and dy and writes dx.
  const double fwd_gbs = (in_bytes + out_bytes) / (fwd * 1e6);
  const double bwd_gbs = (2 * in_bytes + out_bytes) / (bwd * 1e6);
  const double copy_gbs = measure_copy_gbps(device, size_t(in_bytes), o.reps);
  const Shape out_shape = graph->output_shape(N);
  const auto baseline = time_library_baseline(o, *graph, C, H, W, N, device);
  if (o.json) {
    nlohmann::ordered_json j;
    j["device"] = device_line(device);
    j["method"] = o.method;
    j["layer"] = graph->layer(0).describe();
    j["path"] = graph->layer(0).backend_detail(N);
    j["shape"] = {N, C, H, W};
    j["output_shape"] = {out_shape.n, out_shape.c, out_shape.h, out_shape.w};
    j["forward_ms"] = fwd;
    j["backward_ms"] = bwd;
    j["forward_gb_per_s"] = fwd_gbs;
    j["backward_gb_per_s"] = bwd_gbs;
    j["copy_gb_per_s"] = copy_gbs;
    j["forward_share_of_copy"] = fwd_gbs / copy_gbs;
    if (baseline) {
      j["baseline"] = baseline->name;
      j["baseline_forward_ms"] = baseline->forward_ms;
      j["forward_speedup_over_baseline"] = baseline->forward_ms / fwd;
      if (baseline->backward_ms >= 0) {
        j["baseline_backward_ms"] = baseline->backward_ms;
        j["backward_speedup_over_baseline"] = baseline->backward_ms / bwd;
      }
      j["baseline_max_abs_difference"] = baseline->max_abs_difference;
    }
    j["reps"] = o.reps;
    print_json(j);
    return 0;
  }
  std::printf("convpool bench pool: %s (%s) on %s, input %dx%dx%dx%d -> %dx%dx%dx%d, %d reps\n",
              o.method.c_str(), graph->layer(0).describe().c_str(), device_line(device).c_str(), N,
              C, H, W, out_shape.n, out_shape.c, out_shape.h, out_shape.w, o.reps);
  if (const std::string path = graph->layer(0).backend_detail(N); !path.empty())
    std::printf("path: %s\n", path.c_str());
  std::printf("forward  %9.4f ms  %8.1f GB/s  (%.0f%% of the device's copy bandwidth, %.1f GB/s)\n",
              fwd, fwd_gbs, 100 * fwd_gbs / copy_gbs, copy_gbs);
  std::printf("backward %9.4f ms  %8.1f GB/s\n", bwd, bwd_gbs);
  if (baseline) {
    std::printf("baseline %s: forward %.4f ms (ours %.2fx faster)", baseline->name.c_str(),
                baseline->forward_ms, baseline->forward_ms / fwd);
    if (baseline->backward_ms >= 0)
      std::printf(", backward %.4f ms (ours %.2fx faster)", baseline->backward_ms,
                  baseline->backward_ms / bwd);
    std::printf("; max |difference| of its forward from ours %.3g\n",
                baseline->max_abs_difference);
  }
  return 0;
}

struct ConvTiming {
  std::string name, shape, layer, algorithms;
  Shape input;
  double fwd, bwd_filter, bwd_data, tflops;
  double total() const { return fwd + bwd_filter + bwd_data; }
};

// Every conv layer of the model, forward and both backward directions, timed in place.
std::vector<ConvTiming> time_convs(const BenchOptions& o, Device device) {
  ModelSpec spec = load_model_file(o.model);
  auto graph = Graph::build(spec, GraphOptions{device, o.batch, 0});
  graph->init_params(1);
  fill_random(graph->input(o.batch), 21, 0.f, 1.f);
  BenchContext bc(device);
  graph->forward(bc.ctx, o.batch);  // every activation holds real values
  for (size_t i = 0; i <= graph->num_layers(); ++i)
    fill_random(graph->gradient(i, o.batch), 22 + i, -1.f, 1.f);
  std::vector<size_t> convs;
  for (size_t i = 0; i < graph->num_layers(); ++i)
    if (graph->layer(i).type() == "conv") convs.push_back(i);
  if (convs.empty()) CP_USER_ERROR(o.model << " has no conv layer");
  for (size_t i : convs) {  // warm-up
    graph->forward_layer(i, bc.ctx, o.batch);
    graph->backward_layer(i, bc.ctx, o.batch);
  }
  RegionTotals timer;
  install_region_timer(&timer);
  for (int r = 0; r < o.reps; ++r)
    for (size_t i : convs) {
      graph->forward_layer(i, bc.ctx, o.batch);
      graph->backward_layer(i, bc.ctx, o.batch);
    }
  install_region_timer(nullptr);
  std::map<std::string, double> ms;
  for (auto& e : timer.totals()) ms[e.name] = e.ms / o.reps;
  auto dims = [](const Shape& s) {
    return std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
  };
  std::vector<ConvTiming> out;
  for (size_t i : convs) {
    const Layer& layer = graph->layer(i);
    const std::string& n = layer.name();
    ConvTiming t{n, "", layer.describe(), layer.backend_detail(o.batch),
                 graph->activation(i, o.batch).shape, ms[n + "/fwd"], ms[n + "/bwd-filter"],
                 ms[n + "/bwd-data"], 0};
    t.tflops = o.batch * layer.forward_flops() * (t.bwd_data > 0 ? 3 : 2) / (t.total() * 1e9);
    t.shape = dims(t.input) + " -> " + dims(graph->activation(i + 1, o.batch).shape);
    out.push_back(std::move(t));
  }
  return out;
}

// --engines: the same convolutions under each CPU engine, with ratios against im2col and the
// engine `auto` picks: the measurement behind src/cpu/conv_engine.cpp's rule.
int bench_conv_engines(const BenchOptions& o) {
  const CpuConvEngine engines[] = {CpuConvEngine::im2col, CpuConvEngine::onednn_direct,
                                   CpuConvEngine::onednn_auto, CpuConvEngine::automatic};
  const CpuConvEngine chosen = cpu_conv_engine();
  std::vector<std::vector<ConvTiming>> runs;
  for (CpuConvEngine e : engines) {
    set_cpu_conv_engine(e);
    runs.push_back(time_convs(o, Device::cpu));
  }
  set_cpu_conv_engine(chosen);
  nlohmann::ordered_json j;
  j["device"] = "cpu";
  j["threads"] = omp_get_max_threads();
  j["batch"] = o.batch;
  if (!o.json)
    std::printf("convpool bench conv --engines: %s on the CPU, %d threads, batch %d, %d reps\n"
                "fwd + bwd ms per engine, x = speed-up over im2col\n\n%-9s %-22s %9s %16s %16s "
                "%16s  %s\n",
                o.model.c_str(), omp_get_max_threads(), o.batch, o.reps, "layer", "shape",
                "im2col", "onednn-direct", "onednn-auto", "auto", "auto runs");
  double sums[4] = {0, 0, 0, 0};
  for (size_t l = 0; l < runs[0].size(); ++l) {
    const double base = runs[0][l].total();
    for (size_t e = 0; e < 4; ++e) sums[e] += runs[e][l].total();
    if (o.json) {
      nlohmann::ordered_json row{{"name", runs[0][l].name}, {"shape", runs[0][l].shape}};
      for (size_t e = 0; e < 4; ++e)
        row[cpu_conv_engine_name(engines[e])] = {{"ms", runs[e][l].total()},
                                                 {"algorithms", runs[e][l].algorithms}};
      j["layers"].push_back(row);
      continue;
    }
    char cell[3][32];
    for (size_t e = 1; e < 4; ++e)
      std::snprintf(cell[e - 1], sizeof cell[0], "%.2f (%.2fx)", runs[e][l].total(),
                    base / runs[e][l].total());
    std::printf("%-9s %-22s %9.2f %16s %16s %16s  %s\n", runs[0][l].name.c_str(),
                runs[0][l].shape.c_str(), base, cell[0], cell[1], cell[2],
                runs[3][l].algorithms.c_str());
  }
  if (o.json) {
    for (size_t e = 0; e < 4; ++e) j["total_ms"][cpu_conv_engine_name(engines[e])] = sums[e];
    print_json(j);
  } else {
    std::printf("%-9s %-22s %9.2f", "all", "", sums[0]);
    for (size_t e = 1; e < 4; ++e) {
      char cell[32];
      std::snprintf(cell, sizeof cell, "%.2f (%.2fx)", sums[e], sums[0] / sums[e]);
      std::printf(" %16s", cell);
    }
    std::printf("\n");
  }
  return 0;
}

int bench_conv(const BenchOptions& o, Device device) {
  if (o.engines) {
    if (device != Device::cpu) CP_USER_ERROR("--engines compares the CPU's engines: use --device cpu");
    return bench_conv_engines(o);
  }
  const std::vector<ConvTiming> timings = time_convs(o, device);
  nlohmann::ordered_json j;
  j["device"] = device_line(device);
  j["batch"] = o.batch;
  if (!o.json)
    std::printf(
        "convpool bench conv: %s on %s, batch %d, %d reps\n\n%-8s %-22s %9s %11s %9s %9s  %s\n",
        o.model.c_str(), device_line(device).c_str(), o.batch, o.reps, "layer", "shape", "fwd ms",
        "bwd-filt ms", "bwd-data", "TFLOP/s", "algorithms");
  for (const ConvTiming& t : timings) {
    if (o.json) {
      j["layers"].push_back({{"name", t.name},
                             {"input", {t.input.n, t.input.c, t.input.h, t.input.w}},
                             {"layer", t.layer},
                             {"forward_ms", t.fwd},
                             {"backward_filter_ms", t.bwd_filter},
                             {"backward_data_ms", t.bwd_data},
                             {"tflop_per_s", t.tflops},
                             {"algorithms", t.algorithms}});
    } else {
      char data_ms[16] = "-";  // the first layer computes no input gradient
      if (t.bwd_data > 0) std::snprintf(data_ms, sizeof data_ms, "%.4f", t.bwd_data);
      std::printf("%-8s %-22s %9.4f %11.4f %9s %9.3f  %s\n", t.name.c_str(), t.shape.c_str(),
                  t.fwd, t.bwd_filter, data_ms, t.tflops, t.algorithms.c_str());
    }
  }
  if (o.json) print_json(j);
  return 0;
}

}  // namespace

Runner add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "benchmarks: train, pool, conv");
  cmd->require_subcommand(1);
  auto common = [o](CLI::App* sub) {
    add_device_options(sub, o->device, o->threads);
    sub->add_flag("--tf32", o->tf32, "CUDA: TF32 tensor-core math for convolutions and dense");
    sub->add_flag("--json", o->json, "machine-readable output");
  };
  CLI::App* train = cmd->add_subcommand("train", "images/s of whole training steps, peak memory");
  common(train);
  train->add_option("--model", o->model, "model file")->capture_default_str();
  train->add_option("--pool", o->pool, "override every pooling layer");
  train->add_option("--global-pool", o->global_pool,
                    "a global encoder in place of the last pool layer (as train does)");
  train->add_option("--batch", o->batches, "batch sizes, comma-separated")->capture_default_str();
  train->add_option("--warmup", o->warmup, "untimed steps")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  train->add_option("--steps", o->steps, "timed steps")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  CLI::App* pool = cmd->add_subcommand("pool", "one pooling layer: forward/backward time, GB/s");
  common(pool);
  pool->add_option("--method", o->method,
                   "METHOD[:key=value,...], e.g. avgtopk:k=2, weighted_pool:shared=1, "
                   "intermap_pool:groups=2,mode=mean or pyramid_pool:sizes=1,3,5")
      ->capture_default_str();
  pool->add_option("--shape", o->shape, "input N,C,H,W")->capture_default_str();
  pool->add_option("--size", o->size, "window")->capture_default_str()->check(CLI::Range(1, 64));
  pool->add_option("--stride", o->stride, "stride (default: the window)")->check(CLI::Range(1, 64));
  pool->add_option("--pad", o->pad, "padding")->capture_default_str()->check(CLI::Range(0, 32));
  pool->add_option("--reps", o->reps, "timed repetitions")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  CLI::App* conv = cmd->add_subcommand("conv", "each convolution: algorithms, time per direction");
  common(conv);
  conv->add_option("--model", o->model, "model file")->capture_default_str();
  conv->add_option("--batch", o->batch, "batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  conv->add_option("--reps", o->reps, "timed repetitions")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  conv->add_flag("--engines", o->engines,
                 "CPU: every conv engine side by side, with ratios and auto's choice");
  CLI::App* checkpoint =
      cmd->add_subcommand("checkpoint", "save and load time against the number of tensors");
  checkpoint->add_option("--tensors", o->tensors, "tensor counts, comma-separated")
      ->capture_default_str();
  checkpoint->add_option("--reps", o->checkpoint_reps, "timed repetitions (median)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  checkpoint->add_flag("--json", o->json, "machine-readable output");
  cmd->footer(
      "Examples:\n"
      "  convpool bench train --batch 32,256\n"
      "  convpool bench checkpoint --tensors 1000,10000 --reps 5\n"
      "  convpool bench pool --method avgtopk:k=2 --shape 256,64,32,32 --json\n"
      "  convpool bench conv --batch 256\n"
      "  convpool bench conv --model models/resnet20.cfg --batch 128 --engines\n"
      "  bench/peer-compare --device cpu      # the same work in PyTorch, with ratios");
  return [o, train, pool, conv, checkpoint] {
    if (*checkpoint)
      return bench_checkpoint(parse_ints(o->tensors, "--tensors", 0), o->checkpoint_reps, o->json);
    set_threads(o->threads);
    const Device device = pick_device(o->device);
    set_cuda_tf32(o->tf32);
    if (*train) return bench_train(*o, device);
    if (*pool) return bench_pool(*o, device);
    if (*conv) return bench_conv(*o, device);
    return 0;
  };
}

}  // namespace convpool::cli
