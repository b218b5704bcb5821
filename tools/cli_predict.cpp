// convpool predict: the classes a checkpoint gives to image files (PNG, JPEG), with their
// probabilities. Each image is decoded, fitted to the model's square input, and evaluated by
// the same path as `eval` (the checkpoint's normalisation, its EMA weights when it has them).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "cli_data.h"
#include "convpool/checkpoint.h"
#include "convpool/data.h"
#include "convpool/error.h"
#include "convpool/graph.h"
#include "convpool/image_file.h"
#include "convpool/trainer.h"

namespace convpool::cli {

namespace fs = std::filesystem;

namespace {

struct PredictOptions {
  std::string checkpoint, device = "auto", tta = "none", weights = "auto", fit = "crop", data;
  std::vector<std::string> inputs;
  int batch = 64, threads = 0, top = 3;
  bool json = false;
};

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// The files to classify: each argument that is a directory gives its .png/.jpg/.jpeg files
// (not its subdirectories), in name order; any other argument is taken as a file, whatever its
// name (a bad one fails on its own). A directory without images is an error.
std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> files;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!fs::is_directory(in, ec)) {
      files.push_back(in);
      continue;
    }
    std::vector<std::string> found;
    for (fs::directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec))
      if (!it->is_directory(ec) && has_image_extension(it->path())) found.push_back(it->path().string());
    if (ec) CP_USER_ERROR(in << ": cannot list the directory (" << ec.message() << ")");
    if (found.empty()) CP_USER_ERROR(in << ": no .png, .jpg or .jpeg files in this directory");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

struct Ranked {
  int index;
  double probability;
};

// Softmax of one image's logits, highest first, the first `top`.
std::vector<Ranked> top_classes(const float* logits, int classes, int top) {
  const float peak = *std::max_element(logits, logits + classes);
  std::vector<Ranked> r(static_cast<size_t>(classes));
  double sum = 0;
  for (int c = 0; c < classes; ++c) sum += std::exp(double(logits[c]) - peak);
  for (int c = 0; c < classes; ++c) r[size_t(c)] = {c, std::exp(double(logits[c]) - peak) / sum};
  std::stable_sort(r.begin(), r.end(),
                   [](const Ranked& a, const Ranked& b) { return a.probability > b.probability; });
  r.resize(size_t(std::min(top, classes)));
  return r;
}

