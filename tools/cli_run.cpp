// Running a training from resolved options: the run directory, the data, the trainer and its
// reports. The options themselves are cli_train_options.cpp.
#include "cli_run.h"

#include <filesystem>
#include <memory>

#include "cli_common.h"
#include "cli_measure.h"
#include "convpool/buffer.h"
#include "convpool/checkpoint.h"
#include "convpool/conv_engine.h"
#include "convpool/device.h"
#include "convpool/distributed.h"
#include "convpool/graph.h"
#include "convpool/metrics.h"
#include "convpool/model.h"
#include "convpool/pooling.h"
#include "convpool/precision.h"
#include "convpool/safetensors.h"

namespace convpool::cli {

namespace fs = std::filesystem;

void check_model(const std::string& model, const std::string& pool, const DataChoice& data,
                 const std::string& global_pool) {
  ModelSpec spec = load_model_file(model);
  if (!global_pool.empty()) apply_global_pool_override(spec, global_pool);
  if (!pool.empty()) apply_pool_override(spec, pool);
  const auto graph = Graph::build(spec, GraphOptions{Device::cpu, 1, 0});
  require_model_fits_data(*graph, model, data.classes, data.side, data_title(data));
  // Training would change nothing: refused rather than run for hours.
  const ParamGroups& groups = graph->param_groups();
  bool learns = false;
  for (int g = 0; g < groups.count; ++g)
    learns = learns || (groups.end[g] > groups.begin[g] && groups.lr_mult[g] > 0.f);
  if (!learns)
    CP_USER_ERROR(model << " has nothing to train: "
                        << (graph->num_params() == 0 ? "it has no parameters"
                                                     : "every parameter is frozen or has lr_mult=0")
                        << " (convpool model " << model << " lists them)");
}

RunData load_run_data(const TrainOptions& o) {
  RunData d;
  d.dir = o.resolved.dir;
  const bool quiet = o.verbosity() == Verbosity::quiet;
  d.train = load_split(o.resolved, "train", o.limit_train, quiet);
  // The test set has what the training set left of the budget.
  DataChoice rest = o.resolved;
  if (rest.memory_budget > 0)
    rest.memory_budget -= std::min(rest.memory_budget - 1, d.train.pixels.size());
  d.test = load_split(rest, "test", o.limit_test, quiet);
  if (o.verbosity() != Verbosity::quiet)
    for (const std::string& note : {data_note(d.train, "training"), data_note(d.test, "test")})
      if (!note.empty()) std::fprintf(stderr, "convpool: %s\n", note.c_str());
  return d;
}

bool is_run_file(const std::string& name) {
  for (const char* f :
       {"config.toml", "metrics.csv", "summary.txt", "last.safetensors", "best.safetensors"})
    if (name == f) return true;
  return name.rfind("step-", 0) == 0 && fs::path(name).extension() == ".safetensors";
}

bool holds_run(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_run_file(it->path().filename().string())) return true;
  return false;
}

void remove_run_files(const std::string& dir) {
  std::vector<fs::path> doomed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (is_run_file(it->path().filename().string())) doomed.push_back(it->path());
  for (const fs::path& p : doomed)
    if (!fs::remove(p, ec) && ec)
      CP_USER_ERROR("--overwrite: cannot remove " << p.string() << " (" << ec.message() << ")");
}

void make_directory(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) CP_USER_ERROR("cannot write the run directory " << path << " (" << ec.message() << ")");
}

std::string config_text(const CLI::App* cmd, const std::string& path) {
  return "# convpool " + cmd->get_name() +
         ": the effective configuration of this run. Repeat it with\n#   convpool " +
         cmd->get_name() + " --config " + path + " --out NEW_DIR\n" + cmd->config_to_str(true, true);
}

void write_config(const CLI::App* cmd, const std::string& path) {
  write_file_atomic(path, config_text(cmd, path));
}

bool holds_checkpoint(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (is_run_file(name) && fs::path(name).extension() == ".safetensors") return true;
  }
  return false;
}

namespace {
// ", schedule cosine (...)" for the run header; nothing for a constant lr without warm-up.
std::string describe_schedule_suffix(const LrSchedule& s) {
  if (is_constant_lr(s)) return "";
  return ", schedule " + describe(s);
}
std::string describe_recipe_suffix(const TrainConfig& c) {
  std::ostringstream s;
  if (c.label_smoothing > 0.f) s << ", label smoothing " << c.label_smoothing;
  if (c.ema_decay > 0.f)
    s << ", EMA decay " << c.ema_decay << " (evaluated with the " << (c.eval_ema ? "EMA" : "raw")
      << " weights)";
  return s.str();
}
std::string describe_clipping_suffix(const OptimizerConfig& c) {
  if (c.clip_grad_norm <= 0.f) return "";
  std::ostringstream s;
  s << ", gradients clipped to norm " << c.clip_grad_norm;
  return s.str();
}
}  // namespace