int run(const PredictOptions& o) {
  set_threads(o.threads);
  const std::vector<TtaView> views = tta_views(o.tta);
  const ImageFit fit = o.fit == "stretch" ? ImageFit::stretch : ImageFit::crop;
  const std::vector<std::string> files = expand_inputs(o.inputs);
  const Checkpoint ckpt = load_checkpoint(o.checkpoint);
  const Device device = pick_device(o.device);
  const bool ema = uses_ema_weights(ckpt, o.weights);
  const int batch = int(std::min<size_t>(size_t(o.batch), files.size()));
  auto graph = build_from_checkpoint(ckpt, o.checkpoint, GraphOptions{device, batch, 0}, ema);
  const DatasetKind kind = parse_dataset_kind(ckpt.state.dataset);
  // The names the run trained with (image folders: its class folders).
  std::vector<std::string> names = checkpoint_class_names(ckpt.state);
  const int classes = int(names.size()), side = ckpt.state.input.side;
  require_model_fits_data(*graph, o.checkpoint + " (model)", classes, side,
                          data_title(kind, ckpt.state.data));
  if (!o.data.empty() && kind != DatasetKind::folder)  // the data set's own name file
    names = load_dataset(kind, resolve_data_dir(kind, o.data), "test", 1).class_names;
  else if (!o.data.empty())
    std::fprintf(stderr,
                 "convpool: note: --data is not read: the checkpoint holds its image "
                 "folder's class names\n");

  const auto evaluator = checkpoint_evaluator(*graph, ckpt, device, batch);

  nlohmann::ordered_json out;
  out["checkpoint"] = o.checkpoint;
  out["weights"] = ema ? "ema" : "raw";
  out["device"] = device_name(device);
  out["predictions"] = nlohmann::json::array();
  out["failed"] = nlohmann::json::array();
  size_t failed = 0;
  bool header_printed = false;  // before the first prediction: none when every file fails
  // A batch of files at a time: decoded, fitted, evaluated, printed.
  for (size_t first = 0; first < files.size(); first += size_t(batch)) {
    Dataset images;
    std::vector<std::string> ok;
    for (size_t i = first; i < std::min(files.size(), first + size_t(batch)); ++i) {
      try {
        const std::vector<uint8_t> planar =
            resample_to_square(read_image_file(files[i]), side, fit);
        images.pixels.insert(images.pixels.end(), planar.begin(), planar.end());
        images.labels.push_back(0);  // unknown: the loss is not used
        ok.push_back(files[i]);
      } catch (const Error& e) {
        ++failed;
        std::fprintf(stderr, "convpool: error: %s\n", one_line(e.what()).c_str());
        out["failed"].push_back({{"file", files[i]}, {"error", e.what()}});
      }
    }
    if (ok.empty()) continue;
    images.class_names = names;
    images.classes = classes;
    images.side = side;
    const EvalResult r = evaluator->evaluate(images, views, true);
    for (size_t i = 0; i < ok.size(); ++i) {
      const auto ranked = top_classes(r.logits.data() + i * size_t(classes), classes, o.top);
      if (o.json) {
        nlohmann::ordered_json top = nlohmann::json::array();
        for (const Ranked& k : ranked)
          top.push_back({{"class", names[size_t(k.index)]},
                         {"index", k.index},
                         {"probability", k.probability}});
        out["predictions"].push_back({{"file", ok[i]}, {"top", top}});
      } else {
        if (!header_printed)
          std::printf("checkpoint %s, %s weights, on %s\n", o.checkpoint.c_str(),
                      ema ? "ema" : "raw", device_name(device));
        header_printed = true;
        std::string line = ok[i] + ":";
        char part[96];
        for (size_t k = 0; k < ranked.size(); ++k) {
          std::snprintf(part, sizeof part, "%s %s %.4f", k ? "," : "",
                        names[size_t(ranked[k].index)].c_str(), ranked[k].probability);
          line += part;
        }
        std::printf("%s\n", one_line(line).c_str());
      }
    }
  }
  // File names need not be UTF-8: invalid bytes print as U+FFFD rather than end the output.
  if (o.json)
    std::printf("%s\n",
                out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  if (failed) {
    if (files.size() > 1)  // with one file, its own line says it all
      std::fprintf(stderr, "convpool: error: %zu of %zu images could not be read (see above)\n",
                   failed, files.size());
    return 1;
  }
  return 0;
}

}  // namespace

Runner add_predict_command(CLI::App& app) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "classify image files (PNG, JPEG) with a checkpoint: top classes and probabilities");
  cmd->add_option("--checkpoint", o->checkpoint, "a .safetensors checkpoint from train")
      ->required();
  cmd->add_option("images", o->inputs,
                  "image files, or directories of .png/.jpg/.jpeg files (not their subfolders)")
      ->required();
  add_device_options(cmd, o->device, o->threads);
  cmd->add_option("--top", o->top, "classes listed per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--batch", o->batch, "images evaluated together")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--fit", o->fit,
                  "a non-square image: crop (its central square) or stretch (the whole image); "
                  "then resampled to the model's input (area average when shrinking)")
      ->capture_default_str()
      ->check(CLI::IsMember({"crop", "stretch"}));
  cmd->add_option("--tta", o->tta, "test-time augmentation: none, flip or flip,translate")
      ->capture_default_str();
  cmd->add_option("--weights", o->weights,
                  "auto (the EMA's when the checkpoint has them), ema or raw")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "ema", "raw"}));
  cmd->add_option("--data", o->data,
                  "CIFAR runs: read the class names from this data set directory's name file "
                  "(default: the built-in CIFAR-10 or CIFAR-100 names; image-folder runs name "
                  "their class folders, kept in the checkpoint)")
      ->check(kNonEmpty);
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->footer(
      "An image that cannot be read is reported on its own line; the others are still\n"
      "classified, and the exit status is 1.\n\n"
      "Example:\n  convpool predict --checkpoint runs/NAME/best.safetensors cat.png photos/");
  return [o] { return run(*o); };
}

}  // namespace convpool::cli