std::vector<EpochMetrics> train_run(TrainOptions& o, const Dataset& train, const Dataset& test,
                                    ConsoleReporter& reporter) {
  ModelSpec spec;
  TrainState state;
  std::unique_ptr<Checkpoint> ckpt;
  if (!o.resume.empty()) {
    ckpt = std::make_unique<Checkpoint>(load_checkpoint(o.resume));
    if (const std::string note = format_note(*ckpt, o.resume);
        !note.empty() && o.verbosity() != Verbosity::quiet)
      std::fprintf(stderr, "convpool: %s\n", note.c_str());
    spec = parse_model_text(ckpt->model_text, o.resume + " (model)");
    o.pool = ckpt->pool_override;
    state = ckpt->state;
    o.cfg.batch = state.batch;
    o.cfg.seed = state.seed;
    o.cfg.optimizer = state.optimizer;
    o.cfg.label_smoothing = state.label_smoothing;
    o.cfg.ema_decay = state.ema_decay;
    o.cfg.eval_ema = state.eval_ema;
    o.cfg.input = state.input;
    if (state.dataset != o.dataset)
      CP_USER_ERROR(o.resume << " was trained on " << state.dataset << ": resume it with --dataset "
                             << state.dataset);
    if (state.epoch_order != kEpochOrderScheme)
      CP_USER_ERROR(o.resume << " was trained with the '" << state.epoch_order
                             << "' epoch order, and this convpool shuffles by '"
                             << kEpochOrderScheme
                             << "' (the same order on the CPU and the GPU): the run cannot "
                                "continue exactly; start a new one (convpool eval still reads it)");
    if (state.epoch >= o.cfg.epochs)
      CP_USER_ERROR(o.resume << " has already trained " << state.epoch
                             << " epochs; pass --epochs above that to continue");
    if (o.new_test_set) state.best_accuracy = -1;  // best is chosen afresh on this test set
  } else {
    spec = load_model_file(o.model);
    if (!o.global_pool.empty()) apply_global_pool_override(spec, o.global_pool);
  }
  if (!o.pool.empty()) apply_pool_override(spec, o.pool);
  o.cfg.model_text = spec.text;
  o.cfg.pool_override = o.pool;
  o.cfg.out_dir = o.out;
  validate(o.cfg.optimizer);
  // The schedule spans the whole run; a resumed one keeps its checkpoint's length, which was
  // counted in the run's steps per epoch: a resume on other data (a larger --limit-train)
  // would train its remaining steps past the schedule's end.
  const uint64_t steps_per_epoch = (train.size() + size_t(o.cfg.batch) - 1) / size_t(o.cfg.batch);
  if (ckpt && state.epoch > 0 && !is_constant_lr(o.cfg.optimizer.schedule)) {
    const uint64_t run_steps_per_epoch = (state.step - state.epoch_batches) / uint64_t(state.epoch);
    if (run_steps_per_epoch != steps_per_epoch)
      CP_USER_ERROR(o.resume << " trained " << run_steps_per_epoch << " steps per epoch and its "
                             << lr_schedule_name(o.cfg.optimizer.schedule.kind)
                             << " schedule spans " << o.cfg.optimizer.schedule.total_steps
                             << " steps; this data gives " << steps_per_epoch
                             << " per epoch: resume with the run's --limit-train (or none), or "
                                "start a new run");
  }
  resolve_schedule(o.cfg.optimizer.schedule, o.cfg.epochs, steps_per_epoch);

  // Data-parallel: each rank's graph holds its slice of a global batch (at most ceil(B/N)).
  const Communicator& comm = world();
  const int local_batch = int(batch_slice(size_t(o.cfg.batch), comm.size() - 1, comm.size()).size());
  GraphOptions gopts{o.cfg.device, std::max(local_batch, 1), optimizer_state_slots(o.cfg.optimizer)};
  auto graph = Graph::build(spec, gopts);
  require_model_fits_data(*graph, ckpt ? o.resume + " (model)" : o.model, o.cfg.classes,
                          o.cfg.input.side, data_title(o.resolved));
  graph->init_params(o.cfg.seed);
  if (ckpt) {
    restore_graph(*ckpt, o.resume, *graph, true);
  } else if (graph->needs_data_init()) {
    // Parameters made from data (conv init=whiten): the first training images, normalised
    // as training normalises them, not augmented; the same on every rank.
    const int n = int(std::min<size_t>(size_t(graph->max_batch()), train.size()));
    std::vector<uint32_t> first(static_cast<size_t>(n), 0);
    for (int i = 0; i < n; ++i) first[size_t(i)] = uint32_t(i);
    std::vector<float> host(graph->input(n).numel());
    images_to_float(train, first.data(), n, host.data(), o.cfg.input);
    copy_bytes(graph->input(n).data, o.cfg.device, host.data(), Device::cpu,
               host.size() * sizeof(float));
    graph->init_from_data(n);
  }

  o.cfg.data_placement =
      resolve_data_placement(parse_data_placement(o.data_placement), o.cfg.device,
                             train.pixel_bytes() + test.pixel_bytes());
  if (o.verbosity() != Verbosity::quiet) {
    std::ostringstream head;
    head << (ckpt ? o.resume : o.model) << " on " << device_name(o.cfg.device) << ", "
         << train.size() << " train / " << test.size() << " test images";
    if (o.cfg.device == Device::cuda)
      head << "\ndevice: " << cuda_device_report() << "\ndata "
           << (o.cfg.data_placement == DataPlacement::device
                   ? "resident in GPU memory (--data-placement device)"
                   : "streamed through pinned host memory (--data-placement pinned)");
    if (o.verbosity() == Verbosity::verbose) head << "\n" << graph->summary();
    if (comm.distributed())
      head << "\ndata-parallel over " << comm.size() << " ranks (" << local_batch
           << " images each per step" << (o.cfg.sync_bn ? ", synchronised BatchNorm" : "")
           << ")";
    head << "\nthreads " << o.threads;
    if (o.cfg.device == Device::cpu)  // which engines the CPU's convolutions run (bench conv --engines)
      head << ", conv engine " << cpu_conv_engine_name(cpu_conv_engine())
           << (have_onednn() ? "" : " (no oneDNN in this build: im2col)");
    if (precision() != Precision::fp32)
      head << ", precision " << precision_name(precision()) << " (convolutions)";
    head << ", batch " << o.cfg.batch << ", " << optimizer_name(o.cfg.optimizer.kind)
         << " lr " << o.cfg.optimizer.lr << describe_schedule_suffix(o.cfg.optimizer.schedule)
         << describe_clipping_suffix(o.cfg.optimizer)
         << describe_recipe_suffix(o.cfg)
         << ", seed " << o.cfg.seed << ", pool "
         << (o.pool.empty() ? "as in the model" : o.pool) << ", input " << describe(o.cfg.input)
         << "\nrun directory " << o.out;
    if (ckpt)
      head << "\nresuming " << describe_position(state);
    if (ckpt && o.new_test_set)
      head << "\nnote: --limit-test " << o.limit_test
           << " evaluates on another test set than the run's: best.safetensors is chosen afresh";
    reporter.line(head.str());
  }
  Trainer trainer(*graph, o.cfg, state, &reporter);
  if (ckpt && o.cfg.ema_decay > 0.f) restore_ema(*ckpt, o.resume, *graph, trainer.ema_weights());
  auto metrics = trainer.fit(train, test);
  std::string tta_line;
  if (o.tta != "none") {
    // The final weights once more, through the test-time views.
    const EvalResult r = trainer.evaluate(test, tta_views(o.tta));
    char line[160];
    std::snprintf(line, sizeof line, "test-time augmentation %s: test_loss %.4f  test_acc %.4f",
                  o.tta.c_str(), r.loss, r.accuracy);
    tta_line = line;
    if (o.verbosity() != Verbosity::quiet) reporter.line(tta_line);
  }
  if (o.verbosity() != Verbosity::quiet) {
    reporter.line(std::string("peak ") + (o.cfg.device == Device::cuda ? "device" : "host") +
                  " memory " + human_bytes(double(memory_stats(o.cfg.device).peak)) +
                  " (all convpool buffers)");
  }
  if (!o.out.empty()) {
    const auto rows = read_metrics_csv(o.out + "/metrics.csv");
    write_file_atomic(o.out + "/summary.txt",
                      run_summary_line(rows) + "\n" + (tta_line.empty() ? "" : tta_line + "\n"));
  }
  return metrics;
}

}  // namespace convpool::cli
